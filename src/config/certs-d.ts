/**
 * certs.d: per-registry CAs and client certificates, as containers/image (podman, skopeo) and
 * docker read them. For a registry `host[:port]` (the port only when not 443), the first of these
 * directories that exists is used:
 *   `--cert-dir DIR` (skopeo: that one directory, flat, replaces all the defaults), else
 *   `$HOME/.config/containers/certs.d/<host[:port]>/`,
 *   `/etc/containers/certs.d/<host[:port]>/`, `/etc/docker/certs.d/<host[:port]>/`.
 * `FERRY_SYSTEM_CERTS_D` (a `:`-separated list of roots) replaces the two /etc roots (tests).
 * In the directory: `*.crt` are CA certificates (added to the system roots, never replacing them),
 * `*.cert` + `*.key` are client pairs matched by base name, all of them, sorted by name (as
 * containers/image loads every pair; http/connector.ts offers them in that order until the
 * registry accepts one); a `.key` without its `.cert`, or the reverse, is E_BAD_CONFIG naming
 * both files. `--client-cert/--client-key` replace the directory's pairs.
 *
 * Cost when nothing is configured: each candidate directory is stat'ed once per process; files
 * are read once per directory per process.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../errors.js';

/** The command's TLS flags (`--cert-dir`, `--ca-cert`, `--client-cert`/`--client-key`). */
export interface TlsOptions {
  certDir?: string;
  caCert?: string;
  clientCert?: string;
  clientKey?: string;
}

/** One client certificate and its key (PEM), with the files they came from. */
export interface ClientPair {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

/** What a connection to one host needs beyond the defaults; files are named for messages. */
export interface HostTls {
  /** Extra CA certificates (PEM), to add to the default roots. */
  ca: string[];
  caFiles: string[];
  /** Every client pair, in the order to offer them (empty: none). The fields below are the first. */
  pairs: ClientPair[];
  cert?: string;
  key?: string;
  certFile?: string;
  keyFile?: string;
  /** The certs.d directory used, if any. */
  dir?: string;
}

const SYSTEM_ROOTS = ['/etc/containers/certs.d', '/etc/docker/certs.d'];

/** The certs.d roots in lookup order (without `--cert-dir`). */
export function certsDRoots(env: NodeJS.ProcessEnv = process.env): string[] {
  const home = env['HOME'];
  const user = home ? [join(home, '.config', 'containers', 'certs.d')] : [];
  const sys = env['FERRY_SYSTEM_CERTS_D'] !== undefined ? env['FERRY_SYSTEM_CERTS_D'].split(':').filter(Boolean) : SYSTEM_ROOTS;
  return [...user, ...sys];
}

const isDirCache = new Map<string, boolean>();
function isDir(p: string): boolean {
  let v = isDirCache.get(p);
  if (v === undefined) {
    try {
      v = statSync(p).isDirectory();
    } catch {
      v = false;
    }
    isDirCache.set(p, v);
  }
  return v;
}

/** `host` for port 443, else `host:port` (IPv6 in brackets): the directory name docker uses. */
export function certsDKey(hostname: string, port: number): string {
  const h = hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  const host = h.includes(':') ? `[${h}]` : h;
  return port === 443 ? host : `${host}:${port}`;
}

/** The path a hint should name for `key` (the per-user root). */
export function userCertsDPath(key: string): string {
  return `~/.config/containers/certs.d/${key}/`;
}

interface DirContents {
  ca: string[];
  caFiles: string[];
  pairs: ClientPair[];
}
const dirCache = new Map<string, DirContents>();

function readFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new FerryError('E_BAD_CONFIG', `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
}

/** Reads one certs.d directory (cached per process). */
export function readCertDir(dir: string): DirContents {
  const cached = dirCache.get(dir);
  if (cached) return cached;
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (e) {
    throw new FerryError('E_BAD_CONFIG', `cannot read certificate directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  const out: DirContents = { ca: [], caFiles: [], pairs: [] };
  for (const n of names) {
    if (n.endsWith('.crt')) {
      const p = join(dir, n);
      out.caFiles.push(p);
      out.ca.push(readFile(p, 'CA certificate'));
    }
  }
  const certs = new Set(names.filter((n) => n.endsWith('.cert')).map((n) => n.slice(0, -5)));
  const keys = new Set(names.filter((n) => n.endsWith('.key')).map((n) => n.slice(0, -4)));
  for (const b of certs) {
    if (!keys.has(b)) throw lonely(join(dir, `${b}.cert`), join(dir, `${b}.key`), 'key');
  }
  for (const b of keys) {
    if (!certs.has(b)) throw lonely(join(dir, `${b}.key`), join(dir, `${b}.cert`), 'certificate');
  }
  for (const b of [...certs].sort()) {
    const certFile = join(dir, `${b}.cert`);
    const keyFile = join(dir, `${b}.key`);
    out.pairs.push({ certFile, keyFile, cert: readFile(certFile, 'client certificate'), key: readFile(keyFile, 'client key') });
  }
  dirCache.set(dir, out);
  return out;
}

function lonely(have: string, missing: string, what: string): FerryError {
  return new FerryError('E_BAD_CONFIG', `client ${what === 'key' ? 'certificate' : 'key'} ${have} has no matching ${what} ${missing}`, {
    hint: 'a client certificate is a pair: NAME.cert with NAME.key in the same directory',
  });
}

/**
 * Per-host TLS settings for one command: the flags plus the certs.d lookup. `active` is false when
 * there are no flags and no certs.d root exists (then connections need nothing from here).
 */
export class CertsD {
  readonly active: boolean;
  private readonly roots: string[];
  private readonly perHost = new Map<string, HostTls | undefined>();
  private flagFiles: { ca?: string; cert?: string; key?: string } | undefined;

  constructor(private readonly opts: TlsOptions = {}, env: NodeJS.ProcessEnv = process.env) {
    if ((opts.clientCert === undefined) !== (opts.clientKey === undefined)) {
      throw new FerryError('E_USAGE', opts.clientCert ? '--client-cert needs --client-key' : '--client-key needs --client-cert');
    }
    this.roots = opts.certDir ? [] : certsDRoots(env).filter(isDir);
    const flags = opts.certDir !== undefined || opts.caCert !== undefined || opts.clientCert !== undefined;
    this.active = flags || this.roots.length > 0;
  }

  /** The directory used for `key` (`host[:port]`), if any. */
  dirFor(key: string): string | undefined {
    if (this.opts.certDir) return this.opts.certDir;
    for (const r of this.roots) {
      const d = join(r, key);
      if (isDir(d)) return d;
    }
    return undefined;
  }

  /** What connections to `key` (`host[:port]`) need; undefined = the defaults. Throws E_BAD_CONFIG. */
  forHost(key: string): HostTls | undefined {
    if (this.perHost.has(key)) return this.perHost.get(key);
    const f = (this.flagFiles ??= {
      ...(this.opts.caCert ? { ca: readFile(this.opts.caCert, '--ca-cert') } : {}),
      ...(this.opts.clientCert ? { cert: readFile(this.opts.clientCert, '--client-cert') } : {}),
      ...(this.opts.clientKey ? { key: readFile(this.opts.clientKey, '--client-key') } : {}),
    });
    const dir = this.dirFor(key);
    const c = dir ? readCertDir(dir) : undefined;
    const t: HostTls = { ca: [...(c?.ca ?? [])], caFiles: [...(c?.caFiles ?? [])], pairs: [], ...(dir ? { dir } : {}) };
    if (f.ca !== undefined) {
      t.ca.push(f.ca);
      t.caFiles.push(this.opts.caCert!);
    }
    if (f.cert !== undefined && f.key !== undefined) {
      t.pairs.push({ cert: f.cert, key: f.key, certFile: this.opts.clientCert!, keyFile: this.opts.clientKey! });
    } else {
      t.pairs.push(...(c?.pairs ?? []));
    }
    const first = t.pairs[0];
    if (first) Object.assign(t, { cert: first.cert, key: first.key, certFile: first.certFile, keyFile: first.keyFile });
    const result = t.ca.length || t.cert ? t : undefined;
    this.perHost.set(key, result);
    return result;
  }
}
