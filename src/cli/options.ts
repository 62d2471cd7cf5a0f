import { type Command, Option } from 'commander';
import { parseMirrorFlag, parseShortNameMode, type MirrorFlag, type NetworkConfigOptions, type ShortNameMode } from '../config/index.js';
import { FerryError } from '../errors.js';
import { parseResolve, type ResolveRule } from '../http/resolve.js';
import type { OpContext } from '../ops/context.js';
import { parsePlatform, type Platform } from '../oci/platform.js';
import { RateLimitLog } from '../registry/rate-limit-log.js';
import { defaultCacheDir } from '../store/index.js';
import { bindCredentials, commandScope, type CommandScope, type CredentialFlags } from './credentials.js';
import type { CliIO } from './io.js';

/** Options every command accepts (declared on the root program; commander merges them). */
export interface GlobalOptions extends CredentialFlags {
  plainHttp?: boolean;
  tlsVerify: boolean;
  /** false with --no-cloud-auth. */
  cloudAuth?: boolean;
  debug?: boolean;
  verbose?: boolean;
  quiet?: boolean;
  json?: boolean;
  progress: 'auto' | 'tty' | 'plain' | 'json' | 'none';
  progressInterval: number;
  keychain?: boolean;
  resolve?: ResolveRule[];
  mirror?: MirrorFlag[];
  /** false with --no-mirrors. */
  mirrors?: boolean;
  daemonConfig?: string;
  registriesConf?: string;
  shortNameMode?: ShortNameMode;
  certDir?: string;
  caCert?: string;
  clientCert?: string;
  clientKey?: string;
  cacheDir?: string;
  /** false with --no-cache. */
  cache?: boolean;
}

export function addGlobalOptions(program: Command): void {
  program
    .option('--creds <user:password>', 'credentials for the one registry of the command (prefer --username with --password-stdin: argv is visible to other users)')
    .option('--username <name>', 'user name for the one registry of the command; the password is read from --password-stdin')
    .option('--src-creds <user:password>', 'credentials for the source registry only (copy, pull)')
    .option('--src-username <name>', 'user name for the source registry only; the password is read from --password-stdin')
    .option('--dest-creds <user:password>', 'credentials for the destination registry only (copy, push)')
    .option('--dest-username <name>', 'user name for the destination registry only; the password is read from --password-stdin')
    .option('--password-stdin', 'read the password or token from standard input (for the one --username/--src-username/--dest-username given)')
    .option('--authfile <file>', 'read credentials from this file instead of docker/podman config: a docker config.json, podman auth.json, Kubernetes .dockerconfigjson or Secret (JSON)')
    .option('--src-authfile <file>', 'authfile for the source registry (overrides --authfile)')
    .option('--dest-authfile <file>', 'authfile for the destination registry (overrides --authfile)')
    .option('--no-cloud-auth', 'do not ask cloud CLIs or their credential helpers (aws, gcloud, az) for ECR, GCR/Artifact Registry or ACR credentials when no other source has any')
    .option('--keychain', 'read credentials stored by ferry login --keychain from the OS keychain (Secret Service, macOS Keychain, Windows Credential Manager) before docker\'s and podman\'s files')
    .option('--plain-http', 'talk plain http to the registry (default: https; loopback registries fall back to http)')
    .addOption(new Option('--tls-verify [bool]', 'verify registry TLS certificates').default(true).argParser(parseBool))
    .option('--resolve <host:port:address>', 'connect to ADDRESS[:PORT] whenever HOST:PORT is asked for (as curl --resolve; TLS and Host still name HOST; not for proxied requests); repeatable', collectResolve)
    .option('--mirror <host[/path]>', 'try this mirror first for the source image (pull, inspect, copy source; any registry: HOST/PATH/<repository>); repeatable; http:// for a plain-http mirror', collectMirror)
    .option('--no-mirrors', 'use no mirror (registries.conf, daemon.json or --mirror): the origin only')
    .option('--registries-conf <file>', 'containers registries.conf to read (default: CONTAINERS_REGISTRIES_CONF, else ~/.config/containers/registries.conf, else /etc/containers/registries.conf; plus registries.conf.d drop-ins)')
    .option('--daemon-config <file>', 'docker daemon.json to read registry-mirrors and insecure-registries from (default /etc/docker/daemon.json)')
    .addOption(new Option('--short-name-mode <mode>', 'short names (alpine): enforcing (ambiguous is an error), permissive (try each search registry), disabled (docker.io only, as docker); default: registries.conf, else permissive').argParser(parseShortNameMode))
    .option('--cache-dir <dir>', 'the blob cache: pulls, copies and inspects reuse verified blobs and manifests from it, and a killed pull resumes there (default: FERRY_CACHE_DIR, else $XDG_CACHE_HOME/ferry, else ~/.cache/ferry); may be shared by many processes and machines')
    .option('--no-cache', 'use no blob cache: every blob comes from the registry, nothing is kept for later')
    .option('--cert-dir <dir>', 'CA certificates (*.crt) and client pairs (*.cert + *.key) for every registry, instead of the certs.d directories (~/.config/containers/certs.d, /etc/containers/certs.d, /etc/docker/certs.d)')
    .option('--ca-cert <file>', 'also trust this CA (PEM) for every registry of the command (added to the system roots)')
    .option('--client-cert <file>', 'present this client certificate (PEM; with --client-key) to every registry of the command')
    .option('--client-key <file>', 'the private key (PEM) of --client-cert')
    .option('--debug', 'log every request (secrets redacted) and show stack traces')
    .option('-v, --verbose', 'informational lines on stderr: at the end of pull, push, copy, inspect and tags, each registry\'s last seen rate-limit budget')
    .option('-q, --quiet', 'print nothing but errors (and results on stdout)')
    .option('--json', 'print the result as one JSON document on stdout')
    .addOption(new Option('--progress <mode>', 'progress display on stderr').choices(['auto', 'tty', 'plain', 'json', 'none']).default('auto'))
    .addOption(new Option('--progress-interval <seconds>', 'seconds between plain progress lines').default(5).argParser(parsePositive('--progress-interval')));
}

function collectMirror(v: string, prev: MirrorFlag[] | undefined): MirrorFlag[] {
  return [...(prev ?? []), parseMirrorFlag(v)];
}

/** The network-configuration flags, or undefined when none was given. */
export function networkConfigFrom(g: GlobalOptions): NetworkConfigOptions | undefined {
  const n: NetworkConfigOptions = {};
  if (g.mirror?.length) n.mirrors = g.mirror;
  if (g.mirrors === false) n.noMirrors = true;
  if (g.daemonConfig !== undefined) n.daemonConfig = g.daemonConfig;
  if (g.registriesConf !== undefined) n.registriesConf = g.registriesConf;
  if (g.shortNameMode !== undefined) n.shortNameMode = g.shortNameMode;
  return Object.keys(n).length ? n : undefined;
}

function collectResolve(v: string, prev: ResolveRule[] | undefined): ResolveRule[] {
  return [...(prev ?? []), parseResolve(v)];
}

function parseBool(v: string | undefined): boolean {
  if (v === undefined || v === '' || /^(true|1|yes)$/i.test(v)) return true;
  if (/^(false|0|no)$/i.test(v)) return false;
  throw new FerryError('E_USAGE', `--tls-verify takes true or false, not "${v}"`);
}

export function parsePositive(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new FerryError('E_USAGE', `${flag} takes a positive number, not "${v}"`);
    return n;
  };
}

export function parseJobs(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new FerryError('E_USAGE', `--jobs takes a whole number from 1 to 64, not "${v}"`);
  return n;
}

export function parsePlatformOption(v: string): Platform {
  return parsePlatform(v);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer | string>) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Turns the global flags into an OpContext (credentials bound to the command's registries, TLS,
 * logging). `scope` says which registries the command touches (default: from `cmd`).
 */
export async function contextFrom(g: GlobalOptions, io: CliIO, signal: AbortSignal, warn: (m: string) => void, scope: CommandScope | Command): Promise<OpContext> {
  const debug = g.debug ? (line: string) => void io.stderr.write(`debug: ${line}\n`) : undefined;
  // Sniffing a push/copy source may spool a pipe (once per process): --debug says so here.
  const sc = typeof scope.command === 'string' ? (scope as CommandScope) : await commandScope(scope as Command, debug);
  const bound = await bindCredentials(g, sc, async () => (await readAll(io.stdin)).replace(/\r?\n$/, ''));
  // One per process: the low rate-limit warning is given once per registry, whatever the sessions.
  const ctx: OpContext = { tlsVerify: g.tlsVerify, env: io.env, signal, warn, rateLimits: new RateLimitLog() };
  if (bound.credentials.length) ctx.credentials = bound.credentials;
  if (bound.authfiles.source || bound.authfiles.destination) ctx.authfiles = bound.authfiles;
  if (g.plainHttp) ctx.plainHttp = true;
  if (g.cloudAuth === false) ctx.cloudAuth = false;
  if (g.keychain) ctx.keychain = true;
  if (debug) ctx.debug = debug;
  if (g.resolve?.length) ctx.resolve = g.resolve;
  if (g.cache !== false) {
    const dir = g.cacheDir ?? defaultCacheDir(io.env);
    if (dir) ctx.cacheDir = dir;
    else debug?.('cache: none (no --cache-dir, FERRY_CACHE_DIR, and the home directory does not exist)');
  }
  const network = networkConfigFrom(g);
  if (network) ctx.networkConfig = network;
  if ((g.clientCert === undefined) !== (g.clientKey === undefined)) {
    throw new FerryError('E_USAGE', g.clientCert !== undefined ? '--client-cert needs --client-key' : '--client-key needs --client-cert');
  }
  if (g.certDir !== undefined || g.caCert !== undefined || g.clientCert !== undefined) {
    ctx.tls = {
      ...(g.certDir !== undefined ? { certDir: g.certDir } : {}), ...(g.caCert !== undefined ? { caCert: g.caCert } : {}),
      ...(g.clientCert !== undefined ? { clientCert: g.clientCert, clientKey: g.clientKey! } : {}),
    };
  }
  return ctx;
}
