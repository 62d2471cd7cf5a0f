/**
 * The field lists of docs/json.md, read from the document itself, and a check of a `--json`
 * document against them: every field ferry prints is documented for its command, every field
 * documented as always there is there, and the shared names keep their types. Not a test file.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';

const DOC = new URL('../../docs/json.md', import.meta.url);

export interface FieldList {
  /** Fields always present. */
  required: Set<string>;
  /** Every documented field (required, optional and conditional ones). */
  all: Set<string>;
}

/** `## heading` → the field tables under it (a table per list, in order). */
function tables(): Map<string, FieldList[]> {
  const out = new Map<string, FieldList[]>();
  let section = '';
  let current: FieldList | undefined;
  for (const line of readFileSync(DOC, 'utf8').split('\n')) {
    const h = /^## (.+)$/.exec(line);
    if (h) {
      section = h[1]!.trim();
      current = undefined;
      continue;
    }
    const row = /^\| *(`[^|]+`(?:, *`[^|]+`)*) *\| *([^|]*)\|/.exec(line);
    if (!row) {
      if (!line.startsWith('|')) current = undefined; // the table ended (header rows keep it)
      continue;
    }
    if (!current) {
      current = { required: new Set(), all: new Set() };
      out.set(section, [...(out.get(section) ?? []), current]);
    }
    const names = [...row[1]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    const type = row[2]!;
    for (const n of names) {
      current.all.add(n);
      if (!/optional|\(/.test(type)) current.required.add(n);
    }
  }
  return out;
}

const TABLES = tables();

function list(section: string, n = 0): FieldList {
  const t = TABLES.get(section)?.[n];
  if (!t) throw new Error(`docs/json.md has no field table ${n} under "## ${section}"`);
  return t;
}

const SECTION: Record<string, string> = { inspect: 'inspect', tags: 'tags', pull: 'pull, push, copy', push: 'pull, push, copy', copy: 'pull, push, copy', tag: 'tag', delete: 'delete', login: 'login', logout: 'logout', 'auth explain': 'auth explain', 'config explain': 'config explain', ratelimit: 'ratelimit', 'cache ls': 'cache ls, du, prune, verify', 'cache du': 'cache ls, du, prune, verify', 'cache prune': 'cache ls, du, prune, verify', 'cache verify': 'cache ls, du, prune, verify', export: 'export' };
const BLOB_FIELDS = ['total', 'skipped', 'mounted', 'transferred', 'bytes', 'transferredBytes'];

function expectFields(obj: Record<string, unknown>, fields: FieldList, what: string): void {
  const keys = Object.keys(obj);
  const undocumented = keys.filter((k) => !fields.all.has(k));
  expect(undocumented, `${what}: fields not in docs/json.md`).toEqual([]);
  const missing = [...fields.required].filter((k) => !(k in obj));
  expect(missing, `${what}: documented fields missing`).toEqual([]);
  for (const k of keys) if (obj[k] === null && !['entrypoint', 'cmd', 'hint', 'challenge'].includes(k)) throw new Error(`${what}.${k} is null: absent fields are left out, not null`);
}

function expectShared(obj: Record<string, unknown>, what: string): void {
  for (const k of ['source', 'destination', 'digest', 'mediaType', 'sourceDigest', 'platform']) {
    if (k in obj) expect(typeof obj[k], `${what}.${k}`).toBe('string');
  }
  for (const k of ['digest', 'sourceDigest']) if (k in obj) expect(obj[k], `${what}.${k}`).toMatch(/^sha256:[0-9a-f]{64}$/);
  if ('manifests' in obj) expect(typeof obj['manifests'], `${what}.manifests is a count`).toBe('number');
  if ('blobs' in obj) {
    expect(Object.keys(obj['blobs'] as object).sort(), `${what}.blobs`).toEqual([...BLOB_FIELDS].sort());
    for (const v of Object.values(obj['blobs'] as object)) expect(typeof v).toBe('number');
  }
  for (const k of ['seconds', 'bytesPerSecond']) if (k in obj) expect(typeof obj[k], `${what}.${k}`).toBe('number');
}

/** The field table of each cache subcommand under "## cache ls, du, prune, verify". */
const CACHE_TABLE: Record<string, number> = { 'cache ls': 0, 'cache du': 1, 'cache prune': 2, 'cache verify': 3 };

/** Asserts `doc` is a documented `--json` result of `command` (parsed from stdout). */
export function expectDocument(doc: unknown, command: string): void {
  const d = doc as Record<string, unknown>;
  expect(d.schemaVersion, `${command}: schemaVersion`).toBe(1);
  expect(d.command).toBe(command);
  const { schemaVersion: _v, command: _c, ...body } = d;
  expect(Object.keys(d).slice(0, 2), 'schemaVersion and command come first').toEqual(['schemaVersion', 'command']);
  expectFields(body, list(SECTION[command]!, CACHE_TABLE[command] ?? 0), command);
  expectShared(body, command);
  if ('rateLimit' in body) {
    // inspect's and ratelimit's `rateLimit`: the field list of "## ratelimit"'s second table.
    const rl = body['rateLimit'] as Record<string, unknown>;
    expectFields(rl, list('ratelimit', 1), `${command}.rateLimit`);
    for (const k of ['limit', 'remaining', 'windowSeconds']) if (k in rl) expect(Number.isSafeInteger(rl[k]), `${command}.rateLimit.${k}`).toBe(true);
    if ('source' in rl) expect(typeof rl['source'], `${command}.rateLimit.source`).toBe('string');
  }
  if (command === 'config explain') {
    for (const side of ['pull', 'push']) {
      const eps = (body[side] as { endpoints: Array<Record<string, unknown>> }).endpoints;
      expect(Array.isArray(eps), `${command}.${side}.endpoints`).toBe(true);
      eps.forEach((e, i) => expectFields(e, list('config explain', 1), `${command}.${side}.endpoints[${i}]`));
    }
  }
  if (SECTION[command] === 'pull, push, copy') {
    const images = body['images'] as Array<Record<string, unknown>>;
    expect(Array.isArray(images) && images.length > 0, `${command}: images is a non-empty array`).toBe(true);
    images.forEach((img, i) => {
      expectFields(img, list('pull, push, copy', 1), `${command}.images[${i}]`);
      expectShared(img, `${command}.images[${i}]`);
      expect(Array.isArray(img['changes'])).toBe(true);
    });
  }
}

/** Asserts `stdout` is the documented error document with this code and exit status. */
export function expectErrorDocument(stdout: string, command: string | null, code: string, exitCode: number): void {
  const d = JSON.parse(stdout) as Record<string, unknown>;
  expect(Object.keys(d)).toEqual(['schemaVersion', 'command', 'error']);
  expect(d.schemaVersion).toBe(1);
  expect(d.command).toBe(command);
  const e = d['error'] as Record<string, unknown>;
  const fields = list('Errors (every command)');
  expect(Object.keys(e).map((k) => `error.${k}`).sort()).toEqual([...fields.all].sort());
  expect(e).toMatchObject({ code, exitCode });
  expect(typeof e['message']).toBe('string');
  expect(e['hint'] === null || typeof e['hint'] === 'string').toBe(true);
}

/** The error-code table of docs/json.md: code → exit status. */
export function documentedExitCodes(): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of readFileSync(DOC, 'utf8').split('\n')) {
    const m = /^\| `(E_[A-Z_]+)` \| (\d+) \|/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}
