/**
 * Resuming a chunked upload in its own session (protocol.md §1.4 "upload status"): which failures
 * are worth asking the registry where it stands, where to continue from its answer, and when to
 * stop. Pure bookkeeping; the requests are in upload.ts / upload-session.ts.
 *
 * Contracts:
 * - Resumable: a network error the retry middleware gave up on (reset, timeout, cut body), a
 *   408/429/5xx it returned, a 416, and a "stale session" answer to a request the retry middleware
 *   had re-sent (the first attempt may have been applied and its answer lost). Anything else (4xx,
 *   the source's own E_SIZE_MISMATCH, an abort, TLS) is not.
 * - The offset comes from the registry's `Range: 0-<end>` but is never past what ferry handed to
 *   the network (`sent`): more is a corrupted session (a new one is started). `0-0` is 0 or 1
 *   byte (distribution says it for both): ferry first resends from 0 (always safe: a registry
 *   holding 1 byte refuses it with 416) and only the next `0-0` is read as 1. No `Range` is 0.
 * - Bounded: at most MAX_STALLED_RESUMES resumes in a row that do not get past the previous one's
 *   offset, and MAX_RESUMES in all, per session; then the original failure is reported, as one
 *   line with its own code, saying where the upload stopped.
 */
import { FerryError, isFerryError } from '../errors.js';
import { isRetryableNetworkError } from '../http/network-errors.js';
import { RETRY_STATUSES } from '../http/retry.js';

/** Resumes in a row without progress (each one comes after the retry middleware gave up). */
export const MAX_STALLED_RESUMES = 3;
/** Resumes in all within one upload session. */
export const MAX_RESUMES = 16;

/** A status after which the registry is asked for its offset (the retry middleware's own set, and 416). */
export function isResumableStatus(status: number): boolean {
  return status === 416 || RETRY_STATUSES.has(status);
}

/** A thrown request error worth a resume: a retryable network failure, not an abort. */
export function resumableError(e: unknown, signal: AbortSignal | undefined): FerryError | undefined {
  if (signal?.aborted || !isRetryableNetworkError(e)) return undefined;
  if (isFerryError(e)) return e;
  return new FerryError('E_NETWORK', `network error: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

export type ResumePoint = { at: number } | { corrupt: number };

export class ResumeState {
  /** Highest absolute position handed to the network in this session (any attempt). */
  sent = 0;
  private lastAt = -1;
  private stalled = 0;
  private total = 0;
  private zeroTried = false;

  constructor(private readonly size: number) {}

  /** Progress callback position (absolute): raises `sent`. */
  noteSent(position: number): void {
    if (position > this.sent) this.sent = position;
  }

  /** Where to continue given the status answer's inclusive Range end (undefined: no Range header). */
  point(end: number | undefined): ResumePoint {
    if (end === undefined) return { at: 0 };
    if (end === 0) {
      if (this.sent === 0) return { at: 0 };
      if (!this.zeroTried) {
        this.zeroTried = true;
        return { at: 0 };
      }
      this.zeroTried = false;
      return { at: 1 };
    }
    const at = end + 1;
    if (at > this.sent || at > this.size) return { corrupt: at };
    return { at };
  }

  /** Counts a resume at `at`; false when the budget is spent. */
  admit(at: number): boolean {
    this.total++;
    this.stalled = at > this.lastAt ? 0 : this.stalled + 1;
    this.lastAt = at;
    return this.stalled < MAX_STALLED_RESUMES && this.total <= MAX_RESUMES;
  }

  /** The original failure, saying where the upload stopped and why it was not resumed further. */
  gaveUp(subject: string, err: FerryError, at: number, why: string): FerryError {
    const msg = err.message.startsWith(subject) ? err.message : `${subject}: ${err.message}`;
    return new FerryError(err.code, `${msg} (upload stopped at byte ${at} of ${this.size}: ${why})`, {
      cause: err, ...(err.status ? { status: err.status } : {}), registryCodes: err.registryCodes, ...(err.url ? { url: err.url } : {}),
      hint: err.hint ?? 'the registry kept failing at the same point of the upload; try again later',
    });
  }

  get resumes(): number {
    return this.total;
  }
}
