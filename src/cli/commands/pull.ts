import { type Command, Option } from 'commander';
import { pull, type PullResult } from '../../ops/pull.js';
import { formatPlatform } from '../../oci/platform.js';
import { formatBytes, formatDuration } from '../../util/format.js';
import type { CliIO } from '../io.js';
import { parseJobs, parsePlatformOption } from '../options.js';
import { runtimeFor } from '../runtime.js';

export function pullCommand(program: Command, io: CliIO, signal: AbortSignal): void {
  program
    .command('pull')
    .description('download an image from a registry into a local OCI layout')
    .argument('<reference>', 'image reference, e.g. ubuntu:24.04 or host:5000/ns/app@sha256:…')
    .argument('<destination>', 'oci:DIR[:tag] (the tag defaults to the reference\'s tag)')
    .addOption(new Option('--platform <os/arch[/variant]>', 'platform to pick from a multi-platform image (default: this machine\'s)').argParser(parsePlatformOption))
    .option('--all-platforms', 'keep the whole index with every platform')
    .addOption(new Option('-j, --jobs <n>', 'blobs downloaded in parallel').default(4).argParser(parseJobs))
    .addHelpText('after', `
Examples:
  ferry pull alpine:3.20 oci:./images:alpine
  ferry pull --platform linux/arm64 ghcr.io/org/app:1.2 oci:/scratch/layouts/app
  ferry pull --all-platforms --json quay.io/org/tool:v2 oci:./tool > result.json`)
    .action(async (reference: string, destination: string, opts: { platform?: ReturnType<typeof parsePlatformOption>; allPlatforms?: boolean; jobs: number }, cmd: Command) => {
      const rt = await runtimeFor(cmd, io, signal);
      const status = rt.status('pull');
      let ok = false;
      try {
        const r = await pull(reference, destination, {
          ...(opts.platform ? { platform: opts.platform } : {}),
          ...(opts.allPlatforms ? { allPlatforms: true } : {}),
          jobs: opts.jobs, onEvent: status.onEvent,
        }, rt.ctx);
        ok = true;
        status.stop(true);
        if (rt.g.json) return rt.outJson(pullJson(r));
        if (!rt.g.quiet) rt.out(pullSummary(r));
      } finally {
        if (!ok) status.stop(false);
      }
    });
}

export function pullJson(r: PullResult) {
  return {
    source: r.source,
    destination: r.destination,
    digest: r.root.digest,
    mediaType: r.root.mediaType,
    sourceDigest: r.sourceRoot.digest,
    ...(r.platform ? { platform: formatPlatform(r.platform) } : {}),
    manifests: r.manifests,
    blobs: r.blobs,
    seconds: Number((r.ms / 1000).toFixed(3)),
    bytesPerSecond: Math.round(r.blobs.transferredBytes / Math.max(r.ms / 1000, 0.001)),
  };
}

export function pullSummary(r: PullResult): string {
  const rate = r.blobs.transferredBytes / Math.max(r.ms / 1000, 0.001);
  return `pulled ${r.source} → ${r.destination}\n  digest ${r.root.digest}${r.platform ? ` (${formatPlatform(r.platform)})` : ''}\n  ${r.blobs.total} blobs, ${formatBytes(r.blobs.bytes)} (${r.blobs.skipped} already present) in ${formatDuration(r.ms)}, ${formatBytes(rate)}/s`;
}
