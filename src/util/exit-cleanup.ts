import { rmSync } from 'node:fs';

const paths = new Set<string>();
let installed = false;

/**
 * Temp output of unfinished work (an archive's temp file, a spool or staging directory), removed
 * if the process exits before its owner's close() ran: the CLI's second SIGINT calls
 * process.exit, which skips every finally. `add` when the path is created, `delete` once it was
 * renamed into place or removed. The one exit hook for all of them.
 */
export const exitCleanup = {
  add(path: string): void {
    paths.add(path);
    if (installed) return;
    installed = true;
    process.on('exit', () => {
      for (const p of paths) {
        try {
          rmSync(p, { recursive: true, force: true });
        } catch {
          // best effort at exit
        }
      }
    });
  },
  delete(path: string): void {
    paths.delete(path);
  },
};
