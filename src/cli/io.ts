/** The process surface the CLI touches, injectable so tests can run it in-process. */
export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stdin: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
  /** Set by a command whose data goes to stdout (an archive streamed with `-o -`): stdout then
   * carries nothing else, not even a `--json` error document. */
  stdoutIsData?: boolean;
}

export function processIO(): CliIO {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}
