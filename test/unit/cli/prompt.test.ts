import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { promptLine } from '../../../src/cli/prompt.js';
import type { CliIO } from '../../../src/cli/io.js';

/** A terminal stand-in that records, in order, raw-mode switches and what is written. */
function fakeTerminal() {
  const events: string[] = [];
  const stdin = Object.assign(new PassThrough(), {
    isTTY: true,
    isRaw: false,
    setRawMode(on: boolean) {
      events.push(`raw ${on}`);
      stdin.isRaw = on;
      return stdin;
    },
  });
  const stderr = Object.assign(new PassThrough(), { isTTY: true });
  stderr.on('data', (c: Buffer) => events.push(`write ${JSON.stringify(c.toString())}`));
  const io = { stdin, stderr, stdout: new PassThrough(), env: {} } as unknown as CliIO;
  return { io, stdin, events };
}

describe('promptLine', () => {
  it('regression: raw mode is on before the prompt shows, so a Ctrl-C typed at the prompt is read as a key, not turned into a SIGINT by the terminal', async () => {
    const { io, stdin, events } = fakeTerminal();
    const p = promptLine(io, 'Password: ', { echo: false });
    await new Promise((r) => setImmediate(r));
    expect(events.slice(0, 2)).toEqual(['raw true', 'write "Password: "']);
    stdin.write('abc\u0003');
    await expect(p).rejects.toMatchObject({ code: 'E_INTERRUPTED' });
    expect(stdin.isRaw).toBe(false);
    expect(events.join(' ')).not.toContain('abc');
  });

  it('regression: the run being aborted (SIGINT/SIGTERM reached ferry) ends the prompt with E_INTERRUPTED and restores the terminal, instead of waiting for a key forever', async () => {
    const { io, stdin } = fakeTerminal();
    const ac = new AbortController();
    const p = promptLine(io, 'Password: ', { echo: false, signal: ac.signal });
    await new Promise((r) => setImmediate(r));
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'E_INTERRUPTED' });
    expect(stdin.isRaw).toBe(false);
    expect(stdin.listenerCount('data')).toBe(0);
  });

  it('Enter ends the line; without echo nothing is written back', async () => {
    const { io, stdin, events } = fakeTerminal();
    const p = promptLine(io, 'Password: ', { echo: false });
    stdin.write('s3cret\r');
    await expect(p).resolves.toBe('s3cret');
    expect(events.join(' ')).not.toContain('s3cret');
  });
});
