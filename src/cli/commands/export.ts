import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { exportImage, type ExportResult } from '../../ops/export.js';
import { formatBytes } from '../../util/format.js';
import type { CliIO } from '../io.js';
import { parseJobs, parsePlatformOption } from '../options.js';
import { document } from '../output/json.js';
import { runtimeFor } from '../runtime.js';

export function exportCommand(program: Command, io: CliIO, signal: AbortSignal): void {
  program
    .command('export')
    .description('write an image\'s flattened root filesystem (its layers applied in order, whiteouts removed): a new directory, a tar (.tar, .tar.gz, - for stdout) or a SquashFS image (.sqfs)')
    .argument('<source>', 'image to export: a registry reference, oci:DIR[:tag], oci-archive:FILE, docker-archive:FILE')
    .requiredOption('-o, --output <path>', 'DIR (must not exist, or be empty), FILE.tar, FILE.tar.gz, - (a tar on stdout) or FILE.sqfs (needs mksquashfs or tar2sqfs); it appears only when complete')
    .option('--platform <os/arch[/variant]>', 'platform to pick from a multi-platform image (default: this machine\'s)', parsePlatformOption)
    .option('-j, --jobs <n>', 'layers fetched ahead in parallel (default: 4)', parseJobs)
    .addHelpText('after', `
Layers are applied with the OCI rules: .wh.NAME removes NAME from lower layers, .wh..wh..opq empties
its directory of lower content; hard links, symlinks and long names are kept. Every path stays
inside the directory: an absolute name, a ".." component or a symlink that leads outside is
refused, naming the layer and the entry. As root, owners, modes and device nodes are kept; as
another user the files are yours, setuid/setgid bits are dropped and device nodes are skipped
(one warning with the count; FIFOs are made).

A tar lists every directory before its contents and a hard link after its target.

Examples:
  ferry export alpine:3.20 -o alpine-root
  ch-run ./alpine-root -- cat /etc/os-release
  ferry export ghcr.io/org/app:1.2 -o app.sqfs && ch-run app.sqfs -- app --version
  ferry export oci:./images:app -o - | tar -t | head`)
    .action(async (source: string, opts: { output: string; platform?: ReturnType<typeof parsePlatformOption>; jobs?: number }, cmd: Command) => {
      const rt = await runtimeFor(cmd, io, signal);
      const r = await exportImage(source, opts.output, {
        ...(opts.platform ? { platform: opts.platform } : {}), ...(opts.jobs ? { jobs: opts.jobs } : {}), stdout: io.stdout as unknown as Writable,
      }, rt.ctx);
      if (r.output === '-') return; // the tar is the output
      if (rt.g.json) return rt.outJson(exportJson(r));
      rt.out(renderExport(r));
    });
}

export function exportJson(r: ExportResult) {
  return document('export', {
    source: r.source, format: r.format, digest: r.digest, destination: r.output, layers: r.layers,
    files: r.files, directories: r.directories, symlinks: r.symlinks, hardlinks: r.hardlinks, special: r.special, bytes: r.bytes, whiteouts: r.whiteouts, skipped: r.skipped,
  });
}

function renderExport(r: ExportResult): string {
  const skipped = Object.entries(r.skipped).map(([k, n]) => `${n} ${k}${n === 1 ? '' : 's'}`);
  return `Exported ${r.source} (${r.digest}, ${r.layers} layer${r.layers === 1 ? '' : 's'}) to ${r.output}${r.format === 'directory' ? '' : ` (${r.format})`}: ${r.files} files (${formatBytes(r.bytes)}), ${r.directories} directories, ${r.symlinks} symlinks, ${r.hardlinks} hard links${r.special ? `, ${r.special} device nodes and FIFOs` : ''}${skipped.length ? `; skipped ${skipped.join(', ')}` : ''}`;
}
