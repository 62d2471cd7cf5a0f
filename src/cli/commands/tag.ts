import type { Command } from 'commander';
import { deleteImage, tag } from '../../ops/tag.js';
import type { CliIO } from '../io.js';
import { document } from '../output/json.js';
import { runtimeFor } from '../runtime.js';

export function tagCommands(program: Command, io: CliIO, signal: AbortSignal): void {
  program
    .command('tag')
    .description('add tags to a registry image (manifest put only: no blob traffic)')
    .argument('<reference>', 'existing image, e.g. host:5000/ns/app:1.0 or …@sha256:…')
    .argument('<tags...>', 'new tags in the same repository')
    .addHelpText('after', `
Examples:
  ferry tag registry.example/team/app:1.0.3 1.0 1 latest`)
    .action(async (reference: string, tags: string[], _o: unknown, cmd: Command) => {
      const rt = await runtimeFor(cmd, io, signal);
      const r = await tag(reference, tags, rt.ctx);
      if (rt.g.json) return rt.outJson(document('tag', { source: r.source, digest: r.digest, mediaType: r.mediaType, tags: r.tags }));
      rt.out(`tagged ${r.source} (${r.digest}) as ${r.tags.join(', ')}`);
    });

  program
    .command('delete')
    .alias('rm')
    .description('delete an image manifest from a registry (by digest; a tag is resolved first)')
    .argument('<reference>', 'image to delete, e.g. host:5000/ns/app:old or …@sha256:…')
    .addHelpText('after', `
Deleting by tag deletes the manifest it points to: every other tag on that manifest goes too.

Examples:
  ferry delete registry.example/team/app@sha256:…
  ferry delete registry.example/team/app:pr-123`)
    .action(async (reference: string, _o: unknown, cmd: Command) => {
      const rt = await runtimeFor(cmd, io, signal);
      const r = await deleteImage(reference, rt.ctx);
      if (rt.g.json) return rt.outJson(document('delete', { source: r.reference, digest: r.digest, resolvedFromTag: r.resolvedFromTag }));
      rt.out(`deleted ${r.digest}`);
      if (r.resolvedFromTag) rt.info(`note: ${r.reference} resolved to ${r.digest}; every tag on that manifest was removed with it`);
    });
}
