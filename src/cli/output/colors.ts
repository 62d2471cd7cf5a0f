import { Chalk, type ChalkInstance } from 'chalk';

/**
 * Colour only when the stream is a terminal, honouring NO_COLOR (any non-empty value disables,
 * https://no-color.org) and FORCE_COLOR (0–3) over TTY detection.
 */
export function colorsFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): ChalkInstance {
  return new Chalk({ level: colorLevel(stream, env) });
}

export function colorLevel(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): 0 | 1 | 2 | 3 {
  if (env['NO_COLOR']) return 0;
  const force = env['FORCE_COLOR'];
  if (force !== undefined && force !== '') {
    if (force === 'false' || force === '0') return 0;
    const n = Number(force);
    return (Number.isInteger(n) && n >= 1 && n <= 3 ? n : 1) as 1 | 2 | 3;
  }
  if (!stream.isTTY || env['TERM'] === 'dumb') return 0;
  return /-256(color)?$/i.test(env['TERM'] ?? '') || env['COLORTERM'] ? 2 : 1;
}
