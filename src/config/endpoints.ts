/**
 * The endpoints ferry tries for a reference, in order, and why: a pure function of the reference,
 * the loaded configuration and the command's flags.
 *
 * Pull-like operations (pull, inspect, the source of a copy): `--mirror` flags, then the matched
 * `[[registry]]`'s mirrors, then daemon.json `registry-mirrors` (Docker Hub only), then the origin
 * (the `location` rewrite of the matched prefix) unless the rule is `blocked`. A mirror is used for
 * a reference by digest only if `pull-from-mirror` is `all` or `digest-only` (or the registry has
 * `mirror-by-digest-only`), for one by tag only if `all` or `tag-only`. A mirror whose own location
 * is blocked by another rule is left out.
 * Every other operation (push, tag, delete, tag listing, the destination of a copy): the reference
 * as written — no mirrors, no rewrite, as containers/image — but `blocked` and `insecure` apply.
 */
import { FerryError } from '../errors.js';
import { DOCKER_HUB, parseReference, type ImageReference } from '../ref/index.js';
import { daemonInsecure } from './daemon-json.js';
import { findRule } from './prefix.js';
import { originText, type DaemonConfig, type Origin, type PullFromMirror, type RegistriesConf, type RegistryRule } from './types.js';

export type Operation = 'pull' | 'inspect' | 'copy-source' | 'push' | 'copy-destination' | 'tag' | 'delete' | 'tags';

/** Operations that read one image and so may use mirrors and location rewrites. */
export const PULL_OPERATIONS: readonly Operation[] = ['pull', 'inspect', 'copy-source'];

export interface Endpoint {
  /** host[:port] to talk to (`docker.io` for Docker Hub). */
  registry: string;
  /** Repository at that endpoint (rewritten). */
  repository: string;
  /** The full reference at that endpoint (tag and digest kept). */
  reference: string;
  /** https without verification, then plain http (registries.conf `insecure`, daemon.json `insecure-registries`, an http:// mirror). */
  insecure: boolean;
  mirror: boolean;
  /** Mirrors only: which references the mirror serves. */
  pullFromMirror?: PullFromMirror;
  /** `file:line` of the rule, `--mirror`, or `reference` (no rule: the reference as given). */
  origin: string;
  /** Where `insecure` came from, when it is true. */
  insecureOrigin?: string;
}

/** A `--mirror HOST[/PATH]` flag (an `http://` prefix makes it a plain-http mirror). */
export interface MirrorFlag {
  location: string;
  insecure: boolean;
}

export interface NetworkRules {
  registries: RegistriesConf;
  daemon: DaemonConfig;
}

export interface EndpointOptions {
  operation: Operation;
  /** --mirror: tried first, for every source registry: HOST/PATH/<repository>. */
  extraMirrors?: readonly MirrorFlag[];
  /** --no-mirrors: the origin only (rewrites and blocked still apply). */
  noMirrors?: boolean;
}

export interface EndpointPlan {
  endpoints: Endpoint[];
  /** The origin is blocked: where (`blocked = true`). The endpoints hold only mirrors, if any. */
  blocked?: Origin;
  /** The `[[registry]]` that matched the reference, if any: `file:line` and its prefix. */
  rule?: { origin: string; prefix: string };
}

const isDigest = (ref: ImageReference) => ref.digest !== undefined;

function mirrorServes(pfm: PullFromMirror, ref: ImageReference): boolean {
  return pfm === 'all' || (pfm === 'digest-only') === isDigest(ref);
}

/** Rewrites `refText` by replacing its first `length` characters with `location` (the rule at `origin`). */
function rewrite(refText: string, length: number, location: string, origin: Origin): ImageReference {
  const out = location + refText.slice(length);
  try {
    return parseReference(out, { defaultTag: false });
  } catch (e) {
    throw new FerryError('E_BAD_CONFIG', `${originText(origin)}: location "${location}" rewrites ${refText} to "${out}", which is not a valid reference`, { cause: e });
  }
}

const suffix = (ref: ImageReference) => ref.toString().slice(ref.name().length);

export function endpointsFor(ref: ImageReference, cfg: NetworkRules, opts: EndpointOptions): EndpointPlan {
  const text = ref.toString();
  const match = findRule(text, cfg.registries.registries);
  const pullLike = PULL_OPERATIONS.includes(opts.operation);
  const plan: EndpointPlan = { endpoints: [] };
  if (match) plan.rule = { origin: originText(match.rule.origin), prefix: match.rule.prefix };

  const endpoint = (r: ImageReference, mirror: boolean, origin: string, extra: { insecure?: string; pullFromMirror?: PullFromMirror } = {}): Endpoint | undefined => {
    const own = findRule(r.toString(), cfg.registries.registries)?.rule;
    if (mirror && own?.blocked) return undefined;
    const insecureOrigin = extra.insecure ?? (own?.insecure ? originText(own.origin) : undefined) ?? (() => {
      const d = daemonInsecure(r.registry, cfg.daemon);
      return d ? originText(d.origin) : undefined;
    })();
    return {
      registry: r.registry,
      repository: r.repository,
      reference: r.toString(),
      insecure: insecureOrigin !== undefined,
      mirror,
      ...(extra.pullFromMirror ? { pullFromMirror: extra.pullFromMirror } : {}),
      origin,
      ...(insecureOrigin !== undefined ? { insecureOrigin } : {}),
    };
  };
  const push = (e: Endpoint | undefined) => void (e && plan.endpoints.push(e));

  if (pullLike && !opts.noMirrors) {
    for (const m of opts.extraMirrors ?? []) {
      push(endpoint(parseReference(`${m.location}/${ref.repository}${suffix(ref)}`, { defaultTag: false }), true, '--mirror', { pullFromMirror: 'all', ...(m.insecure ? { insecure: '--mirror http://' } : {}) }));
    }
    if (match) {
      for (const m of match.rule.mirrors) {
        if (!mirrorServes(m.pullFromMirror, ref)) continue;
        push(endpoint(rewrite(text, match.length, m.location, m.origin), true, originText(m.origin), { pullFromMirror: m.pullFromMirror, ...(m.insecure ? { insecure: originText(m.origin) } : {}) }));
      }
    }
    if (ref.registry === DOCKER_HUB) {
      for (const m of cfg.daemon.mirrors) {
        push(endpoint(parseReference(`${m.location}/${ref.repository}${suffix(ref)}`, { defaultTag: false }), true, originText(m.origin), { pullFromMirror: 'all', ...(m.insecure ? { insecure: originText(m.origin) } : {}) }));
      }
    }
  }

  const rule: RegistryRule | undefined = match?.rule;
  if (rule?.blocked) {
    plan.blocked = rule.blockedOrigin;
    return plan;
  }
  const origin = pullLike && rule?.location !== undefined && rule.location !== rule.prefix ? rewrite(text, match!.length, rule.location, rule.origin) : ref;
  // The rewritten location is looked up again, as containers/image does: another rule may block it.
  const physical = origin === ref ? undefined : findRule(origin.toString(), cfg.registries.registries)?.rule;
  if (physical?.blocked) {
    plan.blocked = physical.blockedOrigin;
    return plan;
  }
  push(endpoint(origin, false, rule ? originText(rule.origin) : 'reference', rule?.insecure ? { insecure: originText(rule.origin) } : {}));
  return plan;
}

/** Parses a `--mirror` value: HOST[:PORT][/PATH], optionally with https:// or http:// (plain http). */
export function parseMirrorFlag(v: string): MirrorFlag {
  const m = /^(?:(https?):\/\/)?([^/\s*@?#]+(?:\/[a-z0-9._\-/]+)?)\/?$/.exec(v);
  if (!m) throw usage(`--mirror takes HOST[:PORT][/PATH], not "${v}"`);
  const location = m[2]!.replace(/\/+$/, '');
  try {
    parseReference(`${location}/x`, { defaultTag: false });
  } catch {
    throw usage(`--mirror takes HOST[:PORT][/PATH], not "${v}"`);
  }
  return { location, insecure: m[1] === 'http' };
}

const usage = (m: string) => new FerryError('E_USAGE', m);

/** E_BLOCKED for a blocked origin, naming the reference and the rule's file and line. */
export function blockedError(ref: ImageReference, blocked: Origin, plan?: EndpointPlan): FerryError {
  const mirrors = plan?.endpoints.filter((e) => e.mirror) ?? [];
  return new FerryError('E_BLOCKED', `${ref.registry}/${ref.repository} is blocked by ${originText(blocked)}`, {
    hint: mirrors.length ? `pulls may still use its mirrors (${mirrors.map((e) => e.registry).join(', ')}); other operations cannot reach it` : 'remove "blocked = true" there, or pull from another registry',
  });
}
