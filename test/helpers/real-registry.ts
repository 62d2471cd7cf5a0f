/**
 * Starts the REAL CNCF distribution registry (Debian `docker-registry`, 2.8.x)
 * for integration tests.
 *
 * Contracts:
 * - startRegistry(mode, {tls}) writes a config into a fresh temp dir (storage
 *   = <temp>/storage, delete enabled, addr 127.0.0.1:<free port>, log level
 *   info, no http.debug), spawns `docker-registry serve <config>` (cwd = temp,
 *   REGISTRY_* env vars stripped) and resolves once `GET /v2/` answers 200 or
 *   401. Startup failures (15 s timeout, early exit) reject with the log.
 *   A port taken between probing and binding (EADDRINUSE) is retried.
 * - 'open': no auth, http (https if opts.tls).
 *   'htpasswd-tls': https with a harness CA; htpasswd with users.alice.
 *   'htpasswd': the same over http (for a TLS front server, emulated-registry.ts).
 *   `htpasswdUsers` replaces alice in both htpasswd modes.
 *   'token': auth.token trusting our token server (token-server.ts) with
 *   users alice (read-write) and bob (read-only); http unless opts.tls, in
 *   which case both registry and token server use https with the same CA.
 *   With `tokenAuth` no token server is started: distribution trusts that
 *   issuer and names that realm/service in its challenges (emulated-registry.ts).
 * - HTTPS modes expose `caFile` (for NODE_EXTRA_CA_CERTS) and `certDir` (a
 *   dir containing only ca.crt, for skopeo --src/--dest-cert-dir). `tlsNames`
 *   adds DNS names to the server certificate (another name for 127.0.0.1).
 * - `mtls: true` (https): distribution's `http.tls.clientcas` = the harness CA, which makes
 *   it require and verify client certificates (Go's RequireAndVerifyClientCert). A client
 *   pair from that CA is issued and exposed as `clientCert` (the startup probe uses it).
 * - `logFile` receives the registry's stdout+stderr; read it BEFORE stop().
 * - stop() is idempotent: SIGTERM (SIGKILL after 5 s), waits for exit, stops
 *   the token server and removes all temp dirs. If the test process exits
 *   first the registry is SIGKILLed and the dirs removed synchronously (also
 *   on SIGTERM, which is how vitest stops workers); if it is SIGKILLed, the
 *   registry still dies via `setpriv --pdeathsig KILL` (temp dirs then leak).
 * - htpasswd bcrypt hashes come from libc crypt(3) via `perl` (perl-base is
 *   Essential in Debian; libxcrypt implements $2b$), relabelled $2y$ (same
 *   algorithm; Go's x/crypto/bcrypt accepts any minor version), cost 5.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeTempDir, onProcessExit, parentDeathCommand } from './binaries.js';
import { issueCert, makeServerTls, type TlsFiles } from './tls.js';
import { DEFAULT_USERS, startTokenServer, TOKEN_ISSUER, TOKEN_SERVICE, type TokenServer } from './token-server.js';

export type RegistryMode = 'open' | 'htpasswd' | 'htpasswd-tls' | 'token';

export interface RealRegistry {
  host: string; // '127.0.0.1:PORT'
  url: string; // 'http://127.0.0.1:PORT' or 'https://127.0.0.1:PORT'
  mode: RegistryMode;
  caFile?: string; // CA PEM (https modes)
  certDir?: string; // dir containing ca.crt (https modes)
  clientCert?: { cert: string; key: string }; // mtls: a pair the registry accepts
  users: Record<string, string>; // user → password ({} in open mode)
  storageDir: string;
  logFile: string;
  configFile: string;
  tokenServer?: TokenServer; // token mode only
  stop(): Promise<void>;
}

export interface StartRegistryOptions {
  /** Serve https (always true for 'htpasswd-tls'). Default false. */
  tls?: boolean;
  /** Extra DNS names for the server certificate (e.g. a non-loopback alias of 127.0.0.1). */
  tlsNames?: string[];
  /** htpasswd modes: these users (user → password) instead of alice. */
  htpasswdUsers?: Record<string, string>;
  /** https, requiring client certificates issued by the harness CA (implies tls). */
  mtls?: boolean;
  /** token mode: trust this issuer and announce this realm instead of starting a token server. */
  tokenAuth?: TokenAuthConfig;
  /**
   * Pull-through cache (distribution's proxy mode) in front of `remoteUrl`: manifests and blobs
   * asked for are fetched from the upstream (as `username`, which may use token auth there),
   * stored, and served from the cache afterwards, also while the upstream is down. Pushes are
   * refused (distribution answers 405 UNSUPPORTED). `caFile`: the upstream's CA, given to the Go
   * process as SSL_CERT_FILE.
   */
  proxy?: { remoteUrl: string; username?: string; password?: string; caFile?: string };
}

/** What distribution's auth.token section needs. */
export interface TokenAuthConfig {
  realm: string;
  service: string;
  issuer: string;
  rootCertBundle: string;
}

const STARTUP_TIMEOUT_MS = 15_000;

/** Ask the kernel for a free 127.0.0.1 port (released before returning). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** bcrypt ($2y$, cost 5) via libc crypt(3) through perl. */
export function bcryptHash(password: string): Promise<string> {
  const std = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const bcr = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const salt = [...randomBytes(16).toString('base64').replace(/=+$/, '')].map((c) => bcr[std.indexOf(c)]).join('');
  return new Promise((resolve, reject) => {
    execFile(
      'perl', ['-e', 'print crypt($ENV{FERRY_PW}, $ENV{FERRY_SALT})'],
      { env: { ...process.env, FERRY_PW: password, FERRY_SALT: `$2b$05$${salt}` }, timeout: 10_000 },
      (err, stdout, stderr) => {
        if (!err && /^\$2[aby]\$05\$[./A-Za-z0-9]{53}$/.test(stdout)) resolve(`$2y$${stdout.slice(4)}`);
        else reject(new Error(`bcrypt via perl crypt(3) failed (${err?.message ?? `output ${JSON.stringify(stdout)}`}) ${stderr}`));
      },
    );
  });
}

/** One GET /v2/ probe; resolves the status code, rejects on network error. */
function probe(url: string, ca?: Buffer, client?: { cert: string; key: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const u = new URL('/v2/', url);
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, { method: 'GET', ca, timeout: 2_000, ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}) }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('probe timeout')));
    req.on('error', reject);
    req.end();
  });
}

function yamlConfig(o: {
  port: number; storageDir: string; tls?: TlsFiles; htpasswd?: string; token?: TokenAuthConfig; clientCas?: string[];
  proxy?: { remoteUrl: string; username?: string; password?: string };
}): string {
  const q = (s: string): string => JSON.stringify(s); // JSON strings are valid YAML scalars
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: text',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${q(o.storageDir)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${q(`127.0.0.1:${o.port}`)}`,
    `  secret: ${q(randomBytes(16).toString('hex'))}`,
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
  ];
  if (o.tls) lines.push('  tls:', `    certificate: ${q(o.tls.serverCert)}`, `    key: ${q(o.tls.serverKey)}`);
  if (o.tls && o.clientCas?.length) lines.push('    clientcas:', ...o.clientCas.map((c) => `      - ${q(c)}`));
  if (o.htpasswd) lines.push('auth:', '  htpasswd:', '    realm: "ferry-test-realm"', `    path: ${q(o.htpasswd)}`);
  if (o.token) {
    lines.push(
      'auth:', '  token:', `    realm: ${q(o.token.realm)}`, `    service: ${q(o.token.service)}`,
      `    issuer: ${q(o.token.issuer)}`, `    rootcertbundle: ${q(o.token.rootCertBundle)}`,
    );
  }
  if (o.proxy) {
    lines.push('proxy:', `  remoteurl: ${q(o.proxy.remoteUrl)}`);
    if (o.proxy.username !== undefined) lines.push(`  username: ${q(o.proxy.username)}`, `  password: ${q(o.proxy.password ?? '')}`);
  }
  return `${lines.join('\n')}\n`;
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '<no log>';
  }
}

export async function startRegistry(mode: RegistryMode, opts: StartRegistryOptions = {}): Promise<RealRegistry> {
  const temp = makeTempDir(`registry-${mode}`);
  let tokenServer: TokenServer | undefined;
  try {
    const useTls = mode === 'htpasswd-tls' || opts.tls === true || opts.mtls === true;
    const tls = useTls ? await makeServerTls(join(temp.path, 'tls'), opts.tlsNames) : undefined;
    const clientCert = tls && opts.mtls
      ? await issueCert({ dir: tls.dir, caCert: tls.caCert, caKey: tls.caKey }, { name: 'client', usage: 'client' })
      : undefined;
    const storageDir = join(temp.path, 'storage');
    await mkdir(storageDir, { recursive: true });
    let users: Record<string, string> = {};
    let htpasswd: string | undefined;
    let tokenAuth: TokenAuthConfig | undefined = opts.tokenAuth;
    if (mode === 'htpasswd-tls' || mode === 'htpasswd') {
      users = { ...(opts.htpasswdUsers ?? { alice: DEFAULT_USERS.alice! }) };
      htpasswd = join(temp.path, 'htpasswd');
      const entries = await Promise.all(Object.entries(users).map(async ([u, p]) => `${u}:${await bcryptHash(p)}`));
      await writeFile(htpasswd, `${entries.join('\n')}\n`);
    } else if (mode === 'token' && !tokenAuth) {
      tokenServer = await startTokenServer({
        service: TOKEN_SERVICE, issuer: TOKEN_ISSUER,
        tls: tls ? { cert: tls.serverCert, key: tls.serverKey } : undefined,
      });
      users = tokenServer.users;
      tokenAuth = tokenServer;
    }
    const ca = tls ? readFileSync(tls.caCert) : undefined;

    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const configFile = join(temp.path, 'config.yml');
      const logFile = join(temp.path, `registry-${attempt}.log`);
      await writeFile(configFile, yamlConfig({ port, storageDir, tls, htpasswd, token: tokenAuth, ...(opts.proxy ? { proxy: opts.proxy } : {}), ...(clientCert ? { clientCas: [tls!.caCert] } : {}) }));
      const env: NodeJS.ProcessEnv = {};
      for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('REGISTRY_')) env[k] = v;
      if (opts.proxy?.caFile) env['SSL_CERT_FILE'] = opts.proxy.caFile;
      const logFd = openSync(logFile, 'a');
      let child: ChildProcess;
      try {
        const { cmd, args } = parentDeathCommand('docker-registry', ['serve', configFile]);
        child = spawn(cmd, args, { cwd: temp.path, env, stdio: ['ignore', logFd, logFd] });
      } finally {
        closeSync(logFd);
      }
      const unregisterKill = onProcessExit(() => child.kill('SIGKILL'));
      let exited = child.exitCode !== null;
      const exitPromise = new Promise<void>((resolve) => {
        child.once('exit', () => { exited = true; resolve(); });
        child.once('error', () => { exited = true; resolve(); });
      });
      const host = `127.0.0.1:${port}`;
      const url = `${useTls ? 'https' : 'http'}://${host}`;
      const deadline = Date.now() + STARTUP_TIMEOUT_MS;
      let ready = false;
      while (!exited && Date.now() < deadline) {
        const status = await probe(url, ca, clientCert).catch(() => 0);
        if (status === 200 || status === 401) { ready = true; break; }
        await sleep(50);
      }
      if (!ready) {
        if (!exited) child.kill('SIGKILL');
        await exitPromise;
        unregisterKill();
        const log = readLog(logFile);
        if (/address already in use/i.test(log) && attempt < 5) continue;
        throw new Error(`docker-registry (${mode}) did not answer GET /v2/ on ${url} within ${STARTUP_TIMEOUT_MS} ms` +
          ` (exit code ${child.exitCode ?? 'none'}). Log ${logFile}:\n${log}`);
      }

      let stopped: Promise<void> | undefined;
      const ts = tokenServer;
      return {
        host, url, mode, users, storageDir, logFile, configFile, tokenServer: ts,
        caFile: tls?.caCert, certDir: tls?.certDir, ...(clientCert ? { clientCert } : {}),
        stop() {
          stopped ??= (async () => {
            if (!exited) {
              child.kill('SIGTERM');
              const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
              await exitPromise;
              clearTimeout(timer);
            }
            unregisterKill();
            await ts?.stop();
            temp.remove();
          })();
          return stopped;
        },
      };
    }
  } catch (err) {
    await tokenServer?.stop();
    temp.remove();
    throw err;
  }
}
