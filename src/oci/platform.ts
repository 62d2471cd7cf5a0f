import { arch as hostArch, platform as hostOs } from 'node:process';
import { FerryError } from '../errors.js';

/** image-spec image-index.md platform object. */
export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
  features?: string[];
}

const NODE_ARCH: Record<string, string> = {
  x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x',
  riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle',
};

/** The platform ferry runs on, in OCI terms (linux/amd64, linux/arm64/v8, …). */
export function hostPlatform(): Platform {
  const os = hostOs === 'win32' ? 'windows' : hostOs;
  const architecture = NODE_ARCH[hostArch] ?? hostArch;
  const p: Platform = { os, architecture };
  if (architecture === 'arm64') p.variant = 'v8';
  if (architecture === 'arm') {
    const v = (process.config.variables as Record<string, unknown>)['arm_version'];
    if (v) p.variant = `v${v}`;
  }
  return p;
}

/** Parses `os/arch[/variant]` as docker's --platform does. */
export function parsePlatform(s: string): Platform {
  const parts = s.trim().toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => x === '' || !/^[a-z0-9._-]+$/.test(x))) {
    throw new FerryError('E_USAGE', `invalid platform "${s}"`, { hint: 'use os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8' });
  }
  const p: Platform = { os: parts[0]!, architecture: normalizeArch(parts[1]!) };
  const variant = normalizeVariant(p.architecture, parts[2]);
  if (variant) p.variant = variant;
  return p;
}

function normalizeArch(a: string): string {
  if (a === 'x86_64' || a === 'x86-64') return 'amd64';
  if (a === 'aarch64') return 'arm64';
  return a;
}

function normalizeVariant(arch: string, v: string | undefined): string | undefined {
  if (arch === 'arm64' && (v === undefined || v === '8')) return v === undefined ? undefined : 'v8';
  if (arch === 'arm' && v !== undefined && /^\d+$/.test(v)) return `v${v}`;
  return v;
}

export function formatPlatform(p: Platform | undefined): string {
  if (!p) return 'unknown';
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/**
 * Does an index entry's platform satisfy a wanted one? os and architecture must match; a wanted
 * variant must match (arm64 treats a missing variant as v8, as containerd does); a wanted
 * platform without a variant accepts any variant.
 */
export function platformMatches(candidate: Platform | undefined, wanted: Platform): boolean {
  if (!candidate) return false;
  if (candidate.os !== wanted.os) return false;
  if (normalizeArch(candidate.architecture) !== wanted.architecture) return false;
  if (!wanted.variant) return true;
  const cv = candidate.variant ?? (candidate.architecture === 'arm64' ? 'v8' : undefined);
  return cv === wanted.variant;
}

/** Picks the best entry for `wanted`: exact variant match first, then the first compatible one. */
export function choosePlatform<T extends { platform?: Platform }>(entries: T[], wanted: Platform): T | undefined {
  const ok = entries.filter((e) => platformMatches(e.platform, wanted));
  if (ok.length === 0) return undefined;
  if (wanted.variant === undefined) {
    // Prefer an entry without a variant or with the host-default variant.
    const plain = ok.find((e) => !e.platform?.variant || e.platform.variant === hostPlatform().variant);
    if (plain) return plain;
  }
  return ok[0];
}
