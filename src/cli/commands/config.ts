import type { Command } from 'commander';
import type { Endpoint } from '../../config/index.js';
import { configExplain, type ConfigExplainResult } from '../../ops/config-explain.js';
import type { CliIO } from '../io.js';
import { document } from '../output/json.js';
import { runtimeFor } from '../runtime.js';

export function configCommands(program: Command, io: CliIO, signal: AbortSignal): void {
  const config = program.command('config').description('network configuration diagnostics (registries.conf, daemon.json, mirrors)');
  config
    .command('explain')
    .description('show the endpoints ferry would try for an image, in order, for pull and for push, and the rule each came from (sends nothing)')
    .argument('<reference>', 'image reference, short or qualified: alpine, ghcr.io/org/app:1.2')
    .addHelpText('after', `
Reads registries.conf (--registries-conf, CONTAINERS_REGISTRIES_CONF, ~/.config/containers/
registries.conf or /etc/containers/registries.conf, their registries.conf.d drop-ins and
~/.cache/containers/short-name-aliases.conf) and docker's daemon.json (--daemon-config or
/etc/docker/daemon.json), and the certs.d directories of the hosts (CAs, client pairs in the order
offered). A blocked registry exits 9 naming the file and line.

Examples:
  ferry config explain alpine
  ferry config explain --mirror cache.internal:5000 ghcr.io/org/app:1.2
  ferry config explain --json quay.io/org/app@sha256:… | jq '.pull.endpoints[].registry'`)
    .action(async (reference: string, _opts: unknown, cmd: Command) => {
      const rt = await runtimeFor(cmd, io, signal);
      const r = await configExplain(reference, rt.ctx);
      if (rt.g.json) return rt.outJson(configExplainJson(r));
      rt.out(renderConfigExplain(r));
    });
}

export function configExplainJson(r: ConfigExplainResult) {
  return document('config explain', r);
}

function endpointLines(label: string, es: Endpoint[]): string[] {
  const pad = ' '.repeat(label.length);
  if (!es.length) return [`${label}(none)`];
  const width = Math.max(...es.map((e) => e.reference.length));
  return es.map((e, i) => {
    const what = e.mirror ? `mirror${e.pullFromMirror && e.pullFromMirror !== 'all' ? ` (${e.pullFromMirror})` : ''}` : 'origin';
    const insecure = e.insecure ? `, insecure (${e.insecureOrigin})` : '';
    return `${i === 0 ? label : pad}${i + 1}. ${e.reference.padEnd(width)}  ${what}, ${e.origin === 'reference' ? 'no rule' : `from ${e.origin}`}${insecure}`;
  });
}

export function renderConfigExplain(r: ConfigExplainResult): string {
  const sn = r.shortName;
  const why = {
    qualified: 'qualified',
    alias: `alias at ${sn.origin}`,
    search: `unqualified-search-registries at ${sn.origin}`,
    docker: sn.mode === 'disabled' ? 'short names disabled: docker.io, as docker' : 'no search registries: docker.io, as docker',
  }[sn.rationale];
  const lines = [`Reference:   ${r.input === r.source ? r.source : `${r.input} → ${r.source}`} (${why})`];
  if (sn.rationale !== 'qualified') {
    lines.push(`Short names: mode ${sn.mode} (${sn.modeOrigin === 'default' ? 'the default' : sn.modeOrigin})${sn.candidates.length > 1 ? `; tried in order: ${sn.candidates.join(', ')}` : ''}`);
  }
  lines.push(`Files:       ${r.files.length ? r.files.join(', ') : '(none)'}`);
  lines.push(`Rule:        ${r.rule ? `[[registry]] prefix "${r.rule.prefix}" at ${r.rule.origin}` : '(no [[registry]] matches)'}`);
  lines.push(...endpointLines('Pull:        ', r.pull.endpoints), ...endpointLines('Push:        ', r.push.endpoints));
  for (const [i, t] of r.tls.entries()) {
    const what = [...t.caFiles.map((f) => `CA ${f}`), ...t.clientCertificates.map((c, n) => `client pair ${n + 1}: ${c.cert} + ${c.key}`)];
    lines.push(`${i === 0 ? 'TLS:         ' : '             '}${t.registry}${t.dir ? ` (${t.dir})` : ''}: ${what.join('; ') || 'nothing'}`);
  }
  return lines.join('\n');
}
