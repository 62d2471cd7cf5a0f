/**
 * What ferry can authenticate with. `source` says where it came from (for --debug and error
 * hints); it never contains the secret itself.
 */
export type Credential =
  | { kind: 'anonymous'; source?: string }
  | { kind: 'basic'; username: string; password: string; source?: string }
  /** An OAuth2 refresh token (docker's `identitytoken`, helper username `<token>`). An entry that
   * also holds a real password keeps it: a registry that refuses the OAuth2 POST (Harbor: 405) is
   * then asked with Basic instead. */
  | { kind: 'identity-token'; token: string; username?: string; password?: string; source?: string }
  /** A bearer token sent to the registry as-is (docker's `registrytoken`). */
  | { kind: 'registry-token'; token: string; source?: string };

export const ANONYMOUS: Credential = { kind: 'anonymous', source: 'anonymous' };

/** Secrets inside a credential, for redaction of any text that might echo them. */
export function credentialSecrets(c: Credential): string[] {
  switch (c.kind) {
    case 'basic':
      return [c.password, Buffer.from(`${c.username}:${c.password}`).toString('base64')];
    case 'identity-token':
      return c.password ? [c.token, c.password, Buffer.from(`${c.username ?? ''}:${c.password}`).toString('base64')] : [c.token];
    case 'registry-token':
      return [c.token];
    default:
      return [];
  }
}

/** Which end of a command a registry is on: read from (source) or written to (destination).
 * Single-image commands (inspect, tags, tag, delete) use 'source'. */
export type CredentialSide = 'source' | 'destination';

/**
 * A credential for exactly one registry host (`ImageReference.registry`: `docker.io`,
 * `host:5000`), optionally for one side only. Credentials are never sent to a registry they are
 * not bound to (the CLI's --creds, --src-creds, --dest-creds become bindings).
 */
export interface CredentialBinding {
  registry: string;
  /** Omitted: both sides. */
  side?: CredentialSide;
  credential: Credential;
}
