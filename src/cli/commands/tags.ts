import type { Command } from 'commander';
import { tags } from '../../ops/tags.js';
import type { CliIO } from '../io.js';
import { document } from '../output/json.js';
import { runtimeFor } from '../runtime.js';

export function tagsCommand(program: Command, io: CliIO, signal: AbortSignal): void {
  program
    .command('tags')
    .alias('ls')
    .description('list the tags of a repository (all pages) or of an OCI layout')
    .argument('<repository>', 'repository (ubuntu, ghcr.io/org/app, localhost:5000/ns/app) or oci:DIR')
    .addHelpText('after', `
Examples:
  ferry tags alpine
  ferry tags --json ghcr.io/org/app | jq -r '.tags[]'
  ferry tags oci:./images`)
    .action(async (repository: string, _opts: unknown, cmd: Command) => {
      const rt = await runtimeFor(cmd, io, signal);
      try {
        const r = await tags(repository, rt.ctx);
        if (rt.g.json) return rt.outJson(document('tags', { source: r.repository, tags: r.tags }));
        if (r.tags.length) rt.out(r.tags.join('\n'));
        else rt.info(`${r.repository}: no tags`);
      } finally {
        rt.reportRateLimits();
      }
    });
}
