/**
 * Property tests: no input makes the parser or the stream framer throw, and
 * framing does not depend on how a stream is chunked.
 */
import t from 'tap';
import fc from 'fast-check';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { parseMessage } from '../../../src/sip/message/parser.js';
import { StreamFramer } from '../../../src/sip/message/stream-framer.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'rfc4475');
const corpus = readdirSync(dir).filter((f) => f.endsWith('.sip')).map((f) => readFileSync(join(dir, f)));

const mutation = fc.record({
  seed: fc.integer({ min: 0, max: corpus.length - 1 }),
  edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'insert', 'delete', 'cut', 'dup')), { maxLength: 12 }),
});

function mutate(seed: number, edits: Array<[number, number, string]>): Buffer {
  let b = Buffer.from(corpus[seed] ?? Buffer.alloc(0));
  for (const [pos, byte, op] of edits) {
    const i = b.length === 0 ? 0 : pos % b.length;
    if (op === 'flip') b[i] = byte;
    else if (op === 'insert') b = Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]);
    else if (op === 'delete') b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
    else if (op === 'cut') b = b.subarray(0, i);
    else b = Buffer.concat([b.subarray(0, i), b.subarray(i, i + byte), b.subarray(i)]);
  }
  return b;
}

t.test('mutated torture messages never make parseMessage throw', async (t) => {
  fc.assert(fc.property(mutation, ({ seed, edits }) => {
    const buf = mutate(seed, edits);
    for (const stream of [false, true]) {
      const r = parseMessage(buf, { stream });
      if (r.kind === 'error') {
        if (!(r.error.status >= 400 && r.error.status < 600)) return false;
        if (/[\r\n]/.test(r.error.reason)) return false;
      } else {
        // What parses must serialise and parse again to the same kind.
        const again = parseMessage(r.message.toBuffer(), { stream: true });
        if (again.kind !== r.kind) return false;
      }
    }
    return true;
  }), { numRuns: 3000 });
  t.pass('3000 mutated messages handled');
});

t.test('random bytes never make parseMessage throw', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
    parseMessage(Buffer.from(bytes), { stream: false });
    return true;
  }), { numRuns: 2000 });
  t.pass();
});

t.test('stream framing is independent of chunking', async (t) => {
  const valid = corpus.filter((b) => {
    const r = parseMessage(b, { stream: false });
    return r.kind !== 'error' && r.message.has('content-length');
  }).map((b) => {
    const r = parseMessage(b, { stream: false });
    if (r.kind === 'error') throw new Error('unreachable');
    return r.message.toBuffer();
  });
  t.ok(valid.length > 10);
  const stream = Buffer.concat([Buffer.from('\r\n\r\n'), ...valid]);
  fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 200 }), (sizes) => {
    const framer = new StreamFramer(65535);
    const got: Buffer[] = [];
    let pings = 0;
    let off = 0;
    let k = 0;
    while (off < stream.length) {
      const n = sizes[k++ % sizes.length] ?? 1;
      for (const ev of framer.push(stream.subarray(off, off + n))) {
        if (ev.kind === 'message') got.push(ev.data);
        else if (ev.kind === 'ping') pings++;
        else return false;
      }
      off += n;
    }
    return got.length === valid.length && got.every((g, i) => g.equals(valid[i] ?? Buffer.alloc(0))) && pings <= 1;
  }), { numRuns: 300 });
});

t.test('framing errors are final (RFC 4475 ncl/mcl01 over TCP)', async (t) => {
  for (const name of ['ncl', 'mcl01']) {
    const f = new StreamFramer(65535);
    const evs = f.push(readFileSync(join(dir, `${name}.sip`)));
    t.equal(evs.at(-1)?.kind, 'error', `${name} is a framing error`);
    t.same(f.push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n')), [], 'nothing after the error');
  }
  const big = new StreamFramer(2000);
  const evs = big.push(Buffer.from(`INVITE sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n`));
  t.equal(evs[0]?.kind === 'error' ? evs[0].error.status : 0, 513, 'oversized message: 513');
});
