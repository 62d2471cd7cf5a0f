/**
 * Durations and sizes as users type them on the command line (`ferry cache prune --older-than
 * 7d --keep-size 10GiB`).
 *
 * - Durations: one or more `<number><unit>` parts, Go style (`1h30m`), units `s`, `m`, `h`, `d`
 *   (24 h), `w` (7 d); decimals allowed (`1.5h`). A bare number is refused: minutes or seconds?
 * - Sizes: `<number>[unit]`, case-insensitive, a bare number is bytes; `k`, `m`, `g`, `t`, `p`,
 *   each optionally followed by `b` or `ib`, are all powers of 1024, as docker's own size flags
 *   read them (`docker builder prune --keep-storage`, `--memory`: go-units RAMInBytes), so `500MB`
 *   and `500MiB` are the same 524288000 bytes; `B` alone is bytes.
 * Both throw FerryError E_USAGE naming the flag and the input.
 */
import { FerryError } from '../errors.js';

const DURATION_UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Milliseconds in `input` (`7d`, `12h`, `30m`, `3600s`, `1h30m`). */
export function parseDuration(input: string, flag = 'duration'): number {
  const s = input.trim().toLowerCase();
  const part = /(\d+(?:\.\d+)?|\.\d+)([a-z]+)/gy;
  let ms = 0;
  let end = 0;
  let parts = 0;
  for (let m = part.exec(s); m; m = part.exec(s)) {
    const unit = DURATION_UNITS[m[2]!];
    if (unit === undefined) throw badDuration(input, flag, `unknown unit "${m[2]}"`);
    ms += Number(m[1]) * unit;
    end = part.lastIndex;
    parts++;
  }
  if (!parts || end !== s.length) {
    throw badDuration(input, flag, /^\d+(\.\d+)?$/.test(s) ? 'a number needs a unit' : 'not a duration');
  }
  return Math.round(ms);
}

function badDuration(input: string, flag: string, why: string): FerryError {
  return new FerryError('E_USAGE', `${flag} "${input}": ${why}`, { hint: 'a duration is a number and a unit: 30m, 12h, 7d, 2w, 3600s, 1h30m' });
}

const SIZE_POWERS: Record<string, number> = { '': 0, k: 1, m: 2, g: 3, t: 4, p: 5 };

/** Bytes in `input` (`10GiB`, `500MB`, `1.5G`, `4096`); binary units, see the file comment. */
export function parseSize(input: string, flag = 'size'): number {
  const m = /^(\d+(?:\.\d+)?|\.\d+) ?([kmgtp]?)(i?b)?$/i.exec(input.trim());
  if (!m || (m[3] && /^ib$/i.test(m[3]) && !m[2])) {
    throw new FerryError('E_USAGE', `${flag} "${input}": not a size`, { hint: 'a size is a number and an optional unit: 500MB, 10GiB, 1.5G, 4096 (bytes); K, M, G, T are powers of 1024, as in docker' });
  }
  const bytes = Number(m[1]) * 1024 ** SIZE_POWERS[m[2]!.toLowerCase()]!;
  if (!Number.isSafeInteger(Math.floor(bytes))) throw new FerryError('E_USAGE', `${flag} "${input}": too large`);
  return Math.floor(bytes);
}
