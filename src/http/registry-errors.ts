import { FerryError, type ErrorCode } from '../errors.js';
import { parseRetryAfter } from '../util/backoff.js';
import { readTruncated } from '../util/bounded.js';
import { profileFor } from '../ref/registry-profiles.js';
import { redactText, redactUrl } from '../util/redact.js';
import type { HttpResponse } from './types.js';

/** Largest error body ferry reads (bodies of failed requests can be arbitrary HTML). */
export const MAX_ERROR_BODY = 64 * 1024;

export interface RegistryErrorDetail {
  code: string;
  message?: string;
  detail?: unknown;
}

/** Parses a distribution-spec error body `{"errors":[{code,message,detail}]}`; tolerant of junk. */
export function parseErrorBody(text: string): RegistryErrorDetail[] {
  try {
    const v = JSON.parse(text) as { errors?: unknown; details?: unknown };
    if (Array.isArray(v.errors)) {
      return v.errors
        .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
        .map((e) => ({ code: String(e['code'] ?? 'UNKNOWN').toUpperCase(), message: e['message'] === undefined ? undefined : String(e['message']), detail: e['detail'] }));
    }
  } catch {
    /* not JSON */
  }
  return [];
}

export interface ErrorContext {
  /** What was being done, e.g. `fetching manifest` */
  action: string;
  /** The user-facing subject, e.g. `localhost:5000/app:v1` */
  subject: string;
  /** Whether the request carried credentials (changes the 401 wording). */
  hadCredentials?: boolean;
  /** Where the credentials came from, or what was looked up when none matched (never a secret). */
  credentialSource?: string;
  /** Map 404 with these registry codes to a specific message. */
  notFound?: string;
  /** Extra hint for 404s, e.g. "list tags with ferry tags <repo>". */
  notFoundHint?: string;
  secrets?: readonly string[];
  /**
   * For a 429 on a rate-limited request (a manifest): the budget and when it returns, and what to
   * do, worded by registry/rate-limit.ts from the response's headers (http/ cannot import it).
   */
  rateLimit?: { detail: string; hint: string };
}

/** The registry to name in a `ferry login` hint: the API host (Docker Hub's is docker.io). */
function loginHost(url: string | URL): string {
  let host: string;
  try {
    host = new URL(String(url)).host;
  } catch {
    return 'REGISTRY';
  }
  return host === 'registry-1.docker.io' || host === 'index.docker.io' ? 'docker.io' : host;
}

/** `; ferry looked for …` when the resolver said what it looked up and found nothing. */
function lookedUp(source: string | undefined): string {
  const m = /^anonymous \((.*)\)$/.exec(source ?? '');
  return m ? `; ${m[1]}` : '';
}

/** Reads (a bounded part of) a failed response and turns it into a FerryError. */
export async function errorFromResponse(res: HttpResponse, ctx: ErrorContext): Promise<FerryError> {
  const text = redactText(await readTruncated(res.body, MAX_ERROR_BODY), ctx.secrets);
  const details = parseErrorBody(text);
  const codes = details.map((d) => d.code);
  const first = details[0];
  const why = first ? `${first.code}${first.message ? `: ${first.message}` : ''}` : text.trim().split('\n')[0]?.slice(0, 200) || `HTTP ${res.status}`;
  const opts = { status: res.status, registryCodes: codes, url: redactUrl(res.url) };
  const fail = (code: ErrorCode, message: string, hint?: string) => new FerryError(code, `${ctx.subject}: ${message}`, { ...opts, ...(hint ? { hint } : {}) });
  // Distribution's token auth answers a valid user who lacks a permission with 401 +
  // error="insufficient_scope" (no 403): that is "denied", not "wrong password".
  const insufficientScope = res.status === 401 && /error="?insufficient_scope/i.test(String(res.headers['www-authenticate'] ?? ''));
  switch (res.status) {
    case 401:
      if (insufficientScope && ctx.hadCredentials) {
        return fail('E_DENIED', `access denied while ${ctx.action} (${why})`, 'the credentials are valid but lack permission for this repository');
      }
    {
      // The registry's own convention (NGC's $oauthtoken, ECR's AWS + get-login-password, …).
      const how = profileFor(loginHost(res.url))?.loginHint;
      return ctx.hadCredentials
        ? fail('E_UNAUTHORIZED', `credentials rejected while ${ctx.action} (${why})`, `check the username and password/token (--creds, ferry login ${loginHost(res.url)}, or your credential helper)${ctx.credentialSource ? `; they came from ${ctx.credentialSource}` : ''}${how ? `; ${how}` : ''}`)
        : fail('E_UNAUTHORIZED', `authentication required while ${ctx.action} (${why})`, `${how ? `${how}; or ` : ''}pass --creds user:pass or --username/--password-stdin (--src-creds/--dest-creds for one side of a copy), or log in with ferry login ${loginHost(res.url)}${lookedUp(ctx.credentialSource)}`);
    }
    case 403:
      return fail('E_DENIED', `access denied while ${ctx.action} (${why})`, 'the credentials are valid but lack permission for this repository');
    case 404:
      if (codes.includes('NAME_UNKNOWN')) return fail('E_NOT_FOUND', `repository not found (${why})`, 'check the repository name; private repositories may also answer "not found" without credentials');
      return fail('E_NOT_FOUND', `${ctx.notFound ?? 'not found'} (${why})`, ctx.notFoundHint);
    case 429: {
      if (ctx.rateLimit) {
        // Docker Hub's message goes on with an upgrade link; its first sentence is the reason.
        const reason = first ? `${first.code}${first.message ? `: ${first.message.split(/\.\s/)[0]!.replace(/\.$/, '')}` : ''}` : why;
        return fail('E_RATE_LIMITED', `rate limit reached while ${ctx.action} (${reason}): ${ctx.rateLimit.detail}`, ctx.rateLimit.hint);
      }
      const after = parseRetryAfter(res.header('retry-after'));
      return fail('E_RATE_LIMITED', `rate limited while ${ctx.action} (${why})${after !== undefined ? `; retry after ${Math.ceil(after / 1000)}s` : ''}`, 'authenticate to raise the limit, or use a mirror');
    }
    case 405:
      return fail('E_UNSUPPORTED', `the registry does not support ${ctx.action} (${why})`);
    default:
      if (codes.includes('UNSUPPORTED')) return fail('E_UNSUPPORTED', `the registry does not support ${ctx.action} (${why})`);
      return fail('E_REGISTRY', `${ctx.action} failed: HTTP ${res.status} (${why})`);
  }
}
