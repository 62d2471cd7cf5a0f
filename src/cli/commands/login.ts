import type { Command } from 'commander';
import { FerryError } from '../../errors.js';
import { login, logout } from '../../ops/login.js';
import type { CliIO } from '../io.js';
import { contextFrom, type GlobalOptions } from '../options.js';
import { promptLine } from '../prompt.js';
import { document } from '../output/json.js';

interface LoginFlags {
  username?: string;
  password?: string;
  passwordStdin?: boolean;
  authfile?: string;
  keychain?: boolean;
  all?: boolean;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer | string>) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(chunks).toString('utf8');
}

/** Global flags + an OpContext without the per-command credential flags (login has its own). */
async function setup(cmd: Command, io: CliIO, signal: AbortSignal) {
  const g = cmd.optsWithGlobals() as GlobalOptions & LoginFlags;
  if (g.creds !== undefined) throw new FerryError('E_USAGE', `${cmd.name()} takes -u/--username with a prompt or --password-stdin, not --creds`);
  const warn = (s: string): void => void io.stderr.write(`ferry: warning: ${s}\n`);
  // login/logout have their own -u/--password-stdin/--authfile: none of them is a credential
  // binding for the ping, which carries exactly the credential being proved.
  const { creds: _c, username: _u, passwordStdin: _p, authfile: _a, ...rest } = g;
  const ctx = await contextFrom(rest as GlobalOptions, io, signal, warn, { command: cmd.name(), twoSided: false, source: [], destination: [] });
  const info = (s: string): void => void (g.quiet ? undefined : io.stderr.write(`${s}\n`));
  return { g, ctx, warn, info };
}

/** docker login's rules: --password-stdin needs -u; -p warns; else a prompt on a terminal. */
async function credentialsFrom(g: LoginFlags, io: CliIO, warn: (s: string) => void, signal: AbortSignal): Promise<{ username: string; password: string }> {
  const tty = (io.stdin as { isTTY?: boolean }).isTTY === true;
  if (g.password !== undefined && g.passwordStdin) throw new FerryError('E_USAGE', '--password and --password-stdin are mutually exclusive');
  let username = g.username;
  let password: string;
  if (g.passwordStdin) {
    if (!username) throw new FerryError('E_USAGE', '--password-stdin needs -u/--username');
    password = (await readAll(io.stdin)).replace(/\r?\n$/, '');
    if (!password) throw new FerryError('E_USAGE', '--password-stdin: standard input was empty');
    return { username, password };
  }
  if (g.password !== undefined) {
    warn('a password on the command line is visible to other users of this machine; use --password-stdin');
    if (!username) throw new FerryError('E_USAGE', '--password needs -u/--username');
    return { username, password: g.password };
  }
  if (!tty) {
    throw new FerryError('E_USAGE', 'no password: standard input is not a terminal', {
      hint: 'echo "$TOKEN" | ferry login -u USER --password-stdin REGISTRY',
    });
  }
  if (!username) username = (await promptLine(io, 'Username: ', { echo: true, signal })).trim();
  if (!username) throw new FerryError('E_USAGE', 'login needs a username');
  password = await promptLine(io, 'Password: ', { echo: false, signal });
  return { username, password };
}

export function loginCommands(program: Command, io: CliIO, signal: AbortSignal): void {
  program
    .command('login')
    .description('check credentials against a registry and store them where docker (or podman, or the OS keychain) keeps them')
    .argument('<registry>', 'registry host: docker.io, ghcr.io, registry.example:5000')
    .option('-u, --username <name>', 'user name (prompted for on a terminal when missing)')
    .option('-p, --password <password>', 'password or token (visible to other users: prefer --password-stdin or the prompt)')
    .option('--authfile <file>', 'write this podman-style auth.json instead of the docker config')
    .option('--keychain', 'store in the OS keychain (Secret Service, macOS Keychain, Windows Credential Manager)')
    .addHelpText('after', `
Without --authfile or --keychain the credentials go where docker login puts them: the credential
helper configured in the docker config (credHelpers / credsStore), else its "auths" (0600).

Examples:
  ferry login ghcr.io -u me                       # prompts for the password
  echo "$TOKEN" | ferry login -u me --password-stdin registry.example:5000
  ferry login --authfile ./auth.json quay.io -u bot --password-stdin < token.txt`)
    .action(async (registry: string, _opts: unknown, cmd: Command) => {
      const { g, ctx, warn, info } = await setup(cmd, io, signal);
      const c = await credentialsFrom(g, io, warn, signal);
      const r = await login({ registry, ...c, ...(g.authfile ? { authfile: g.authfile } : {}), ...(g.keychain ? { keychain: true } : {}) }, ctx);
      if (g.json) io.stdout.write(`${JSON.stringify(document('login', r), null, 2)}\n`);
      else info(`Login succeeded: ${r.registry} (stored in ${r.storedIn}${r.identityToken ? ', as the identity token the registry issued' : ''})${g.keychain ? '; later commands read it with --keychain' : ''}`);
    });

  program
    .command('logout')
    .description('remove stored credentials for a registry wherever they are (docker config, its credential helper, podman auth files, the OS keychain)')
    .argument('[registry]', 'registry host: docker.io, ghcr.io, registry.example:5000')
    .option('--all', 'remove the credentials of every registry')
    .option('--authfile <file>', 'the podman-style auth.json to remove them from (default: podman\'s own files)')
    .option('--keychain', 'fail when the OS keychain cannot be reached (without it, an unreachable keychain is skipped)')
    .action(async (registry: string | undefined, _opts: unknown, cmd: Command) => {
      const { g, ctx, info } = await setup(cmd, io, signal);
      const r = await logout({ ...(registry ? { registry } : {}), ...(g.all ? { all: true } : {}), ...(g.authfile ? { authfile: g.authfile } : {}), ...(g.keychain ? { keychain: true } : {}) }, ctx);
      if (g.json) io.stdout.write(`${JSON.stringify(document('logout', r), null, 2)}\n`);
      else if (r.removed.length === 0) info(registry ? `Not logged in to ${registry}` : 'No stored credentials found');
      else for (const line of r.removed) info(`Removed ${line}`);
    });
}
