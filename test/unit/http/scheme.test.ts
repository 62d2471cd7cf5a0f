import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseReference } from '../../../src/ref/index.js';
import { Session } from '../../../src/registry/session.js';
import { seedImage, startMemRegistry } from '../../helpers/mem-registry.js';
import { makeServerTls } from '../../helpers/tls.js';
import { RETRY, rejection, startReg, tempDir } from './support.js';

/** A Session as the app builds one for a loopback registry without --plain-http ('auto'). */
function autoSession(opts: { tlsVerify?: boolean } = {}) {
  const lines: string[] = [];
  const home = tempDir('ferry-home-');
  const session = new Session({
    userAgent: 'ferry-test', retry: RETRY, debug: (l) => lines.push(l), env: { HOME: home, PATH: '' }, warn: () => {},
    ...(opts.tlsVerify !== undefined ? { tlsVerify: opts.tlsVerify } : {}),
  });
  return { session, lines };
}

describe('scheme selection for loopback registries (auto)', () => {
  it('plain-http registry: https is tried once, http is used and remembered', async () => {
    const reg = await startReg();
    const seeded = seedImage(reg, 'app', 'v1');
    const { session, lines } = autoSession();
    try {
      const client = session.registry(parseReference(`${reg.host}/app:v1`)).repository('app');
      expect((await client.getManifest('v1')).descriptor.digest).toBe(seeded.digest);
      expect((await client.getManifest(seeded.digest)).descriptor.digest).toBe(seeded.digest);
      await client.listTags();
      const https = lines.filter((l) => /^[→✗] GET https:/.test(l));
      const http = lines.filter((l) => l.startsWith('→ GET http:'));
      expect(https).toHaveLength(2); // the attempt and its failure
      expect(https[1]).toMatch(/^✗ GET https:/);
      expect(http).toHaveLength(3);
      expect(reg.requests.map((r) => r.status)).toEqual([200, 200, 200]);
    } finally {
      await session.close();
    }
  });

  it('untrusted certificate: E_TLS with a hint, and no plain-http fallback', async () => {
    const tls = await makeServerTls();
    try {
      const reg = await startMemRegistry({ tls: { cert: readFileSync(tls.serverCert, 'utf8'), key: readFileSync(tls.serverKey, 'utf8') } });
      seedImage(reg, 'app', 'v1');
      const { session, lines } = autoSession();
      try {
        const client = session.registry(parseReference(`${reg.host}/app:v1`)).repository('app');
        const e = await rejection(client.getManifest('v1'));
        expect(e.code).toBe('E_TLS');
        expect(e.message).toContain(reg.host);
        expect(e.hint).toMatch(/NODE_EXTRA_CA_CERTS|--tls-verify=false/);
        expect(lines.filter((l) => /GET http:/.test(l))).toEqual([]);
        expect(reg.requests).toEqual([]); // the TLS handshake never completed
      } finally {
        await session.close();
        await reg.stop();
      }
      // the same registry with verification off: served over https
      const reg2 = await startMemRegistry({ tls: { cert: readFileSync(tls.serverCert, 'utf8'), key: readFileSync(tls.serverKey, 'utf8') } });
      const seeded = seedImage(reg2, 'app', 'v1');
      const off = autoSession({ tlsVerify: false });
      try {
        const client = off.session.registry(parseReference(`${reg2.host}/app:v1`)).repository('app');
        expect((await client.getManifest('v1')).descriptor.digest).toBe(seeded.digest);
        expect(off.lines.filter((l) => l.startsWith('→ GET http:'))).toEqual([]);
      } finally {
        await off.session.close();
        await reg2.stop();
      }
    } finally {
      tls.remove();
    }
  });
});
