import { ANONYMOUS, credentialSecrets, type Credential } from '../auth/credential.js';
import { resolveCredential } from '../auth/keychain.js';
import { TokenCache } from '../auth/token-cache.js';
import type { TokenTransport } from '../auth/token.js';
import { authMiddleware } from '../http/auth.js';
import { compose } from '../http/compose.js';
import { loggingMiddleware } from '../http/logging.js';
import { retryMiddleware } from '../http/retry.js';
import { schemeMiddleware } from '../http/scheme.js';
import { createDispatchers, createSend, type Dispatchers } from '../http/send.js';
import type { DebugLog, HostSettings, Send } from '../http/types.js';
import { userAgentMiddleware } from '../http/user-agent.js';
import { readTruncated } from '../util/bounded.js';
import type { BackoffPolicy } from '../util/backoff.js';
import { isLoopbackRegistry, type ImageReference } from '../ref/index.js';
import { RegistryClient } from './client.js';

export interface SessionOptions {
  /** Credentials from flags (--creds / --username + --password-stdin): used for every registry. */
  credential?: Credential;
  plainHttp?: boolean;
  tlsVerify?: boolean;
  debug?: DebugLog;
  warn?: (msg: string) => void;
  env?: NodeJS.ProcessEnv;
  userAgent: string;
  retry?: BackoffPolicy;
}

const MAX_TOKEN_BODY = 64 * 1024;

/**
 * One per command run: owns the connection pools, the token cache and one composed middleware
 * stack per registry. The stack order is stated once, in http/compose.ts.
 */
export class Session {
  private readonly dispatchers: Dispatchers = createDispatchers();
  private readonly clients = new Map<string, RegistryClient>();
  private readonly cache = new TokenCache();
  private readonly secrets = new Set<string>();

  constructor(readonly opts: SessionOptions) {
    if (opts.credential) credentialSecrets(opts.credential).forEach((s) => this.secrets.add(s));
  }

  hostSettings(ref: ImageReference): HostSettings {
    const tlsVerify = this.opts.tlsVerify ?? true;
    if (this.opts.plainHttp) return { scheme: 'http', tlsVerify };
    return { scheme: isLoopbackRegistry(ref.registry) ? 'auto' : 'https', tlsVerify };
  }

  registry(ref: ImageReference): RegistryClient {
    const existing = this.clients.get(ref.registry);
    if (existing) return existing;
    const settings = this.hostSettings(ref);
    const apiHost = ref.apiHost();
    const send = createSend(() => (settings.tlsVerify ? this.dispatchers.verify : this.dispatchers.noVerify));
    const ua = userAgentMiddleware(this.opts.userAgent);
    const retry = retryMiddleware(this.opts.retry, this.opts.debug);
    const logging = loggingMiddleware(this.opts.debug);
    let resolved: Promise<Credential> | undefined;
    let current: Credential = ANONYMOUS;
    const credential = () => {
      resolved ??= (async () => {
        const c = this.opts.credential ?? (await resolveCredential(ref.registry, { env: this.opts.env ?? process.env, warn: this.opts.warn ?? (() => {}) }));
        credentialSecrets(c).forEach((s) => this.secrets.add(s));
        this.opts.debug?.(`credentials for ${ref.registry}: ${c.kind}${c.source ? ` (${c.source})` : ''}`);
        current = c;
        return c;
      })();
      return resolved;
    };
    const tokenSend = compose([ua, retry, logging], send);
    const tokenTransport: TokenTransport = async (req, signal) => {
      // `small`: a 2xx token body is read (and a cut one retried) by the retry layer.
      const res = await tokenSend({ method: req.method, url: new URL(req.url), headers: req.headers, ...(req.body !== undefined ? { body: req.body } : {}), ...(signal ? { signal } : {}), small: { max: MAX_TOKEN_BODY, what: 'token response' } });
      const body = res.bytes ? res.bytes.toString('utf8') : await readTruncated(res.body, MAX_TOKEN_BODY);
      return { status: res.status, headers: res.headers, body };
    };
    const auth = authMiddleware({
      apiHost, credential, tokenTransport, cache: this.cache,
      allowHttpRealm: settings.scheme !== 'https', ...(this.opts.debug ? { log: this.opts.debug } : {}),
    });
    const stack: Send = compose([auth, ua, retry, schemeMiddleware(settings, apiHost), logging], send);
    const client = new RegistryClient({
      send: stack, registry: ref.registry, apiHost,
      hasCredentials: () => current.kind !== 'anonymous',
      secrets: () => [...this.secrets],
    });
    this.clients.set(ref.registry, client);
    return client;
  }

  async close(): Promise<void> {
    await this.dispatchers.close();
  }
}
