/**
 * Robustness: random message sequences never throw and never leak, and a
 * 5-minute soak at 1,000 calls/s leaves no transaction and no timer behind.
 */
import t from 'tap';
import fc from 'fast-check';
import type { SipRequest, SipResponse, TransportName } from '../../../src/sip/message/message.js';
import { parseMessage } from '../../../src/sip/message/parser.js';
import { createCancel } from '../../../src/sip/transaction/create-cancel.js';
import { createResponse } from '../../../src/sip/transaction/create-response.js';
import { TransactionError } from '../../../src/sip/transaction/transaction-error.js';
import { TransactionLayer } from '../../../src/sip/transaction/transaction-layer.js';
import type { ClientTransaction, ServerTransaction } from '../../../src/sip/transaction/transaction-user.js';
import { DEFAULT_TIMERS } from '../../../src/sip/transaction/types.js';
import { FakeTransactionTransport } from '../../helpers/fake-transaction-transport.js';
import { HeapClock } from '../../helpers/heap-clock.js';
import { RecordingLogger } from '../../helpers/recording-logger.js';
import { makeRequest, makeResponse, sourceFor } from '../../helpers/sip-builders.js';
import { makeHarness, recordingHandler } from '../../helpers/transaction-harness.js';

// --- Random sequences ----------------------------------------------------------

const METHODS = ['INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS', 'REGISTER'] as const;
const BRANCHES = ['z9hG4bKa', 'z9hG4bKb', 'z9hG4bKc', null] as const;
const STATUSES = [100, 180, 183, 200, 202, 302, 401, 486, 487, 500, 603] as const;
const TRANSPORTS: TransportName[] = ['udp', 'tcp'];

const arbRequestFields = fc.record({
  method: fc.constantFrom(...METHODS),
  branch: fc.constantFrom(...BRANCHES),
  sentBy: fc.constantFrom('192.0.2.10:5060', '192.0.2.11'),
  cseq: fc.integer({ min: 1, max: 3 }),
  toTag: fc.constantFrom(undefined, 'tt1', 'tt2'),
  transport: fc.constantFrom(...TRANSPORTS),
});

type RequestFields = typeof arbRequestFields extends fc.Arbitrary<infer R> ? R : never;

const arbCommand = fc.oneof(
  arbRequestFields.map((f) => ({ kind: 'receiveRequest' as const, f })),
  fc.record({ f: arbRequestFields, status: fc.constantFrom(...STATUSES), toTag: fc.constantFrom('r1', 'r2') }).map((x) => ({ kind: 'receiveResponse' as const, ...x })),
  fc.record({ pick: fc.nat(), status: fc.constantFrom(...STATUSES), toTag: fc.constantFrom('r1', 'r2') }).map((x) => ({ kind: 'responseToSent' as const, ...x })),
  fc.record({ f: arbRequestFields }).map((x) => ({ kind: 'sendRequest' as const, ...x })),
  fc.record({ pick: fc.nat(), status: fc.constantFrom(...STATUSES) }).map((x) => ({ kind: 'respond' as const, ...x })),
  fc.record({ pick: fc.nat() }).map((x) => ({ kind: 'cancelSent' as const, ...x })),
  fc.record({ pick: fc.nat() }).map((x) => ({ kind: 'failSend' as const, ...x })),
  fc.record({ pick: fc.nat() }).map((x) => ({ kind: 'terminate' as const, ...x })),
  fc.integer({ min: 0, max: 40_000 }).map((ms) => ({ kind: 'advance' as const, ms })),
);

t.test('random sequences of requests, responses, TU actions, transport errors and time never throw, and leave nothing behind once every transaction is answered', async (t) => {
  let runs = 0;
  fc.assert(
    fc.property(fc.array(arbCommand, { maxLength: 60 }), fc.boolean(), (cmds, zero100) => {
      runs++;
      const h = makeHarness({ trying100DelayMs: zero100 ? 0 : 200 });
      const clients: ClientTransaction[] = [];
      const servers: ServerTransaction[] = [];
      const sentRequests: SipRequest[] = [];
      let n = 0;
      const build = (f: RequestFields, branchSuffix = '') =>
        makeRequest(f.method, {
          branch: f.branch === null ? null : f.branch + branchSuffix, sentBy: f.sentBy, cseq: f.cseq,
          viaTransport: f.transport.toUpperCase(), transport: f.transport, ...(f.toTag ? { toTag: f.toTag } : {}),
        });
      for (const c of cmds) {
        switch (c.kind) {
          case 'receiveRequest':
            h.layer.receiveRequest(build(c.f));
            break;
          case 'receiveResponse':
            h.layer.receiveResponse(makeResponse(build(c.f), c.status, 'Any', c.toTag));
            break;
          case 'responseToSent': {
            const req = sentRequests[c.pick % Math.max(1, sentRequests.length)];
            if (req) h.layer.receiveResponse(makeResponse(req, c.status, 'Any', c.toTag));
            break;
          }
          case 'sendRequest': {
            if (c.f.method === 'ACK' || c.f.branch === null) break;
            const req = build(c.f, `-out${n++ % 3}`);
            req.source = undefined;
            try {
              clients.push(h.layer.sendRequest(req, { transport: c.f.transport, address: '198.51.100.7', port: 5060 }, recordingHandler()));
              sentRequests.push(req);
            } catch (err) {
              if (!(err instanceof TransactionError)) throw err;
            }
            break;
          }
          case 'respond': {
            for (const r of h.requests) if (!servers.includes(r.tx)) servers.push(r.tx);
            const tx = servers[c.pick % Math.max(1, servers.length)];
            // From the request as the TU received it: a transaction that has
            // answered keeps only SipRequest.released() of it.
            const received = h.requests.find((r) => r.tx === tx)?.req;
            if (tx && received) tx.respond(createResponse(received, c.status, 'Any'));
            break;
          }
          case 'cancelSent': {
            const tx = clients[c.pick % Math.max(1, clients.length)];
            if (tx && tx.isInvite && tx.state !== 'Terminated') {
              try {
                clients.push(h.layer.sendRequest(createCancel(tx.request), tx.destination, recordingHandler()));
              } catch (err) {
                if (!(err instanceof TransactionError)) throw err;
              }
            }
            break;
          }
          case 'failSend': {
            const s = h.transport.sent[c.pick % Math.max(1, h.transport.sent.length)];
            s?.fail();
            break;
          }
          case 'terminate': {
            const tx = clients[c.pick % Math.max(1, clients.length)];
            tx?.terminate();
            break;
          }
          case 'advance':
            h.clock.advance(c.ms);
            break;
        }
      }
      // Drain: the TU answers every server transaction, gives up on every
      // INVITE client transaction left in Proceeding (what Timer C does).
      for (const r of h.requests) r.tx.respond(createResponse(r.req, 500, 'Server Internal Error'));
      for (const tx of clients) if (tx.isInvite && tx.state === 'Proceeding') tx.terminate();
      h.clock.advance(10 * 60_000);
      if (h.layer.size.client !== 0 || h.layer.size.server !== 0) throw new Error(`leak: ${JSON.stringify(h.layer.size)}`);
      if (h.clock.pending !== 0) throw new Error(`timers left: ${h.clock.pending}`);
      const errors = h.log.at('error');
      if (errors.length > 0) throw new Error(`internal errors logged: ${JSON.stringify(errors.map((e) => e.msg))}`);
    }),
    { numRuns: 400 },
  );
  t.equal(runs >= 400, true);
});

t.test('mangled wire messages never make the layer throw', async (t) => {
  const h = makeHarness();
  const base = makeRequest('INVITE', { headers: ['Contact: <sip:a@192.0.2.10>'] }).toString();
  const baseRes = makeResponse(makeRequest('OPTIONS'), 200, 'OK').toString();
  fc.assert(
    fc.property(fc.boolean(), fc.nat(), fc.nat({ max: 20 }), fc.string({ maxLength: 12 }), (asResponse, at, cut, junk) => {
      const text = asResponse ? baseRes : base;
      const i = at % text.length;
      const mangled = text.slice(0, i) + junk + text.slice(Math.min(text.length, i + cut));
      const out = parseMessage(Buffer.from(mangled), { stream: false });
      if (out.kind === 'request') {
        out.message.source = sourceFor('udp');
        h.layer.receiveRequest(out.message);
      } else if (out.kind === 'response') {
        h.layer.receiveResponse(out.message);
      }
    }),
    { numRuns: 2000 },
  );
  for (const r of h.requests) r.tx.respond(createResponse(r.req, 500, 'Server Internal Error'));
  h.clock.advance(10 * 60_000);
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.log.at('error').length, 0);
});

// --- Soak ------------------------------------------------------------------------

// Two simulated minutes: the live set peaks after 64*T1 (32 s) and is then
// steady, so longer proves nothing more; five minutes took 80 s of wall time
// on this machine and ran past the per-file timeout under CI's parallel jobs.
// DP_SOAK_SECONDS=300 runs the long version.
t.test('soak: 2 minutes at 1,000 calls/s through a proxy-shaped TU leaves zero transactions and zero timers', async (t) => {
  const seconds = Number(process.env.DP_SOAK_SECONDS ?? 120);
  const rate = 1000;
  const clock = new HeapClock();
  const transport = new FakeTransactionTransport(clock);
  // Keep memory flat: the soak does not need the sent log.
  transport.sendRequest = () => undefined;
  transport.sendResponse = () => undefined;
  const log = new RecordingLogger();
  log.debug = () => undefined;
  const dest = { transport: 'udp' as const, address: '198.51.100.7', port: 5060 };

  const inviteTpl = makeRequest('INVITE', { headers: ['Contact: <sip:alice@192.0.2.10>'] });
  const byeTpl = makeRequest('BYE', { toTag: 'callee' , cseq: 2 });
  const ackTpl = makeRequest('ACK', { toTag: 'callee' });
  let calls = 0;
  let peak = { client: 0, server: 0 };
  const outcomes = { answered: 0, busy: 0, timeout: 0 };

  const later = (ms: number, fn: () => void) => clock.setTimer(ms, fn);
  const withCall = (tpl: SipRequest, i: number, branch: string): SipRequest => {
    const r = tpl.clone();
    r.set('via', `SIP/2.0/UDP 192.0.2.10:5060;branch=${branch}`);
    r.set('call-id', `soak-${i}@192.0.2.10`);
    return r;
  };
  const forward = (req: SipRequest, branch: string): SipRequest => {
    const f = req.clone();
    f.prepend('via', `SIP/2.0/UDP 192.0.2.1:5060;branch=${branch}`);
    f.source = undefined;
    return f;
  };

  const tu = {
    onRequest(tx: ServerTransaction, req: SipRequest) {
      const i = Number(/soak-(\d+)@/.exec(req.callId)?.[1] ?? 0);
      const fwd = forward(req, `z9hG4bKout${req.method}${i}`);
      const kind = i % 50 === 0 ? 'timeout' : i % 10 === 0 ? 'busy' : 'answered';
      layer.sendRequest(fwd, dest, {
        onResponse(res: SipResponse) {
          const up = res.clone();
          up.removeFirst('via');
          tx.respond(up);
        },
        onTimeout() { tx.respond(createResponse(req, 408, 'Request Timeout')); outcomes.timeout++; },
        onTransportError() { tx.respond(createResponse(req, 503, 'Service Unavailable')); },
      });
      if (req.method !== 'INVITE') {
        later(40, () => layer.receiveResponse(createResponse(fwd, 200, 'OK')));
        return;
      }
      if (kind === 'timeout') return;
      later(50, () => layer.receiveResponse(createResponse(fwd, 180, 'Ringing', { toTag: 'callee' })));
      if (kind === 'busy') {
        outcomes.busy++;
        later(900, () => layer.receiveResponse(createResponse(fwd, 486, 'Busy Here', { toTag: 'callee' })));
        // The caller's INVITE client transaction ACKs our 486 (same branch).
        later(950, () => layer.receiveRequest(withCall(ackTpl, i, `z9hG4bKin${i}`)));
        return;
      }
      outcomes.answered++;
      const ok = createResponse(fwd, 200, 'OK', { toTag: 'callee' });
      later(1000, () => layer.receiveResponse(ok));
      later(1500, () => layer.receiveResponse(ok.clone()));
      // ACK for the 2xx: new branch, forwarded statelessly; then BYE 3 s later.
      later(1020, () => layer.receiveRequest(withCall(ackTpl, i, `z9hG4bKack${i}`)));
      later(4000, () => layer.receiveRequest(withCall(byeTpl, i, `z9hG4bKbye${i}`)));
    },
    onAck(req: SipRequest) { layer.sendAck(forward(req, `z9hG4bKfwdack${req.callId}`), dest); },
    onStrayResponse() { /* a proxy would forward it */ },
  };
  // The TU's callbacks run only once traffic flows, after `layer` is initialised.
  const layer: TransactionLayer = new TransactionLayer({ transport, clock, timers: DEFAULT_TIMERS, log, tu });

  const started = process.hrtime.bigint();
  for (let s = 0; s < seconds; s++) {
    for (let k = 0; k < rate; k++) {
      const i = calls++;
      later(k, () => layer.receiveRequest(withCall(inviteTpl, i, `z9hG4bKin${i}`)));
    }
    clock.advance(1000);
    const size = layer.size;
    if (size.client + size.server > peak.client + peak.server) peak = size;
  }
  clock.advance(10 * 60_000);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.comment(`soak: ${calls} calls in ${seconds} simulated s, ${ms.toFixed(0)} ms wall, peak live ${JSON.stringify(peak)}, outcomes ${JSON.stringify(outcomes)}`);
  t.equal(calls, seconds * rate);
  t.ok(peak.server > 0 && peak.client > 0, 'transactions were live during the run');
  t.same(layer.size, { client: 0, server: 0 }, 'every transaction forgotten');
  t.equal(clock.pending, 0, 'every timer fired or cancelled');
  t.equal(log.at('error').length, 0, 'no internal error');
  t.equal(log.at('warn').length, 0, 'nothing dropped');
});
