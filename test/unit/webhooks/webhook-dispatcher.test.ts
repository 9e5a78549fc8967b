/**
 * Webhook delivery against a real HTTP server on 127.0.0.1 (random port),
 * which the SSRF guard refuses by default: these dispatchers allow it, as
 * an operator would with DIALPLANE_WEBHOOK_ALLOW.
 * Backoff and timeouts run on a ManualClock: nothing sleeps; tests wait for
 * the dispatcher to be idle, then move the clock.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { CallTracker, type CallRecord } from '../../../src/call/call-tracker.js';
import { EmbeddedWebhookStore } from '../../../src/store/embedded/webhook-store.js';
import type { WebhookConfig } from '../../../src/store/webhook-store.js';
import { WebhookDispatcher, retryDelayMs, type WebhookPayload } from '../../../src/webhooks/webhook-dispatcher.js';
import { signatureHeader, verifySignature } from '../../../src/webhooks/webhook-signature.js';
import { WebhookUrlGuard, type HostLookup } from '../../../src/webhooks/url-guard.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { RecordingLogger } from '../../helpers/recording-logger.js';

interface Received { path: string; headers: IncomingHttpHeaders; body: string }

/** Answers each request with the next status of `script` (then `fallback`); 0 = never answer (held). */
async function server(t: Test, script: number[] = [], fallback = 200): Promise<{ url: string; received: Received[]; held: ServerResponse[]; srv: Server }> {
  const received: Received[] = [];
  const held: ServerResponse[] = [];
  const srv = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const status = script.length > 0 ? script.shift() as number : fallback;
      if (status === 0) { held.push(res); return; }
      res.writeHead(status, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => { for (const r of held) r.destroy(); srv.closeAllConnections(); srv.close(() => resolve()); }));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, received, held, srv };
}

const SECRET = 'whsec-0123456789abcdef';
/** The test receivers listen on loopback. */
const allowLoopback = new WebhookUrlGuard({ allow: ['127.0.0.1'] });

function hook(id: string, url: string, events: WebhookConfig['events'], enabled = true): WebhookConfig {
  return { id, url, events, secret: SECRET, enabled };
}

function rec(callId: string, tenant = 'acme'): CallRecord {
  return {
    callId, tenant, origin: { kind: 'trunk', trunk: 't' }, called: '4008123456', caller: '+8618912345678',
    callerRegion: { province: '江苏省', city: '常州市' }, startedAt: 1_700_000_000_000, attempts: [],
  };
}

async function setup(t: Test, options: Partial<ConstructorParameters<typeof WebhookDispatcher>[0]> = {}) {
  const clock = new ManualClock();
  const log = new RecordingLogger();
  const store = new EmbeddedWebhookStore();
  const tracker = new CallTracker({ clock, log });
  const dispatcher = new WebhookDispatcher({ store, clock, log, random: () => 0, guard: allowLoopback, ...options });
  dispatcher.listen(tracker);
  t.teardown(() => dispatcher.close());
  return { clock, log, store, tracker, dispatcher };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

t.test('a delivery: signed JSON with the call\'s facts, verifiable by the receiver', async (t) => {
  const srv = await server(t);
  const { store, tracker, dispatcher, clock } = await setup(t);
  await store.put('acme', hook('crm', `${srv.url}/hooks/来电`, ['ringing']));
  tracker.start(rec('c1'), undefined);
  tracker.ringing('c1');
  await dispatcher.whenIdle();
  t.equal(srv.received.length, 1);
  const got = srv.received[0] as Received;
  t.equal(got.path, '/hooks/%E6%9D%A5%E7%94%B5');
  t.match(got.headers, { 'content-type': 'application/json; charset=utf-8', 'x-dialplane-event': 'ringing' });
  const payload = JSON.parse(got.body) as WebhookPayload;
  t.match(payload, {
    event: 'ringing', callId: 'c1', tenant: 'acme', called: '4008123456', caller: '+8618912345678',
    callerRegion: { province: '江苏省', city: '常州市' }, occurredAt: clock.now(), ringingAt: clock.now(), answeredAt: null, disposition: null,
  });
  t.equal(got.headers['x-dialplane-event-id'], payload.eventId);
  const signature = got.headers['x-dialplane-signature'] as string;
  const nowS = Math.floor(clock.now() / 1000);
  t.ok(verifySignature(SECRET, got.body, signature, nowS), 'the signature verifies over the exact body');
  t.notOk(verifySignature('another-secret-0000', got.body, signature, nowS), 'not under another secret');
  t.notOk(verifySignature(SECRET, got.body.replace('江苏省', '浙江省'), signature, nowS), 'not for a changed body');
  t.match(dispatcher.stats(), { delivered: 1, failed: 0, queued: 0 });
});

t.test('events go to the webhooks subscribed to them; missed = ended without an answer', async (t) => {
  const srv = await server(t);
  const { store, tracker, dispatcher } = await setup(t);
  await store.put('acme', hook('sms', `${srv.url}/sms`, ['missed']));
  await store.put('acme', hook('crm', `${srv.url}/crm`, ['answered', 'ended']));
  await store.put('acme', hook('off', `${srv.url}/off`, ['missed', 'ended'], false));
  await store.put('other', hook('x', `${srv.url}/other`, ['missed']));
  tracker.refused(rec('missed-call'), 486);
  tracker.start(rec('answered-call'), undefined);
  tracker.final('answered-call', 200);
  tracker.bye('answered-call');
  await dispatcher.whenIdle();
  const seen = srv.received.map((r) => `${r.path} ${(JSON.parse(r.body) as WebhookPayload).event} ${(JSON.parse(r.body) as WebhookPayload).callId}`).sort();
  t.strictSame(seen, [
    '/crm answered answered-call',
    '/crm ended answered-call',
    '/crm ended missed-call',
    '/sms missed missed-call',
  ]);
  const missed = srv.received.find((r) => r.path === '/sms');
  t.match(JSON.parse(missed?.body ?? '{}'), { disposition: 'busy', finalStatus: 486, answeredAt: null });
});

t.test('retries with backoff on the clock, then success: same event id, no failure recorded', async (t) => {
  const srv = await server(t, [500, 503]);
  const { store, tracker, dispatcher, clock } = await setup(t, { baseDelayMs: 1000 });
  await store.put('acme', hook('crm', srv.url, ['ended']));
  tracker.refused(rec('c1'), 404);
  await dispatcher.whenIdle();
  t.equal(srv.received.length, 1);
  clock.advance(499);
  await dispatcher.whenIdle();
  t.equal(srv.received.length, 1, 'not before the backoff (500 ms with this jitter)');
  clock.advance(1);
  await dispatcher.whenIdle();
  t.equal(srv.received.length, 2, 'second attempt');
  clock.advance(1000);
  await dispatcher.whenIdle();
  t.equal(srv.received.length, 3, 'third attempt after 1 s');
  t.equal(new Set(srv.received.map((r) => r.headers['x-dialplane-event-id'])).size, 1, 'one event id across attempts');
  t.match(dispatcher.stats(), { delivered: 1, retried: 2, failed: 0, queued: 0 });
  await tick();
  t.strictSame(await store.failures('acme', 'crm'), []);
});

t.test('backoff: exponential, capped, jittered', async (t) => {
  const cases: Array<[number, number, number]> = [[1, 0, 500], [1, 0.999999, 1000], [2, 0, 1000], [3, 0, 2000], [4, 1, 8000], [10, 1, 60_000], [40, 0, 30_000]];
  for (const [attempt, r, expected] of cases) t.equal(retryDelayMs(attempt, 1000, 60_000, () => r), expected, `attempt ${attempt}, random ${r}`);
});

t.test('a delivery failing every attempt is recorded for the admin API', async (t) => {
  const srv = await server(t, [], 502);
  const { store, tracker, dispatcher, clock, log } = await setup(t, { maxAttempts: 5 });
  await store.put('acme', hook('crm', srv.url, ['missed']));
  tracker.refused(rec('c1'), 480);
  // Exactly each backoff (random 0: half of 1, 2, 4, 8 s): a larger step would
  // also run out the timeout of the request the retry starts.
  for (const delay of [500, 1000, 2000, 4000]) {
    await dispatcher.whenIdle();
    clock.advance(delay);
  }
  await dispatcher.whenIdle();
  await tick();
  t.equal(srv.received.length, 5, 'five attempts');
  const [f] = await store.failures('acme', 'crm');
  t.match(f, { event: 'missed', callId: 'c1', attempts: 5, status: 502, error: 'HTTP 502' });
  t.match(dispatcher.stats(), { failed: 1, retried: 4, queued: 0 });
  t.equal(log.at('warn').filter((e) => e.msg === 'webhook delivery failed').length, 1);
});

t.test('a 4xx or a redirect fails at once; a refused connection and a timeout are retried', async (t) => {
  const srv = await server(t, [404, 302, 0]);
  const closed = await server(t);
  const deadUrl = closed.url;
  await new Promise<void>((resolve) => closed.srv.close(() => resolve()));
  const { store, tracker, dispatcher, clock } = await setup(t, { maxAttempts: 2, timeoutMs: 3000 });
  await store.put('acme', hook('a404', `${srv.url}/404`, ['missed']));
  await dispatcher.whenIdle();
  tracker.refused(rec('c404'), 480);
  await dispatcher.whenIdle();
  await store.put('acme', hook('a404', `${srv.url}/302`, ['missed']));
  dispatcher.invalidate('acme');
  tracker.refused(rec('c302'), 480);
  await dispatcher.whenIdle();
  await tick();
  t.match(await store.failures('acme', 'a404'), [{ callId: 'c302', attempts: 1, status: 302 }, { callId: 'c404', attempts: 1, status: 404 }]);

  await store.delete('acme', 'a404');
  await store.put('acme', hook('slow', `${srv.url}/slow`, ['missed']));
  await store.put('acme', hook('dead', deadUrl, ['missed']));
  dispatcher.invalidate('acme');
  tracker.refused(rec('c2'), 480);
  // The held request: wait until the server has it, then let the clock run out its timeout.
  while (srv.held.length === 0) await tick();
  clock.advance(3000);
  await dispatcher.whenIdle();
  t.equal(dispatcher.stats().retried, 2, 'both retried once');
  clock.advance(500);
  await dispatcher.whenIdle();
  await tick();
  t.match(await store.failures('acme', 'dead'), [{ attempts: 2, error: /ECONNREFUSED/ }], 'the refused connection, after its last attempt');
  t.strictSame(await store.failures('acme', 'slow'), [], 'the slow endpoint answered its second attempt');
  t.match(dispatcher.stats(), { delivered: 1, failed: 3, queued: 0 });
});

t.test('a full tenant queue drops events, counts them, warns once; other tenants are unaffected', async (t) => {
  const srv = await server(t, [0, 0, 0, 0, 0, 0]);
  const { store, tracker, dispatcher, log } = await setup(t, { maxQueuePerTenant: 3, concurrencyPerTenant: 1 });
  await store.put('acme', hook('crm', srv.url, ['ended']));
  await store.put('other', hook('crm', srv.url, ['ended']));
  const accepted = ['e1', 'e2', 'e3', 'e4', 'e5'].map((id) => dispatcher.dispatch('ended', { ...rec(id), endedAt: 1 }));
  t.strictSame(accepted, [true, true, true, false, false]);
  t.equal(dispatcher.dispatch('ended', { ...rec('o1', 'other'), endedAt: 1 }), true, 'another tenant has its own queue');
  tracker.refused(rec('through-tracker'), 403);
  t.match(dispatcher.stats(), { dropped: 4 }, 'events from the tracker (ended and missed) are dropped the same way, without blocking it');
  t.equal(log.at('warn').filter((e) => e.msg === 'webhook queue full: events dropped until it drains').length, 1);
  while (srv.held.length < 2) await tick();
  t.equal(srv.received.length, 2, 'one request in flight per tenant (concurrency 1)');
});

t.test('configurations are cached for configTtlMs; an unreadable store drops the event and logs once', async (t) => {
  const srv = await server(t);
  const { store, tracker, dispatcher, clock, log } = await setup(t, { configTtlMs: 5000 });
  tracker.refused(rec('before'), 480);
  await dispatcher.whenIdle();
  await store.put('acme', hook('crm', srv.url, ['missed']));
  tracker.refused(rec('cached'), 480);
  await dispatcher.whenIdle();
  t.equal(srv.received.length, 0, 'the cached empty list still applies');
  clock.advance(5000);
  tracker.refused(rec('after-ttl'), 480);
  await dispatcher.whenIdle();
  t.equal(srv.received.length, 1);

  const failing = new EmbeddedWebhookStore();
  await failing.close();
  const broken = new WebhookDispatcher({ store: failing, clock, log, random: () => 0 });
  t.teardown(() => broken.close());
  broken.dispatch('missed', rec('x'));
  broken.dispatch('missed', rec('y'));
  await broken.whenIdle();
  t.match(broken.stats(), { configErrors: 2, queued: 0 });
  t.equal(log.at('warn').filter((e) => e.msg?.startsWith('webhook configurations unreadable')).length, 1);
});

t.test('close abandons retries and aborts requests in flight', async (t) => {
  const srv = await server(t, [0]);
  const { store, tracker, dispatcher, clock } = await setup(t);
  await store.put('acme', hook('crm', srv.url, ['missed']));
  tracker.refused(rec('c1'), 480);
  while (srv.held.length === 0) await tick();
  await dispatcher.close();
  clock.advance(600_000);
  await tick();
  t.equal(srv.received.length, 1);
  t.equal(dispatcher.dispatch('missed', rec('late')), false);
});

t.test('signature header: format and verification table', async (t) => {
  const body = '{"event":"missed","caller":"张三"}';
  const header = signatureHeader(SECRET, body, 1_700_000_000);
  t.match(header, /^t=1700000000,v1=[0-9a-f]{64}$/);
  const v1 = header.split('v1=')[1] ?? '';
  const cases: Array<[string, string | undefined, number, boolean]> = [
    ['valid', header, 1_700_000_000, true],
    ['within tolerance', header, 1_700_000_300, true],
    ['too old (replay)', header, 1_700_000_301, false],
    ['from the future', header, 1_699_999_699, false],
    ['rotation: a second v1 that matches', `t=1700000000,v1=${'0'.repeat(64)},v1=${v1}`, 1_700_000_000, true],
    ['timestamp changed', `t=1700000001,v1=${v1}`, 1_700_000_000, false],
    ['no v1', 't=1700000000', 1_700_000_000, false],
    ['no t', `v1=${v1}`, 1_700_000_000, false],
    ['garbage', 'hello', 1_700_000_000, false],
    ['uppercase hex is not ours', `t=1700000000,v1=${v1.toUpperCase()}`, 1_700_000_000, false],
    ['missing header', undefined, 1_700_000_000, false],
  ];
  for (const [name, h, now, expected] of cases) t.equal(verifySignature(SECRET, body, h, now), expected, name);
});

t.test('SSRF: a blocked destination is refused without a request, recorded once, not retried', async (t) => {
  const srv = await server(t);
  const { store, tracker, dispatcher, clock } = await setup(t, { guard: new WebhookUrlGuard() });
  await store.put('acme', hook('loop', `${srv.url}/x`, ['missed']));
  await store.put('acme', hook('meta', 'http://169.254.169.254/latest/meta-data/', ['missed']));
  tracker.refused(rec('c1'), 480);
  await dispatcher.whenIdle();
  clock.advance(600_000);
  await dispatcher.whenIdle();
  await tick();
  t.equal(srv.received.length, 0, 'nothing reached the loopback receiver');
  t.match(await store.failures('acme', 'loop'), [{ attempts: 1, error: /^refused: host 127\.0\.0\.1 is blocked \(loopback\)$/ }]);
  t.match(await store.failures('acme', 'meta'), [{ attempts: 1, error: /^refused: host 169\.254\.169\.254 is blocked \(link-local/ }]);
  t.match(dispatcher.stats(), { failed: 2, retried: 0, delivered: 0, queued: 0 });
});

t.test('SSRF: DNS rebinding is refused, and the request goes to the address that was checked', async (t) => {
  const srv = await server(t);
  const port = new URL(srv.url).port;
  // hooks.example is reserved (RFC 2606): only this fake DNS knows it. Its
  // answers change between calls, as a rebinding attacker's would.
  const answers: string[][] = [['203.0.113.9', '127.0.0.1'], ['127.0.0.1']];
  const asked: string[] = [];
  const lookup: HostLookup = async (host) => {
    asked.push(host);
    return (answers.shift() ?? ['127.0.0.1']).map((address) => ({ address, family: 4 }));
  };
  // First attempt, default guard: one public and one loopback address is refused
  // (ANY blocked address refuses). Second, loopback allowed as an operator
  // would: the request must go to 127.0.0.1, the checked answer.
  const strict = await setup(t, { guard: new WebhookUrlGuard(), lookup });
  await strict.store.put('acme', hook('crm', `http://hooks.example:${port}/in`, ['missed']));
  strict.tracker.refused(rec('rebound'), 480);
  await strict.dispatcher.whenIdle();
  await tick();
  t.match(await strict.store.failures('acme', 'crm'), [{ attempts: 1, error: 'refused: host hooks.example resolves to 127.0.0.1, which is blocked (loopback)' }]);
  t.equal(srv.received.length, 0);

  const allowed = await setup(t, { guard: allowLoopback, lookup });
  await allowed.store.put('acme', hook('crm', `http://hooks.example:${port}/in`, ['missed']));
  allowed.tracker.refused(rec('pinned'), 480);
  await allowed.dispatcher.whenIdle();
  t.equal(srv.received.length, 1, 'delivered through the checked address: hooks.example has no real DNS');
  t.equal(srv.received[0]?.headers.host, `hooks.example:${port}`, 'the Host header keeps the name');
  t.strictSame(asked, ['hooks.example', 'hooks.example'], 'one lookup per attempt, none by the HTTP client');
});

t.test('SSRF: a name that does not resolve is a network error, retried', async (t) => {
  const lookup: HostLookup = async (host) => { throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }); };
  const { store, tracker, dispatcher, clock } = await setup(t, { guard: new WebhookUrlGuard(), lookup, maxAttempts: 2 });
  await store.put('acme', hook('crm', 'https://gone.example/in', ['missed']));
  tracker.refused(rec('c1'), 480);
  await dispatcher.whenIdle();
  clock.advance(500);
  await dispatcher.whenIdle();
  await tick();
  t.match(await store.failures('acme', 'crm'), [{ attempts: 2, error: /ENOTFOUND/ }]);
  t.match(dispatcher.stats(), { retried: 1, failed: 1 });
});
