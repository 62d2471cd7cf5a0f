import { type Command, Option } from 'commander';
import { inspect, type InspectResult } from '../../ops/inspect.js';
import { describeRateLimit } from '../../registry/rate-limit.js';
import { formatBytes } from '../../util/format.js';
import type { CliIO } from '../io.js';
import { document, rateLimitJson } from '../output/json.js';
import { parsePlatformOption } from '../options.js';
import { runtimeFor } from '../runtime.js';

export function inspectCommand(program: Command, io: CliIO, signal: AbortSignal): void {
  program
    .command('inspect')
    .description('show an image: digest, media type, size; platforms of an index; layers and config of an image')
    .argument('<location>', 'image reference (ubuntu:22.04, host:5000/ns/app@sha256:…) or oci:DIR[:tag]')
    .option('--raw', 'print the manifest bytes exactly as stored')
    .option('--config', 'print the image config JSON exactly as stored')
    .addOption(new Option('--platform <os/arch[/variant]>', 'pick this platform from an index').argParser(parsePlatformOption))
    .addHelpText('after', `
Examples:
  ferry inspect alpine:3.20
  ferry inspect --platform linux/arm64 ghcr.io/org/app:1.2
  ferry inspect --raw localhost:5000/app:v1 > manifest.json
  ferry inspect --json quay.io/org/app@sha256:… | jq .layers`)
    .action(async (location: string, opts: { raw?: boolean; config?: boolean; platform?: ReturnType<typeof parsePlatformOption> }, cmd: Command) => {
      const rt = await runtimeFor(cmd, io, signal);
      try {
        const r = await inspect(location, { ...(opts.platform ? { platform: opts.platform } : {}), wantConfig: !!opts.config }, rt.ctx);
        if (opts.raw) return void io.stdout.write(Buffer.from(r.rawManifest));
        if (opts.config) return void io.stdout.write(Buffer.from(r.rawConfig ?? []));
        if (rt.g.json) return rt.outJson(inspectJson(r));
        rt.out(renderInspect(r));
      } finally {
        rt.reportRateLimits();
      }
    });
}

/**
 * `source` is the location inspected; `manifests` counts the manifests it is made of (an image:
 * 1; an index: itself and its entries), and an index's entries are listed under `children`.
 */
export function inspectJson(r: InspectResult) {
  const { rawManifest: _m, rawConfig: _c, reference, manifests: children, rateLimit, ...rest } = r;
  const { digest, mediaType, size, ...details } = rest;
  return document('inspect', {
    source: reference, digest, mediaType, size,
    manifests: children ? 1 + children.length : 1,
    ...(children ? { children } : {}),
    ...details,
    ...(rateLimit ? { rateLimit: rateLimitJson(rateLimit) } : {}),
  });
}

export function renderInspect(r: InspectResult): string {
  const lines = [`Reference:  ${r.reference}`, `Digest:     ${r.digest}`, `MediaType:  ${r.mediaType}`, `Size:       ${r.size}`];
  if (r.index) lines.push(`Index:      ${r.index.digest}`);
  if (r.rateLimit) lines.push(`Rate limit: ${describeRateLimit(r.rateLimit)}`);
  if (r.manifests) {
    lines.push(`Platforms:  ${r.manifests.length}`);
    for (const m of r.manifests) lines.push(`  ${m.platform.padEnd(18)} ${m.digest}  ${formatBytes(m.size)}`);
    return lines.join('\n');
  }
  if (r.platform) lines.push(`Platform:   ${r.platform}`);
  if (r.created) lines.push(`Created:    ${r.created}`);
  if (r.entrypoint) lines.push(`Entrypoint: ${JSON.stringify(r.entrypoint)}`);
  if (r.cmd) lines.push(`Cmd:        ${JSON.stringify(r.cmd)}`);
  if (r.workingDir) lines.push(`WorkingDir: ${r.workingDir}`);
  if (r.user) lines.push(`User:       ${r.user}`);
  if (r.env?.length) lines.push('Env:', ...r.env.map((e) => `  ${e}`));
  const labels = Object.entries(r.labels ?? {});
  if (labels.length) lines.push('Labels:', ...labels.map(([k, v]) => `  ${k}=${v}`));
  if (r.config) lines.push(`Config:     ${r.config.digest}  ${formatBytes(r.config.size)}`);
  if (r.layers) {
    lines.push(`Layers:     ${r.layers.length} (${formatBytes(r.totalSize ?? 0)} total)`);
    for (const l of r.layers) lines.push(`  ${l.digest}  ${formatBytes(l.size)}`);
  }
  return lines.join('\n');
}
