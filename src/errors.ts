/**
 * FerryError: the one error type ferry throws on purpose. Every failure a user can cause or meet
 * carries a stable `code` (E_*), which the CLI maps to an exit status and which scripts may match.
 * Guards test `code`, never `instanceof` (errors may cross module copies).
 */
export type ErrorCode =
  | 'E_USAGE' // bad flags / arguments
  | 'E_BAD_REFERENCE' // unparsable image reference or location
  | 'E_BAD_CONFIG' // malformed docker/podman config, bad credential helper output
  | 'E_BAD_MANIFEST' // manifest/index/config that does not parse or is not a known type
  | 'E_BAD_ARCHIVE' // local archive / layout that is malformed
  | 'E_UNAUTHORIZED' // credentials missing or rejected (401)
  | 'E_DENIED' // authenticated but not allowed (403, insufficient scope)
  | 'E_NOT_FOUND' // the registry has no such repository, tag, manifest or blob (or platform in an index)
  | 'E_LOCAL_NOT_FOUND' // a local layout or archive does not hold the image named (tag, @N)
  | 'E_NO_SUCH_FILE' // a local path does not exist (input file, layout directory, output directory)
  | 'E_RATE_LIMITED' // 429 after retries
  | 'E_NETWORK' // connection refused/reset/timeouts, DNS
  | 'E_TLS' // certificate problems, http-vs-https mismatch
  | 'E_REGISTRY' // other registry-side failure (5xx after retries, unexpected status)
  | 'E_DIGEST_MISMATCH' // content hash differs from the descriptor
  | 'E_SIZE_MISMATCH' // content length differs from the descriptor or exceeds a cap
  | 'E_UNSUPPORTED' // registry or format does not support the operation
  | 'E_BLOCKED' // registries.conf marks the registry blocked
  | 'E_NO_SPACE' // not enough disk space
  | 'E_IO' // local filesystem failure
  | 'E_INTERRUPTED' // SIGINT/SIGTERM or aborted
  | 'E_INTERNAL'; // a bug in ferry

/**
 * Exit statuses, one per class. Documented in README ("Output and exit status") and `ferry
 * --help`. 4 (notFound) is only ever the registry's answer; local files never give 4: a path
 * that does not exist or cannot be read/written is 8, a local layout or archive that is malformed
 * or does not hold the image named is 2.
 */
export const EXIT = {
  ok: 0,
  other: 1,
  usage: 2,
  auth: 3,
  notFound: 4,
  network: 5,
  verification: 6,
  unsupported: 7,
  localIo: 8,
  blocked: 9,
  interrupted: 130,
} as const;

const EXIT_BY_CODE: Record<ErrorCode, number> = {
  E_USAGE: EXIT.usage,
  E_BAD_REFERENCE: EXIT.usage,
  E_BAD_CONFIG: EXIT.usage,
  E_BAD_MANIFEST: EXIT.verification,
  E_BAD_ARCHIVE: EXIT.usage,
  E_UNAUTHORIZED: EXIT.auth,
  E_DENIED: EXIT.auth,
  E_NOT_FOUND: EXIT.notFound,
  E_LOCAL_NOT_FOUND: EXIT.usage,
  E_NO_SUCH_FILE: EXIT.localIo,
  E_RATE_LIMITED: EXIT.network,
  E_NETWORK: EXIT.network,
  E_TLS: EXIT.network,
  E_REGISTRY: EXIT.network,
  E_DIGEST_MISMATCH: EXIT.verification,
  E_SIZE_MISMATCH: EXIT.verification,
  E_UNSUPPORTED: EXIT.unsupported,
  E_BLOCKED: EXIT.blocked,
  E_NO_SPACE: EXIT.localIo,
  E_IO: EXIT.localIo,
  E_INTERRUPTED: EXIT.interrupted,
  E_INTERNAL: EXIT.other,
};

export interface FerryErrorOptions {
  hint?: string;
  cause?: unknown;
  /** HTTP status that produced this error, when it came from a registry. */
  status?: number;
  /** Parsed distribution-spec error codes from the response body (e.g. MANIFEST_UNKNOWN). */
  registryCodes?: string[];
  /** Redacted URL of the failing request. */
  url?: string;
}

export class FerryError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly status: number | undefined;
  readonly registryCodes: string[];
  readonly url: string | undefined;

  constructor(code: ErrorCode, message: string, opts: FerryErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'FerryError';
    this.code = code;
    this.hint = opts.hint;
    this.status = opts.status;
    this.registryCodes = opts.registryCodes ?? [];
    this.url = opts.url;
  }

  get exitCode(): number {
    return EXIT_BY_CODE[this.code];
  }
}

export function isFerryError(e: unknown): e is FerryError {
  return typeof e === 'object' && e !== null && (e as { name?: unknown }).name === 'FerryError' &&
    typeof (e as { code?: unknown }).code === 'string';
}

export function hasCode(e: unknown, ...codes: ErrorCode[]): e is FerryError {
  return isFerryError(e) && codes.includes(e.code);
}

export function exitCodeFor(code: ErrorCode): number {
  return EXIT_BY_CODE[code];
}

/** True for an AbortError raised by an AbortSignal (Node or undici flavour). */
export function isAbortError(e: unknown): boolean {
  const n = (e as { name?: unknown } | null)?.name;
  return n === 'AbortError' || (e as { code?: unknown } | null)?.code === 'ABORT_ERR';
}
