import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadAgent, loadProxyAgent } from '../../../src/http/undici-agent.js';

describe('loadAgent', () => {
  it('gives a working keep-alive Agent with the request API', async () => {
    const srv = createServer((_q, r) => r.end('pong')).listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const Agent = loadAgent();
    const agent = new Agent({ keepAliveTimeout: 1000 });
    try {
      const { port } = srv.address() as { port: number };
      const res = await agent.request({ origin: `http://127.0.0.1:${port}`, path: '/', method: 'GET' });
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('pong');
    } finally {
      await agent.close();
      srv.close();
    }
  });

  it('does not load undici\'s index (fetch, WebSocket…): that is the start-up time it saves', () => {
    // A fresh process: the test runner itself may have loaded the index already.
    const built = fileURLToPath(new URL('../../../dist/http/undici-agent.js', import.meta.url));
    const script = `import { loadAgent } from ${JSON.stringify(built)};
      import { createRequire } from 'node:module';
      const A = loadAgent();
      const loaded = Object.keys(createRequire(import.meta.url).cache);
      console.log(JSON.stringify({ name: A.name, index: loaded.some((k) => /undici[\\\\/]index\\.js$/.test(k)), agent: loaded.some((k) => k.endsWith('agent.js')) }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ name: 'Agent', index: false, agent: true });
  });

  it('loads ProxyAgent without the index too; createDispatchers loads it only when a request needs a proxy', () => {
    const dist = (f: string) => JSON.stringify(fileURLToPath(new URL(`../../../dist/http/${f}`, import.meta.url)));
    const script = `import { createDispatchers } from ${dist('send.js')};
      import { loadProxyAgent } from ${dist('undici-agent.js')};
      import { createRequire } from 'node:module';
      const has = (re) => Object.keys(createRequire(import.meta.url).cache).some((k) => re.test(k));
      const proxyAgent = () => has(/dispatcher[\\/]proxy-agent\.js$/);
      const out = {};
      await createDispatchers({}).close();
      out.plain = proxyAgent();
      await createDispatchers({ HTTPS_PROXY: 'http://127.0.0.1:9', NO_PROXY: 'x' }).close();
      out.configuredUnused = proxyAgent();
      const P = loadProxyAgent();
      out.name = P.name;
      out.loaded = proxyAgent();
      out.index = has(/undici[\\/]index\.js$/);
      console.log(JSON.stringify(out));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ plain: false, configuredUnused: false, name: 'ProxyAgent', loaded: true, index: false });
  });

  it('loadProxyAgent gives a ProxyAgent with the request API', () => {
    const P = loadProxyAgent();
    expect(typeof (P.prototype as unknown as Record<string, unknown>)['request']).toBe('function');
  });

  it('the bundle (bin/ferry) loads undici from the one packed file dist/undici-lean.cjs, and it talks HTTP', async () => {
    const srv = createServer((_q, r) => { r.statusCode = 404; r.setHeader('content-type', 'application/json'); r.end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'); }).listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    try {
      const { port } = srv.address() as { port: number };
      const hook = `data:text/javascript,${encodeURIComponent(`import { createRequire } from 'node:module';
        const r = createRequire(process.execPath);
        process.on('exit', () => { const ks = Object.keys(r.cache); process.stderr.write('@@' + JSON.stringify({ lean: ks.filter((k) => k.endsWith('undici-lean.cjs')).length, undici: ks.filter((k) => /[\\/]undici[\\/]/.test(k)).length }) + '\\n'); });`)}`;
      const bin = fileURLToPath(new URL('../../../bin/ferry', import.meta.url));
      const r = await new Promise<{ code: number | null; stderr: string }>((res) => {
        const c = spawn(process.execPath, ['--import', hook, bin, 'inspect', '--raw', `127.0.0.1:${port}/x/y:z`], { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        c.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
        c.on('close', (code) => res({ code, stderr }));
      });
      expect(r.stderr).toMatch(/manifest unknown|not found/i); // the request went out and its answer came back
      expect(r.code).not.toBe(0);
      expect(JSON.parse(/@@(.*)/.exec(r.stderr)![1]!)).toEqual({ lean: 1, undici: 0 });
    } finally {
      srv.close();
    }
  });
});
