/**
 * What ferry can authenticate with. `source` says where it came from (for --debug and error
 * hints); it never contains the secret itself.
 */
export type Credential =
  | { kind: 'anonymous'; source?: string }
  | { kind: 'basic'; username: string; password: string; source?: string }
  /** An OAuth2 refresh token (docker's `identitytoken`, helper username `<token>`). */
  | { kind: 'identity-token'; token: string; username?: string; source?: string }
  /** A bearer token sent to the registry as-is (docker's `registrytoken`). */
  | { kind: 'registry-token'; token: string; source?: string };

export const ANONYMOUS: Credential = { kind: 'anonymous', source: 'anonymous' };

/** Secrets inside a credential, for redaction of any text that might echo them. */
export function credentialSecrets(c: Credential): string[] {
  switch (c.kind) {
    case 'basic':
      return [c.password, Buffer.from(`${c.username}:${c.password}`).toString('base64')];
    case 'identity-token':
    case 'registry-token':
      return [c.token];
    default:
      return [];
  }
}
