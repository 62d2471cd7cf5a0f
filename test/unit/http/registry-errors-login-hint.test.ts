import { describe, it, expect } from 'vitest';
import { Readable } from 'node:stream';
import { errorFromResponse } from '../../../src/http/registry-errors.js';
import type { HttpResponse } from '../../../src/http/types.js';

function res(url: string): HttpResponse {
  return {
    status: 401, headers: {}, url: new URL(url), body: Readable.from([Buffer.from('{"errors":[{"code":"UNAUTHORIZED"}]}')]),
    header: () => undefined, dump: async () => {},
  };
}

describe('401 hints name ferry login with the registry', () => {
  it('without credentials', async () => {
    const e = await errorFromResponse(res('https://reg.example:5000/v2/app/tags/list'), { action: 'listing tags', subject: 'reg.example:5000/app' });
    expect(e.hint).toBe('pass --creds user:pass or --username/--password-stdin (--src-creds/--dest-creds for one side of a copy), or log in with ferry login reg.example:5000');
  });
  it('without credentials because none matched: the hint names the key and file that were looked up', async () => {
    const e = await errorFromResponse(res('https://registry-1.docker.io/v2/library/x/manifests/1'), {
      action: 'fetching manifest', subject: 'x:1',
      credentialSource: 'anonymous (no credentials for "https://index.docker.io/v1/" in docker config /home/me/.docker/config.json, nor in podman\'s auth files)',
    });
    expect(e.hint).toContain('ferry login docker.io; no credentials for "https://index.docker.io/v1/" in docker config /home/me/.docker/config.json');
  });
  it('with rejected credentials; Docker Hub is named docker.io', async () => {
    const e = await errorFromResponse(res('https://registry-1.docker.io/v2/library/x/manifests/1'), { action: 'fetching manifest', subject: 'x:1', hadCredentials: true });
    expect(e.hint).toBe('check the username and password/token (--creds, ferry login docker.io, or your credential helper); ferry login docker.io -u <Docker ID> (a personal access token works as the password)');
    expect(e.hint).not.toContain('docker login');
  });

  it('the registry profile adds its own convention (NGC: $oauthtoken) and where the rejected credentials came from', async () => {
    const e = await errorFromResponse(res('https://nvcr.io/v2/nvidia/x/manifests/1'), { action: 'fetching manifest', subject: 'x:1', hadCredentials: true, credentialSource: 'docker config /c.json (auths)' });
    expect(e.hint).toContain('they came from docker config /c.json (auths)');
    expect(e.hint).toContain("-u '$oauthtoken'");
    const anon = await errorFromResponse(res('https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/x/manifests/1'), { action: 'fetching manifest', subject: 'x:1', hadCredentials: false });
    expect(anon.hint).toMatch(/^aws ecr get-login-password --region <region> \| ferry login -u AWS --password-stdin <host>, or install docker-credential-ecr-login; or pass --creds/);
    const plain = await errorFromResponse(res('https://registry.example/v2/x/manifests/1'), { action: 'fetching manifest', subject: 'x:1', hadCredentials: false });
    expect(plain.hint).toMatch(/^pass --creds/);
  });
});
