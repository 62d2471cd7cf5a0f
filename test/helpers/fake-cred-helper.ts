/**
 * A fake `docker-credential-<name>` for tests: a small node script that implements get, store,
 * erase and list over a JSON file (`db`, server URL → {Username, Secret}), and appends every call
 * (verb + stdin) to `log` so tests can inspect what ferry sent. Not-found answers use the
 * protocol's exact text. `FAKE_HELPER_FAIL=<verb>` makes that verb exit 1 echoing its stdin
 * (to prove ferry never repeats a secret from helper output).
 */
import fs from 'node:fs';
import path from 'node:path';

export interface FakeHelper {
  binDir: string;
  db: string;
  log: string;
  /** The stored items. */
  items(): Record<string, { Username: string; Secret: string }>;
  /** Calls so far: verb and stdin. */
  calls(): { verb: string; stdin: string }[];
}

const SCRIPT = `#!/usr/bin/env node
const fs = require('node:fs');
const [db, log] = [process.env.FAKE_HELPER_DB, process.env.FAKE_HELPER_LOG];
const verb = process.argv[2];
let input = '';
process.stdin.on('data', (c) => (input += c)).on('end', () => {
  fs.appendFileSync(log, JSON.stringify({ verb, stdin: input }) + '\\n');
  if (process.env.FAKE_HELPER_FAIL === verb) { process.stdout.write('boom: ' + input); process.exit(1); }
  const items = fs.existsSync(db) ? JSON.parse(fs.readFileSync(db, 'utf8')) : {};
  const save = () => fs.writeFileSync(db, JSON.stringify(items));
  const key = input.trim();
  if (verb === 'get') {
    if (!items[key]) { process.stdout.write('credentials not found in native keychain\\n'); process.exit(1); }
    process.stdout.write(JSON.stringify({ ServerURL: key, ...items[key] }));
  } else if (verb === 'store') {
    const o = JSON.parse(input);
    if (!o.ServerURL) { process.stdout.write('no credentials server URL\\n'); process.exit(1); }
    items[o.ServerURL] = { Username: o.Username, Secret: o.Secret }; save();
  } else if (verb === 'erase') {
    if (!items[key]) { process.stdout.write('credentials not found in native keychain\\n'); process.exit(1); }
    delete items[key]; save();
  } else if (verb === 'list') {
    process.stdout.write(JSON.stringify(Object.fromEntries(Object.entries(items).map(([k, v]) => [k, v.Username]))));
  } else { process.stdout.write('unknown verb\\n'); process.exit(1); }
});
`;

/** Writes docker-credential-<name> into `<dir>/bin`; returns paths and env to pass. */
export function installFakeHelper(dir: string, name = 'fake'): FakeHelper & { env: Record<string, string> } {
  const binDir = path.join(dir, 'bin');
  fs.mkdirSync(binDir, { recursive: true });
  fs.writeFileSync(path.join(binDir, `docker-credential-${name}`), SCRIPT, { mode: 0o755 });
  const db = path.join(dir, `${name}-db.json`);
  const log = path.join(dir, `${name}-log.ndjson`);
  fs.writeFileSync(log, '');
  return {
    binDir, db, log,
    env: { PATH: `${binDir}${path.delimiter}${process.env['PATH'] ?? ''}`, FAKE_HELPER_DB: db, FAKE_HELPER_LOG: log },
    items: () => (fs.existsSync(db) ? JSON.parse(fs.readFileSync(db, 'utf8')) : {}),
    calls: () => fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)),
  };
}
