/** Public API of ferry's authentication layer (see README.md in this folder). */
export type { Credential, CredentialBinding, CredentialSide } from './credential.js';
export { ANONYMOUS, credentialSecrets } from './credential.js';
export type { Challenge } from './challenge.js';
export { parseWwwAuthenticate, pickChallenge, challengeScopes, resolveRealm } from './challenge.js';
export type { ResolveOptions } from './keychain.js';
export { resolveCredential } from './keychain.js';
export type { AuthfileOptions } from './authfile.js';
export { parseAuthfile, resolveFromAuthfile } from './authfile.js';
export { parseCredsFlag } from './flags.js';
export { clearCredentialHelperCache } from './cred-helper.js';
export { clearCloudCredentialCache } from './cloud/index.js';
export { DOCKER_HUB_KEY, dockerAuthKey, convertToHostname } from './docker-config.js';
export type { TokenKeyParts, TokenGrant, CachedToken } from './token-cache.js';
export { TokenCache, tokenCacheKey, tokenExpiry } from './token-cache.js';
export type { TokenRequest, TokenTransport, FetchTokenArgs, TokenResult } from './token.js';
export { fetchToken, MAX_TOKEN_BODY_BYTES } from './token.js';
