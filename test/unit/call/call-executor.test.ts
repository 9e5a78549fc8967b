/**
 * The executor between the SIP proxy and the routing engine: who is
 * calling (carrier trunk or authenticated extension), which tenant, and how
 * each plan step becomes a fork, a continuation or a response. Driven with
 * real requests (parsed), the real engine, digest authenticator and
 * embedded location store; the proxy is played by calling the decision's
 * `next` the way the proxy does when a plan is exhausted.
 */
import t, { type Test } from 'tap';
import { createCallExecutor, type CounterSource } from '../../../src/call/call-executor.js';
import { CallTracker, type CallRecord } from '../../../src/call/call-tracker.js';
import { demoTenant } from '../../../src/call/demo-tenant.js';
import { TenantIndex, type TenantSource, type TenantView } from '../../../src/call/tenant-index.js';
import { parseCidr } from '../../../src/call/cidr.js';
import { compileTenant, EMPTY_GLOBAL, type TenantDocument } from '../../../src/routing/index.js';
import type { SipRequest } from '../../../src/sip/message/message.js';
import type { Continuation, ForkDecision, RoutingDecision } from '../../../src/sip/proxy/proxy-core.js';
import { computeDigestResponse, computeHa1, DigestAuthenticator } from '../../../src/sip/registrar/digest.js';
import { aorFor } from '../../../src/sip/registrar/registrar.js';
import { EmbeddedLocationStore } from '../../../src/store/embedded/location-store.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { RecordingLogger } from '../../helpers/recording-logger.js';
import { makeRequest } from '../../helpers/sip-builders.js';

const REALM = 'pbx.test';
const PASSWORD = 'secret-1';
const CARRIER = '203.0.113.5';

function ha1s(user: string, realm: string): { ha1Md5: string; ha1Sha256: string } {
  return { ha1Md5: computeHa1('MD5', user, realm, PASSWORD), ha1Sha256: computeHa1('SHA-256', user, realm, PASSWORD) };
}

/** A second tenant on its own SIP domain, sharing the carrier trunk address with the demo. */
const ACME: TenantDocument = {
  id: 'acme',
  domain: 'acme.test',
  outboundCallerId: '02166668888',
  numbers: [{ number: '4001112222', route: 'main' }, { number: '02166668888', route: 'main' }],
  extensions: [
    { number: '2001', sip: ha1s('2001', 'acme.test') },
    { number: '2002', sip: ha1s('2002', 'acme.test') },
  ],
  blacklist: { numbers: ['13700000000'], status: 603 },
  inboundTrunks: [{ id: 'ctcc', sources: [`${CARRIER}/32`] }],
  outboundGateways: [
    { id: 'gw1', host: '198.51.100.1', priority: 1 },
    { id: 'gw2', host: '198.51.100.2', port: 5070, priority: 2, transport: 'tcp' },
  ],
  ivrMenus: [{ id: 'welcome', prompt: 'welcome', route: 'menu' }],
  routes: [
    {
      id: 'main',
      rules: [{
        id: 'hunt',
        actions: [
          { kind: 'ring', strategy: 'sequential', targets: [{ extension: '2002' }, { extension: '2001' }], targetTimeoutMs: 5000, onFail: { noAnswer: 'next', busy: 'next' } },
          { kind: 'forward', number: '13900000000', timeoutMs: 30_000 },
        ],
      }],
    },
    { id: 'ivr', rules: [{ id: 'menu', actions: [{ kind: 'ivr', menu: 'welcome' }] }] },
    {
      id: 'menu',
      rules: [
        { id: 'one', when: { ivrDigits: ['1'] }, actions: [{ kind: 'reject', status: 486 }] },
        { id: 'no-input', actions: [{ kind: 'ring', targets: [{ extension: '2001' }] }] },
      ],
    },
  ],
};

function demoWithCarrier(): TenantDocument {
  const d = demoTenant(REALM, PASSWORD);
  return { ...d, inboundTrunks: [{ id: 'demo-carrier', sources: ['127.0.0.2', CARRIER] }] };
}

class MapSource implements TenantSource {
  readonly tenants = new Map<string, TenantView>();
  private readonly listeners: Array<(id: string, e: TenantView | undefined) => void> = [];
  put(doc: TenantDocument): void {
    const v: TenantView = { id: doc.id, version: (this.tenants.get(doc.id)?.version ?? 0) + 1, doc, compiled: compileTenant(doc) };
    this.tenants.set(doc.id, v);
    for (const l of this.listeners) l(doc.id, v);
  }
  get(id: string): TenantView | undefined { return this.tenants.get(id); }
  all(): Iterable<TenantView> { return this.tenants.values(); }
  global() { return { version: 0, compiled: EMPTY_GLOBAL }; }
  onChange(l: (id: string, e: TenantView | undefined) => void): () => void {
    this.listeners.push(l);
    return () => undefined;
  }
}

function setup(o: { counters?: CounterSource } = {}) {
  const clock = new ManualClock();
  const log = new RecordingLogger();
  const source = new MapSource();
  source.put(demoWithCarrier());
  source.put(ACME);
  const index = new TenantIndex({ source, defaultRealm: REALM, log });
  const location = new EmbeddedLocationStore({ sweepIntervalMs: 0 });
  const digests = new Map<string, DigestAuthenticator>();
  const digestFor = (realm: string): DigestAuthenticator => {
    let d = digests.get(realm);
    if (!d) {
      d = new DigestAuthenticator({ realm, secret: Buffer.alloc(32, 7), now: () => clock.now(), algorithms: ['MD5'] });
      digests.set(realm, d);
    }
    return d;
  };
  let rr = 0;
  const counters: CounterSource = o.counters ?? { incrCounter: async () => ++rr };
  const tracker = new CallTracker({ clock, log });
  const ended: CallRecord[] = [];
  tracker.listen({ ended: (r) => ended.push(r) });
  const router = createCallExecutor({
    tracker,
    index, location, digestFor, counters,
    region: { lookup: (n) => (n.startsWith('010') ? { province: '北京', city: '北京' } : undefined) },
    trusted: [parseCidr('192.0.2.99')],
    isLocalUri: (u) => u.isSip && (u.hostAddress === '192.0.2.1' || u.hostAddress === REALM),
    flowAlive: () => true,
    node: 'n1', clock, log, seed: () => 42,
  });
  let seq = 0;
  const register = async (user: string, realm: string, address: string): Promise<void> => {
    const aor = aorFor(user, realm);
    const rec = await location.get(aor, clock.now());
    await location.put(aor, rec.version, [...rec.bindings, {
      aor, contact: `sip:${user}@${address}:5060`, expiresAt: clock.now() + 3_600_000, q: 1,
      callId: `reg-${++seq}`, cseq: 1, path: [], flow: { transport: 'udp', address, port: 5060 }, registeredAt: clock.now(),
    }]);
  };
  const invite = (called: string, from: { address: string; fromUri?: string; headers?: string[] }): SipRequest => {
    const req = makeRequest('INVITE', { uri: `sip:${called}@192.0.2.1`, callId: `call-${++seq}`, headers: from.headers ?? [] });
    if (from.fromUri) req.set('from', `<${from.fromUri}>;tag=x${seq}`);
    req.source = { transport: 'udp', address: from.address, port: 5060, localAddress: '192.0.2.1', localPort: 5060 };
    return req;
  };
  /** Sends the request, answers the 407 with the extension's credentials, and returns the decision for the authenticated retry. */
  const asExtension = async (req: SipRequest, user: string, realm: string): Promise<RoutingDecision> => {
    const first = await router(req);
    if (first.action !== 'respond' || first.status !== 407) throw new Error(`expected 407, got ${JSON.stringify(first)}`);
    const ch = first.headers?.[0]?.[1] ?? '';
    const nonce = /nonce="([^"]+)"/.exec(ch)?.[1] ?? '';
    const uri = req.uri.toString();
    const response = computeDigestResponse({ algorithm: 'MD5', ha1: computeHa1('MD5', user, realm, PASSWORD), nonce, method: req.method, uri, qop: 'auth', nc: '00000001', cnonce: 'abc' });
    const again = makeRequest(req.method, { uri, callId: req.callId, headers: [`Proxy-Authorization: Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="abc"`] });
    again.set('from', req.get('from') ?? '');
    again.source = req.source;
    return router(again);
  };
  return { clock, log, router, register, invite, asExtension, location, index, source, tracker, ended };
}

function fork(t: Test, d: RoutingDecision | Continuation): ForkDecision {
  if (!d || d.action !== 'fork') {
    t.fail(`expected a fork, got ${JSON.stringify(d)}`);
    throw new Error('not a fork');
  }
  return d;
}

/** Group by group, the Request-URIs and timeouts of a fork. */
function shape(d: ForkDecision): Array<Array<[string, number | undefined]>> {
  return d.plan.groups.map((g) => g.targets.map((x) => [x.uri.toString(), x.timeoutMs]));
}

t.test('a carrier call to 4008123456 hunts 1001 then 1002, 8 s each, every registered device of each; the callee sees the caller number (P-Asserted-Identity)', async (t) => {
  const s = setup();
  await s.register('1001', REALM, '10.0.0.1');
  await s.register('1001', REALM, '10.0.0.11');
  await s.register('1002', REALM, '10.0.0.2');
  const d = fork(t, await s.router(s.invite('4008123456', { address: '127.0.0.2', headers: ['P-Asserted-Identity: <sip:13812345678@carrier>'] })));
  t.same(shape(d), [[['sip:1001@10.0.0.1:5060', 8000], ['sip:1001@10.0.0.11:5060', 8000]]], 'first 1001 (both devices); 1002 is looked up only when the hunt reaches it');
  t.same(d.plan.exhausted, { status: 480, reason: 'Temporarily Unavailable' });
  t.same(d.plan.groups[0]?.targets[0]?.headers, [['P-Asserted-Identity', `<sip:13812345678@${REALM}>`]]);
  t.same(d.plan.groups[0]?.targets[0]?.dest, { transport: 'udp', address: '10.0.0.1', port: 5060 }, 'over the registered flow');
  const second = fork(t, await d.next?.({ status: 480, kind: 'no-answer' }));
  t.same(shape(second), [[['sip:1002@10.0.0.2:5060', 8000]]], 'then 1002');
  t.equal(await second.next?.({ status: 480, kind: 'no-answer' }), undefined, 'after the hunt the plan’s own 480 goes upstream');
});

t.test('a hunt whose first target was busy and last one timed out ends with the busy (§16.7: the most telling response), through onFail busy', async (t) => {
  const s = setup();
  await s.register('1001', REALM, '10.0.0.1');
  await s.register('1002', REALM, '10.0.0.2');
  const d = fork(t, await s.router(s.invite('4008123456', { address: '127.0.0.2' })));
  const second = fork(t, await d.next?.({ status: 486, kind: 'busy' }));
  t.same(await second.next?.({ status: 480, kind: 'no-answer' }), { action: 'respond', status: 486, reason: 'Busy Here' });
});

t.test('a Decline ends the hunt when the step says stopOnDecline (the default), and the 603 goes upstream', async (t) => {
  const s = setup();
  await s.register('1001', REALM, '10.0.0.1');
  await s.register('1002', REALM, '10.0.0.2');
  const d = fork(t, await s.router(s.invite('4008123456', { address: '127.0.0.2' })));
  t.equal(await d.next?.({ status: 603, kind: 'declined' }), undefined, '1002 is not rung');
});

t.test('one carrier address serving two tenants: the tenant owning the called number takes the call', async (t) => {
  const s = setup();
  await s.register('2001', 'acme.test', '10.0.1.1');
  const d = fork(t, await s.router(s.invite('4001112222', { address: CARRIER })));
  t.same(shape(d), [[['sip:2001@10.0.1.1:5060', 5000]]], '2002 has no device and is skipped; acme’s extension rings');
  await s.register('1001', REALM, '10.0.0.1');
  const demo = fork(t, await s.router(s.invite('4008123456', { address: CARRIER })));
  t.same(shape(demo)[0], [['sip:1001@10.0.0.1:5060', 8000]], 'the demo number, from the same address, goes to the demo tenant');
});

t.test('carrier calls: unknown number 404, blacklisted caller 603, non-INVITE 405, OPTIONS keep-alive 200', async (t) => {
  const s = setup();
  const nf = await s.router(s.invite('4009999999', { address: CARRIER }));
  t.match(nf, { action: 'respond', status: 404 });
  const bl = await s.router(s.invite('4001112222', { address: CARRIER, headers: ['P-Asserted-Identity: <tel:13700000000>'] }));
  t.match(bl, { action: 'respond', status: 603 });
  const msg = makeRequest('MESSAGE', { uri: 'sip:4001112222@192.0.2.1' });
  msg.source = { transport: 'udp', address: CARRIER, port: 5060, localAddress: '192.0.2.1', localPort: 5060 };
  t.match(await s.router(msg), { action: 'respond', status: 405 });
  const ping = makeRequest('OPTIONS', { uri: 'sip:192.0.2.1' });
  ping.source = { transport: 'udp', address: CARRIER, port: 5060, localAddress: '192.0.2.1', localPort: 5060 };
  t.match(await s.router(ping), { action: 'respond', status: 200 });
  const trustedOnly = s.invite('4008123456', { address: '192.0.2.99' });
  t.match(await s.router(trustedOnly), { action: 'respond', status: 403 }, 'a keep-alive-only source may not place calls');
});

t.test('round-robin (4008123457): the shared counter is incremented once per call and rotates the first target', async (t) => {
  const keys: string[] = [];
  let n = 0;
  const s = setup({ counters: { incrCounter: async (k) => { keys.push(k); return ++n; } } });
  await s.register('1001', REALM, '10.0.0.1');
  await s.register('1002', REALM, '10.0.0.2');
  const firsts: string[] = [];
  for (let i = 0; i < 4; i++) {
    const d = fork(t, await s.router(s.invite('4008123457', { address: '127.0.0.2' })));
    firsts.push(d.plan.groups[0]?.targets[0]?.label ?? '?');
  }
  t.same(firsts, ['1001', '1002', '1001', '1002'], 'INCR returns 1 first: the first call starts at the first target');
  t.same(keys, Array(4).fill('rr:demo:route:round-robin:rotate:0'));
});

t.test('round-robin with the counter store down: calls still rotate (per node), and the outage is logged once', async (t) => {
  const s = setup({ counters: { incrCounter: async () => { throw new Error('ECONNREFUSED'); } } });
  await s.register('1001', REALM, '10.0.0.1');
  await s.register('1002', REALM, '10.0.0.2');
  const firsts: string[] = [];
  for (let i = 0; i < 3; i++) firsts.push(fork(t, await s.router(s.invite('4008123457', { address: '127.0.0.2' }))).plan.groups[0]?.targets[0]?.label ?? '?');
  t.same(firsts, ['1001', '1002', '1001']);
  t.equal(s.log.entries.filter((e) => e.level === 'warn' && /counters unreachable/.test(e.msg ?? '')).length, 1);
});

t.test('extensions authenticate in the realm of their domain (407), then dial each other and short codes; the callee sees the short code', async (t) => {
  const s = setup();
  await s.register('1002', REALM, '10.0.0.2');
  const first = await s.router(s.invite('6002', { address: '10.9.9.9' }));
  t.match(first, { action: 'respond', status: 407 });
  t.match((first as { headers: Array<[string, string]> }).headers[0]?.[1], `realm="${REALM}"`);
  const acme = await s.router(s.invite('2001', { address: '10.9.9.9', fromUri: 'sip:2002@acme.test' }));
  t.match((acme as { headers: Array<[string, string]> }).headers[0]?.[1], 'realm="acme.test"', 'another tenant’s domain is challenged in its own realm');

  const d = fork(t, await s.asExtension(s.invite('6002', { address: '10.9.9.9' }), '1001', REALM));
  t.same(shape(d), [[['sip:1002@10.0.0.2:5060', 20_000]]]);
  t.same(d.plan.groups[0]?.targets[0]?.headers, [['P-Asserted-Identity', `"Demo 1001" <sip:6001@${REALM}>`]]);
});

t.test('an extension of another tenant cannot reach the demo’s extensions: its numbers are its own tenant’s', async (t) => {
  const s = setup();
  await s.register('1002', REALM, '10.0.0.2');
  const d = await s.asExtension(s.invite('1002', { address: '10.9.9.9', fromUri: 'sip:2001@acme.test' }), '2001', 'acme.test');
  t.match(d, { action: 'respond', status: 404 }, 'acme has no extension 1002, and extensions are per tenant');
});

t.test('wrong password: 407 again (never 403, which would confirm the user exists), and the failure is logged', async (t) => {
  const s = setup();
  const req = s.invite('1002', { address: '10.9.9.9' });
  const first = await s.router(req);
  const nonce = /nonce="([^"]+)"/.exec((first as { headers: Array<[string, string]> }).headers[0]?.[1] ?? '')?.[1] ?? '';
  const bad = makeRequest('INVITE', { uri: req.uri.toString(), headers: [`Proxy-Authorization: Digest username="1001", realm="${REALM}", nonce="${nonce}", uri="${req.uri.toString()}", response="00000000000000000000000000000000", algorithm=MD5`] });
  bad.source = req.source;
  t.match(await s.router(bad), { action: 'respond', status: 407 });
  t.ok(s.log.entries.some((e) => /authentication failed/.test(e.msg ?? '')));
});

t.test('failover chain: nobody answers the hunt → forward to a mobile via gw1; gw1 unreachable → the same number via gw2; then the call ends', async (t) => {
  const s = setup();
  await s.register('2001', 'acme.test', '10.0.1.1');
  const d = fork(t, await s.router(s.invite('02166668888', { address: CARRIER, headers: ['P-Asserted-Identity: <sip:01088886666@carrier>'] })));
  t.same(shape(d), [[['sip:2001@10.0.1.1:5060', 5000]]]);
  const fwd = fork(t, await d.next?.({ status: 480, kind: 'no-answer' }));
  t.same(shape(fwd), [[['sip:13900000000@198.51.100.1:5060', 30_000]]], 'national format through gw1');
  const gw1 = fwd.plan.groups[0]?.targets[0];
  t.same(gw1?.headers, [['P-Asserted-Identity', '<sip:01088886666@198.51.100.1>'], ['Diversion', '<sip:02166668888@acme.test>;reason=unconditional']],
    'the caller’s number is passed on, with the number it was diverted from (RFC 5806)');
  if (gw1) fwd.onOutcome?.({ target: gw1, kind: 'unreachable', status: 503, elapsedMs: 3 });
  const retry = fork(t, await fwd.next?.({ status: 480, kind: 'unreachable' }));
  t.same(shape(retry), [[['sip:13900000000@198.51.100.2:5070;transport=tcp', 30_000]]]);
  const gw2 = retry.plan.groups[0]?.targets[0];
  if (gw2) retry.onOutcome?.({ target: gw2, kind: 'unreachable', status: 503, elapsedMs: 3 });
  t.equal(await retry.next?.({ status: 480, kind: 'unreachable' }), undefined, 'no gateway left: the step fails and the rule ends the call');
});

t.test('busy at the forward step ends the call with the busy (no gateway retry for a real answer)', async (t) => {
  const s = setup();
  await s.register('2001', 'acme.test', '10.0.1.1');
  const d = fork(t, await s.router(s.invite('02166668888', { address: CARRIER })));
  const fwd = fork(t, await d.next?.({ status: 486, kind: 'busy' }));
  const gw1 = fwd.plan.groups[0]?.targets[0];
  if (gw1) fwd.onOutcome?.({ target: gw1, kind: 'busy', status: 486, elapsedMs: 3 });
  t.equal(await fwd.next?.({ status: 486, kind: 'busy' }), undefined);
});

t.test('a ring step with nobody registered fails at once as unreachable and follows onFail (here: forward)', async (t) => {
  const s = setup();
  const d = fork(t, await s.router(s.invite('02166668888', { address: CARRIER })));
  t.same(shape(d), [[['sip:13900000000@198.51.100.1:5060', 30_000]]]);
});

t.test('demo hunt with nobody registered: 480 at once', async (t) => {
  const s = setup();
  t.match(await s.router(s.invite('4008123456', { address: '127.0.0.2' })), { action: 'respond', status: 480 });
});

t.test('an IVR step without a media service takes the menu’s no-input branch', async (t) => {
  const s = setup();
  const doc: TenantDocument = { ...ACME, numbers: [...(ACME.numbers ?? []), { number: '4001113333', route: 'ivr' }] };
  s.source.put(doc);
  await s.register('2001', 'acme.test', '10.0.1.1');
  const d = fork(t, await s.router(s.invite('4001113333', { address: CARRIER })));
  t.same(shape(d), [[['sip:2001@10.0.1.1:5060', 20_000]]]);
});

t.test('tenant changes reach the index: a new number routes, a removed trunk source stops being a carrier', async (t) => {
  const s = setup();
  await s.register('2001', 'acme.test', '10.0.1.1');
  t.match(await s.router(s.invite('4001114444', { address: CARRIER })), { action: 'respond', status: 404 });
  s.source.put({ ...ACME, numbers: [...(ACME.numbers ?? []), { number: '4001114444', route: 'main' }] });
  fork(t, await s.router(s.invite('4001114444', { address: CARRIER })));
  s.source.put({ ...ACME, inboundTrunks: [{ id: 'ctcc', sources: ['198.18.0.1'] }] });
  s.source.put({ ...demoWithCarrier(), inboundTrunks: [{ id: 'demo-carrier', sources: ['127.0.0.2'] }] });
  t.match(await s.router(s.invite('4001112222', { address: CARRIER })), { action: 'respond', status: 407 }, 'no longer a trunk: challenged like anyone');
});

t.test('concurrent-call limit: the call over the tenant’s limit gets 503 with Retry-After; a failed call frees its slot, an answered one at its BYE', async (t) => {
  const s = setup();
  s.source.put({ ...ACME, limits: { maxConcurrentCalls: 1 } });
  await s.register('2001', 'acme.test', '10.0.1.1');
  const first = fork(t, await s.router(s.invite('4001112222', { address: CARRIER })));
  const second = await s.router(s.invite('4001112222', { address: CARRIER }));
  t.match(second, { action: 'respond', status: 503, headers: [['Retry-After', '10']] });
  t.match(await s.router(s.invite('4009999999', { address: CARRIER })), { action: 'respond', status: 404 }, 'refusals are not counted against the limit');
  first.onFinal?.(486);
  const third = fork(t, await s.router(s.invite('4001112222', { address: CARRIER })));
  const thirdCall = s.tracker.count('acme');
  t.equal(thirdCall, 1);
  third.onFinal?.(200);
  t.match(await s.router(s.invite('4001112222', { address: CARRIER })), { action: 'respond', status: 503 }, 'answered: still counted');
  t.equal(s.tracker.count('demo'), 0, 'other tenants unaffected');
});

t.test('call records: a refused call (blacklist) is recorded at once; an unknown number is not the tenant’s call; a hunt records each target tried', async (t) => {
  const s = setup();
  await s.register('2001', 'acme.test', '10.0.1.1');
  await s.router(s.invite('4001112222', { address: CARRIER, headers: ['P-Asserted-Identity: <tel:13700000000>'] }));
  await s.router(s.invite('4009999999', { address: CARRIER }));
  t.same(s.ended.map((r) => [r.tenant, r.disposition, r.finalStatus, r.caller]), [['acme', 'rejected', 603, '13700000000']]);
  const d = fork(t, await s.router(s.invite('02166668888', { address: CARRIER, headers: ['P-Asserted-Identity: <sip:01088886666@carrier>'] })));
  d.onRinging?.();
  const target = d.plan.groups[0]?.targets[0];
  if (target) d.onOutcome?.({ target, kind: 'no-answer', status: 408, elapsedMs: 5000 });
  const fwd = fork(t, await d.next?.({ status: 480, kind: 'no-answer' }));
  const gw = fwd.plan.groups[0]?.targets[0];
  if (gw) fwd.onOutcome?.({ target: gw, kind: 'busy', status: 486, elapsedMs: 10 });
  await fwd.next?.({ status: 486, kind: 'busy' });
  d.onFinal?.(486);
  const r = s.ended[1];
  t.match(r, { tenant: 'acme', called: '02166668888', caller: '01088886666', callerRegion: { province: '北京' }, route: 'main', rule: 'hunt', disposition: 'busy', finalStatus: 486 });
  t.same(r?.attempts.map((a) => [a.target, a.kind, a.outcome]), [['2001', 'extension', 'no-answer'], ['+8613900000000 via gw1', 'external', 'busy']]);
  t.ok(r?.ringingAt !== undefined);
});
