/**
 * Credentials given on the command line (`--creds`, `--src-creds`, `--dest-creds`; binding them to
 * registry hosts is src/cli/credentials.ts).
 *
 * `--creds USER:PASSWORD` (skopeo's flag shape): split at the FIRST ':' so passwords may contain
 * colons (as docker's `decodeAuth`); the username must be non-empty. skopeo prompts for a password
 * when there is no ':'; ferry never prompts, so a missing ':' is a usage error. Error messages never
 * echo the value (it holds the password).
 */
import type { Credential } from './credential.js';
import { FerryError } from '../errors.js';

export function parseCredsFlag(s: string, flag = '--creds'): Credential {
  const i = s.indexOf(':');
  if (i < 0) {
    throw new FerryError('E_USAGE', `${flag} must be USERNAME:PASSWORD (no ":" found)`, {
      hint: `pass ${flag} user:password, or omit it to use docker/podman login credentials`,
    });
  }
  if (i === 0) throw new FerryError('E_USAGE', `${flag} has an empty username (expected USERNAME:PASSWORD)`);
  return { kind: 'basic', username: s.slice(0, i), password: s.slice(i + 1), source: `command line (${flag})` };
}
