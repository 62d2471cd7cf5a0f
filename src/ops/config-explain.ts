/**
 * `ferry config explain REF`: the endpoints ferry would try for REF, in order, for a pull and for a
 * push, with the rule each came from (file:line), the short-name candidates, and whether the
 * registry is blocked, and the certs.d TLS material each endpoint host would get (CAs, every
 * client pair in the order offered). Reads registries.conf (+ drop-ins, alias cache), daemon.json
 * and the certs.d directories; sends nothing. A blocked origin is E_BLOCKED (exit 9) naming the file and line.
 */
import {
  blockedError, endpointsFor, loadNetworkConfig, resolveShortName,
  type Endpoint, type NetworkRules, type ShortNameResolution,
} from '../config/index.js';
import { CertsD, certsDKey } from '../config/certs-d.js';
import type { OpContext } from './context.js';

export interface ConfigExplainPlan {
  endpoints: Endpoint[];
}

export interface ConfigExplainResult {
  /** The reference explained: the first short-name candidate, fully qualified. */
  source: string;
  input: string;
  /** Every configuration file read, in the order they apply. */
  files: string[];
  shortName: Omit<ShortNameResolution, 'candidates' | 'input'> & { candidates: string[] };
  /** The `[[registry]]` matched: its prefix and file:line. */
  rule?: { prefix: string; origin: string };
  pull: ConfigExplainPlan;
  push: ConfigExplainPlan;
  /** Per endpoint host with any: the certs.d directory, CAs and client pairs (in the order offered). */
  tls: HostTlsExplained[];
}

export interface HostTlsExplained {
  registry: string;
  dir?: string;
  caFiles: string[];
  clientCertificates: Array<{ cert: string; key: string }>;
}

/** What http/connector.ts would use for each host (flags + certs.d), hosts in endpoint order. */
function tlsOf(registries: string[], ctx: OpContext): HostTlsExplained[] {
  const certs = new CertsD(ctx.tls ?? {}, ctx.env ?? process.env);
  if (!certs.active) return [];
  return registries.flatMap((registry) => {
    const u = new URL(`https://${registry}`);
    const t = certs.forHost(certsDKey(u.hostname, Number(u.port) || 443));
    return t ? [{
      registry, ...(t.dir ? { dir: t.dir } : {}), caFiles: t.caFiles,
      clientCertificates: t.pairs.map((p) => ({ cert: p.certFile, key: p.keyFile })),
    }] : [];
  });
}

export async function configExplain(input: string, ctx: OpContext): Promise<ConfigExplainResult> {
  const n = ctx.networkConfig ?? {};
  const cfg: NetworkRules = await loadNetworkConfig(n, ctx.env ?? process.env);
  const sn = resolveShortName(input, cfg.registries, n.shortNameMode);
  const ref = sn.candidates[0]!;
  const opts = { ...(n.mirrors ? { extraMirrors: n.mirrors } : {}), ...(n.noMirrors ? { noMirrors: true } : {}) };
  const pull = endpointsFor(ref, cfg, { operation: 'pull', ...opts });
  const push = endpointsFor(ref, cfg, { operation: 'push', ...opts });
  if (pull.blocked) throw blockedError(ref, pull.blocked, pull);
  const { candidates, input: _i, ...why } = sn;
  return {
    source: ref.toString(),
    input,
    files: [...cfg.registries.files, ...(cfg.daemon.file ? [cfg.daemon.file] : [])],
    shortName: { ...why, candidates: candidates.map(String) },
    ...(pull.rule ? { rule: pull.rule } : {}),
    pull: { endpoints: pull.endpoints },
    push: { endpoints: push.endpoints },
    tls: tlsOf([...new Set([...pull.endpoints, ...push.endpoints].map((e) => e.registry))], ctx),
  };
}

