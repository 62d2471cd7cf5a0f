import { FerryError, hasCode } from '../errors.js';
import { isPlainHttpAnswer } from './network-errors.js';
import type { HostSettings, Middleware } from './types.js';

/**
 * Chooses http or https per host. Requests arrive as https URLs. `http` rewrites every request;
 * `auto` (loopback registries, as docker treats 127.0.0.0/8 and ::1 as insecure) tries https
 * first and, if the server answered TLS with plain HTTP or the connection failed, tries plain http
 * and remembers which one worked for the rest of the process. A certificate failure is final: the
 * server does speak https, and an http retry would only hide the real problem behind a 400.
 */
export function schemeMiddleware(settings: HostSettings, registryHost: string): Middleware {
  let chosen: 'https' | 'http' | undefined = settings.scheme === 'auto' ? undefined : settings.scheme;
  return (next) => async (req) => {
    if (req.url.host !== registryHost) return next(req); // redirects/other hosts keep their scheme
    const withScheme = (s: 'https' | 'http') => {
      const url = new URL(req.url);
      url.protocol = `${s}:`;
      return { ...req, url };
    };
    if (chosen) return next(withScheme(chosen));
    try {
      const res = await next(withScheme('https'));
      chosen = 'https';
      return res;
    } catch (e) {
      const plainAnswer = hasCode(e, 'E_TLS') && isPlainHttpAnswer(e.cause);
      if (!plainAnswer && !hasCode(e, 'E_NETWORK')) throw e;
      let res;
      try {
        res = await next(withScheme('http'));
      } catch (e2) {
        // Report the https failure when it was a TLS problem; otherwise the http one.
        throw hasCode(e, 'E_TLS') ? e : e2;
      }
      chosen = 'http';
      return res;
    }
  };
}

/**
 * The settings of an "insecure" registry as podman and docker mean it (registries.conf
 * `insecure = true`, daemon.json `insecure-registries`): https without certificate verification,
 * then plain http if the server does not speak TLS (the `auto` walk above). The session reports
 * each such host once on stderr.
 */
export function insecureHostSettings(): HostSettings {
  return { scheme: 'auto', tlsVerify: false, insecure: true };
}

export function assertSchemeAllowed(url: URL): void {
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new FerryError('E_BAD_REFERENCE', `unsupported URL scheme ${url.protocol}`);
  }
}
