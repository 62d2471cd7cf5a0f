/** Where a rule came from: the file and 1-based line of its table or key. */
export interface Origin {
  file: string;
  line: number;
}

export const originText = (o: Origin): string => `${o.file}:${o.line}`;

export type PullFromMirror = 'all' | 'digest-only' | 'tag-only';
export const PULL_FROM_MIRROR: readonly PullFromMirror[] = ['all', 'digest-only', 'tag-only'];

export type ShortNameMode = 'enforcing' | 'permissive' | 'disabled';
export const SHORT_NAME_MODES: readonly ShortNameMode[] = ['enforcing', 'permissive', 'disabled'];

/** A `[[registry.mirror]]` entry. */
export interface MirrorRule {
  location: string;
  insecure: boolean;
  pullFromMirror: PullFromMirror;
  /** true when `pull-from-mirror` was set (not the default). */
  pullFromMirrorSet: boolean;
  origin: Origin;
}

/** A `[[registry]]` entry, validated. */
export interface RegistryRule {
  /** `host[:port][/path…][:tag|@digest]` or `*.domain` (subdomains only). */
  prefix: string;
  /** Physical location the matched prefix is rewritten to; undefined for a wildcard prefix. */
  location: string | undefined;
  insecure: boolean;
  blocked: boolean;
  mirrorByDigestOnly: boolean;
  mirrors: MirrorRule[];
  /** The `[[registry]]` line. */
  origin: Origin;
  /** The `blocked = true` line (else the table's). */
  blockedOrigin: Origin;
}

export interface AliasRule {
  name: string;
  /** Fully qualified name without tag or digest; '' (a drop-in removing an alias) is dropped in the merge. */
  value: string;
  origin: Origin;
}

/** What one registries.conf (or drop-in, or alias cache) file says. Absent keys are undefined. */
export interface RegistriesConfFile {
  file: string;
  registries: RegistryRule[];
  search?: { registries: string[]; origin: Origin };
  shortNameMode?: { mode: ShortNameMode; origin: Origin };
  aliases: AliasRule[];
}

/** The merged configuration of the main file and its drop-ins, in the order they apply. */
export interface RegistriesConf {
  /** Every file read, in order. */
  files: string[];
  /** One rule per prefix (a later file's entry replaced an earlier one with the same prefix). */
  registries: RegistryRule[];
  search?: { registries: string[]; origin: Origin };
  shortNameMode?: { mode: ShortNameMode; origin: Origin };
  aliases: Map<string, AliasRule>;
}

export const emptyRegistriesConf = (): RegistriesConf => ({ files: [], registries: [], aliases: new Map() });

/** docker's daemon.json, the parts ferry uses. */
export interface DaemonConfig {
  file?: string;
  /** registry-mirrors: Docker Hub only. host[:port][/…] without scheme; insecure for http:// URLs. */
  mirrors: Array<{ location: string; insecure: boolean; origin: Origin }>;
  /** insecure-registries: exact host[:port] entries and CIDRs (matched against IP-literal registries). */
  insecure: Array<{ entry: string; origin: Origin }>;
}

export const emptyDaemonConfig = (): DaemonConfig => ({ mirrors: [], insecure: [] });
