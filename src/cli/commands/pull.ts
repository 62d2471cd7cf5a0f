import { type Command, Option } from 'commander';
import { FerryError } from '../../errors.js';
import { jsonWithStdoutError } from '../../transports/archive-destination.js';
import { outputLocation, pull, type OutputFormat, type PullResult } from '../../ops/pull.js';
import { formatPlatform } from '../../oci/platform.js';
import { writesToStdout } from '../../transports/fs-util.js';
import { formatBytes, formatDuration } from '../../util/format.js';
import type { CliIO } from '../io.js';
import { BlobTally, imageJson, transferJson } from '../output/json.js';
import { parseJobs, parsePlatformOption } from '../options.js';
import { runtimeFor } from '../runtime.js';

interface PullFlags {
  platform?: ReturnType<typeof parsePlatformOption>;
  allPlatforms?: boolean;
  jobs: number;
  output?: string;
  format?: OutputFormat;
  clobber?: boolean;
}

export function pullCommand(program: Command, io: CliIO, signal: AbortSignal): void {
  program
    .command('pull')
    .description('download images from a registry into a local archive or OCI layout')
    .argument('<args...>', 'REF… DESTINATION, or REF… with -o FILE')
    .option('-o, --output <path>', 'write to this file or directory (format from --format; default for .tar: docker-archive, else oci); - for stdout')
    .addOption(new Option('--format <format>', 'output format for -o').choices(['docker-archive', 'oci-archive', 'oci']))
    .addOption(new Option('--platform <os/arch[/variant]>', 'platform to pick from a multi-platform image (default: this machine\'s)').argParser(parsePlatformOption))
    .option('--all-platforms', 'keep the whole index with every platform (oci and oci-archive)')
    .addOption(new Option('-j, --jobs <n>', 'blobs downloaded in parallel').default(4).argParser(parseJobs))
    .option('--no-clobber', 'refuse to replace an existing archive file (default: replace it, as docker save does)')
    .addHelpText('after', `
Destinations:
  oci:DIR[:tag]                   an OCI image layout directory
  oci-archive:FILE[:tag]          a tar of an OCI layout
  docker-archive:FILE[:name:tag]  what docker load, podman load, skopeo and Apptainer read

Examples:
  ferry pull alpine:3.20 -o alpine.tar                      # docker-archive
  ferry pull ubuntu:24.04 python:3.12 -o base-images.tar     # several images, shared layers once
  ferry pull --all-platforms ghcr.io/org/app:1.2 oci-archive:app.tar
  ferry pull --platform linux/arm64 quay.io/org/tool:v2 oci:./layouts/tool
  ferry pull --json alpine:3.20 -o alpine.tar > result.json  # machine-readable summary
  ferry pull alpine:3.20 -o - | docker load                  # stream to stdout (summary on stderr)

A pipe, FIFO or character device (-o -, /dev/stdout, a mkfifo) gets the archive streamed in
order; only a regular file is written under a temp name and renamed over the old one (through a
symlink: the file it points to is replaced, the link stays).`)
    .action(async (args: string[], opts: PullFlags, cmd: Command) => {
      const rt = await runtimeFor(cmd, io, signal);
      if (opts.format && !opts.output) throw new FerryError('E_USAGE', '--format goes with -o/--output');
      let refs = args;
      let destination: string;
      if (opts.output) destination = await outputLocation(opts.output, opts.format);
      else {
        if (args.length < 2) throw new FerryError('E_USAGE', 'pull needs a destination', { hint: 'ferry pull REF oci:DIR, or ferry pull REF -o FILE.tar' });
        destination = args[args.length - 1]!;
        refs = args.slice(0, -1);
      }
      // The archive owns stdout: the summary goes to stderr, and --json (a second document on the
      // same stream) is refused.
      const toStdout = await writesToStdout(destination);
      if (toStdout) io.stdoutIsData = true;
  if (toStdout && rt.g.json) throw jsonWithStdoutError();
      const status = rt.status('pull');
      const tally = new BlobTally();
      let ok = false;
      try {
        const r = await pull(refs, destination, {
          ...(opts.platform ? { platform: opts.platform } : {}),
          ...(opts.allPlatforms ? { allPlatforms: true } : {}),
          jobs: opts.jobs, onEvent: (e) => { tally.onEvent(e); status.onEvent(e); },
          ...(opts.clobber === false ? { noClobber: true } : {}),
        }, rt.ctx);
        ok = true;
        status.stop(true);
        if (rt.g.json) return rt.outJson(pullJson(r, tally));
        if (!rt.g.quiet) {
          if (toStdout) io.stderr.write(`${pullSummary(r)}\n`);
          else rt.out(pullSummary(r));
        }
      } finally {
        if (!ok) status.stop(false);
        rt.reportRateLimits();
      }
    });
}

/** `images` always (one entry per reference); `blobs` at the top level counts each blob once. */
export function pullJson(r: PullResult, tally?: BlobTally) {
  // `replaced` (an existing file at the destination was replaced) comes with --no-clobber.
  const replaced = (r as PullResult & { replaced?: boolean }).replaced;
  return transferJson('pull', {
    destination: r.destination,
    ...(replaced !== undefined ? { replaced } : {}),
    images: r.images.map((i) => imageJson(i)),
    blobs: r.images.length === 1 || !tally ? sumBlobs(r) : tally.counts,
    ms: r.ms,
  });
}

function sumBlobs(r: PullResult) {
  const z = { total: 0, skipped: 0, mounted: 0, transferred: 0, bytes: 0, transferredBytes: 0 };
  for (const { blobs: b } of r.images) for (const k of Object.keys(z) as Array<keyof typeof z>) z[k] += b[k];
  return z;
}

export function pullSummary(r: PullResult): string {
  const lines = r.images.map((i) => `pulled ${i.source} → ${r.destination}${i.names.refName ? ` (${i.names.refName})` : ''}\n  digest ${i.root.digest}${i.platform ? ` (${formatPlatform(i.platform)})` : ''}`);
  const total = r.images.reduce((a, i) => ({ blobs: a.blobs + i.blobs.total, bytes: a.bytes + i.blobs.bytes, skipped: a.skipped + i.blobs.skipped, moved: a.moved + i.blobs.transferredBytes }), { blobs: 0, bytes: 0, skipped: 0, moved: 0 });
  const rate = total.moved / Math.max(r.ms / 1000, 0.001);
  for (const i of r.images) if (i.servedBy) lines.push(`  ${i.source}: ${servedBySummary(i.servedBy)}`);
  if (r.replaced) lines.push(`  replaced the existing file ${r.destination.replace(/^[a-z-]+:/, '')}`);
  lines.push(`  ${total.blobs} blobs, ${formatBytes(total.bytes)} (${total.skipped} already present) in ${formatDuration(r.ms)}, ${formatBytes(rate)}/s`);
  return lines.join('\n');
}

/** `served by 127.0.0.1:5001/team/app (3), registry.example/team/app (1)`: manifests and blobs per endpoint. */
export function servedBySummary(servedBy: Record<string, string>): string {
  const n = new Map<string, number>();
  for (const e of Object.values(servedBy)) n.set(e, (n.get(e) ?? 0) + 1);
  return `served by ${[...n].map(([e, k]) => `${e} (${k})`).join(', ')} (manifests and blobs per endpoint)`;
}
