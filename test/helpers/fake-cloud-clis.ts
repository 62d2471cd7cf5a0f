/**
 * Fake cloud CLIs and cloud credential helpers for tests: `aws`, `gcloud`, `az`,
 * `docker-credential-ecr-login`, `docker-credential-gcloud`, `docker-credential-gcr`,
 * `docker-credential-acr-env` — small /bin/sh scripts that print what the real ones print.
 *
 * API (used by the cloud-auth tests, the emulated-registry e2e tests and the lead):
 *
 *   const fake = writeFakeCloudClis(dir, {
 *     clis: ['aws', 'gcloud'],              // which to write; default all seven
 *     modes: { gcloud: 'logged-out' },      // per CLI: 'ok' (default) | 'logged-out' | 'hang' | 'empty' | 'garbage'
 *     tokens: { aws: 'T1', 'aws-public': 'T2', gcloud: 'T3', az: 'T4', 'docker-credential-gcr': 'T5' },
 *     hangSeconds: 300,                     // how long 'hang' sleeps
 *   });
 *   fake.binDir          // ferry's PATH: fake.path() = binDir alone (the scripts set their own PATH).
 *                        // NOTE: this machine has the real google-cloud-cli in /usr/bin (gcloud,
 *                        // docker-credential-gcloud): never put /usr/bin on ferry's PATH when the
 *                        // test means "only these fakes".
 *   fake.logFile         // one JSON line per invocation: {"cli","args":[...],"stdin"?}
 *   fake.invocations()   // [{ cli, args, stdin? }], in order
 *   fake.count('aws')    // how many times it ran
 *   fake.tokens          // the secrets each prints (defaults are distinct fake strings)
 *   fake.hangPids()      // pids a 'hang' run left (the script and its sleeping grandchild)
 *
 * Calling writeFakeCloudClis again on the same dir rewrites the scripts (new modes/tokens) and
 * keeps the log. Args are logged JSON-escaped for `"` and `\` only (no tabs or newlines).
 *
 * What each prints, as the real tools do:
 * - aws `ecr get-login-password --region R` / `ecr-public get-login-password --region R`: the
 *   token and a newline. No `--region`: exit 253 "You must specify a region…". logged-out:
 *   exit 255, stderr "\nUnable to locate credentials. You can configure credentials by running
 *   "aws configure".". Anything else: exit 252 with aws's usage error.
 * - gcloud `auth print-access-token`: the token and a newline. logged-out: exit 1, stderr
 *   "ERROR: (gcloud.auth.print-access-token) You do not currently have an active account
 *   selected." and the "Please run: $ gcloud auth login" lines.
 * - az `acr login --name N --expose-token --output json`: stderr "WARNING: You can perform manual
 *   login using the provided access token below…", stdout pretty JSON
 *   `{"accessToken": T, "loginServer": "N.azurecr.io"}`. logged-out: exit 1 "ERROR: Please run
 *   'az login' to setup account.". Without --expose-token: exit 1 (it would need docker).
 * - helpers, verb `get` (stdin = server URL, logged as `stdin`): stdout
 *   `{"ServerURL","Username","Secret"}` — Usernames `AWS` (ecr-login), `_dcgcloud_token` (gcloud),
 *   `_dcgcr_2_0_0_token` (gcr), `<token>` (acr-env: the secret is an ACR refresh token).
 *   logged-out: exit 1, stdout "credentials not found in native keychain" (ecr-login reports every
 *   failure so); docker-credential-gcloud: "You do not currently have an active account
 *   selected. See https://cloud.google.com/sdk/docs/authorizing for more information." (the
 *   real one's text).
 * - 'empty': exit 0, no output. 'garbage': exit 0, output that is not a token / not JSON
 *   (helpers: JSON cut inside the Secret). 'hang': starts `sleep` in the background (a grandchild
 *   holding stdout), records both pids in `<dir>/hang-pids`, then sleeps in the foreground.
 */
import fs from 'node:fs';
import path from 'node:path';

export type FakeCloudCli =
  | 'aws' | 'gcloud' | 'az'
  | 'docker-credential-ecr-login' | 'docker-credential-gcloud' | 'docker-credential-gcr' | 'docker-credential-acr-env';

export type FakeCliMode = 'ok' | 'logged-out' | 'hang' | 'empty' | 'garbage';

export const ALL_FAKE_CLOUD_CLIS: readonly FakeCloudCli[] = [
  'aws', 'gcloud', 'az', 'docker-credential-ecr-login', 'docker-credential-gcloud', 'docker-credential-gcr', 'docker-credential-acr-env',
];

export type FakeTokenKey = FakeCloudCli | 'aws-public';

export interface FakeCloudOptions {
  clis?: readonly FakeCloudCli[];
  modes?: Partial<Record<FakeCloudCli, FakeCliMode>>;
  tokens?: Partial<Record<FakeTokenKey, string>>;
  hangSeconds?: number;
}

export interface FakeInvocation {
  cli: FakeCloudCli;
  args: string[];
  stdin?: string;
}

export interface FakeCloudClis {
  binDir: string;
  logFile: string;
  tokens: Record<FakeTokenKey, string>;
  /** binDir, then `rest` if given (default none: /usr/bin holds a real gcloud here). */
  path(rest?: string): string;
  invocations(): FakeInvocation[];
  count(cli?: FakeCloudCli): number;
  hangPids(): number[];
}

export const DEFAULT_FAKE_TOKENS: Readonly<Record<FakeTokenKey, string>> = Object.freeze({
  aws: 'fake-ecr-password-eyJwYXlsb2FkIjoiZmFrZS1lY3IifQ',
  'aws-public': 'fake-ecr-public-password-eyJwdWJsaWMiOnRydWV9',
  gcloud: 'ya29.fake-gcloud-access-token-0123456789',
  az: 'fake-acr-refresh-token-eyJhbGciOiJSUzI1NiJ9',
  'docker-credential-ecr-login': 'fake-ecr-helper-password-eyJoZWxwZXIiOjF9',
  'docker-credential-gcloud': 'ya29.fake-gcloud-helper-token-0123456789',
  'docker-credential-gcr': 'ya29.fake-gcr-helper-token-0123456789',
  'docker-credential-acr-env': 'fake-acr-env-refresh-token-eyJhY3IiOjF9',
});

const HELPER_USER: Partial<Record<FakeCloudCli, string>> = {
  'docker-credential-ecr-login': 'AWS',
  'docker-credential-gcloud': '_dcgcloud_token',
  'docker-credential-gcr': '_dcgcr_2_0_0_token',
  'docker-credential-acr-env': '<token>',
};

/** What a helper prints (stdout, exit 1) when its cloud login is missing; default the
 * protocol's "credentials not found in native keychain". docker-credential-gcloud's text is the
 * real one (google-cloud-cli 528). */
const HELPER_LOGGED_OUT: Partial<Record<FakeCloudCli, string>> = {
  'docker-credential-gcloud': 'You do not currently have an active account selected. See https://cloud.google.com/sdk/docs/authorizing for more information.',
};

/** A single-quoted sh literal. */
const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

function preamble(cli: FakeCloudCli, logFile: string, pidFile: string, mode: FakeCliMode, hangSeconds: number, readStdin: boolean): string {
  // 'hang' records its pids before anything else (no sed forks first), so a test can see both
  // processes running well before a timeout strikes even on a loaded machine.
  return `#!/bin/sh
PATH=/usr/bin:/bin
mode=${sq(mode)}
if [ "$mode" = hang ]; then
  sleep ${hangSeconds} &
  echo $! >> ${sq(pidFile)}
  echo $$ >> ${sq(pidFile)}
fi
esc() { printf '%s' "$1" | sed 's/\\\\/\\\\\\\\/g; s/"/\\\\"/g'; }
args=''
for a in "$@"; do
  if [ -n "$args" ]; then args="$args,"; fi
  args="$args\\"$(esc "$a")\\""
done
${readStdin ? `input=$(cat)
line="{\\"cli\\":\\"${cli}\\",\\"args\\":[$args],\\"stdin\\":\\"$(esc "$input")\\"}"` : `line="{\\"cli\\":\\"${cli}\\",\\"args\\":[$args]}"`}
printf '%s\\n' "$line" >> ${sq(logFile)}
if [ "$mode" = hang ]; then
  sleep ${hangSeconds}
  exit 0
fi
if [ "$mode" = empty ]; then exit 0; fi
`;
}

function awsScript(tokens: Record<FakeTokenKey, string>): string {
  return `has_region=no
prev=''
for a in "$@"; do
  if [ "$prev" = --region ] && [ -n "$a" ]; then has_region=yes; fi
  case "$a" in --region=?*) has_region=yes;; esac
  prev="$a"
done
if { [ "$1" = ecr ] || [ "$1" = ecr-public ]; } && [ "$2" = get-login-password ]; then
  if [ "$has_region" = no ]; then
    printf '\\nYou must specify a region. You can also configure your region by running "aws configure".\\n' >&2
    exit 253
  fi
  if [ "$mode" = logged-out ]; then
    printf '\\nUnable to locate credentials. You can configure credentials by running "aws configure".\\n' >&2
    exit 255
  fi
  if [ "$mode" = garbage ]; then printf '<html>not a token</html>\\n'; exit 0; fi
  if [ "$1" = ecr ]; then printf '%s\\n' ${sq(tokens.aws)}; else printf '%s\\n' ${sq(tokens['aws-public'])}; fi
  exit 0
fi
printf '\\nusage: aws [options] <command> <subcommand> [<subcommand> ...] [parameters]\\nTo see help text, you can run:\\n\\n  aws help\\n  aws <command> help\\n  aws <command> <subcommand> help\\n\\naws: error: argument operation: Invalid choice\\n' >&2
exit 252
`;
}

function gcloudScript(tokens: Record<FakeTokenKey, string>): string {
  return `if [ "$1" = auth ] && [ "$2" = print-access-token ]; then
  if [ "$mode" = logged-out ]; then
    cat >&2 <<'EOF'
ERROR: (gcloud.auth.print-access-token) You do not currently have an active account selected.
Please run:

  $ gcloud auth login

to obtain new credentials.

If you have already logged in with a different account, run:

  $ gcloud config set account ACCOUNT

to select an already authenticated account to use.
EOF
    exit 1
  fi
  if [ "$mode" = garbage ]; then printf 'Updates are available for some Google Cloud CLI components\\n'; exit 0; fi
  printf '%s\\n' ${sq(tokens.gcloud)}
  exit 0
fi
printf 'ERROR: (gcloud) Invalid choice: %s.\\n' "'$1'" >&2
exit 2
`;
}

function azScript(tokens: Record<FakeTokenKey, string>): string {
  return `name=''
expose=no
prev=''
for a in "$@"; do
  if [ "$prev" = --name ] || [ "$prev" = -n ]; then name="$a"; fi
  if [ "$a" = --expose-token ] || [ "$a" = -t ]; then expose=yes; fi
  prev="$a"
done
if [ "$1" = acr ] && [ "$2" = login ]; then
  if [ "$mode" = logged-out ]; then
    printf "ERROR: Please run 'az login' to setup account.\\n" >&2
    exit 1
  fi
  if [ -z "$name" ]; then printf 'ERROR: the following arguments are required: --name/-n\\n' >&2; exit 2; fi
  if [ "$expose" = no ]; then printf "ERROR: Could not connect to the docker daemon. (fake az: only --expose-token is emulated)\\n" >&2; exit 1; fi
  printf "WARNING: You can perform manual login using the provided access token below, for example: 'docker login loginServer -u 00000000-0000-0000-0000-000000000000 -p accessToken'\\n" >&2
  if [ "$mode" = garbage ]; then printf '{\\n  "accessToken": "cut\\n'; exit 0; fi
  printf '{\\n  "accessToken": "%s",\\n  "loginServer": "%s.azurecr.io"\\n}\\n' ${sq(tokens.az)} "$name"
  exit 0
fi
printf "ERROR: '%s' is misspelled or not recognized by the system.\\n" "$1" >&2
exit 2
`;
}

function helperScript(cli: FakeCloudCli, tokens: Record<FakeTokenKey, string>): string {
  const user = HELPER_USER[cli]!;
  const token = tokens[cli];
  return `url=$(printf '%s' "$input" | sed 's/[[:space:]]*$//')
case "$1" in
  get)
    if [ "$mode" = logged-out ]; then printf '%s\\n' ${sq(HELPER_LOGGED_OUT[cli] ?? 'credentials not found in native keychain')}; exit 1; fi
    if [ "$mode" = garbage ]; then printf '{"ServerURL":"%s","Username":"%s","Secret":"%s' "$url" ${sq(user)} ${sq(token.slice(0, 8))}; exit 0; fi
    printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\\n' "$url" ${sq(user)} ${sq(token)}
    exit 0;;
  list) printf '{}\\n'; exit 0;;
  store|erase) printf 'not implemented\\n'; exit 1;;
  *) printf 'Usage: %s <store|get|erase|list|version>\\n' "$0"; exit 1;;
esac
`;
}

/** Writes the fake CLIs into `<dir>/cloud-bin` (module comment). */
export function writeFakeCloudClis(dir: string, opts: FakeCloudOptions = {}): FakeCloudClis {
  const binDir = path.join(dir, 'cloud-bin');
  const logFile = path.join(dir, 'cloud-cli-invocations.ndjson');
  const pidFile = path.join(dir, 'hang-pids');
  fs.mkdirSync(binDir, { recursive: true });
  if (!fs.existsSync(logFile)) fs.writeFileSync(logFile, '');
  const tokens: Record<FakeTokenKey, string> = { ...DEFAULT_FAKE_TOKENS, ...opts.tokens } as Record<FakeTokenKey, string>;
  const hangSeconds = opts.hangSeconds ?? 300;
  for (const cli of ALL_FAKE_CLOUD_CLIS) fs.rmSync(path.join(binDir, cli), { force: true });
  for (const cli of opts.clis ?? ALL_FAKE_CLOUD_CLIS) {
    const mode = opts.modes?.[cli] ?? 'ok';
    const isHelper = cli.startsWith('docker-credential-');
    const body = cli === 'aws' ? awsScript(tokens) : cli === 'gcloud' ? gcloudScript(tokens) : cli === 'az' ? azScript(tokens) : helperScript(cli, tokens);
    fs.writeFileSync(path.join(binDir, cli), preamble(cli, logFile, pidFile, mode, hangSeconds, isHelper) + body, { mode: 0o755 });
  }
  const invocations = (): FakeInvocation[] => fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as FakeInvocation);
  return {
    binDir, logFile, tokens, invocations,
    path: (rest?: string) => (rest ? `${binDir}${path.delimiter}${rest}` : binDir),
    count: (cli?: FakeCloudCli) => invocations().filter((i) => cli === undefined || i.cli === cli).length,
    hangPids: () => (fs.existsSync(pidFile) ? fs.readFileSync(pidFile, 'utf8').split('\n').filter(Boolean).map(Number) : []),
  };
}
