/**
 * `ferry config explain REF`: the endpoints ferry would try for REF, in order, for a pull and for a
 * push, with the rule each came from (file:line), the short-name candidates, and whether the
 * registry is blocked. Reads registries.conf (+ drop-ins, alias cache) and daemon.json; sends
 * nothing. A blocked origin is E_BLOCKED (exit 9) naming the file and line.
 */
import {
  blockedError, endpointsFor, loadNetworkConfig, resolveShortName,
  type Endpoint, type NetworkRules, type ShortNameResolution,
} from '../config/index.js';
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
  };
}

