import { describe, it, expect, beforeEach, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveCredential } from '../../../src/auth/keychain.js';
import { clearCredentialHelperCache } from '../../../src/auth/cred-helper.js';
import type { Credential } from '../../../src/auth/credential.js';

const b64 = (s: string, pad = true): string => {
  const e = Buffer.from(s).toString('base64');
  return pad ? e : e.replace(/=+$/, '');
};

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});
beforeEach(() => clearCredentialHelperCache());

/** A fake docker-credential helper: answers `get` for the listed keys, "not found" otherwise. */
function helperScript(answers: Record<string, { Username: string; Secret: string }>): string {
  const cases = Object.entries(answers)
    .map(([k, v]) => `  '${k}') printf '%s' '${JSON.stringify({ ServerURL: k, ...v })}'; exit 0 ;;`)
    .join('\n');
  return `[ "$1" = get ] || exit 3
read -r key
case "$key" in
${cases}
esac
printf 'credentials not found in native keychain\\n'
exit 1`;
}

interface Fixture {
  /** config.json contents (object → JSON), or undefined for no file. */
  config?: unknown;
  /** helper suffix → /bin/sh body (without shebang). */
  helpers?: Record<string, string>;
  /** files relative to the fixture root (podman auth files etc.). */
  files?: Record<string, unknown>;
  /** extra env; `$ROOT` is replaced with the fixture root. */
  env?: Record<string, string>;
}

function setup(f: Fixture): { env: NodeJS.ProcessEnv; root: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-auth-'));
  roots.push(root);
  for (const d of ['home', 'docker', 'bin', 'xdg-config', 'xdg-runtime']) fs.mkdirSync(path.join(root, d));
  if (f.config !== undefined) {
    fs.writeFileSync(path.join(root, 'docker', 'config.json'), typeof f.config === 'string' ? f.config : JSON.stringify(f.config));
  }
  for (const [name, body] of Object.entries(f.helpers ?? {})) {
    const p = path.join(root, 'bin', `docker-credential-${name}`);
    fs.writeFileSync(p, `#!/bin/sh\n${body.replaceAll('$ROOT', root)}\n`);
    fs.chmodSync(p, 0o755);
  }
  for (const [rel, content] of Object.entries(f.files ?? {})) {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  }
  const env: NodeJS.ProcessEnv = {
    HOME: path.join(root, 'home'),
    DOCKER_CONFIG: path.join(root, 'docker'),
    PATH: path.join(root, 'bin'),
    XDG_CONFIG_HOME: path.join(root, 'xdg-config'),
    XDG_RUNTIME_DIR: path.join(root, 'xdg-runtime'),
  };
  for (const [k, v] of Object.entries(f.env ?? {})) env[k] = v.replaceAll('$ROOT', root);
  return { env, root };
}

interface Row extends Fixture {
  name: string;
  registry: string;
  repository?: string;
  timeoutMs?: number;
  platform?: NodeJS.Platform;
  /** expected credential (source matched as substring via `sourceHas`). */
  want?: Credential;
  sourceHas?: string;
  /** expected error code and message fragments. */
  err?: string;
  errHas?: string[];
  /** text that must appear in no error message / warning. */
  secret?: string;
  warnHas?: string;
}

const HUB = 'https://index.docker.io/v1/';

const rows: Row[] = [
  { name: 'no config file → anonymous', registry: 'ghcr.io', want: { kind: 'anonymous', source: 'anonymous' } },
  {
    name: 'nothing matched: the anonymous result names the exact key looked up (Docker Hub: https://index.docker.io/v1/, not docker.io) and the file',
    registry: 'docker.io',
    config: { auths: { 'docker.io': { auth: b64('u:p') } } },
    want: { kind: 'anonymous' },
    sourceHas: 'anonymous (no credentials for "https://index.docker.io/v1/" in docker config $ROOT/docker/config.json',
  },
  {
    name: 'an entry with a password AND an identity token keeps both (a registry refusing the OAuth2 POST is then asked with Basic)',
    registry: 'harbor.example.com',
    config: { auths: { 'harbor.example.com': { auth: b64('robot$ci:hb-pw'), identitytoken: 'idt-123' } } },
    want: { kind: 'identity-token', token: 'idt-123', username: 'robot$ci', password: 'hb-pw' },
  },
  {
    name: 'regression: an auths key https://::1:6555/v2/ (unbracketed IPv6) matches registry [::1]:6555, as docker/cli ConvertToHostname',
    registry: '[::1]:6555',
    config: { auths: { 'https://::1:6555/v2/': { auth: b64('v6:pw') } } },
    want: { kind: 'basic', username: 'v6', password: 'pw' },
  },
  { name: 'empty config file → anonymous', registry: 'ghcr.io', config: '', want: { kind: 'anonymous', source: 'anonymous' } },
  {
    name: 'auths padded auth, password with colon',
    registry: 'ghcr.io',
    config: { auths: { 'ghcr.io': { auth: b64('alice:pa:ss') } } },
    want: { kind: 'basic', username: 'alice', password: 'pa:ss' },
    sourceHas: 'docker config $ROOT/docker/config.json (auths)',
  },
  {
    name: 'auths unpadded auth',
    registry: 'ghcr.io',
    config: { auths: { 'ghcr.io': { auth: b64('bob:x', false) } } },
    want: { kind: 'basic', username: 'bob', password: 'x' },
  },
  {
    name: 'auth password NUL-trimmed',
    registry: 'ghcr.io',
    config: { auths: { 'ghcr.io': { auth: b64('bob:pw\0\0') } } },
    want: { kind: 'basic', username: 'bob', password: 'pw' },
  },
  {
    name: 'username/password fields',
    registry: 'quay.io',
    config: { auths: { 'quay.io': { username: 'carol', password: 'pw1' } } },
    want: { kind: 'basic', username: 'carol', password: 'pw1' },
  },
  {
    name: 'identitytoken',
    registry: 'myacr.azurecr.io',
    config: { auths: { 'myacr.azurecr.io': { auth: b64('00000000-0000-0000-0000-000000000000:'), identitytoken: 'refresh-abc' } } },
    want: { kind: 'identity-token', token: 'refresh-abc', username: '00000000-0000-0000-0000-000000000000' },
  },
  {
    name: 'registrytoken',
    registry: 'r.example',
    config: { auths: { 'r.example': { registrytoken: 'bearer-xyz' } } },
    want: { kind: 'registry-token', token: 'bearer-xyz' },
  },
  {
    name: 'https://host:port/path key normalised (ConvertToHostname)',
    registry: 'myreg.example:5000',
    config: { auths: { 'https://myreg.example:5000/v2/': { auth: b64('u:p') } } },
    want: { kind: 'basic', username: 'u', password: 'p' },
  },
  {
    name: 'http:// key normalised, exact key preferred over scan',
    registry: 'localhost:5000',
    config: { auths: { 'http://localhost:5000': { auth: b64('scan:1') }, 'localhost:5000': { auth: b64('exact:2') } } },
    want: { kind: 'basic', username: 'exact', password: '2' },
  },
  {
    name: 'Hub key for docker.io',
    registry: 'docker.io',
    config: { auths: { [HUB]: { auth: b64('hubuser:hubpat') } } },
    want: { kind: 'basic', username: 'hubuser', password: 'hubpat' },
  },
  {
    name: 'Hub key for index.docker.io',
    registry: 'index.docker.io',
    config: { auths: { [HUB]: { auth: b64('hubuser:hubpat') } } },
    want: { kind: 'basic', username: 'hubuser', password: 'hubpat' },
  },
  {
    name: 'auths["docker.io"] is not used for Hub (docker-exact)',
    registry: 'docker.io',
    config: { auths: { 'docker.io': { auth: b64('x:y') } } },
    want: { kind: 'anonymous', source: 'anonymous' },
  },
  {
    name: 'Hub access-token / refresh-token keys ignored',
    registry: 'docker.io',
    config: { auths: { [`${HUB}access-token`]: { auth: b64('a:tok') }, [`${HUB}refresh-token`]: { auth: b64('r:tok') } } },
    want: { kind: 'anonymous', source: 'anonymous' },
  },
  {
    name: 'other hosts do not match',
    registry: 'ghcr.io',
    config: { auths: { 'quay.io': { auth: b64('u:p') } } },
    want: { kind: 'anonymous', source: 'anonymous' },
  },
  {
    name: 'credHelpers beats credsStore beats auths',
    registry: 'ghcr.io',
    config: { auths: { 'ghcr.io': { auth: b64('inline:pw') } }, credsStore: 'store', credHelpers: { 'ghcr.io': 'per' } },
    helpers: {
      per: helperScript({ 'ghcr.io': { Username: 'from-per', Secret: 's1' } }),
      store: helperScript({ 'ghcr.io': { Username: 'from-store', Secret: 's2' } }),
    },
    want: { kind: 'basic', username: 'from-per', password: 's1', source: 'credential helper docker-credential-per' },
  },
  {
    name: 'credsStore beats auths',
    registry: 'ghcr.io',
    config: { auths: { 'ghcr.io': { auth: b64('inline:pw') } }, credsStore: 'store' },
    helpers: { store: helperScript({ 'ghcr.io': { Username: 'from-store', Secret: 's2' } }) },
    want: { kind: 'basic', username: 'from-store', password: 's2', source: 'credential helper docker-credential-store' },
  },
  {
    name: 'credHelpers for another host does not apply; credsStore does',
    registry: 'localhost:5000',
    config: { credsStore: 'store', credHelpers: { 'ghcr.io': 'per' } },
    helpers: { store: helperScript({ 'localhost:5000': { Username: 'l', Secret: 'p' } }) },
    want: { kind: 'basic', username: 'l', password: 'p', source: 'credential helper docker-credential-store' },
  },
  {
    name: 'helper gets the Hub key on stdin',
    registry: 'docker.io',
    config: { credsStore: 'desk' },
    helpers: { desk: helperScript({ [HUB]: { Username: 'hub', Secret: 'pat' } }) },
    want: { kind: 'basic', username: 'hub', password: 'pat', source: 'credential helper docker-credential-desk' },
  },
  {
    name: 'helper "credentials not found" → anonymous, inline auths ignored',
    registry: 'ghcr.io',
    config: { auths: { 'ghcr.io': { auth: b64('inline:pw') } }, credsStore: 'store' },
    helpers: { store: helperScript({}) },
    want: { kind: 'anonymous', source: 'anonymous' },
  },
  {
    name: 'helper with registrytoken in the file entry: registrytoken survives',
    registry: 'ghcr.io',
    config: { auths: { 'ghcr.io': { registrytoken: 'rt-1' } }, credsStore: 'store' },
    helpers: { store: helperScript({ 'ghcr.io': { Username: 'u', Secret: 'p' } }) },
    want: { kind: 'registry-token', token: 'rt-1' },
  },
  {
    name: 'helper <token> username → identity-token',
    registry: 'myacr.azurecr.io',
    config: { credHelpers: { 'myacr.azurecr.io': 'acr-env' } },
    helpers: { 'acr-env': helperScript({ 'myacr.azurecr.io': { Username: '<token>', Secret: 'refresh-tok' } }) },
    want: { kind: 'identity-token', token: 'refresh-tok', source: 'credential helper docker-credential-acr-env' },
  },
  {
    name: 'missing helper binary → warning + anonymous',
    registry: 'ghcr.io',
    config: { credsStore: 'desktop' },
    want: { kind: 'anonymous', source: 'anonymous' },
    warnHas: 'credential helper docker-credential-desktop not found on PATH; continuing without credentials for ghcr.io',
  },
  {
    name: 'failing helper → E_BAD_CONFIG with redacted output',
    registry: 'ghcr.io',
    config: { credsStore: 'broken' },
    helpers: { broken: `printf '%s' 'boom: {"Secret":"hunter2-very-secret"}'\nexit 2` },
    err: 'E_BAD_CONFIG',
    errHas: ['docker-credential-broken', 'exit status 2', 'boom'],
    secret: 'hunter2-very-secret',
  },
  {
    name: 'helper printing non-JSON on success → E_BAD_CONFIG',
    registry: 'ghcr.io',
    config: { credsStore: 'garbage' },
    helpers: { garbage: `printf 'hello'` },
    err: 'E_BAD_CONFIG',
    errHas: ['docker-credential-garbage', 'not JSON'],
  },
  {
    name: 'helper timeout → E_BAD_CONFIG',
    registry: 'ghcr.io',
    config: { credsStore: 'slow' },
    helpers: { slow: 'while :; do :; done' },
    timeoutMs: 300,
    err: 'E_BAD_CONFIG',
    errHas: ['docker-credential-slow', 'timed out'],
  },
  {
    name: 'helper output over 1 MiB → E_BAD_CONFIG',
    registry: 'ghcr.io',
    config: { credsStore: 'chatty' },
    helpers: { chatty: `s=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\ns=$s$s$s$s$s$s$s$s$s$s$s$s$s$s$s$s\nwhile :; do printf '%s' "$s$s$s$s$s$s$s$s"; done` },
    err: 'E_BAD_CONFIG',
    errHas: ['docker-credential-chatty', 'exceeds'],
  },
  {
    name: 'malformed config.json → E_BAD_CONFIG naming the file',
    registry: 'ghcr.io',
    config: `{"auths": {"ghcr.io": {"auth": "${b64('leak:topsecretpw')}"}},}`,
    err: 'E_BAD_CONFIG',
    errHas: ['cannot read docker config $ROOT/docker/config.json', 'line 1'],
    secret: b64('leak:topsecretpw'),
  },
  {
    name: 'config.json that is not JSON at all → E_BAD_CONFIG without excerpt',
    registry: 'ghcr.io',
    config: 'topsecretpw-not-json',
    err: 'E_BAD_CONFIG',
    errHas: ['cannot read docker config $ROOT/docker/config.json'],
    secret: 'topsecretpw-not-json',
  },
  {
    name: 'malformed auth in the selected entry → E_BAD_CONFIG naming file and key',
    registry: 'ghcr.io',
    config: { auths: { 'ghcr.io': { auth: b64('nocolon') } } },
    err: 'E_BAD_CONFIG',
    errHas: ['$ROOT/docker/config.json', '"ghcr.io"'],
  },
  {
    name: 'malformed auth in another entry is ignored',
    registry: 'ghcr.io',
    config: { auths: { 'quay.io': { auth: '!!!' }, 'ghcr.io': { auth: b64('ok:pw') } } },
    want: { kind: 'basic', username: 'ok', password: 'pw' },
  },
  {
    name: 'DOCKER_AUTH_CONFIG exact key beats config.json',
    registry: 'ghcr.io',
    config: { auths: { 'ghcr.io': { auth: b64('file:pw') } } },
    env: { DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { 'ghcr.io': { auth: b64('envuser:envpw') } } }) },
    want: { kind: 'basic', username: 'envuser', password: 'envpw', source: 'DOCKER_AUTH_CONFIG environment variable' },
  },
  {
    name: 'DOCKER_AUTH_CONFIG for Hub uses the Hub key',
    registry: 'docker.io',
    env: { DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { [HUB]: { auth: b64('h:p') } } }) },
    want: { kind: 'basic', username: 'h', password: 'p', source: 'DOCKER_AUTH_CONFIG environment variable' },
  },
  {
    name: 'DOCKER_AUTH_CONFIG other host → falls back to config.json',
    registry: 'ghcr.io',
    config: { auths: { 'ghcr.io': { auth: b64('file:pw') } } },
    env: { DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { 'quay.io': { auth: b64('q:p') } } }) },
    want: { kind: 'basic', username: 'file', password: 'pw' },
  },
  {
    name: 'DOCKER_AUTH_CONFIG with a non-auth field → warning, ignored',
    registry: 'ghcr.io',
    config: { auths: { 'ghcr.io': { auth: b64('file:pw') } } },
    env: { DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { 'ghcr.io': { auth: b64('e:p'), identitytoken: 'envsecret-tok' } } }) },
    want: { kind: 'basic', username: 'file', password: 'pw' },
    warnHas: 'ignoring DOCKER_AUTH_CONFIG: unknown field "identitytoken"',
    secret: 'envsecret-tok',
  },
  {
    name: 'podman auth.json under XDG_RUNTIME_DIR, docker.io key',
    registry: 'docker.io',
    files: { 'xdg-runtime/containers/auth.json': { auths: { 'docker.io': { auth: b64('pod:man') } } } },
    want: { kind: 'basic', username: 'pod', password: 'man', source: 'podman auth $ROOT/xdg-runtime/containers/auth.json' },
  },
  {
    name: 'podman registry-1.docker.io key normalised for docker.io',
    registry: 'docker.io',
    files: { 'xdg-config/containers/auth.json': { auths: { 'registry-1.docker.io': { auth: b64('pod:r1') } } } },
    want: { kind: 'basic', username: 'pod', password: 'r1', source: 'podman auth $ROOT/xdg-config/containers/auth.json' },
  },
  {
    name: 'podman REGISTRY_AUTH_FILE first',
    registry: 'quay.io',
    files: {
      'custom/auth.json': { auths: { 'https://quay.io': { auth: b64('custom:1') } } },
      'xdg-runtime/containers/auth.json': { auths: { 'quay.io': { auth: b64('runtime:2') } } },
    },
    env: { REGISTRY_AUTH_FILE: '$ROOT/custom/auth.json' },
    want: { kind: 'basic', username: 'custom', password: '1', source: 'podman auth $ROOT/custom/auth.json' },
  },
  {
    name: 'podman ~/.config when XDG_CONFIG_HOME is unset',
    registry: 'quay.io',
    files: { 'home/.config/containers/auth.json': { auths: { 'quay.io': { auth: b64('homecfg:1') } } } },
    env: { XDG_CONFIG_HOME: '' },
    want: { kind: 'basic', username: 'homecfg', password: '1' },
  },
  {
    name: 'podman namespaced key, most specific first',
    registry: 'quay.io',
    repository: 'org/app',
    files: {
      'xdg-runtime/containers/auth.json': {
        auths: { 'quay.io': { auth: b64('reg:0') }, 'quay.io/org': { auth: b64('ns:1') }, 'quay.io/other': { auth: b64('x:2') } },
      },
    },
    want: { kind: 'basic', username: 'ns', password: '1' },
  },
  {
    name: 'podman namespaced-only key does not serve a registry-level lookup',
    registry: 'quay.io',
    files: { 'xdg-runtime/containers/auth.json': { auths: { 'quay.io/org': { auth: b64('ns:1') } } } },
    want: { kind: 'anonymous', source: 'anonymous' },
  },
  {
    name: 'podman not consulted when docker config has credentials',
    registry: 'quay.io',
    config: { auths: { 'quay.io': { auth: b64('docker:1') } } },
    files: { 'xdg-runtime/containers/auth.json': { auths: { 'quay.io': { auth: b64('pod:2') } } } },
    want: { kind: 'basic', username: 'docker', password: '1' },
  },
  {
    name: 'podman consulted after helper says not found',
    registry: 'quay.io',
    config: { credsStore: 'store' },
    helpers: { store: helperScript({}) },
    files: { 'xdg-runtime/containers/auth.json': { auths: { 'quay.io': { auth: b64('pod:2') } } } },
    want: { kind: 'basic', username: 'pod', password: '2' },
  },
  {
    name: 'podman credHelpers entry',
    registry: 'us-docker.pkg.dev',
    files: { 'xdg-runtime/containers/auth.json': { credHelpers: { 'us-docker.pkg.dev': 'gcloud' } } },
    helpers: { gcloud: helperScript({ 'us-docker.pkg.dev': { Username: '_dcgcloud_token', Secret: 'ya29.x' } }) },
    want: { kind: 'basic', username: '_dcgcloud_token', password: 'ya29.x', source: 'credential helper docker-credential-gcloud' },
  },
  {
    name: 'malformed podman auth.json → E_BAD_CONFIG naming the file',
    registry: 'quay.io',
    files: { 'xdg-runtime/containers/auth.json': '{"auths": ' },
    err: 'E_BAD_CONFIG',
    errHas: ['podman auth file $ROOT/xdg-runtime/containers/auth.json'],
  },
  {
    name: 'default store auto-detected when config has no auth data (linux: secretservice)',
    registry: 'ghcr.io',
    platform: 'linux',
    config: { psFormat: 'table' },
    helpers: { secretservice: helperScript({ 'ghcr.io': { Username: 'ss', Secret: 'pw' } }) },
    want: { kind: 'basic', username: 'ss', password: 'pw', source: 'credential helper docker-credential-secretservice' },
  },
  {
    name: 'default store not used when config has auths',
    registry: 'ghcr.io',
    platform: 'linux',
    config: { auths: { 'quay.io': { auth: b64('q:p') } } },
    helpers: { secretservice: helperScript({ 'ghcr.io': { Username: 'ss', Secret: 'pw' } }) },
    want: { kind: 'anonymous', source: 'anonymous' },
  },
];

describe('resolveCredential', () => {
  for (const r of rows) {
    it.skipIf(r.platform !== undefined && r.platform !== process.platform)(r.name, async () => {
      const { env, root } = setup(r);
      const warnings: string[] = [];
      const opts = { env, warn: (m: string) => warnings.push(m), helperTimeoutMs: r.timeoutMs ?? 10_000, ...(r.repository ? { repository: r.repository } : {}) };
      const sub = (s: string): string => s.replaceAll('$ROOT', root);
      if (r.err) {
        const e = await resolveCredential(r.registry, opts).then(
          () => undefined,
          (x: unknown) => x,
        );
        expect(e).toMatchObject({ code: r.err });
        const msg = (e as Error).message;
        for (const h of r.errHas ?? []) expect(msg).toContain(sub(h));
        if (r.secret) expect(msg).not.toContain(r.secret);
      } else {
        const got = await resolveCredential(r.registry, opts);
        const want = { ...r.want } as Credential;
        if (want.source !== undefined) want.source = sub(want.source);
        if (want.kind === 'anonymous' && want.source === 'anonymous') {
          // Anonymous results say what was looked up: "anonymous (no credentials for …)".
          expect(got.source).toMatch(/^anonymous( \(.*\))?$/);
          delete (got as { source?: string }).source;
          delete (want as { source?: string }).source;
        }
        if (want.source === undefined && r.sourceHas === undefined) delete (got as { source?: string }).source;
        if (r.sourceHas) {
          expect(got.source).toContain(sub(r.sourceHas));
          delete (got as { source?: string }).source;
        }
        expect(got).toEqual(want);
      }
      if (r.warnHas) expect(warnings.join('\n')).toContain(r.warnHas);
      else expect(warnings).toEqual([]);
      if (r.secret) for (const w of warnings) expect(w).not.toContain(r.secret);
    });
  }

  it('caches helper results per (helper, key) for the process', async () => {
    const { env, root } = setup({
      config: { credsStore: 'count' },
      helpers: { count: `echo x >> "$ROOT/calls"\n${helperScript({ 'ghcr.io': { Username: 'u', Secret: 'p' } })}` },
    });
    const a = await resolveCredential('ghcr.io', { env });
    const b = await resolveCredential('ghcr.io', { env });
    await resolveCredential('quay.io', { env, warn: () => {} });
    expect(a).toEqual(b);
    expect(fs.readFileSync(path.join(root, 'calls'), 'utf8').trim().split('\n')).toHaveLength(2);
  });

  it('source never contains the secret', async () => {
    const { env } = setup({ config: { auths: { 'ghcr.io': { auth: b64('alice:s3cr3t-pw') } } } });
    const c = await resolveCredential('ghcr.io', { env });
    expect(c.source).not.toContain('s3cr3t-pw');
  });
});
