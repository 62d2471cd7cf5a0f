// The "node floor" row of `npm run bench` (pull → oci layout): the leanest verifying, durable
// puller we could write in node, to show what a ferry written in node could reach at best on
// this machine. It is a measuring tool, not a client: plain HTTP only, no auth, no redirects,
// no retries, no manifest (it is given the blob digests), no layout files.
//
// What it does, per blob (4 at a time, like ferry's --jobs default): one TCP connection; the GET
// written by hand; the answer read with `onread` into one reused 1 MiB buffer (no stream, no
// HTTP library, no allocation per chunk); every chunk written with a synchronous positional
// write; an fdatasync started every 32 MiB (write-behind, as ferry's util/write-behind.ts) and
// one at the end; SHA-256 on ferry's own hash worker (dist/util/file-hasher.js), reading the file
// back as ferry does; the digest checked. Exits 1 on any failure.
//
//   node bench/node-floor.mjs HOST:PORT REPO OUTDIR sha256:… [sha256:…]
import { closeSync, fdatasync, fdatasyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [hostPort, repo, outDir, ...digests] = process.argv.slice(2);
const [host, port] = hostPort.split(':');
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { prewarmFileHashers, startFileHash } = await import(join(root, 'dist', 'util', 'file-hasher.js'));
prewarmFileHashers();
mkdirSync(outDir, { recursive: true });

const WRITE_BEHIND = 32 << 20;
const ADVANCE = 4 << 20;

function pullBlob(digest) {
  return new Promise((resolve, reject) => {
    const path = join(outDir, digest.slice(7));
    const fd = openSync(path, 'w');
    const hash = startFileHash(path, 0, 'sha256');
    let head = Buffer.alloc(0);
    let size = -1;
    let pos = 0;
    let advancedAt = 0;
    let syncedAt = 0;
    let syncing = false;
    let atEnd; // the last step, held while an early fdatasync is still running
    const fail = (e) => { sock.destroy(); reject(e); };
    const sock = connect({
      host, port: Number(port),
      onread: {
        buffer: Buffer.allocUnsafe(1 << 20),
        callback(n, buf) {
          let body = buf.subarray(0, n);
          if (size < 0) {
            head = Buffer.concat([head, body]);
            const end = head.indexOf('\r\n\r\n');
            if (end < 0) return true;
            const text = head.subarray(0, end).toString('latin1');
            const len = /\r\ncontent-length:\s*(\d+)/i.exec(text);
            if (!/^HTTP\/1\.1 200 /.test(text) || !len) { fail(new Error(`${digest}: ${text.split('\r\n')[0]}`)); return false; }
            size = Number(len[1]);
            body = head.subarray(end + 4);
          }
          if (pos + body.length > size) { fail(new Error(`${digest}: more than ${size} bytes`)); return false; }
          for (let o = 0; o < body.length;) o += writeSync(fd, body, o, body.length - o, pos + o);
          pos += body.length;
          if (pos - advancedAt >= ADVANCE) { advancedAt = pos; hash.advance(pos); }
          if (!syncing && pos - syncedAt >= WRITE_BEHIND) { syncedAt = pos; syncing = true; fdatasync(fd, () => { syncing = false; atEnd?.(); }); }
          if (pos === size) {
            sock.destroy();
            atEnd = () => {
              fdatasyncSync(fd);
              closeSync(fd);
              hash.finish(size).then((hex) => (`sha256:${hex}` === digest ? resolve() : reject(new Error(`${digest}: digest mismatch`))), reject);
            };
            if (!syncing) atEnd();
          }
          return true;
        },
      },
    }, () => sock.write(`GET /v2/${repo}/blobs/${digest} HTTP/1.1\r\nHost: ${hostPort}\r\nConnection: close\r\n\r\n`));
    sock.on('error', reject);
    sock.on('close', () => { if (pos !== size) reject(new Error(`${digest}: connection closed at ${pos} of ${size} bytes`)); });
  });
}

let next = 0;
try {
  await Promise.all([0, 1, 2, 3].map(async () => { while (next < digests.length) await pullBlob(digests[next++]); }));
  process.exit(0);
} catch (e) {
  process.stderr.write(`node-floor: ${e.message}\n`);
  process.exit(1);
}
