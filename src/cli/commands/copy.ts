import { type Command, Option } from 'commander';
import { jsonWithStdoutError } from '../../transports/archive-destination.js';
import { writesToStdout } from '../../transports/fs-util.js';
import { copy, push, type CopyOpResult, type CopyOptions } from '../../ops/copy.js';
import type { Platform } from '../../oci/platform.js';
import { formatBytes, formatDuration } from '../../util/format.js';
import type { CliIO } from '../io.js';
import { servedBySummary } from './pull.js';
import { imageJson, transferJson } from '../output/json.js';
import { parseJobs, parsePlatformOption, parsePositive } from '../options.js';
import { runtimeFor, type Runtime } from '../runtime.js';

interface CopyFlags {
  platform?: Platform[];
  jobs: number;
  tag?: string[];
  chunkSize?: number;
  compression: 'gzip' | 'none';
}

const collect = <T>(parse: (v: string) => T) => (v: string, prev: T[] | undefined): T[] => [...(prev ?? []), parse(v)];

function addCopyOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--platform <os/arch[/variant]>', 'copy only this platform of an index (repeat for several: a new index is written)').argParser(collect(parsePlatformOption)))
    .addOption(new Option('-j, --jobs <n>', 'blobs transferred in parallel').default(4).argParser(parseJobs))
    .addOption(new Option('-t, --tag <tag>', 'also tag the pushed root with this tag (repeatable)').argParser(collect((v: string) => v)))
    .addOption(new Option('--chunk-size <bytes>', 'upload blobs in chunks of this many bytes (default: one request per blob)').argParser(parsePositive('--chunk-size')))
    .addOption(new Option('--compression <kind>', 'registry destinations: gzip uncompressed layers, or push them as they are').choices(['gzip', 'none']).default('gzip'));
}

async function runCopy(rt: Runtime, label: 'copy' | 'push', op: typeof copy, src: string, dst: string, f: CopyFlags): Promise<void> {
  // An archive streamed to stdout owns it: no --json, the summary goes to stderr.
  const toStdout = await writesToStdout(dst);
  if (toStdout) rt.io.stdoutIsData = true;
  if (toStdout && rt.g.json) throw jsonWithStdoutError();
  const status = rt.status(label);
  let ok = false;
  const opts: CopyOptions = { jobs: f.jobs, compression: f.compression, onEvent: status.onEvent, ...(f.platform ? { platforms: f.platform } : {}), ...(f.tag ? { tags: f.tag } : {}), ...(f.chunkSize ? { chunkSize: Math.floor(f.chunkSize) } : {}) };
  try {
    const r = await op(src, dst, opts, rt.ctx);
    ok = true;
    status.stop(true);
    for (const c of r.changes) {
      rt.info(c.reason === 'platform-subset'
        ? `note: the index was rewritten to hold only the chosen platforms: ${c.from.digest} → ${c.to.digest}`
        : `note: uncompressed layers were gzip-compressed for the registry, so the manifest digest changed: ${c.from.digest} → ${c.to.digest} (use --compression none to keep it)`);
    }
    if (rt.g.json) return rt.outJson(copyJson(label, r));
    if (!rt.g.quiet) (toStdout ? rt.info : rt.out)(copySummary(label, r));
  } finally {
    if (!ok) status.stop(false);
    rt.reportRateLimits();
  }
}

export function copyJson(command: 'copy' | 'push', r: CopyOpResult) {
  return transferJson(command, { destination: r.destination, images: [imageJson(r, r.changes)], blobs: r.blobs, ms: r.ms });
}

function copySummary(label: string, r: CopyOpResult): string {
  const rate = r.blobs.transferredBytes / Math.max(r.ms / 1000, 0.001);
  return `${label === 'push' ? 'pushed' : 'copied'} ${r.source} → ${r.destination}\n  digest ${r.root.digest}\n${r.servedBy ? `  ${servedBySummary(r.servedBy)}\n` : ''}  ${r.blobs.total} blobs, ${formatBytes(r.blobs.bytes)} (${r.blobs.skipped} already there, ${r.blobs.mounted} mounted) in ${formatDuration(r.ms)}, ${formatBytes(rate)}/s`;
}

export function copyCommand(program: Command, io: CliIO, signal: AbortSignal): void {
  addCopyOptions(program
    .command('copy')
    .alias('cp')
    .description('copy an image between any two locations: registry ↔ registry, registry ↔ local, local ↔ local')
    .argument('<source>', 'REF, docker://REF, oci:DIR[:tag], oci-archive:FILE[:tag], docker-archive:FILE[:name:tag|@N], or a path')
    .argument('<destination>', 'REF, oci:DIR[:tag], oci-archive:FILE[:tag], docker-archive:FILE[:name:tag]'))
    .addHelpText('after', `
By default the whole index is copied (every platform), like crane and regctl.

Examples:
  ferry copy ghcr.io/org/app:1.2 registry.internal:5000/mirror/app:1.2
  ferry copy --platform linux/amd64 --platform linux/arm64 quay.io/org/tool:v2 myreg/tool:v2
  ferry copy docker-archive:app.tar oci:./layouts/app`)
    .action(async (src: string, dst: string, f: CopyFlags, cmd: Command) => runCopy(await runtimeFor(cmd, io, signal), 'copy', copy, src, dst, f));

  addCopyOptions(program
    .command('push')
    .description('upload a local image (OCI layout, oci-archive, docker-archive or docker save tarball) to a registry')
    .argument('<source>', 'oci:DIR[:tag], oci-archive:FILE[:tag], docker-archive:FILE[:name:tag|@N], or a bare .tar / directory path')
    .argument('<reference>', 'destination image reference, e.g. registry.example:5000/ns/app:1.0'))
    .addHelpText('after', `
Uncompressed layers (docker save) are gzip-compressed on the way, in parallel; the config's
diff-ids stay valid and the manifest's layer digests are those of the uploaded bytes.

Examples:
  ferry push app.tar registry.example:5000/team/app:1.0
  ferry push oci:./layouts/app:1.0 ghcr.io/org/app:1.0 --tag latest
  docker save app:1 | gzip > app.tgz && ferry push app.tgz myreg/app:1`)
    .action(async (src: string, dst: string, f: CopyFlags, cmd: Command) => runCopy(await runtimeFor(cmd, io, signal), 'push', push, src, dst, f));
}
