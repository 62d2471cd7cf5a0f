import { createHash } from 'node:crypto';
import { FerryError } from '../errors.js';

/** `algorithm:encoded` (image-spec descriptor.md "Digests"). */
export type Digest = `${string}:${string}`;

const DIGEST_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const HEX = { sha256: /^[a-f0-9]{64}$/, sha512: /^[a-f0-9]{128}$/ } as const;

/** Algorithms ferry can compute (node:crypto names match the OCI names). */
export type DigestAlgorithm = 'sha256' | 'sha512';

export function digestError(input: string): string | undefined {
  if (!DIGEST_RE.test(input)) return 'not of the form algorithm:hex';
  const [alg, enc] = input.split(':') as [string, string];
  const re = (HEX as Record<string, RegExp>)[alg];
  if (re && !re.test(enc)) {
    return alg === 'sha256'
      ? 'a sha256 digest needs exactly 64 lowercase hex characters'
      : `a ${alg} digest needs ${alg === 'sha512' ? 128 : 64} lowercase hex characters`;
  }
  return undefined;
}

export function isDigest(input: string): input is Digest {
  return digestError(input) === undefined;
}

/** Validates and returns a digest; throws E_BAD_REFERENCE naming the input otherwise. */
export function parseDigest(input: string): Digest {
  const why = digestError(input);
  if (why) throw new FerryError('E_BAD_REFERENCE', `invalid digest "${input}": ${why}`);
  return input as Digest;
}

export function digestAlgorithm(d: Digest): string {
  return d.slice(0, d.indexOf(':'));
}

export function digestHex(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}

/** Algorithm ferry can verify with, or an E_UNSUPPORTED error. */
export function hashAlgorithmFor(d: Digest): DigestAlgorithm {
  const alg = digestAlgorithm(d);
  if (alg === 'sha256' || alg === 'sha512') return alg;
  throw new FerryError('E_UNSUPPORTED', `digest algorithm "${alg}" is not supported (in ${d})`);
}

export function digestOf(bytes: Uint8Array, alg: DigestAlgorithm = 'sha256'): Digest {
  return `${alg}:${createHash(alg).update(bytes).digest('hex')}`;
}

export const EMPTY_SHA256: Digest = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
