/**
 * docker's daemon.json, the two keys ferry uses: `registry-mirrors` (Docker Hub only, as docker:
 * URLs with no path; `http://` means a plain-http mirror) and `insecure-registries` (host[:port]
 * entries, matched exactly as docker does, and CIDRs, matched against registries named by an IP
 * address — ferry does not resolve names to test them against a CIDR). Other keys are ignored.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../errors.js';
import { ioError } from '../util/fs-errors.js';
import { badConfig } from './registries-conf.js';
import { lineAt } from './lines.js';
import { emptyDaemonConfig, type DaemonConfig } from './types.js';

/** Parses daemon.json text; E_BAD_CONFIG naming `file` and the line for every malformed part. */
export function parseDaemonJson(text: string, file: string): DaemonConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const m = /line (\d+)/.exec(msg) ?? undefined;
    const pos = /position (\d+)/.exec(msg);
    const line = m ? Number(m[1]) : pos ? lineAt(text, Number(pos[1])) : lineAt(text, jsonErrorOffset(text));
    throw badConfig(file, line, `not valid JSON: ${msg.split('\n')[0]!.replace(/ in JSON at position \d+.*$/, '').replace(/\s*\(line \d+ column \d+\)$/, '').replace(/, \.\.\.?".*$/, '')}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw badConfig(file, 1, 'must be a JSON object');
  const d = doc as Record<string, unknown>;
  const lines = text.split(/\r?\n/);
  const keyLine = (key: string): number => {
    const i = lines.findIndex((l) => l.includes(JSON.stringify(key)));
    return i < 0 ? 1 : i + 1;
  };
  const valueLine = (key: string, value: string): number => {
    const start = keyLine(key) - 1;
    const i = lines.findIndex((l, n) => n >= start && l.includes(JSON.stringify(value)));
    return i < 0 ? start + 1 : i + 1;
  };
  const strings = (key: string): string[] => {
    const v = d[key];
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw badConfig(file, keyLine(key), `"${key}" must be an array of strings`);
    return v as string[];
  };
  const out: DaemonConfig = { file, ...emptyDaemonConfig() };
  for (const u of strings('registry-mirrors')) {
    const line = valueLine('registry-mirrors', u);
    const m = /^(?:(https?):\/\/)?([^/?#\s]+)\/?$/.exec(u);
    if (!m || u.includes('://') && !m[1]) throw badConfig(file, line, `registry mirror "${u}" must be an http(s) URL without a path, query or fragment (as docker requires)`);
    out.mirrors.push({ location: m[2]!, insecure: m[1] === 'http', origin: { file, line } });
  }
  for (const h of strings('insecure-registries')) {
    const line = valueLine('insecure-registries', h);
    const entry = h.replace(/^https?:\/\//, '').replace(/\/$/, '');
    if (entry === '' || /\s/.test(entry) || (entry.includes('/') && !cidr(entry))) throw badConfig(file, line, `insecure registry "${h}" is neither a host[:port] nor a CIDR`);
    out.insecure.push({ entry, origin: { file, line } });
  }
  return out;
}

/** daemon.json: `explicit` (--daemon-config, must exist), else /etc/docker/daemon.json when it exists (FERRY_SYSCONF_ROOT stands for /). */
export function loadDaemonJson(env: NodeJS.ProcessEnv, explicit?: string): DaemonConfig {
  const file = explicit ?? join(env['FERRY_SYSCONF_ROOT'] || '/', 'etc/docker/daemon.json');
  if (explicit === undefined && !existsSync(file)) return emptyDaemonConfig();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const err = ioError(e, file);
    if ((err as FerryError).code === 'E_NO_SUCH_FILE') throw new FerryError('E_NO_SUCH_FILE', `daemon config ${file} (--daemon-config) does not exist`);
    throw err;
  }
  return parseDaemonJson(text, file);
}

/**
 * Offset of the first JSON syntax error (node 20's JSON.parse does not always say where): a
 * small recursive-descent checker run only after JSON.parse has failed.
 */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = () => { while (i < text.length && /[ \t\r\n]/.test(text[i]!)) i++; };
  const fail = (): never => { throw i; };
  const lit = (w: string) => { if (text.startsWith(w, i)) i += w.length; else fail(); };
  const str = () => {
    if (text[i] !== '"') fail();
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text.charCodeAt(i) < 0x20) fail();
      i += text[i] === '\\' ? 2 : 1;
    }
    if (i >= text.length) fail();
    i++;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++; ws();
      if (text[i] === '}') { i++; return; }
      for (;;) {
        ws(); str(); ws(); lit(':'); value(); ws();
        if (text[i] === ',') { i++; continue; }
        lit('}'); return;
      }
    }
    if (c === '[') {
      i++; ws();
      if (text[i] === ']') { i++; return; }
      for (;;) {
        value(); ws();
        if (text[i] === ',') { i++; continue; }
        lit(']'); return;
      }
    }
    if (c === '"') return str();
    const num = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i));
    if (num) { i += num[0].length; return; }
    for (const w of ['true', 'false', 'null']) if (text.startsWith(w, i)) { i += w.length; return; }
    fail();
  };
  try {
    value(); ws();
    if (i < text.length) fail();
  } catch (e) {
    if (typeof e === 'number') return e;
    throw e;
  }
  return text.length;
}

interface Cidr { bytes: number[]; bits: number }

function ipBytes(s: string): number[] | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (v4) {
    const b = v4.slice(1).map(Number);
    return b.every((x) => x <= 255) ? b : undefined;
  }
  if (!s.includes(':')) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]!), tail = halves.length === 2 ? groups(halves[1]!) : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const all = [...head, ...Array<string>(Math.max(fill, 0)).fill('0'), ...tail];
  if (all.length !== 8 || all.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return undefined;
  return all.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 255]);
}

function cidr(s: string): Cidr | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const bytes = ipBytes(m[1]!);
  const bits = Number(m[2]);
  if (!bytes || bits > bytes.length * 8) return undefined;
  return { bytes, bits };
}

/** The registry's host as an IP address (without port or brackets), if it is one. */
function registryIp(registry: string): number[] | undefined {
  const b = /^\[([^\]]+)\](?::\d+)?$/.exec(registry);
  if (b) return ipBytes(b[1]!);
  return ipBytes(registry.replace(/:\d+$/, ''));
}

/** The insecure-registries entry that covers `registry` (host[:port]), if any. */
export function daemonInsecure(registry: string, cfg: DaemonConfig): DaemonConfig['insecure'][number] | undefined {
  const ip = registryIp(registry);
  return cfg.insecure.find(({ entry }) => {
    if (entry === registry) return true;
    const c = cidr(entry);
    if (!c || !ip || ip.length !== c.bytes.length) return false;
    for (let bit = 0; bit < c.bits; bit++) {
      const mask = 0x80 >> (bit % 8);
      if ((ip[bit >> 3]! & mask) !== (c.bytes[bit >> 3]! & mask)) return false;
    }
    return true;
  });
}
