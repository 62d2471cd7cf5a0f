/**
 * Secret redaction for anything that may reach a log, an error message or --debug output.
 * Header values of Authorization-like headers are replaced whole; URLs lose userinfo and the
 * values of query parameters that carry secrets (pre-signed storage URLs, upload state).
 */
const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-amz-security-token']);
const SECRET_QUERY = /^(x-amz-signature|x-amz-credential|x-amz-security-token|signature|sig|se|sp|sv|token|access_token|refresh_token|password|_state|x-goog-signature|x-goog-credential|expires|key-pair-id|policy)$/i;

export const REDACTED = '***';

export function redactHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    const val = Array.isArray(v) ? v.join(', ') : v;
    if (SECRET_HEADERS.has(k.toLowerCase())) {
      const scheme = /^(\w+)\s/.exec(val)?.[1];
      out[k] = scheme ? `${scheme} ${REDACTED}` : REDACTED;
    } else out[k] = val;
  }
  return out;
}

export function redactUrl(u: string | URL): string {
  let url: URL;
  try {
    url = new URL(u.toString());
  } catch {
    return String(u).replace(/\/\/[^/@\s]*@/, `//${REDACTED}@`);
  }
  if (url.username || url.password) {
    url.username = REDACTED;
    url.password = '';
  }
  for (const k of [...url.searchParams.keys()]) {
    if (SECRET_QUERY.test(k)) url.searchParams.set(k, REDACTED);
  }
  return url.toString();
}

/** Removes anything that looks like a credential from free text (error bodies, helper output). */
export function redactText(s: string, secrets: readonly string[] = []): string {
  let out = s;
  for (const secret of secrets) if (secret && secret.length >= 4) out = out.split(secret).join(REDACTED);
  return out
    .replace(/(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, `$1 ${REDACTED}`)
    .replace(/("(?:token|access_token|refresh_token|password|secret|identitytoken|registrytoken|auth)"\s*:\s*")(?:[^"\\]|\\.)*"/gi, `$1${REDACTED}"`);
}
