/**
 * Stateful forking proxy, RFC 3261 §16, driven end to end through the REAL
 * TransactionLayer (§17, RFC 6026) over a fake transport and a manual clock:
 * the test plays the caller upstream and the phones downstream by injecting
 * requests and responses as the transport would deliver them, and reads what
 * the proxy sent from the fake transport. Nothing sleeps, nothing opens a socket.
 *
 * Every scenario ends with `clean(t, h)`: time is run past every timer
 * (Timer C, H, L, M, D, J, K, the §9.1 64*T1 give-up) and then the proxy
 * must hold no response context, the layer no transaction, the clock no timer.
 */
import t, { type Test } from 'tap';
import type { SipRequest, SipResponse, TransportName } from '../../../src/sip/message/message.js';
import { parseUri } from '../../../src/sip/message/uri.js';
import type { BranchOutcome, ForkPlan, ForkTarget } from '../../../src/sip/proxy/fork-plan.js';
import type { ProxiedDialog } from '../../../src/sip/proxy/proxied-dialog.js';
import { ProxyCore, type InitialRequestRouter, type ProxyInterfaces, type RoutingDecision } from '../../../src/sip/proxy/proxy-core.js';
import { createResponse } from '../../../src/sip/transaction/create-response.js';
import { TransactionLayer } from '../../../src/sip/transaction/transaction-layer.js';
import { DEFAULT_TIMERS, type Destination } from '../../../src/sip/transaction/types.js';
import { FakeTransactionTransport } from '../../helpers/fake-transaction-transport.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { RecordingLogger } from '../../helpers/recording-logger.js';
import { again, makeRequest, parseResponse, sourceFor, type RequestOptions } from '../../helpers/sip-builders.js';

// ---- harness ---------------------------------------------------------------

const PROXY_HOST = '192.0.2.1';
const T1 = DEFAULT_TIMERS.t1;
const TIMER_C = 181_000;
/** Past every timer a scenario can arm (Timer C is the longest, restarted at most a few times). */
const FOREVER = 30 * 60_000;

function portFor(t: TransportName): number {
  return t === 'ws' || t === 'wss' ? 8080 : t === 'tls' ? 5061 : 5060;
}

const interfaces: ProxyInterfaces = {
  viaFor: (t) => ({ transport: t.toUpperCase(), host: PROXY_HOST, port: portFor(t) }),
  isLocalUri: (uri) => uri.isSip && uri.hostAddress === PROXY_HOST,
};

/** Our Record-Route / Route value for a transport, as the proxy writes it. */
function ourRoute(t: TransportName): string {
  return `<sip:${PROXY_HOST}:${portFor(t)};transport=${t};lr>`;
}

function target(n: number, extra: Partial<ForkTarget> = {}): ForkTarget {
  return { uri: parseUri(`sip:ext${n}@198.51.100.${n}:5060`), label: `ext${n}`, ...extra };
}

function addr(n: number): string {
  return `198.51.100.${n}`;
}

const REASONS: Record<number, string> = {
  100: 'Trying', 180: 'Ringing', 183: 'Session Progress', 200: 'OK', 302: 'Moved Temporarily',
  401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 407: 'Proxy Authentication Required', 408: 'Request Timeout',
  480: 'Temporarily Unavailable', 482: 'Loop Detected', 486: 'Busy Here', 487: 'Request Terminated',
  500: 'Server Internal Error', 503: 'Service Unavailable', 600: 'Busy Everywhere', 603: 'Decline',
};

interface ProxyHarnessOptions {
  plan?: ForkPlan;
  router?: InitialRequestRouter;
  timerCMs?: number;
  /** The ProxyCore class to use (a module instance with mocked DNS, see the resolution tests). */
  Core?: typeof ProxyCore;
  onInDialogRequest?: (req: SipRequest) => void;
}

interface Forwarded {
  req: SipRequest;
  dest: Destination;
  at: number;
  fail: () => void;
}

function makeProxy(o: ProxyHarnessOptions = {}) {
  const clock = new ManualClock();
  const start = clock.now();
  const transport = new FakeTransactionTransport(clock);
  const log = new RecordingLogger();
  const routed: SipRequest[] = [];
  const outcomes: BranchOutcome[] = [];
  const finals: number[] = [];
  const router: InitialRequestRouter = o.router ?? ((req) => {
    routed.push(req);
    return { action: 'fork', plan: o.plan ?? { groups: [{ targets: [target(7)] }] }, onOutcome: (x) => outcomes.push(x), onFinal: (s) => finals.push(s) };
  });
  const holder: { proxy?: ProxyCore } = {};
  const layer = new TransactionLayer({
    transport, clock, timers: DEFAULT_TIMERS, log, trying100DelayMs: 0,
    tu: {
      onRequest: (tx, req) => holder.proxy?.onRequest(tx, req),
      onAck: (req) => holder.proxy?.onAck(req),
      onStrayResponse: (res) => holder.proxy?.onStrayResponse(res),
    },
  });
  const Core = o.Core ?? ProxyCore;
  const proxy = new Core({ layer, interfaces, clock, log, router, timerCMs: o.timerCMs, t1Ms: T1, ...(o.onInDialogRequest ? { onInDialogRequest: o.onInDialogRequest } : {}) });
  holder.proxy = proxy;

  /** Requests of a method the proxy sent, one per branch (UDP retransmissions left out). */
  const sentRequests = (method: string): Forwarded[] => {
    const seen = new Set<string>();
    const out: Forwarded[] = [];
    for (const s of transport.sent) {
      if (s.kind !== 'request' || s.message.method !== method) continue;
      const key = `${s.message.topVia.branch ?? ''} ${s.dest.address}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ req: s.message, dest: s.dest, at: s.at - start, fail: () => s.fail() });
    }
    return out;
  };

  const h = {
    clock, transport, log, layer, proxy, routed, outcomes, finals,
    /** ms since the harness started */
    get now(): number { return clock.now() - start; },
    advance(ms: number): void { clock.advance(ms); },
    /** Advance to `ms` after the start. */
    at(ms: number): void { clock.advance(start + ms - clock.now()); },
    receive(req: SipRequest): void { layer.receiveRequest(req); },
    invites: (): Forwarded[] => sentRequests('INVITE'),
    cancels: (): Forwarded[] => sentRequests('CANCEL'),
    sent: sentRequests,
    /** The forwarded request (default INVITE) that went to 198.51.100.n. */
    branch(n: number, method = 'INVITE'): Forwarded {
      const f = sentRequests(method).find((x) => x.dest.address === addr(n));
      if (!f) throw new Error(`no ${method} sent to ${addr(n)}`);
      return f;
    },
    /** A downstream response to a forwarded request, as the network delivers it. */
    reply(fwd: Forwarded | SipRequest, status: number, o2: { toTag?: string; headers?: Array<[string, string]> } = {}): SipResponse {
      const req = 'req' in fwd ? fwd.req : fwd;
      const built = createResponse(req, status, REASONS[status] ?? 'Whatever', status === 100 ? {} : { toTag: o2.toTag ?? `tag-${req.topVia.branch ?? ''}`.slice(0, 40) });
      // §12.1.1: a UAS copies Record-Route into the responses that create a dialog.
      if (status > 100 && status < 300) for (const rr of req.getAll('record-route')) built.append('record-route', rr);
      for (const [n, v] of o2.headers ?? []) built.append(n, v);
      const res = parseResponse(built.toBuffer());
      res.source = sourceFor('udp');
      layer.receiveResponse(res);
      return res;
    },
    /** Responses sent upstream for a method (retransmissions of the same response counted once). */
    upstream(method = 'INVITE'): SipResponse[] {
      const out: SipResponse[] = [];
      for (const s of transport.sent) {
        if (s.kind === 'response' && s.message.cseq.method === method && !out.includes(s.message)) out.push(s.message);
      }
      return out;
    },
    /** Statuses sent upstream, 100 Trying (our own, from the server transaction) included. */
    upstreamStatuses(method = 'INVITE'): number[] {
      return h.upstream(method).map((r) => r.status);
    },
    /** Final responses sent upstream with the time (ms since start) they were first sent. */
    upstreamFinals(method = 'INVITE'): Array<{ status: number; at: number; res: SipResponse }> {
      // A retransmission is the same bytes again (a server transaction keeps
      // what it sent, not the response object).
      const out: Array<{ status: number; at: number; res: SipResponse; bytes: string }> = [];
      for (const s of transport.sent) {
        if (s.kind !== 'response' || s.message.cseq.method !== method || s.message.status < 200) continue;
        const bytes = s.message.toString();
        if (!out.some((x) => x.bytes === bytes)) out.push({ status: s.message.status, at: s.at - start, res: s.message, bytes });
      }
      return out.map(({ status, at, res }) => ({ status, at, res }));
    },
  };
  return h;
}

type Harness = ReturnType<typeof makeProxy>;

let callSeq = 0;
/** An INVITE from the caller (192.0.2.10) as the transport delivers it. */
function callerInvite(o: RequestOptions = {}): SipRequest {
  callSeq++;
  return makeRequest('INVITE', {
    uri: 'sip:bob@pbx.example',
    branch: `z9hG4bK-caller-${callSeq}`,
    callId: `call-${callSeq}@192.0.2.10`,
    cseq: 10,
    headers: ['Contact: <sip:alice@192.0.2.10:5060>', 'Content-Type: application/sdp'],
    body: 'v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\n',
    ...o,
  });
}

/** The caller's CANCEL for an INVITE it sent (§9.1: same branch, Request-URI, Call-ID, From, To, CSeq number). */
function callerCancel(inv: SipRequest): SipRequest {
  return makeRequest('CANCEL', {
    uri: inv.uri.toString(),
    branch: inv.topVia.branch ?? null,
    callId: inv.callId,
    cseq: inv.cseq.seq,
    fromTag: inv.from.tag ?? 'from-tag-1',
  });
}

/** Runs time past every timer, then checks nothing is left behind. */
function clean(t: Test, h: Harness): void {
  h.advance(FOREVER);
  t.equal(h.proxy.activeContexts, 0, 'no response context left');
  t.same(h.layer.size, { client: 0, server: 0 }, 'no transaction left');
  t.equal(h.clock.pending, 0, 'no timer left');
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

// ---- §16.6 request forwarding ----------------------------------------------

t.test('§16.6: the forwarded INVITE MUST carry the target as Request-URI (step 2), Max-Forwards decremented (step 3), our Via on top with a z9hG4bK branch (step 8), and go to the target (step 7)', async (t) => {
  const h = makeProxy();
  const inv = callerInvite({ maxForwards: 42, headers: ['Proxy-Authorization: Digest username="alice", realm="pbx.example", nonce="n", uri="sip:bob@pbx.example", response="0123"'] });
  h.receive(inv);
  t.equal(h.routed.length, 1, 'the router is asked once');
  const [fwd] = h.invites();
  if (!fwd) throw new Error('nothing forwarded');
  t.equal(fwd.req.uri.toString(), 'sip:ext7@198.51.100.7:5060', 'Request-URI is the target');
  t.same(fwd.dest, { transport: 'udp', address: addr(7), port: 5060 }, 'sent to the target');
  t.equal(fwd.req.get('max-forwards'), '41');
  const vias = fwd.req.vias;
  t.equal(vias.length, 2, 'our Via on top of the caller’s');
  t.equal(vias[0]?.host, PROXY_HOST);
  t.equal(vias[0]?.port, 5060);
  t.equal(vias[0]?.transport, 'UDP');
  t.match(vias[0]?.branch ?? '', /^z9hG4bK/, '"MUST always begin with the characters z9hG4bK"');
  t.not(vias[0]?.branch, inv.topVia.branch, 'a branch of our own');
  t.equal(fwd.req.getAll('via')[1], inv.getAll('via')[0], 'the caller’s Via is kept unchanged below ours');
  for (const name of ['from', 'to', 'call-id', 'cseq', 'contact', 'content-type']) t.equal(fwd.req.get(name), inv.get(name), `${name} unchanged`);
  t.equal(fwd.req.body.toString(), inv.body.toString(), 'body unchanged');
  t.equal(fwd.req.get('proxy-authorization'), inv.get('proxy-authorization'),
    'Proxy-Authorization is passed through: consuming our own credentials is the authenticator’s job (router), not the core’s');
  t.same(h.upstreamStatuses(), [100], '§16.2: the server transaction answers 100 Trying at once');
  h.reply(fwd, 200);
  t.same(h.upstreamStatuses(), [100, 200]);
  clean(t, h);
});

t.test('§16.6 step 3: a request without Max-Forwards MUST get one, which SHOULD be 70', async (t) => {
  const h = makeProxy();
  const inv = callerInvite();
  inv.remove('max-forwards');
  h.receive(inv);
  t.equal(h.invites()[0]?.req.get('max-forwards'), '70');
  h.reply(h.branch(7), 486);
  clean(t, h);
});

t.test('§16.6 step 4: the proxy adds a Record-Route on top that is a SIP URI of its own with lr, above those already present', async (t) => {
  const h = makeProxy();
  h.receive(callerInvite({ headers: ['Record-Route: <sip:edge.example;lr>'] }));
  const rr = h.branch(7).req.getAll('record-route');
  t.same(rr, [ourRoute('udp'), '<sip:edge.example;lr>']);
  h.reply(h.branch(7), 200);
  t.same(h.upstream()[1]?.getAll('record-route'), rr, 'the 2xx carries the route set back to the caller');
  clean(t, h);
});

t.test('RFC 5658: when the request leaves on another transport than it came in on, the proxy MUST Record-Route twice (outbound interface on top, inbound below)', async (t) => {
  const h = makeProxy();
  h.receive(callerInvite({ transport: 'ws', viaTransport: 'WS', sentBy: 'df7jal23ls0d.invalid' }));
  const fwd = h.branch(7);
  t.same(fwd.req.getAll('record-route'), [ourRoute('udp'), ourRoute('ws')]);
  t.equal(fwd.req.topVia.transport, 'UDP', 'our Via names the outbound transport');
  h.reply(fwd, 486);
  clean(t, h);
});

t.test('§16.6 step 4: Record-Route is added only to requests that can create a dialog; a MESSAGE is forwarded without one', async (t) => {
  const h = makeProxy();
  h.receive(makeRequest('MESSAGE', { uri: 'sip:bob@pbx.example', branch: 'z9hG4bK-msg-1', callId: 'msg-1' }));
  const fwd = h.branch(7, 'MESSAGE');
  t.equal(fwd.req.get('record-route'), undefined);
  t.equal(fwd.req.get('max-forwards'), '69');
  h.reply(fwd.req, 200);
  t.same(h.upstreamStatuses('MESSAGE'), [200], 'non-INVITE: no 100 of our own, the 200 is forwarded');
  clean(t, h);
});

t.test('RFC 3327 §5.3: Path values of a registration MUST become Route headers in order, and the request MUST go to the first of them', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(7, { path: ['<sip:203.0.113.5:5070;lr>', '<sip:203.0.113.6;lr>'] })] }] } });
  h.receive(callerInvite());
  const [fwd] = h.invites();
  if (!fwd) throw new Error('nothing forwarded');
  t.same(fwd.req.getAll('route'), ['<sip:203.0.113.5:5070;lr>', '<sip:203.0.113.6;lr>']);
  t.equal(fwd.req.uri.toString(), 'sip:ext7@198.51.100.7:5060', 'the Request-URI stays the contact');
  t.same(fwd.dest, { transport: 'udp', address: '203.0.113.5', port: 5070 }, '§16.6 step 7: the next hop is the first Route');
  h.reply(fwd, 200);
  clean(t, h);
});

t.test('ForkTarget.dest (a registered flow) is used as is, without resolving the Request-URI', async (t) => {
  const dest: Destination = { transport: 'tcp', address: '203.0.113.77', port: 40001, connectionId: 'tcp-9' };
  const h = makeProxy({ plan: { groups: [{ targets: [target(7, { dest })] }] } });
  h.receive(callerInvite());
  const [fwd] = h.invites();
  t.same(fwd?.dest, dest);
  t.equal(fwd?.req.topVia.transport, 'TCP');
  const rr = fwd?.req.getAll('record-route') ?? [];
  t.equal(rr.length, 2, 'UDP in, TCP out: double Record-Route');
  // The outbound value may carry a flow token as user part (RFC 5626 §5.3).
  t.match(rr[0] ?? '', /^<sip:(?:[^@;>]+@)?192\.0\.2\.1:5060;transport=tcp;lr>$/, 'outbound (TCP) value on top');
  t.equal(rr[1], ourRoute('udp'), 'inbound (UDP) value below');
  if (fwd) h.reply(fwd.req, 200);
  clean(t, h);
});

t.test('§16.4: a first Route value that designates this proxy MUST be removed; the next Route is then the next hop (loose routing)', async (t) => {
  const h = makeProxy();
  h.receive(callerInvite({ routes: [ourRoute('udp'), '<sip:203.0.113.9;lr>'] }));
  const [fwd] = h.invites();
  t.same(fwd?.req.getAll('route'), ['<sip:203.0.113.9;lr>']);
  t.same(fwd?.dest, { transport: 'udp', address: '203.0.113.9', port: 5060 });
  if (fwd) h.reply(fwd, 486);
  clean(t, h);
});

t.test('§16.4: a Request-URI holding our Record-Route value (a strict router upstream) MUST be replaced by the last Route value, which is removed', async (t) => {
  const h = makeProxy();
  h.receive(callerInvite({ uri: `sip:${PROXY_HOST}:5060;transport=udp;lr`, routes: ['<sip:bob@pbx.example>'] }));
  t.equal(h.routed[0]?.uri.toString(), 'sip:bob@pbx.example', 'the router sees the restored Request-URI');
  t.equal(h.routed[0]?.get('route'), undefined, 'and no Route');
  h.reply(h.branch(7), 486);
  clean(t, h);
});

// ---- §16.7 response processing ---------------------------------------------

t.test('§16.7 step 5: a 100 Trying from downstream is absorbed; 180 and 183 MUST be forwarded upstream immediately with our Via removed (step 3)', async (t) => {
  const h = makeProxy();
  const inv = callerInvite();
  h.receive(inv);
  const fwd = h.branch(7);
  h.reply(fwd, 100);
  t.same(h.upstreamStatuses(), [100], 'only our own 100');
  h.reply(fwd, 180);
  h.reply(fwd, 183);
  t.same(h.upstreamStatuses(), [100, 180, 183]);
  const up = h.upstream()[1];
  t.same(up?.getAll('via'), inv.getAll('via'), 'our Via removed: the caller’s Via is on top');
  t.equal(up?.to.tag !== undefined, true, 'the phone’s To tag is kept (early dialog)');
  h.reply(fwd, 200);
  clean(t, h);
});

t.test('§16.7 step 5 / step 10: a 2xx MUST be forwarded immediately and a CANCEL MUST be generated for every other pending branch, matching it per §9.1', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1), target(2), target(3)] }] } });
  h.receive(callerInvite());
  for (const n of [1, 2, 3]) h.reply(h.branch(n), 180);
  h.advance(3000);
  h.reply(h.branch(2), 200);
  t.same(h.upstreamStatuses(), [100, 180, 180, 180, 200], '200 forwarded at once, without waiting for the others');
  const cancels = h.cancels();
  t.same(cancels.map((c) => c.dest.address).sort(), [addr(1), addr(3)], 'the two other branches are cancelled, not the answering one');
  for (const n of [1, 3]) {
    const inv = h.branch(n).req;
    const c = h.branch(n, 'CANCEL');
    t.equal(c.req.uri.toString(), inv.uri.toString(), `CANCEL ${n}: same Request-URI`);
    t.same(c.req.getAll('via'), [inv.getAll('via')[0]], `CANCEL ${n}: a single Via equal to the INVITE’s top Via (same branch)`);
    for (const name of ['call-id', 'from', 'to']) t.equal(c.req.get(name), inv.get(name), `CANCEL ${n}: same ${name}`);
    t.same(c.req.cseq, { seq: inv.cseq.seq, method: 'CANCEL' }, `CANCEL ${n}: same CSeq number`);
    t.same(c.dest, h.branch(n).dest, `CANCEL ${n}: same destination`);
  }
  // The cancelled phones answer 200 to the CANCEL and 487 to the INVITE.
  for (const n of [1, 3]) { h.reply(h.branch(n, 'CANCEL').req, 200); h.reply(h.branch(n), 487); }
  t.same(h.upstreamStatuses(), [100, 180, 180, 180, 200], '487s of cancelled branches are not forwarded');
  t.equal(h.upstreamFinals().length, 1);
  t.same(h.outcomes.map((o) => [o.target.label, o.kind]), [['ext2', 'answered'], ['ext1', 'cancelled'], ['ext3', 'cancelled']]);
  t.same(h.finals, [200]);
  clean(t, h);
});

t.test('§16.7 step 5: a second 2xx from another fork MUST also be forwarded upstream (the caller sorts out the dialogs)', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1), target(2)] }] } });
  h.receive(callerInvite());
  h.reply(h.branch(1), 180);
  h.reply(h.branch(2), 180);
  h.reply(h.branch(1), 200, { toTag: 'phone-1' });
  h.reply(h.branch(2), 200, { toTag: 'phone-2' }); // crossed our CANCEL on the wire
  const finals = h.upstreamFinals();
  t.same(finals.map((f) => [f.status, f.res.to.tag]), [[200, 'phone-1'], [200, 'phone-2']]);
  t.same(finals[1]?.res.getAll('via'), h.branch(2).req.getAll('via').slice(1), 'our Via removed from the second 2xx too');
  clean(t, h);
});

t.test('§17.2.3: a retransmitted INVITE is absorbed by the server transaction (our last provisional is re-sent) and never forwarded or routed again', async (t) => {
  const h = makeProxy();
  const inv = callerInvite();
  h.receive(inv);
  h.reply(h.branch(7), 180);
  h.advance(500);
  h.receive(again(inv));
  t.equal(h.routed.length, 1);
  t.equal(h.invites().length, 1);
  t.same(h.transport.responses(180).length, 2, 'the 180 re-sent upstream');
  h.reply(h.branch(7), 200);
  clean(t, h);
});

t.test('RFC 6026 §8.4: a retransmission of the 2xx, received while the client transaction is "Accepted", MUST be forwarded upstream again', async (t) => {
  const h = makeProxy();
  h.receive(callerInvite());
  const ok = h.reply(h.branch(7), 200);
  h.advance(500);
  h.layer.receiveResponse(again(ok));
  t.same(h.upstreamStatuses(), [100, 200, 200]);
  clean(t, h);
});

t.test('§9.1: after a 2xx, a branch that sent no provisional MUST NOT be CANCELled until its provisional arrives; then it is, and its late 180 is not forwarded', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1), target(2)] }] } });
  h.receive(callerInvite());
  h.reply(h.branch(1), 200);
  t.same(h.cancels(), [], 'no CANCEL while branch 2 has said nothing');
  h.advance(2000);
  h.reply(h.branch(2), 180);
  t.same(h.cancels().map((c) => [c.dest.address, c.at]), [[addr(2), 2000]], 'CANCEL sent as soon as the 180 arrives');
  t.same(h.upstreamStatuses(), [100, 200], 'the 180 of a cancelled branch is not forwarded after the 2xx');
  h.reply(h.branch(2), 487);
  clean(t, h);
});

t.test('parallel fork: 486 on one branch and 200 on the other MUST give the caller the 200 (and only the 200)', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1), target(2)] }] } });
  h.receive(callerInvite());
  h.reply(h.branch(1), 486);
  t.same(h.upstreamStatuses(), [100], 'a 4xx is not forwarded while another branch is pending');
  h.reply(h.branch(2), 180);
  h.reply(h.branch(2), 200);
  t.same(h.upstreamStatuses(), [100, 180, 200]);
  t.equal(h.transport.requests('ACK').length, 1, 'the 486 was ACKed hop by hop by the client transaction');
  clean(t, h);
});

interface BestCase {
  name: string;
  replies: Array<number | [number, Array<[string, string]>]>;
  expect: number;
  check?: (t: Test, res: SipResponse) => void;
}

const BEST: BestCase[] = [
  { name: 'the lowest class SHOULD be chosen: 302 beats 486 and 404', replies: [486, 302, 404], expect: 302 },
  { name: 'a 6xx MUST be chosen over lower classes', replies: [302, 603, 486], expect: 603 },
  { name: 'a 6xx MUST be chosen even when it arrives last', replies: [404, 486, 600], expect: 600 },
  { name: 'within one class, the first response is kept', replies: [486, 404], expect: 486 },
  { name: '4xx beats 5xx', replies: [500, 404], expect: 404 },
  { name: 'a lone 503 SHOULD be turned into a 500 ("If the only response that was received is a 503")', replies: [503], expect: 500 },
  { name: 'two 503s still become 500: a 503 must not make the caller think the proxy is overloaded', replies: [503, 503], expect: 500 },
  { name: 'a 503 loses to a 4xx', replies: [503, 486], expect: 486 },
  {
    name: 'step 7: the WWW-Authenticate and Proxy-Authenticate values of all 401/407 MUST be merged into the chosen one',
    replies: [
      [401, [['WWW-Authenticate', 'Digest realm="a.example", nonce="1"']]],
      [407, [['Proxy-Authenticate', 'Digest realm="b.example", nonce="2"']]],
      [401, [['WWW-Authenticate', 'Digest realm="c.example", nonce="3"']]],
    ],
    expect: 401,
    check: (t, res) => {
      t.same(res.getAll('www-authenticate'), ['Digest realm="a.example", nonce="1"', 'Digest realm="c.example", nonce="3"']);
      t.same(res.getAll('proxy-authenticate'), ['Digest realm="b.example", nonce="2"']);
    },
  },
  {
    name: 'a 4xx that affects resubmission (401, 407, 415, 420, 484) SHOULD be preferred within the 4xx class, and challenges still merged',
    replies: [486, [407, [['Proxy-Authenticate', 'Digest realm="b.example", nonce="2"']]], 404],
    expect: 407,
    check: (t, res) => t.same(res.getAll('proxy-authenticate'), ['Digest realm="b.example", nonce="2"']),
  },
];

for (const c of BEST) {
  t.test(`§16.7 step 6 (all branches fail): ${c.name}`, async (t) => {
    const targets = c.replies.map((_, i) => target(i + 1));
    const h = makeProxy({ plan: { groups: [{ targets }] } });
    const inv = callerInvite();
    h.receive(inv);
    c.replies.forEach((r, i) => {
      const [status, headers] = typeof r === 'number' ? [r, []] : r;
      h.reply(h.branch(i + 1), status, { headers });
    });
    const finals = h.upstreamFinals();
    t.same(finals.map((f) => f.status), [c.expect], 'one final response, the best');
    const res = finals[0]?.res;
    if (res) {
      t.same(res.getAll('via'), inv.getAll('via'), 'our Via removed');
      c.check?.(t, res);
    }
    clean(t, h);
  });
}

// ---- serial hunting (ForkPlan groups) ----------------------------------------

t.test('serial hunt: when group 1 answers 486, group 2 MUST be started at once', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1)], timeoutMs: 20_000 }, { targets: [target(2)], timeoutMs: 20_000 }] } });
  h.receive(callerInvite());
  t.same(h.invites().map((f) => f.dest.address), [addr(1)], 'only group 1 rings first');
  h.advance(4000);
  h.reply(h.branch(1), 486);
  t.same(h.invites().map((f) => [f.dest.address, f.at]), [[addr(1), 0], [addr(2), 4000]]);
  t.same(h.upstreamStatuses(), [100], 'the 486 is not forwarded while the hunt goes on');
  h.reply(h.branch(2), 200);
  t.same(h.upstreamStatuses(), [100, 200]);
  t.same(h.outcomes.map((o) => [o.target.label, o.kind, o.status, o.elapsedMs]), [['ext1', 'busy', 486, 4000], ['ext2', 'answered', 200, 0]]);
  clean(t, h);
});

t.test('serial hunt: a group that does not answer in time is CANCELled (after its provisional) and group 2 starts AT the timeout, not after the 487', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1)], timeoutMs: 15_000 }, { targets: [target(2)], timeoutMs: 15_000 }] } });
  h.receive(callerInvite());
  h.advance(1000);
  h.reply(h.branch(1), 180);
  h.at(15_000 - 1);
  t.same(h.cancels(), [], 'nothing before the timeout');
  t.equal(h.invites().length, 1);
  h.at(15_000);
  t.same(h.cancels().map((c) => [c.dest.address, c.at]), [[addr(1), 15_000]], 'CANCEL at the timeout');
  t.same(h.invites().map((f) => [f.dest.address, f.at]), [[addr(1), 0], [addr(2), 15_000]], 'group 2 at the timeout');
  h.advance(300);
  h.reply(h.branch(1, 'CANCEL').req, 200);
  h.reply(h.branch(1), 487);
  t.same(h.upstreamStatuses(), [100, 180], 'the 487 of the hunted branch is not forwarded');
  h.reply(h.branch(2), 180);
  h.reply(h.branch(2), 200);
  t.same(h.upstreamStatuses(), [100, 180, 180, 200]);
  t.same(h.outcomes.map((o) => [o.target.label, o.kind]), [['ext1', 'no-answer'], ['ext2', 'answered']]);
  clean(t, h);
});

t.test('serial hunt: §9.1 a timed-out branch with no provisional is not CANCELled (yet); group 2 starts anyway; its late 180 triggers the CANCEL', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1)], timeoutMs: 10_000 }, { targets: [target(2)] }] } });
  h.receive(callerInvite());
  h.at(10_000);
  t.same(h.cancels(), []);
  t.equal(h.invites().length, 2, 'group 2 started');
  h.advance(1000);
  h.reply(h.branch(1), 180);
  t.same(h.cancels().map((c) => [c.dest.address, c.at]), [[addr(1), 11_000]]);
  t.same(h.upstreamStatuses(), [100], 'a branch given up on forwards nothing');
  h.reply(h.branch(1), 487);
  h.reply(h.branch(2), 486);
  t.same(h.upstreamFinals().map((f) => f.status), [486]);
  clean(t, h);
});

t.test('serial hunt: a 183 (early media) is not an answer and MUST NOT stop or reset the no-answer timer', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1)], timeoutMs: 20_000 }, { targets: [target(2)], timeoutMs: 20_000 }] } });
  h.receive(callerInvite());
  h.at(5000);
  h.reply(h.branch(1), 183);
  h.at(12_000);
  h.reply(h.branch(1), 180);
  h.at(20_000);
  t.same(h.cancels().map((c) => c.at), [20_000]);
  t.same(h.invites().map((f) => f.at), [0, 20_000]);
  h.reply(h.branch(1), 487);
  h.at(40_000);
  t.same(h.upstreamFinals().map((f) => [f.status, f.at]), [[480, 40_000]], 'both groups timed out: 480');
  h.reply(h.branch(2), 487);
  clean(t, h);
});

t.test('§16.6 step 11 / §16.7 step 2: without a plan timeout, Timer C (> 3 min) bounds the branch and every provisional MUST reset it', async (t) => {
  const h = makeProxy();
  h.receive(callerInvite());
  h.at(1000);
  h.reply(h.branch(7), 180);
  h.at(100_000);
  h.reply(h.branch(7), 183);
  h.at(100_000 + TIMER_C - 1);
  t.same(h.cancels(), [], 'Timer C restarted by the 183');
  h.at(100_000 + TIMER_C);
  t.same(h.cancels().map((c) => c.at), [100_000 + TIMER_C], '"the proxy MUST ... terminate the client transaction ... by generating CANCEL"');
  t.same(h.upstreamFinals().map((f) => f.status), [480], '"and then MUST be treated as a 408": reported as 480 to a caller');
  h.reply(h.branch(7), 487);
  clean(t, h);
});

t.test('§16.7 step 5: a 6xx stops the hunt: pending branches SHOULD be cancelled and no new branch MUST be created; the 6xx is forwarded', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1), target(2)], timeoutMs: 20_000 }, { targets: [target(3)] }] } });
  h.receive(callerInvite());
  h.reply(h.branch(2), 180);
  h.advance(2000);
  h.reply(h.branch(1), 603);
  t.same(h.cancels().map((c) => c.dest.address), [addr(2)]);
  t.same(h.upstreamFinals().map((f) => [f.status, f.at]), [[603, 2000]]);
  h.advance(30_000);
  t.same(h.invites().map((f) => f.dest.address), [addr(1), addr(2)], 'group 2 never started');
  h.reply(h.branch(2), 487);
  t.equal(h.upstreamFinals().length, 1);
  clean(t, h);
});

t.test('ForkPlan.stopOn: a final status it names ends the hunt (the rest of the group still rings), and the caller gets it', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1), target(2)] }, { targets: [target(3)] }], stopOn: (s) => s === 486 } });
  h.receive(callerInvite());
  h.reply(h.branch(1), 486);
  t.equal(h.upstreamFinals().length, 0, 'branch 2 still rings');
  h.reply(h.branch(2), 404);
  t.same(h.invites().map((f) => f.dest.address), [addr(1), addr(2)], 'group 2 not started');
  t.same(h.upstreamFinals().map((f) => f.status), [486]);
  clean(t, h);
});

t.test('ForkPlan.stopOn is checked against each response, not the best so far: a 486 in group 2 stops the hunt even after a 480 in group 1', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1)] }, { targets: [target(2)] }, { targets: [target(3)] }], stopOn: (s) => s === 486 } });
  h.receive(callerInvite());
  h.reply(h.branch(1), 480);
  h.reply(h.branch(2), 486);
  t.same(h.invites().map((f) => f.dest.address), [addr(1), addr(2)], 'group 3 not started');
  t.equal(h.upstreamFinals().length, 1);
  clean(t, h);
});

t.test('ForkPlan.exhausted: when every branch ended without a response of its own, the plan’s response is sent', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1)], timeoutMs: 10_000 }, { targets: [target(2)], timeoutMs: 10_000 }], exhausted: { status: 404, reason: 'Nobody Answered' } } });
  h.receive(callerInvite());
  h.at(20_000);
  const [fin] = h.upstreamFinals();
  t.same([fin?.status, fin?.res.reason, fin?.at], [404, 'Nobody Answered', 20_000]);
  t.same(h.finals, [404], 'onFinal told');
  clean(t, h);
});

t.test('ForkPlan.exhausted is not used when a phone answered with a response of its own (486 beats timeouts)', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1)], timeoutMs: 10_000 }, { targets: [target(2)], timeoutMs: 10_000 }], exhausted: { status: 404, reason: 'Nobody Answered' } } });
  h.receive(callerInvite());
  h.reply(h.branch(1), 486);
  h.at(20_000);
  t.same(h.upstreamFinals().map((f) => f.status), [486]);
  clean(t, h);
});

t.test('ForkPlan.overallTimeoutMs caps the whole hunt: pending branches are CANCELled and no further group starts', async (t) => {
  const h = makeProxy({ plan: { groups: [1, 2, 3].map((n) => ({ targets: [target(n)], timeoutMs: 20_000 })), overallTimeoutMs: 30_000 } });
  h.receive(callerInvite());
  h.reply(h.branch(1), 180);
  h.at(21_000);
  h.reply(h.branch(2), 180);
  h.at(30_000);
  t.same(h.cancels().map((c) => [c.dest.address, c.at]), [[addr(1), 20_000], [addr(2), 30_000]]);
  t.same(h.upstreamFinals().map((f) => [f.status, f.at]), [[480, 30_000]]);
  h.at(60_000);
  t.equal(h.invites().length, 2, 'group 3 never started');
  clean(t, h);
});

t.test('an empty plan answers the exhausted response (480 by default) at once', async (t) => {
  for (const plan of [{ groups: [] }, { groups: [{ targets: [] }] }, { groups: [], exhausted: { status: 404, reason: 'No Such Group' } }] as ForkPlan[]) {
    const h = makeProxy({ plan });
    h.receive(callerInvite());
    t.same(h.upstreamFinals().map((f) => f.status), [plan.exhausted?.status ?? 480]);
    t.equal(h.invites().length, 0);
    clean(t, h);
  }
});

t.test('empty groups in a plan are skipped', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [] }, { targets: [target(2)] }] } });
  h.receive(callerInvite());
  t.same(h.invites().map((f) => f.dest.address), [addr(2)]);
  h.reply(h.branch(2), 200);
  clean(t, h);
});

// ---- §16.10 CANCEL from upstream ----------------------------------------------

t.test('§16.10: a CANCEL MUST be answered 200 at once; CANCELs go to branches that sent a provisional (§9.1), the rest when theirs arrives; 487 upstream; no new group', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1), target(2)], timeoutMs: 30_000 }, { targets: [target(3)] }] } });
  const inv = callerInvite();
  h.receive(inv);
  h.reply(h.branch(1), 180);
  h.at(2000);
  h.receive(callerCancel(inv));
  t.same(h.upstreamStatuses('CANCEL'), [200], '"the element MUST immediately return a 200 (OK) response to the CANCEL"');
  t.same(h.cancels().map((c) => c.dest.address), [addr(1)], 'only the branch with a provisional is CANCELled now');
  h.reply(h.branch(1, 'CANCEL').req, 200);
  h.reply(h.branch(1), 487);
  t.equal(h.upstreamFinals().length, 0, 'branch 2 still pending');
  h.at(3000);
  h.reply(h.branch(2), 180);
  t.same(h.cancels().map((c) => [c.dest.address, c.at]), [[addr(1), 2000], [addr(2), 3000]]);
  h.reply(h.branch(2), 487);
  t.same(h.upstreamFinals().map((f) => [f.status, f.at]), [[487, 3000]]);
  t.equal(h.invites().length, 2, 'group 2 never started');
  t.same(h.finals, [487]);
  clean(t, h);
});

t.test('§16.10: a 2xx that crosses the upstream CANCEL MUST still be forwarded (and no 487 sent)', async (t) => {
  const h = makeProxy();
  const inv = callerInvite();
  h.receive(inv);
  h.reply(h.branch(7), 180);
  h.receive(callerCancel(inv));
  h.reply(h.branch(7), 200);
  t.same(h.upstreamFinals().map((f) => f.status), [200]);
  clean(t, h);
});

t.test('§16.10 / §16.2: a CANCEL that matches no INVITE transaction is answered 481 and nothing is forwarded', async (t) => {
  const h = makeProxy();
  h.receive(callerCancel(callerInvite()));
  t.same(h.upstreamStatuses('CANCEL'), [481]);
  t.equal(h.transport.requests().length, 0);
  t.equal(h.routed.length, 0);
  clean(t, h);
});

t.test('§16.10: a CANCEL after the final response was sent gets 200 and changes nothing', async (t) => {
  const h = makeProxy();
  const inv = callerInvite();
  h.receive(inv);
  h.reply(h.branch(7), 486);
  h.receive(callerCancel(inv));
  t.same(h.upstreamStatuses('CANCEL'), [200]);
  t.same(h.upstreamFinals().map((f) => f.status), [486]);
  t.same(h.cancels(), []);
  clean(t, h);
});

t.test('a CANCEL arriving while an async router is still deciding: 200 for the CANCEL, then 487 for the INVITE, and nothing forwarded', async (t) => {
  let decide: ((d: RoutingDecision) => void) | undefined;
  const h = makeProxy({ router: () => new Promise<RoutingDecision>((r) => { decide = r; }) });
  const inv = callerInvite();
  h.receive(inv);
  h.receive(callerCancel(inv));
  t.same(h.upstreamStatuses('CANCEL'), [200]);
  decide?.({ action: 'fork', plan: { groups: [{ targets: [target(1)] }] } });
  await flush();
  t.same(h.upstreamFinals().map((f) => f.status), [487]);
  t.equal(h.invites().length, 0);
  clean(t, h);
});

// ---- §16.3 request validation ---------------------------------------------------

const INVALID: Array<{ name: string; opts: RequestOptions; status: number; check?: (t: Test, res: SipResponse) => void }> = [
  { name: 'Max-Forwards 0 MUST NOT be forwarded: 483 (step 3)', opts: { maxForwards: 0 }, status: 483 },
  { name: 'a Request-URI scheme not understood SHOULD get 416 (step 2)', opts: { uri: 'im:bob@pbx.example' }, status: 416 },
  {
    name: 'a Proxy-Require option not understood MUST get 420 with an Unsupported header listing it (step 5)',
    opts: { headers: ['Proxy-Require: foo, bar'] },
    status: 420,
    check: (t, res) => t.equal(res.get('unsupported'), 'foo, bar'),
  },
];

for (const c of INVALID) {
  t.test(`§16.3: ${c.name}`, async (t) => {
    const h = makeProxy();
    h.receive(callerInvite(c.opts));
    const [fin] = h.upstreamFinals();
    t.equal(fin?.status, c.status);
    if (fin) c.check?.(t, fin.res);
    t.equal(h.routed.length, 0, 'the router is not asked');
    t.equal(h.transport.requests().length, 0, 'nothing forwarded');
    clean(t, h);
  });
}

t.test('§16.3 step 3: Max-Forwards 0 gets 483 for a non-INVITE too', async (t) => {
  const h = makeProxy();
  h.receive(makeRequest('OPTIONS', { uri: 'sip:bob@pbx.example', branch: 'z9hG4bK-opt-mf0', maxForwards: 0 }));
  t.same(h.upstreamStatuses('OPTIONS'), [483]);
  clean(t, h);
});

t.test('§16.3 step 4: a forwarded request that comes straight back to us unchanged (our Via on top) MUST be answered 482', async (t) => {
  // A Request-URI that routes to itself (an external number forwarded as is):
  // the looped copy has the very Request-URI we hashed into our branch.
  const self = 'sip:ext7@198.51.100.7:5060';
  const h = makeProxy();
  const inv = callerInvite({ uri: self });
  h.receive(inv);
  const fwd = h.branch(7);
  const looped = again(fwd.req);
  looped.source = sourceFor('udp');
  h.receive(looped);
  t.same(h.upstream().filter((r) => r.topVia.branch === fwd.req.topVia.branch).map((r) => r.status), [100, 482], 'the looped copy is answered 482');
  t.equal(h.routed.length, 1, 'the loop is not routed again');
  t.equal(h.invites().length, 1, 'and not forwarded again');
  // The 482 comes back to our branch as its response.
  h.reply(fwd, 482);
  t.same(h.upstreamFinals().filter((f) => f.res.topVia.branch === inv.topVia.branch).map((f) => f.status), [482], 'and reaches the caller');
  clean(t, h);
});

t.test('§16.3 step 4: a request that loops back through another hop (our Via below the top one) MUST be answered 482', async (t) => {
  const self = 'sip:ext7@198.51.100.7:5060';
  const h = makeProxy();
  h.receive(callerInvite({ uri: self }));
  const fwd = h.branch(7);
  const looped = again(fwd.req);
  looped.prepend('via', 'SIP/2.0/UDP 203.0.113.50:5060;branch=z9hG4bK-other-hop');
  looped.set('max-forwards', '68');
  looped.source = sourceFor('udp');
  h.receive(looped);
  t.same(h.upstream().filter((r) => r.topVia.branch === 'z9hG4bK-other-hop').map((r) => r.status), [100, 482]);
  t.equal(h.routed.length, 1);
  h.reply(fwd, 482);
  clean(t, h);
});

t.test('§16.3 step 4: a loop whose copies come back carrying our Route (a Path pointing at ourselves) MUST still be detected, at the latest on the second pass', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(7, { path: [ourRoute('udp')] })] }] } });
  h.receive(callerInvite());
  const feedBack = (): SipRequest => {
    const fwds = h.invites().filter((f) => f.dest.address === PROXY_HOST);
    const last = fwds[fwds.length - 1];
    if (!last) throw new Error('nothing sent to ourselves');
    const copy = again(last.req);
    copy.source = sourceFor('udp');
    h.receive(copy);
    return copy;
  };
  t.equal(h.invites()[0]?.dest.address, PROXY_HOST, 'the Path sends it to ourselves');
  feedBack(); // first pass: the Request-URI changed (bob@pbx.example → ext7), a spiral
  t.equal(h.routed.length, 2);
  const second = feedBack();
  t.equal(h.routed.length, 2, 'the second pass is not routed');
  t.same(h.upstream().filter((r) => r.topVia.branch === second.topVia.branch).map((r) => r.status), [100, 482]);
  t.equal(h.invites().length, 2, 'not forwarded a third time');
  // Unwind: each hop gets the 482 from the next.
  for (let i = 0; i < 5; i++) {
    const pending = h.invites().filter((f) => !h.upstream().some((r) => r.status >= 200 && r.topVia.branch === f.req.topVia.branch));
    const next = pending[pending.length - 1];
    if (!next) break;
    h.reply(next, 482);
  }
  t.same(h.upstreamFinals().filter((f) => f.res.getAll('via').length === 1).map((f) => f.status), [482], 'the caller gets the 482');
  clean(t, h);
});

t.test('§16.3 step 4: a spiral straight back to us (our Via on top, Request-URI changed by our own routing) is NOT a loop', async (t) => {
  const h = makeProxy();
  h.receive(callerInvite()); // sip:bob@pbx.example → sip:ext7@198.51.100.7:5060
  const spiral = again(h.branch(7).req);
  spiral.source = sourceFor('udp');
  h.receive(spiral);
  t.equal(h.routed.length, 2, 'routed again');
  t.equal(h.upstream().filter((r) => r.status === 482).length, 0);
  for (const f of h.invites()) h.reply(f, 486);
  clean(t, h);
});

t.test('§16.3 step 4: a spiral (the request comes back with a different Request-URI) is NOT a loop and is routed again', async (t) => {
  const h = makeProxy();
  h.receive(callerInvite({ uri: 'sip:ext7@198.51.100.7:5060' }));
  const fwd = h.branch(7);
  const spiral = again(fwd.req);
  spiral.uri = parseUri('sip:operator@pbx.example');
  spiral.prepend('via', 'SIP/2.0/UDP 203.0.113.50:5060;branch=z9hG4bK-spiral-hop');
  spiral.source = sourceFor('udp');
  h.receive(spiral);
  t.equal(h.routed.length, 2, 'routed again');
  t.equal(h.upstream().filter((r) => r.status === 482).length, 0);
  for (const f of h.invites()) h.reply(f, 486);
  clean(t, h);
});

// ---- in-dialog requests, ACK for 2xx, stray responses ----------------------------

function inDialog(method: string, o: RequestOptions = {}): SipRequest {
  callSeq++;
  return makeRequest(method, {
    uri: 'sip:bob@198.51.100.7:5060',
    branch: `z9hG4bK-dlg-${callSeq}`,
    callId: `dlg-${callSeq}@192.0.2.10`,
    toTag: 'callee-tag',
    cseq: 11,
    routes: [ourRoute('udp')],
    ...o,
  });
}

t.test('§16.4 / §16.6: an in-dialog request with our Route has the Route popped, is forwarded to the Request-URI with Max-Forwards decremented, and gets NO Record-Route; the router is not asked', async (t) => {
  const h = makeProxy();
  const bye = inDialog('BYE', { headers: ['Record-Route: <sip:should-not-grow.example;lr>'] });
  h.receive(bye);
  t.equal(h.routed.length, 0);
  const fwd = h.branch(7, 'BYE');
  t.equal(fwd.req.uri.toString(), 'sip:bob@198.51.100.7:5060', 'Request-URI unchanged (the remote target)');
  t.same(fwd.req.getAll('route'), [], 'our Route popped');
  t.same(fwd.req.getAll('record-route'), ['<sip:should-not-grow.example;lr>'], 'no Record-Route of ours');
  t.equal(fwd.req.get('max-forwards'), '69');
  t.equal(fwd.req.topVia.host, PROXY_HOST);
  t.same(fwd.dest, { transport: 'udp', address: addr(7), port: 5060 });
  h.reply(fwd.req, 200);
  t.same(h.upstreamStatuses('BYE'), [200]);
  clean(t, h);
});

t.test('in-dialog: both of our double Record-Route values (RFC 5658) are popped, and a further Route is the next hop', async (t) => {
  const h = makeProxy();
  h.receive(inDialog('INVITE', { routes: [ourRoute('ws'), ourRoute('udp'), '<sip:203.0.113.9;lr>'] }));
  const [fwd] = h.invites();
  t.same(fwd?.req.getAll('route'), ['<sip:203.0.113.9;lr>']);
  t.same(fwd?.dest, { transport: 'udp', address: '203.0.113.9', port: 5060 });
  t.same(fwd?.req.getAll('record-route'), [], 'a re-INVITE is not Record-Routed again');
  if (fwd) h.reply(fwd, 200);
  t.same(h.upstreamFinals().map((f) => f.status), [200]);
  clean(t, h);
});

t.test('in-dialog: a request with a To tag that did not route through us MUST NOT be relayed: 403, or 481 when its Request-URI is us', async (t) => {
  const h = makeProxy();
  h.receive(inDialog('BYE', { routes: [] }));
  h.receive(inDialog('BYE', { routes: [], uri: `sip:bob@${PROXY_HOST}:5060` }));
  h.receive(inDialog('INFO', { routes: ['<sip:203.0.113.9;lr>'] }));
  t.same(h.upstreamStatuses('BYE'), [403, 481]);
  t.same(h.upstreamStatuses('INFO'), [403], 'someone else’s Route on top is not ours either');
  t.equal(h.transport.requests().length, 0);
  clean(t, h);
});

t.test('in-dialog: a downstream that never answers a BYE: Timer F, then a final response upstream and nothing left behind', async (t) => {
  const h = makeProxy();
  h.receive(inDialog('BYE'));
  h.advance(64 * T1);
  const finals = h.upstreamFinals('BYE');
  t.equal(finals.length, 1, 'one final response');
  t.ok((finals[0]?.status ?? 0) >= 400);
  clean(t, h);
});

t.test('§16.10 / §16.6: an ACK for a 2xx is forwarded statelessly: our Route popped, Max-Forwards decremented, a fresh Via with a z9hG4bK branch, no transaction', async (t) => {
  const h = makeProxy();
  const ack = inDialog('ACK', { cseq: 10, maxForwards: 12 });
  h.receive(ack);
  const sent = h.transport.requests('ACK');
  t.equal(sent.length, 1);
  const fwd = sent[0]?.message;
  t.same(sent[0]?.dest, { transport: 'udp', address: addr(7), port: 5060 });
  t.equal(fwd?.uri.toString(), 'sip:bob@198.51.100.7:5060');
  t.equal(fwd?.get('route'), undefined);
  t.equal(fwd?.get('max-forwards'), '11');
  t.equal(fwd?.vias.length, 2);
  t.equal(fwd?.topVia.host, PROXY_HOST);
  t.match(fwd?.topVia.branch ?? '', /^z9hG4bK/);
  t.same(h.layer.size, { client: 0, server: 0 }, 'no transaction for an ACK');
  t.equal(h.routed.length, 0);
  clean(t, h);
});

t.test('an ACK with Max-Forwards 0 is dropped (§16.3 step 3: MUST NOT be forwarded; there is no response to an ACK)', async (t) => {
  const h = makeProxy();
  h.receive(inDialog('ACK', { maxForwards: 0 }));
  t.equal(h.transport.sent.length, 0);
  clean(t, h);
});

t.test('§16.7 / §16.11: a stray 2xx (no client transaction left) MUST be forwarded statelessly with our Via removed', async (t) => {
  const h = makeProxy();
  const res = parseResponse([
    'SIP/2.0 200 OK',
    `Via: SIP/2.0/UDP ${PROXY_HOST}:5060;branch=z9hG4bK-long-gone`,
    'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-caller-x;rport=5060',
    'From: <sip:alice@example.com>;tag=a',
    'To: <sip:bob@example.com>;tag=b',
    'Call-ID: stray-1',
    'CSeq: 1 INVITE',
    'Content-Length: 0',
    '', ''].join('\r\n'));
  res.source = sourceFor('udp');
  h.layer.receiveResponse(res);
  const up = h.transport.responses(200);
  t.equal(up.length, 1);
  t.same(up[0]?.message.getAll('via'), ['SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-caller-x;rport=5060']);
  t.equal(up[0]?.message.source, undefined, 'sent per its Via, not back to where it came from');
  clean(t, h);
});

t.test('§16.7 step 3: a stray response with a single Via was meant for this element and MUST NOT be forwarded', async (t) => {
  const h = makeProxy();
  const res = parseResponse([
    'SIP/2.0 200 OK',
    `Via: SIP/2.0/UDP ${PROXY_HOST}:5060;branch=z9hG4bK-ours-only`,
    'From: <sip:alice@example.com>;tag=a',
    'To: <sip:bob@example.com>;tag=b',
    'Call-ID: stray-2',
    'CSeq: 1 OPTIONS',
    'Content-Length: 0',
    '', ''].join('\r\n'));
  res.source = sourceFor('udp');
  h.layer.receiveResponse(res);
  t.equal(h.transport.sent.length, 0);
  clean(t, h);
});

t.test('§10.3: REGISTER goes to the registrar, never to the router, and is not relayed', async (t) => {
  const clock = new ManualClock();
  const transport = new FakeTransactionTransport(clock);
  const log = new RecordingLogger();
  const holder: { proxy?: ProxyCore } = {};
  const layer = new TransactionLayer({
    transport, clock, timers: DEFAULT_TIMERS, log, trying100DelayMs: 0,
    tu: { onRequest: (tx, req) => holder.proxy?.onRequest(tx, req), onAck: () => undefined, onStrayResponse: () => undefined },
  });
  let routed = 0;
  const registered: string[] = [];
  holder.proxy = new ProxyCore({
    layer, interfaces, clock, log,
    router: () => { routed++; return { action: 'respond', status: 404, reason: 'Not Found' }; },
    registrar: (tx, req) => { registered.push(req.callId); tx.respond(createResponse(req, 200, 'OK')); },
  });
  layer.receiveRequest(makeRequest('REGISTER', { uri: 'sip:pbx.example', branch: 'z9hG4bK-reg-1', callId: 'reg-1' }));
  t.same(registered, ['reg-1']);
  t.equal(routed, 0);
  t.same(transport.responses().map((r) => r.message.status), [200]);
  t.equal(transport.requests().length, 0);
});

// ---- failures: transport errors, timeouts, unresolvable targets ----------------

t.test('§16.7 step 1 / §17.1.4: a transport error on the only branch is treated as a 503 internally and reported as 480, not 500', async (t) => {
  const h = makeProxy();
  h.receive(callerInvite());
  h.branch(7).fail();
  t.same(h.upstreamFinals().map((f) => f.status), [480]);
  t.same(h.outcomes.map((o) => [o.kind, o.status]), [['unreachable', 503]]);
  clean(t, h);
});

t.test('a transport error on one branch loses to a real response of another branch', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1), target(2)] }] } });
  h.receive(callerInvite());
  h.branch(1).fail();
  t.equal(h.upstreamFinals().length, 0, 'branch 2 still pending');
  h.reply(h.branch(2), 486);
  t.same(h.upstreamFinals().map((f) => f.status), [486]);
  clean(t, h);
});

t.test('a transport error in group 1 moves the hunt on to group 2 at once', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1)], timeoutMs: 20_000 }, { targets: [target(2)] }] } });
  h.receive(callerInvite());
  h.advance(10);
  h.branch(1).fail();
  t.same(h.invites().map((f) => [f.dest.address, f.at]), [[addr(1), 0], [addr(2), 10]]);
  h.reply(h.branch(2), 200);
  clean(t, h);
});

t.test('a target that fails synchronously (unresolvable) MUST NOT end its parallel group before the other targets are even tried', async (t) => {
  const bad: ForkTarget = { uri: parseUri('tel:+15551234567'), label: 'tel' };
  const h = makeProxy({ plan: { groups: [{ targets: [bad, target(2)] }] } });
  h.receive(callerInvite());
  t.same(h.upstreamFinals(), [], 'no final response while target 2 rings');
  t.same(h.invites().map((f) => f.dest.address), [addr(2)]);
  h.reply(h.branch(2), 180);
  h.reply(h.branch(2), 200);
  t.same(h.upstreamStatuses(), [100, 180, 200], 'exactly one final response, the 200');
  t.same(h.outcomes.map((o) => [o.target.label, o.kind]), [['tel', 'unreachable'], ['ext2', 'answered']]);
  clean(t, h);
});

t.test('a transport error reported synchronously by the transport behaves like an asynchronous one', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1, { dest: { transport: 'tcp', address: '203.0.113.1', port: 5060 } }), target(2)] }, { targets: [target(3)] }] } });
  const send = h.transport.sendRequest.bind(h.transport);
  h.transport.sendRequest = (req, dest, onError) => {
    send(req, dest, onError);
    if (dest.address === '203.0.113.1') onError({ code: 'ECONNREFUSED', message: 'refused' });
  };
  h.receive(callerInvite());
  t.same(h.invites().map((f) => f.dest.address), ['203.0.113.1', addr(2)], 'target 2 tried, group 2 not started');
  t.same(h.upstreamFinals(), []);
  h.reply(h.branch(2), 486);
  t.same(h.invites().map((f) => f.dest.address), ['203.0.113.1', addr(2), addr(3)]);
  h.reply(h.branch(3), 200);
  t.same(h.upstreamFinals().map((f) => f.status), [200]);
  clean(t, h);
});

t.test('every target unresolvable: all groups tried, then 480', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [{ uri: parseUri('tel:+1555') }, { uri: parseUri('tel:+1556') }] }, { targets: [{ uri: parseUri('tel:+1557') }] }] } });
  h.receive(callerInvite());
  t.same(h.upstreamFinals().map((f) => f.status), [480]);
  t.equal(h.outcomes.length, 3, 'each target reported');
  clean(t, h);
});

t.test('Timer B: a branch that never answers at all (no 100) times out at 64*T1 → 408 internally → 480 upstream for INVITE', async (t) => {
  const h = makeProxy();
  h.receive(callerInvite());
  h.at(64 * T1 - 1);
  t.equal(h.upstreamFinals().length, 0);
  t.equal(h.transport.requests('INVITE').length, 7, 'the client transaction retransmitted the INVITE (Timer A)');
  h.at(64 * T1);
  t.same(h.upstreamFinals().map((f) => [f.status, f.at]), [[480, 64 * T1]]);
  t.same(h.outcomes.map((o) => [o.kind, o.status]), [['no-answer', 408]]);
  t.same(h.cancels(), [], 'no CANCEL for a branch that never answered (§9.1)');
  clean(t, h);
});

t.test('Timer B of one branch does not hide the 486 of another', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1), target(2)] }] } });
  h.receive(callerInvite());
  h.reply(h.branch(2), 486);
  h.at(64 * T1);
  t.same(h.upstreamFinals().map((f) => f.status), [486]);
  clean(t, h);
});

// ---- leaks, §9.1 give-up -----------------------------------------------------

t.test('§9.1: a branch that got a 180 and never answers our CANCEL is destroyed 64*T1 after the CANCEL and the caller gets 487 then', async (t) => {
  const h = makeProxy();
  const inv = callerInvite();
  h.receive(inv);
  h.reply(h.branch(7), 180);
  h.at(1000);
  h.receive(callerCancel(inv));
  t.same(h.cancels().map((c) => c.at), [1000]);
  t.equal(h.layer.size.client, 2, 'INVITE and CANCEL client transactions');
  // The phone is gone: no 200 for the CANCEL, no 487.
  h.at(1000 + 64 * T1 - 1);
  t.equal(h.upstreamFinals().length, 0);
  h.at(1000 + 64 * T1);
  t.equal(h.layer.size.client, 0, '"SHOULD destroy the client transaction handling the original request"');
  t.same(h.upstreamFinals().map((f) => [f.status, f.at]), [[487, 1000 + 64 * T1]], '"consider the original transaction cancelled": the caller is not kept waiting for Timer C');
  t.same(h.outcomes.map((o) => o.kind), ['cancelled']);
  clean(t, h);
});

t.test('§9.1 after a 2xx elsewhere: the cancelled ringing branch that never answers is destroyed after 64*T1, nothing more is sent upstream', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1), target(2)] }] } });
  h.receive(callerInvite());
  h.reply(h.branch(1), 180);
  h.reply(h.branch(2), 200);
  t.equal(h.proxy.activeContexts, 0, 'the context ends with the 2xx');
  h.advance(64 * T1);
  t.equal(h.layer.size.client, 0, 'the INVITE client transaction of branch 1 is gone (and Timer M ended branch 2)');
  t.same(h.upstreamFinals().map((f) => f.status), [200]);
  clean(t, h);
});

// ---- the router: exceptions, rejections, decisions ---------------------------

const ROUTER_FAILURES: Array<{ name: string; router: InitialRequestRouter }> = [
  { name: 'a router that throws', router: () => { throw new Error('boom'); } },
  { name: 'a router whose promise rejects', router: () => Promise.reject(new Error('redis down')) },
  { name: 'a router whose promise rejects with a non-Error', router: () => Promise.reject('nope') },
];

for (const c of ROUTER_FAILURES) {
  t.test(`${c.name}: the caller gets 500 and no exception escapes`, async (t) => {
    const h = makeProxy({ router: c.router });
    h.receive(callerInvite());
    await flush();
    t.same(h.upstreamFinals().map((f) => f.status), [500]);
    t.ok(h.log.at('error').length >= 1, 'logged as an error');
    clean(t, h);
  });
}

t.test('a router that answers itself: its status, reason and extra headers go upstream (sync and async)', async (t) => {
  for (const async of [false, true]) {
    const d: RoutingDecision = { action: 'respond', status: 404, reason: 'No Such Extension', headers: [['Warning', '399 pbx "unknown"']] };
    const h = makeProxy({ router: () => async ? Promise.resolve(d) : d });
    h.receive(callerInvite());
    await flush();
    const [fin] = h.upstreamFinals();
    t.same([fin?.status, fin?.res.reason, fin?.res.get('warning')], [404, 'No Such Extension', '399 pbx "unknown"']);
    t.ok(fin?.res.to.tag, 'our own response carries a To tag');
    clean(t, h);
  }
});

t.test('an async router whose plan has a malformed Path: no unhandled rejection, the branch counts as unreachable', async (t) => {
  const h = makeProxy({ router: async () => ({ action: 'fork', plan: { groups: [{ targets: [target(1, { path: ['<not a uri'] }), target(2)] }] } }) });
  h.receive(callerInvite());
  await flush();
  t.same(h.invites().map((f) => f.dest.address), [addr(2)], 'the good target still rings');
  h.reply(h.branch(2), 486);
  t.same(h.upstreamFinals().map((f) => f.status), [486]);
  clean(t, h);
});

t.test('onOutcome / onFinal callbacks that throw (from a timer, too) are contained: the call completes and nothing escapes', async (t) => {
  const h = makeProxy({
    router: () => ({
      action: 'fork',
      plan: { groups: [{ targets: [target(1)], timeoutMs: 10_000 }, { targets: [target(2)] }] },
      onOutcome: () => { throw new Error('metrics down'); },
      onFinal: () => { throw new Error('cdr down'); },
    }),
  });
  h.receive(callerInvite());
  h.reply(h.branch(1), 180);
  t.doesNotThrow(() => h.at(10_000), 'the no-answer timer fires through a throwing onOutcome');
  t.equal(h.invites().length, 2, 'and the hunt goes on');
  h.reply(h.branch(1), 487);
  h.reply(h.branch(2), 200);
  t.same(h.upstreamFinals().map((f) => f.status), [200]);
  clean(t, h);
});

// ---- asynchronous next-hop resolution (DNS mocked) --------------------------------

t.test('a CANCEL that arrives while a branch is still resolving its next hop ends the call with 487 (nothing left waiting)', async (t) => {
  const lookups: Array<(a: { address: string; family: number }) => void> = [];
  const mod = await t.mockImport<typeof import('../../../src/sip/proxy/proxy-core.js')>('../../../src/sip/proxy/proxy-core.js', {
    'node:dns/promises': { lookup: () => new Promise((r) => { lookups.push(r); }) },
  });
  const h = makeProxy({ Core: mod.ProxyCore, plan: { groups: [{ targets: [{ uri: parseUri('sip:ext5@phone5.pbx.example') }] }] } });
  const inv = callerInvite();
  h.receive(inv);
  t.equal(lookups.length, 1, 'resolving');
  h.receive(callerCancel(inv));
  t.same(h.upstreamStatuses('CANCEL'), [200]);
  lookups[0]?.({ address: '198.51.100.5', family: 4 });
  await flush();
  t.equal(h.invites().length, 0, 'not forwarded after the CANCEL');
  t.same(h.upstreamFinals().map((f) => f.status), [487]);
  clean(t, h);
});

t.test('a hostname target is resolved asynchronously and then forwarded like any other', async (t) => {
  const mod = await t.mockImport<typeof import('../../../src/sip/proxy/proxy-core.js')>('../../../src/sip/proxy/proxy-core.js', {
    'node:dns/promises': { lookup: async () => ({ address: '198.51.100.5', family: 4 }) },
  });
  const h = makeProxy({ Core: mod.ProxyCore, plan: { groups: [{ targets: [{ uri: parseUri('sip:ext5@phone5.pbx.example;transport=tcp') }] }] } });
  h.receive(callerInvite());
  await flush();
  const [fwd] = h.invites();
  t.same(fwd?.dest, { transport: 'tcp', address: '198.51.100.5', port: 5060 });
  if (fwd) h.reply(fwd, 200);
  t.same(h.upstreamFinals().map((f) => f.status), [200]);
  clean(t, h);
});

t.test('a hostname that does not resolve counts as unreachable: 480', async (t) => {
  const mod = await t.mockImport<typeof import('../../../src/sip/proxy/proxy-core.js')>('../../../src/sip/proxy/proxy-core.js', {
    'node:dns/promises': { lookup: async () => { throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }); } },
  });
  const h = makeProxy({ Core: mod.ProxyCore, plan: { groups: [{ targets: [{ uri: parseUri('sip:ext5@nowhere.invalid') }] }] } });
  h.receive(callerInvite());
  await flush();
  t.same(h.upstreamFinals().map((f) => f.status), [480]);
  clean(t, h);
});

// ---- failover: ForkDecision.next --------------------------------------------

t.test('failover: an exhausted plan asks `next` (busy) and the hunt goes on with the new plan in the same context, the caller never seeing the 486', async (t) => {
  const failures: Array<[number, string]> = [];
  const h = makeProxy({
    router: () => ({
      action: 'fork',
      plan: { groups: [{ targets: [target(1)], timeoutMs: 10_000 }] },
      next: (f) => {
        failures.push([f.status, f.kind]);
        return { action: 'fork', plan: { groups: [{ targets: [target(2)], timeoutMs: 10_000 }] } };
      },
    }),
  });
  h.receive(callerInvite());
  h.advance(2000);
  h.reply(h.branch(1), 486);
  t.same(failures, [[486, 'busy']]);
  t.same(h.invites().map((f) => [f.dest.address, f.at]), [[addr(1), 0], [addr(2), 2000]], 'step 2 rings at once');
  h.reply(h.branch(2), 180);
  h.reply(h.branch(2), 200);
  t.same(h.upstreamStatuses(), [100, 180, 200]);
  clean(t, h);
});

t.test('failover: every branch timed out → kind no-answer; an async `next` may answer a response instead (e.g. the after-hunt reject)', async (t) => {
  const failures: Array<[number, string]> = [];
  const finals: number[] = [];
  const h = makeProxy({
    router: () => ({
      action: 'fork',
      plan: { groups: [{ targets: [target(1), target(2)], timeoutMs: 8000 }], exhausted: { status: 480, reason: 'Temporarily Unavailable' } },
      onFinal: (s) => finals.push(s),
      next: async (f) => {
        failures.push([f.status, f.kind]);
        return { action: 'respond', status: 486, reason: 'All agents busy', headers: [['Reason', 'Q.850;cause=17']] };
      },
    }),
  });
  h.receive(callerInvite());
  h.reply(h.branch(1), 180);
  h.reply(h.branch(2), 180);
  h.at(8000);
  await flush();
  t.same(failures, [[480, 'no-answer']]);
  const finalsUp = h.upstreamFinals();
  t.same(finalsUp.map((f) => [f.status, f.at]), [[486, 8000]]);
  t.equal(finalsUp[0]?.res.reason, 'All agents busy');
  t.equal(finalsUp[0]?.res.get('reason'), 'Q.850;cause=17');
  t.same(finals, [486], 'onFinal reports what the caller got');
  clean(t, h);
});

t.test('failover: `next` answering undefined sends the plan’s own best response; a throwing `next` does too, logged', async (t) => {
  for (const next of [() => undefined, () => { throw new Error('boom'); }, () => Promise.reject(new Error('async boom'))]) {
    const h = makeProxy({ router: () => ({ action: 'fork', plan: { groups: [{ targets: [target(1)] }] }, next }) });
    h.receive(callerInvite());
    h.reply(h.branch(1), 486);
    await flush();
    t.same(h.upstreamFinals().map((f) => f.status), [486]);
    clean(t, h);
  }
});

t.test('failover: a CANCEL arriving while `next` is deciding wins: 487 upstream, the new plan never rings', async (t) => {
  let decide: ((c: import('../../../src/sip/proxy/proxy-core.js').Continuation) => void) | undefined;
  const h = makeProxy({
    router: () => ({
      action: 'fork',
      plan: { groups: [{ targets: [target(1)] }] },
      next: () => new Promise((r) => { decide = r; }),
    }),
  });
  const inv = callerInvite();
  h.receive(inv);
  h.reply(h.branch(1), 486);
  h.receive(callerCancel(inv));
  t.same(h.upstreamStatuses('CANCEL'), [200]);
  decide?.({ action: 'fork', plan: { groups: [{ targets: [target(2)] }] } });
  await flush();
  t.same(h.upstreamFinals().map((f) => f.status), [487]);
  t.equal(h.invites().length, 1, 'the failover target was never rung');
  clean(t, h);
});

t.test('failover chains: step 2’s own `next` is asked when step 2 fails too; the overall timer of step 1 does not cut step 2', async (t) => {
  const kinds: string[] = [];
  const h = makeProxy({
    router: () => ({
      action: 'fork',
      plan: { groups: [{ targets: [target(1)], timeoutMs: 5000 }], overallTimeoutMs: 6000 },
      next: (f) => {
        kinds.push(f.kind);
        return {
          action: 'fork',
          plan: { groups: [{ targets: [target(2)], timeoutMs: 5000 }] },
          next: (f2) => { kinds.push(f2.kind); return { action: 'fork', plan: { groups: [{ targets: [target(3)], timeoutMs: 5000 }] } }; },
        };
      },
    }),
  });
  h.receive(callerInvite());
  h.reply(h.branch(1), 180);
  h.at(5000);
  h.reply(h.branch(2), 180);
  h.at(7000); // step 1's overall cap (6 s) must not touch step 2
  t.equal(h.invites().length, 2);
  h.reply(h.branch(2), 603);
  t.same(kinds, ['no-answer', 'declined']);
  t.same(h.invites().map((f) => [f.dest.address, f.at]), [[addr(1), 0], [addr(2), 5000], [addr(3), 7000]]);
  h.reply(h.branch(3), 200);
  t.same(h.upstreamFinals().map((f) => f.status), [200]);
  clean(t, h);
});

t.test('failover is not asked once a branch answered, nor for in-dialog requests, nor for non-INVITE', async (t) => {
  let asked = 0;
  const h = makeProxy({ router: () => ({ action: 'fork', plan: { groups: [{ targets: [target(1)] }] }, next: () => { asked++; return undefined; } }) });
  h.receive(callerInvite());
  h.reply(h.branch(1), 200);
  h.receive(makeRequest('MESSAGE', { uri: 'sip:bob@pbx.example', branch: 'z9hG4bK-msg-1', callId: 'msg-1' }));
  h.reply(h.branch(1, 'MESSAGE'), 404);
  t.equal(asked, 0);
  t.same(h.upstreamFinals('MESSAGE').map((f) => f.status), [404]);
  clean(t, h);
});

t.test('ForkPlan.globalFailureEndsHunt false: a 603 from group 1 moves the hunt to group 2 (a hunt group configured to skip a declining phone)', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(1)] }, { targets: [target(2)] }], globalFailureEndsHunt: false } });
  h.receive(callerInvite());
  h.reply(h.branch(1), 603);
  t.equal(h.invites().length, 2);
  h.reply(h.branch(2), 200);
  t.same(h.upstreamFinals().map((f) => f.status), [200]);
  clean(t, h);
});

t.test('ForkTarget.headers replace same-named fields on that branch only; fields the proxy manages (From, Via, CSeq...) are left alone', async (t) => {
  const h = makeProxy({
    plan: {
      groups: [{
        targets: [
          target(1, { headers: [['P-Asserted-Identity', '"Alice" <sip:6601@pbx.example>'], ['From', '<sip:evil@x>;tag=1'], ['Via', 'SIP/2.0/UDP evil']] }),
          target(2),
        ],
      }],
    },
  });
  h.receive(callerInvite({ headers: ['P-Asserted-Identity: <sip:+8613800000000@carrier.example>', 'Contact: <sip:alice@192.0.2.10:5060>'] }));
  const one = h.branch(1).req;
  const two = h.branch(2).req;
  t.same(one.getAll('p-asserted-identity'), ['"Alice" <sip:6601@pbx.example>']);
  t.same(two.getAll('p-asserted-identity'), ['<sip:+8613800000000@carrier.example>']);
  t.not(one.get('from'), '<sip:evil@x>;tag=1');
  t.equal(one.vias.length, 2, 'our Via and the caller’s only');
  h.reply(h.branch(1), 200);
  clean(t, h);
});

t.test('onInDialogRequest hears every in-dialog request we forward (a BYE ends an accounted call); a throwing listener does not stop the BYE', async (t) => {
  const seen: string[] = [];
  const h = makeProxy({ onInDialogRequest: (req) => { seen.push(req.method); throw new Error('listener bug'); } });
  h.receive(inDialog('BYE', { routes: [ourRoute('udp'), '<sip:203.0.113.9;lr>'] }));
  t.same(seen, ['BYE']);
  const [bye] = h.sent('BYE');
  t.ok(bye, 'the BYE was forwarded anyway');
  if (bye) h.reply(bye, 200);
  t.same(h.upstreamFinals('BYE').map((f) => f.status), [200]);
  clean(t, h);
});

t.test('onRinging is told once, at the first provisional forwarded to the caller (not at a 100)', async (t) => {
  let rang = 0;
  const h = makeProxy({ router: () => ({ action: 'fork', plan: { groups: [{ targets: [target(1), target(2)] }] }, onRinging: () => { rang++; } }) });
  h.receive(callerInvite());
  h.reply(h.branch(1), 100);
  t.equal(rang, 0);
  h.reply(h.branch(1), 180);
  h.reply(h.branch(2), 183);
  t.equal(rang, 1);
  h.reply(h.branch(2), 200);
  clean(t, h);
});

// ---- ending a call from the middle (administrator hang-up) -----------------

t.test('hang-up: the answered dialog as the proxy sees it; a BYE to each party on the other\'s behalf, with the route set beyond us, tags swapped and a CSeq above the sender\'s', async (t) => {
  const dialogs: Array<ProxiedDialog | undefined> = [];
  const h = makeProxy({ router: () => ({ action: 'fork', plan: { groups: [{ targets: [target(7)] }] }, onAnswered: (d) => dialogs.push(d) }) });
  // The caller came through an edge proxy that Record-Routed (below us in the list, nearer the caller).
  const inv = callerInvite({ headers: ['Contact: <sip:alice@192.0.2.10:5070>', 'Record-Route: <sip:192.0.2.50;lr>'] });
  h.receive(inv);
  const fwd = h.branch(7);
  h.reply(fwd, 180);
  t.same(dialogs, [], 'not before the answer');
  h.reply(fwd, 200, { toTag: 'callee-tag', headers: [['Contact', '<sip:ext7@198.51.100.7:5062;transport=udp>']] });
  t.equal(dialogs.length, 1, 'told once, at the answer');
  const d = dialogs[0];
  if (!d) throw new Error('no dialog');
  t.match(d, {
    callId: inv.callId, callerTag: 'from-tag-1', calleeTag: 'callee-tag',
    caller: { target: 'sip:alice@192.0.2.10:5070', route: ['<sip:192.0.2.50;lr>'], cseq: 10 },
    callee: { target: 'sip:ext7@198.51.100.7:5062;transport=udp', route: [], cseq: 0 },
  });
  t.equal(d.caller.dest, undefined, 'the caller is reached through its route, not its source');
  t.match(d.callee.identity, /;tag=callee-tag$/);
  h.receive(makeRequest('ACK', { uri: 'sip:ext7@198.51.100.7:5062;transport=udp', callId: inv.callId, cseq: 10, toTag: 'callee-tag', routes: [ourRoute('udp')], branch: 'z9hG4bK-ack-1' }));

  const done = h.proxy.hangUp(d, { cause: 200, text: 'Call terminated by the administrator' });
  const byes = h.sent('BYE');
  t.equal(byes.length, 2, 'one BYE per party');
  const toCaller = byes.find((b) => b.dest.address === '192.0.2.50');
  const toCallee = byes.find((b) => b.dest.address === addr(7));
  if (!toCaller || !toCallee) throw new Error('BYEs not where expected');
  t.equal(toCaller.req.uri.toString(), 'sip:alice@192.0.2.10:5070', 'to the caller: its Contact as Request-URI');
  t.same(toCaller.req.getAll('route'), ['<sip:192.0.2.50;lr>'], 'through the edge proxy it came by');
  t.equal(toCaller.req.from.tag, 'callee-tag', 'From: the callee, with its tag');
  t.equal(toCaller.req.to.tag, 'from-tag-1', 'To: the caller, with its tag');
  t.same(toCaller.req.cseq, { seq: 1, method: 'BYE' }, 'the callee had sent nothing: any CSeq will do');
  t.equal(toCallee.dest.port, 5062, 'to the callee: where its Contact says');
  t.same(toCallee.req.getAll('route'), [], 'nothing beyond us towards the callee');
  t.equal(toCallee.req.from.tag, 'from-tag-1');
  t.equal(toCallee.req.to.tag, 'callee-tag');
  t.same(toCallee.req.cseq, { seq: 11, method: 'BYE' }, 'above the caller\'s INVITE (CSeq 10)');
  t.equal(toCallee.req.callId, inv.callId);
  t.equal(toCallee.req.get('reason'), 'SIP;cause=200;text="Call terminated by the administrator"', 'RFC 3326 Reason');
  t.equal(toCallee.req.vias.length, 1, 'a request of our own: one Via, ours');
  t.equal(toCallee.req.topVia.host, PROXY_HOST);
  h.reply(toCaller, 200);
  h.reply(toCallee, 481);
  t.same(await done, { caller: 200, callee: 481 }, 'what each party answered');
  clean(t, h);
});

t.test('hang-up: with no route beyond us the BYE goes where the party\'s packets came from (NAT), and an unanswered party is reported as 408 after Timer F', async (t) => {
  const dialogs: Array<ProxiedDialog | undefined> = [];
  const flow: Destination = { transport: 'udp', address: '203.0.113.9', port: 40000 };
  const h = makeProxy({ router: () => ({ action: 'fork', plan: { groups: [{ targets: [target(7, { dest: flow })] }] }, onAnswered: (d) => dialogs.push(d) }) });
  // A Contact with a private address, as a phone behind NAT writes it.
  h.receive(callerInvite({ headers: ['Contact: <sip:alice@10.0.0.5:5060>'] }));
  const fwd = h.invites()[0];
  if (!fwd) throw new Error('nothing forwarded');
  h.reply(fwd, 200, { toTag: 'callee-tag', headers: [['Contact', '<sip:ext7@192.168.1.20:5060>']] });
  const d = dialogs[0];
  if (!d) throw new Error('no dialog');
  t.same(d.caller.dest, { transport: 'udp', address: '192.0.2.10', port: 5060 }, 'the caller\'s source address');
  t.same(d.callee.dest, flow, 'the callee\'s registered flow');
  const done = h.proxy.hangUp(d);
  const byes = h.sent('BYE');
  t.same(byes.map((b) => `${b.dest.address}:${b.dest.port}`).sort(), ['192.0.2.10:5060', '203.0.113.9:40000']);
  t.equal(byes[0]?.req.get('reason'), undefined, 'no Reason unless given');
  const toCaller = byes.find((b) => b.dest.address === '192.0.2.10');
  if (!toCaller) throw new Error('no BYE to the caller');
  h.reply(toCaller, 200);
  h.advance(64 * T1);
  t.same(await done, { caller: 200, callee: 408 });
  clean(t, h);
});

t.test('hang-up of a ringing call: abort() cancels the branches and answers the caller 487 at once; nothing to abort afterwards', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(7), target(8)] }] } });
  const inv = callerInvite();
  h.receive(inv);
  h.reply(h.branch(7), 180);
  t.equal(h.proxy.abort('no-such-call'), false);
  t.equal(h.proxy.abort(inv.callId), true);
  t.same(h.upstreamFinals().map((f) => f.status), [487], 'the caller is told at once');
  t.same(h.cancels().map((c) => c.dest.address), [addr(7)], '§9.1: CANCEL where a provisional came');
  h.reply(h.branch(8), 180);
  t.same(h.cancels().map((c) => c.dest.address).sort(), [addr(7), addr(8)], 'and once the other one rings');
  t.same(h.finals, [487]);
  t.equal(h.proxy.abort(inv.callId), false, 'nothing left to stop');
  h.reply(h.branch(7), 487);
  h.reply(h.branch(8), 487);
  clean(t, h);
});

t.test('live contexts: any of several ringing calls can be stopped, in any order, and each leaves the count', async (t) => {
  const h = makeProxy({ plan: { groups: [{ targets: [target(7)] }] } });
  const invs = [callerInvite(), callerInvite(), callerInvite()];
  for (const inv of invs) h.receive(inv);
  t.equal(h.proxy.activeContexts, 3);
  const [first, middle, last] = invs.map((i) => i.callId);
  t.equal(h.proxy.abort(middle ?? ''), true, 'from the middle of the list');
  t.equal(h.proxy.activeContexts, 2, 'its context is gone: abort() ends the branches at once');
  t.equal(h.proxy.abort(middle ?? ''), false, 'already stopped');
  t.equal(h.proxy.abort(last ?? ''), true, 'the newest');
  t.equal(h.proxy.abort(first ?? ''), true, 'the oldest');
  t.equal(h.proxy.activeContexts, 0);
  t.same(h.upstreamFinals().map((f) => f.status), [487, 487, 487]);
  clean(t, h);
});
