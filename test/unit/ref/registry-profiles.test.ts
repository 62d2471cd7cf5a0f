import { describe, expect, it } from 'vitest';
import { acrName, ecrRegion, profileFor, profileForChallenge, profileValue } from '../../../src/ref/index.js';

describe('registry profiles', () => {
  it.each([
    ['docker.io', 'dockerhub'],
    ['registry-1.docker.io', 'dockerhub'],
    ['ghcr.io', 'ghcr'],
    ['quay.io', 'quay'],
    ['123456789012.dkr.ecr.us-east-1.amazonaws.com', 'ecr'],
    ['123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com', 'ecr'],
    ['123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn', 'ecr'],
    ['public.ecr.aws', 'ecr-public'],
    ['myreg.azurecr.io', 'acr'],
    ['gcr.io', 'gcr'],
    ['eu.gcr.io', 'gcr'],
    ['us-docker.pkg.dev', 'artifact-registry'],
    ['europe-west3-docker.pkg.dev', 'artifact-registry'],
    ['nvcr.io', 'ngc'],
    ['us.icr.io', 'icr'],
    ['icr.io', 'icr'],
    ['private.jp2.icr.io', 'icr'],
    ['ghcr.io:443', 'ghcr'],
  ])('%s → %s', (host, id) => {
    expect(profileFor(host)?.id).toBe(id);
  });

  it.each(['localhost:5000', 'registry.example.com', 'harbor.example.com', 'notgcr.io', '12345.dkr.ecr.us-east-1.amazonaws.com', 'evil-ghcr.io', 'ghcr.io.evil.com'])('%s has no host profile', (host) => {
    expect(profileFor(host)).toBeUndefined();
  });

  it('Harbor is found by its challenge, under any host name', () => {
    expect(profileForChallenge('harbor.example.com', 'https://harbor.example.com/service/token', 'harbor-registry')?.id).toBe('harbor');
    expect(profileForChallenge('registry.corp:8443', 'https://registry.corp:8443/service/token', undefined)?.tokenPost).toBe(false);
    expect(profileForChallenge('registry.corp', 'https://auth.corp/token', 'corp')).toBeUndefined();
    // a named registry keeps its own profile whatever its challenge says
    expect(profileForChallenge('ghcr.io', 'https://ghcr.io/service/token', 'harbor-registry')?.id).toBe('ghcr');
  });

  it('fills the host into realm templates and reads regions and names', () => {
    expect(profileValue(profileFor('myreg.azurecr.io')?.realm, 'myreg.azurecr.io')).toBe('https://myreg.azurecr.io/oauth2/token');
    expect(ecrRegion('123456789012.dkr.ecr.eu-west-2.amazonaws.com')).toBe('eu-west-2');
    expect(ecrRegion('ghcr.io')).toBeUndefined();
    expect(acrName('myreg.azurecr.io')).toBe('myreg');
  });
});

describe('the table drives upload chunk bounds', async () => {
  const { chunkBounds } = await import('../../../src/registry/upload.js');
  const MiB = 1024 * 1024;
  it.each([
    ['localhost:5000', undefined, undefined, 1 * MiB],
    ['localhost:5000', 400, undefined, 400],
    ['localhost:5000', 1000, 8 * MiB, 8 * MiB], // OCI-Chunk-Min-Length wins
    ['123456789012.dkr.ecr.us-east-1.amazonaws.com', undefined, undefined, 5 * MiB], // ECR parts ≥ 5 MiB
    ['123456789012.dkr.ecr.us-east-1.amazonaws.com', 64 * MiB, undefined, 20 * MiB], // and ≤ 20 MiB
    ['ghcr.io', 16 * MiB, undefined, 4 * MiB], // GHCR refuses PATCH bodies over 4 MiB
    ['ghcr.io', undefined, undefined, 1 * MiB],
  ])('%s asked %s (session min %s) → %d', (registry, asked, min, want) => {
    expect(chunkBounds(registry, asked, min).chunk).toBe(want);
  });
});
