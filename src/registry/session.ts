import { resolveFromAuthfile } from '../auth/authfile.js';
import { CertsD, type TlsOptions } from '../config/certs-d.js';
import { ANONYMOUS, credentialSecrets, type Credential, type CredentialBinding, type CredentialSide } from '../auth/credential.js';
import { resolveCredential } from '../auth/keychain.js';
import { TokenCache } from '../auth/token-cache.js';
import type { TokenTransport } from '../auth/token.js';
import { OsKeychain } from '../auth/os-keychain.js';
import { authMiddleware, type AuthEvent } from '../http/auth.js';
import { compose } from '../http/compose.js';
import { loggingMiddleware } from '../http/logging.js';
import { retryMiddleware } from '../http/retry.js';
import { insecureHostSettings, schemeMiddleware } from '../http/scheme.js';
import type { ResolveRule } from '../http/resolve.js';
import type { NetworkConfigOptions } from '../config/index.js';
import { createDispatchers, createSend, type Dispatchers } from '../http/send.js';
import type { DebugLog, HostSettings, Middleware, Send } from '../http/types.js';
import { userAgentMiddleware } from '../http/user-agent.js';
import { readTruncated } from '../util/bounded.js';
import type { BackoffPolicy } from '../util/backoff.js';
import { isLoopbackRegistry, type ImageReference } from '../ref/index.js';
import { RegistryClient } from './client.js';
import { blockedError, endpointsFor, loadNetworkConfig, type EndpointPlan, type NetworkRules, type Operation } from '../config/index.js';
import { RateLimitLog } from './rate-limit-log.js';

export interface SessionOptions {
  /** Credentials bound to registry hosts (and optionally a side): --creds, --src-creds, --dest-creds.
   * A binding is used for its registry only; every other registry resolves as below. */
  credentials?: readonly CredentialBinding[];
  /** Auth files read instead of the default chain (docker/podman config), per side (--authfile,
   * --src-authfile, --dest-authfile). */
  authfiles?: Partial<Record<CredentialSide, string>>;
  plainHttp?: boolean;
  tlsVerify?: boolean;
  /** --idle-timeout: a connection silent this long is given up and retried (default 120 s). */
  idleTimeoutMs?: number;
  debug?: DebugLog;
  warn?: (msg: string) => void;
  env?: NodeJS.ProcessEnv;
  userAgent: string;
  retry?: BackoffPolicy;
  /** Default-chain lookups may ask cloud CLIs (aws, gcloud, az) for cloud registries; default true
   * (--no-cloud-auth: false). Not used with authfiles or bindings. */
  cloudAuth?: boolean;
  /** --keychain: read credentials from the OS keychain (ferry's items) before the default chain. */
  keychain?: boolean;
  /** Ask token servers for refresh tokens (ferry login). */
  offlineTokens?: boolean;
  /** Sees every challenge and token of every client (ferry auth explain, login); never print tokens. */
  observeAuth?: (registry: string, side: CredentialSide, e: AuthEvent) => void;
  /** Where the rate limits registries announce are kept and the low-budget warning is given
   * once per registry (one per CLI process; default: one per session). */
  rateLimits?: RateLimitLog;
  /** --resolve: connections to HOST:PORT go to another address (direct connections only). */
  resolve?: readonly ResolveRule[];
  /** --mirror, --no-mirrors, --registries-conf, --daemon-config, --short-name-mode (config explain; the pull path later). */
  networkConfig?: NetworkConfigOptions;
  /** --cert-dir, --ca-cert, --client-cert/--client-key; certs.d directories are read either way. */
  tls?: TlsOptions;
  /** Registries that are "insecure" as podman/docker mean it (registries.conf `insecure`,
   * daemon.json `insecure-registries`): https without certificate verification, then plain http.
   * Asked with the registry host as written in references (`host[:port]`). */
  insecureHosts?: (host: string) => boolean;
}

const MAX_TOKEN_BODY = 64 * 1024;

/**
 * One per command run: owns the connection pools and one composed middleware stack (with its own
 * token cache) per (registry, credential choice). The stack order is stated once, in http/compose.ts.
 *
 * Credential choice for (registry, side), first match wins: a binding for that registry and side,
 * a binding for that registry without a side, the side's authfile, the default chain
 * (resolveCredential). Bindings are per host and so share one client; authfile and default-chain
 * lookups may depend on the repository (podman's namespaced keys, `quay.io/org`), so those clients
 * are per repository. A source and a destination on one registry with different credentials thus
 * get different clients, and a destination's requests (its cross-repository mounts included) carry
 * the destination's credential only. Tokens are cached per client, never across credentials.
 */
export class Session {
  private readonly dispatchers: Dispatchers;
  private readonly clients = new Map<string, RegistryClient>();
  private readonly secrets = new Set<string>();
  /** One scheme choice per registry host, shared by that host's clients (one https probe). */
  private readonly schemes = new Map<string, Middleware>();
  private keychain: Promise<OsKeychain> | undefined;
  /** Insecure registries already reported on stderr (once per host). */
  private readonly insecureWarned = new Set<string>();
  /** Hosts registries.conf / daemon.json / an http:// mirror call insecure (learnt from endpoint plans). */
  private readonly insecureByConfig = new Set<string>();
  /** The rate limits the registries of this session announced (latest per registry). */
  readonly rateLimits: RateLimitLog;

  constructor(readonly opts: SessionOptions) {
    this.rateLimits = opts.rateLimits ?? new RateLimitLog();
    const certs = new CertsD(opts.tls ?? {}, opts.env ?? process.env);
    this.dispatchers = createDispatchers(process.env, {
      ...(opts.resolve ? { resolve: opts.resolve } : {}), ...(opts.debug ? { debug: opts.debug } : {}), ...(certs.active ? { tls: certs } : {}),
      ...(opts.idleTimeoutMs ? { idleTimeoutMs: opts.idleTimeoutMs } : {}),
    });
    for (const b of opts.credentials ?? []) credentialSecrets(b.credential).forEach((s) => this.secrets.add(s));
  }

  hostSettings(ref: ImageReference): HostSettings {
    const tlsVerify = this.opts.tlsVerify ?? true;
    if (this.opts.plainHttp) return { scheme: 'http', tlsVerify };
    if (this.opts.insecureHosts?.(ref.registry) || this.insecureByConfig.has(ref.registry)) {
      if (!this.insecureWarned.has(ref.registry)) {
        this.insecureWarned.add(ref.registry);
        this.opts.warn?.(`${ref.registry}: insecure registry: TLS certificates are not verified`);
      }
      return insecureHostSettings();
    }
    return { scheme: isLoopbackRegistry(ref.registry) ? 'auto' : 'https', tlsVerify };
  }

  /** Where the credential for `ref`'s registry on `side` comes from, and the client key it implies. */
  private choice(ref: ImageReference, side: CredentialSide): { key: string; label: string; resolve: () => Promise<Credential> } {
    const bindings = this.opts.credentials ?? [];
    const i = bindings.findIndex((b) => b.registry === ref.registry && b.side === side);
    const j = i >= 0 ? i : bindings.findIndex((b) => b.registry === ref.registry && b.side === undefined);
    if (j >= 0) {
      const b = bindings[j]!;
      return { key: JSON.stringify([ref.registry, 'binding', j]), label: b.side ?? 'any side', resolve: async () => b.credential };
    }
    const env = this.opts.env ?? process.env;
    const warn = this.opts.warn ?? (() => {});
    const file = this.opts.authfiles?.[side];
    if (file) {
      return {
        key: JSON.stringify([ref.registry, 'authfile', file, ref.repository]), label: side,
        resolve: () => resolveFromAuthfile(file, ref.registry, { env, warn, repository: ref.repository }),
      };
    }
    const chain = () => resolveCredential(ref.registry, {
      env, warn, repository: ref.repository,
      ...(this.opts.cloudAuth === false ? { cloudAuth: false } : {}), ...(this.opts.debug ? { debug: this.opts.debug } : {}),
    });
    if (this.opts.keychain) {
      // ferry's own keychain item first; a keychain that cannot be reached is an error (the user
      // asked for it), no item falls through to docker's and podman's files.
      return {
        key: JSON.stringify([ref.registry, 'keychain', ref.repository]), label: side,
        resolve: async () => (await (this.keychain ??= OsKeychain.open({ env }))).get(ref.registry).then((c) => c ?? chain()),
      };
    }
    return { key: JSON.stringify([ref.registry, 'default', ref.repository]), label: side, resolve: chain };
  }

  /** The client for `ref`'s registry, authenticating as the credential chosen for `side`. */
  registry(ref: ImageReference, side: CredentialSide = 'source'): RegistryClient {
    const choice = this.choice(ref, side);
    const existing = this.clients.get(choice.key);
    if (existing) return existing;
    const settings = this.hostSettings(ref);
    const apiHost = ref.apiHost();
    const send = createSend(() => (settings.tlsVerify ? this.dispatchers.verify : this.dispatchers.noVerify), this.opts.idleTimeoutMs ? { idleTimeoutMs: this.opts.idleTimeoutMs } : {});
    const ua = userAgentMiddleware(this.opts.userAgent);
    const retry = retryMiddleware(this.opts.retry, this.opts.debug);
    const logging = loggingMiddleware(this.opts.debug);
    let resolved: Promise<Credential> | undefined;
    let current: Credential = ANONYMOUS;
    const credential = () => {
      resolved ??= (async () => {
        const c = await choice.resolve();
        credentialSecrets(c).forEach((s) => this.secrets.add(s));
        this.opts.debug?.(`credentials for ${ref.registry} (${choice.label}): ${c.kind}${c.source ? ` (${c.source})` : ''}`);
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
      apiHost, credential, tokenTransport, cache: new TokenCache(),
      allowHttpRealm: settings.scheme !== 'https', ...(this.opts.debug ? { log: this.opts.debug } : {}),
      ...(this.opts.offlineTokens ? { offline: true } : {}),
      ...(this.opts.observeAuth ? { observe: (e: AuthEvent) => this.opts.observeAuth!(ref.registry, side, e) } : {}),
    });
    let scheme = this.schemes.get(ref.registry);
    if (!scheme) this.schemes.set(ref.registry, (scheme = schemeMiddleware(settings, apiHost)));
    const stack: Send = compose([auth, ua, retry, scheme, logging], send);
    const client = new RegistryClient({
      send: stack, registry: ref.registry, apiHost,
      hasCredentials: () => current.kind !== 'anonymous',
      credentialSource: () => current.source,
      secrets: () => [...this.secrets],
      credentialInfo: async () => {
        const c = await credential();
        const username = c.kind === 'basic' ? c.username : c.kind === 'identity-token' ? c.username : undefined;
        return { kind: c.kind, ...(username ? { username } : {}), ...(c.source ? { source: c.source } : {}) };
      },
      onRateLimit: (rl) => this.rateLimits.record(ref.registry, rl, this.opts.warn),
    });
    this.clients.set(choice.key, client);
    return client;
  }

  private rules: Promise<NetworkRules> | undefined;

  /** registries.conf (+ drop-ins) and daemon.json, read once per session (network-config.ts). */
  networkRules(): Promise<NetworkRules> {
    this.rules ??= loadNetworkConfig(this.opts.networkConfig ?? {}, this.opts.env ?? process.env);
    return this.rules;
  }

  /**
   * Where to read (or write) `ref` for `operation`, in the order to try: mirrors (reads only),
   * then the origin (after any `location` rewrite). A blocked origin without mirrors is
   * E_BLOCKED naming the file and line.
   */
  async endpoints(ref: ImageReference, operation: Operation): Promise<EndpointPlan> {
    const n = this.opts.networkConfig ?? {};
    const plan = endpointsFor(ref, await this.networkRules(), {
      operation, ...(n.mirrors ? { extraMirrors: n.mirrors } : {}), ...(n.noMirrors ? { noMirrors: true } : {}),
    });
    if (plan.endpoints.length === 0) throw blockedError(ref, plan.blocked ?? { file: 'registries.conf', line: 0 }, plan);
    for (const e of plan.endpoints) if (e.insecure) this.insecureByConfig.add(e.registry);
    return plan;
  }

  async close(): Promise<void> {
    await this.dispatchers.close();
  }
}
