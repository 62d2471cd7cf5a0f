/**
 * Reading a line from the terminal, optionally without echo (the login password prompt).
 *
 * Contracts:
 * - Only for a TTY stdin (callers check `isTTY`). The prompt goes to stderr (stdout carries only
 *   results). Raw mode is on while reading and always restored, also on Ctrl-C / errors.
 * - Enter (CR or LF) ends the line; Backspace/DEL removes the last character; Ctrl-U clears the
 *   line; Ctrl-C is E_INTERRUPTED; Ctrl-D on an empty line or end of input is E_USAGE ("no input").
 *   With `echo: false` nothing of the input is written back, not even stars.
 * - Raw mode goes on BEFORE the prompt is shown, so nothing typed after the prompt appears reaches
 *   the terminal's cooked mode (a Ctrl-C typed then used to become a SIGINT that nothing at the
 *   prompt listened to: the prompt hung). `signal` (the run's abort: SIGINT/SIGTERM) ends the
 *   prompt with E_INTERRUPTED too.
 */
import type { ReadStream } from 'node:tty';
import { FerryError } from '../errors.js';
import type { CliIO } from './io.js';

export function promptLine(io: CliIO, question: string, opts: { echo: boolean; signal?: AbortSignal }): Promise<string> {
  const input = io.stdin as ReadStream;
  return new Promise((resolve, reject) => {
    let line = '';
    const wasRaw = input.isRaw;
    input.setRawMode?.(true);
    io.stderr.write(question);
    input.resume();
    const onAbort = (): void => done(() => reject(new FerryError('E_INTERRUPTED', 'interrupted')));
    const done = (f: () => void): void => {
      opts.signal?.removeEventListener('abort', onAbort);
      input.off('data', onData);
      input.off('end', onEnd);
      input.setRawMode?.(wasRaw ?? false);
      input.pause();
      io.stderr.write('\n');
      f();
    };
    const onEnd = (): void => done(() => reject(new FerryError('E_USAGE', 'no input on the terminal')));
    const onData = (chunk: Buffer | string): void => {
      for (const ch of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(() => resolve(line));
        if (ch === '\u0003') return done(() => reject(new FerryError('E_INTERRUPTED', 'interrupted')));
        if (ch === '\u0004') {
          if (line === '') return done(() => reject(new FerryError('E_USAGE', 'no input on the terminal')));
          continue;
        }
        if (ch === '\u007f' || ch === '\b') {
          if (line !== '') {
            line = [...line].slice(0, -1).join('');
            if (opts.echo) io.stderr.write('\b \b');
          }
          continue;
        }
        if (ch === '\u0015') {
          if (opts.echo) io.stderr.write('\b \b'.repeat([...line].length));
          line = '';
          continue;
        }
        if (ch < ' ') continue; // other control characters (escape sequences' ESC) are ignored
        line += ch;
        if (opts.echo) io.stderr.write(ch);
      }
    };
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    input.on('data', onData);
    input.on('end', onEnd);
  });
}
