/**
 * Short names (`alpine`, `team/app:1`): the fully qualified references ferry would try, in order.
 * - A qualified name (docker's rule: the first component has '.' or ':', is localhost, or has
 *   capitals) is itself, the only candidate.
 * - `disabled`: docker's rule, `docker.io` only (`library/` for one component); no aliases, no
 *   search. (podman's `disabled` tries every search registry; ferry never prompts, so its
 *   `permissive` already does that, and `disabled` is the docker behaviour.)
 * - Else an alias (`[aliases]`, drop-ins, the alias cache) wins: one candidate, tag/digest kept.
 * - Else `unqualified-search-registries`, each in order; in `enforcing` mode more than one is
 *   E_USAGE asking to qualify the name (ferry never prompts). None configured (or an empty list):
 *   docker.io.
 * The mode: the --short-name-mode flag, else registries.conf `short-name-mode`, else permissive.
 */
import { FerryError } from '../errors.js';
import { parseReference, type ImageReference } from '../ref/index.js';
import { isQualifiedName } from './registries-conf.js';
import { originText, type RegistriesConf, type ShortNameMode } from './types.js';

export interface ShortNameResolution {
  input: string;
  mode: ShortNameMode;
  /** Where the mode came from: `--short-name-mode`, `file:line`, or `default`. */
  modeOrigin: string;
  rationale: 'qualified' | 'alias' | 'search' | 'docker';
  /** `file:line` of the alias or of unqualified-search-registries. */
  origin?: string;
  candidates: ImageReference[];
}

/** Splits `name[:tag][@digest]` into the name and the rest. */
function splitName(s: string): { name: string; rest: string } {
  const at = s.indexOf('@');
  const beforeDigest = at < 0 ? s : s.slice(0, at);
  const colon = beforeDigest.lastIndexOf(':');
  const cut = colon > beforeDigest.lastIndexOf('/') ? colon : at < 0 ? s.length : at;
  return { name: s.slice(0, cut), rest: s.slice(cut) };
}

export function resolveShortName(input: string, cfg: RegistriesConf, mode?: ShortNameMode): ShortNameResolution {
  const m = mode ?? cfg.shortNameMode?.mode ?? 'permissive';
  const modeOrigin = mode ? '--short-name-mode' : cfg.shortNameMode ? originText(cfg.shortNameMode.origin) : 'default';
  const base = { input, mode: m, modeOrigin };
  const s = input.startsWith('docker://') ? input.slice('docker://'.length) : input;
  const { name, rest } = splitName(s);
  if (isQualifiedName(name)) return { ...base, rationale: 'qualified', candidates: [parseReference(input)] };
  if (m === 'disabled') return { ...base, rationale: 'docker', candidates: [parseReference(input)] };
  parseReference(input); // the short name itself must be valid (E_BAD_REFERENCE naming it)
  const alias = cfg.aliases.get(name);
  if (alias) return { ...base, rationale: 'alias', origin: originText(alias.origin), candidates: [parseReference(alias.value + rest)] };
  const search = cfg.search?.registries ?? [];
  if (!search.length) return { ...base, rationale: 'docker', candidates: [parseReference(input)] };
  const candidates = search.map((r) => parseReference(`${r}/${name}${rest}`));
  const origin = originText(cfg.search!.origin);
  if (m === 'enforcing' && candidates.length > 1) {
    throw new FerryError('E_USAGE', `short name "${input}" is ambiguous: short-name-mode is enforcing (${modeOrigin}) and ${candidates.length} search registries could serve it (${origin})`, {
      hint: `qualify it, e.g. ${candidates.map((c) => c.toString()).join(' or ')}, or add an alias in [aliases]`,
    });
  }
  return { ...base, rationale: 'search', origin, candidates };
}

/** Parses --short-name-mode. */
export function parseShortNameMode(v: string): ShortNameMode {
  if (v === 'enforcing' || v === 'permissive' || v === 'disabled') return v;
  throw new FerryError('E_USAGE', `--short-name-mode takes enforcing, permissive or disabled, not "${v}"`);
}
