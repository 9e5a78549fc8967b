/**
 * Call data through the admin API, on the embedded stores: CDR queries and
 * pagination, the CSV export, reports, active calls, webhooks (the secret
 * is write-only) and /metrics.
 */
import t from 'tap';
import type { Test } from 'tap';
import { EmbeddedApiKeyStore } from '../../../src/store/embedded/api-key-store.js';
import { EmbeddedTenantStore } from '../../../src/store/embedded/tenant-store.js';
import type { CdrRecord } from '../../../src/store/cdr-store.js';
import type { CallRecord } from '../../../src/call/call-tracker.js';
import { NOW, callData, cdr, startAdmin, type Admin, type Backend, type CallData } from './admin-suite.js';
import { WebhookUrlGuard } from '../../../src/webhooks/url-guard.js';

async function embedded(): Promise<Backend> {
  const store = await EmbeddedTenantStore.open();
  const keys = await EmbeddedApiKeyStore.open();
  return { store, keys, cleanup: async () => { await keys.close(); await store.close(); } };
}

async function setup(t: Test, guard?: WebhookUrlGuard): Promise<{ a: Admin; data: CallData }> {
  const data = callData(t);
  const a = await startAdmin(t, embedded, { ...data.deps, ...(guard ? { webhookUrlGuard: guard } : {}) });
  t.equal((await a.call('PUT', '/v1/tenants/acme', { body: { timeZone: 'Asia/Shanghai' } })).statusCode, 201);
  return { a, data };
}

interface Page { items: CdrRecord[]; nextCursor?: string }

t.test('GET /cdrs: newest first, filters, cursor pagination', async (t) => {
  const { a, data } = await setup(t);
  for (let n = 1; n <= 5; n++) await data.cdrs.append(cdr('acme', n));
  await data.cdrs.append(cdr('acme', 6, { disposition: 'no-answer', answeredAt: undefined, caller: '+86 139-1234-0099', attempts: [] }));
  await data.cdrs.append(cdr('other', 7));

  const all = (await a.call('GET', '/v1/tenants/acme/cdrs')).json() as Page;
  t.same(all.items.map((r) => r.callId), ['call-acme-6', 'call-acme-5', 'call-acme-4', 'call-acme-3', 'call-acme-2', 'call-acme-1'], 'newest first, only acme');
  t.equal(all.nextCursor, undefined);

  const seen: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const r = await a.call('GET', `/v1/tenants/acme/cdrs?limit=4${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    t.equal(r.statusCode, 200);
    const p = r.json() as Page;
    seen.push(...p.items.map((i) => i.callId));
    cursor = p.nextCursor;
    pages++;
  } while (cursor !== undefined && pages < 10);
  t.equal(pages, 2, 'two pages of 4');
  t.same(seen, all.items.map((r) => r.callId), 'pages add up to the whole, no repeat');

  const missed = (await a.call('GET', '/v1/tenants/acme/cdrs?disposition=no-answer')).json() as Page;
  t.same(missed.items.map((r) => r.callId), ['call-acme-6']);
  const byNumber = (await a.call('GET', '/v1/tenants/acme/cdrs?number=13912340099')).json() as Page;
  t.same(byNumber.items.map((r) => r.callId), ['call-acme-6'], '+86 and separators ignored');

  const from = NOW - 3600_000 + 2000;
  const to = NOW - 3600_000 + 4000;
  const range = (await a.call('GET', `/v1/tenants/acme/cdrs?from=${from}&to=${to}`)).json() as Page;
  t.same(range.items.map((r) => r.callId), ['call-acme-3', 'call-acme-2'], 'from inclusive, to exclusive (epoch ms)');
  const iso = (await a.call('GET', `/v1/tenants/acme/cdrs?from=${encodeURIComponent(new Date(from).toISOString())}&to=${encodeURIComponent('2025-03-03T09:00:04+08:00')}`)).json() as Page;
  t.same(iso.items.map((r) => r.callId), ['call-acme-3', 'call-acme-2'], 'ISO 8601 with a zone');
});

t.test('GET /cdrs: bad queries are 400s naming the field; a missing tenant is 404', async (t) => {
  const { a } = await setup(t);
  const cases: Array<[string, string]> = [
    ['limit=0', '/limit'], ['limit=1001', '/limit'], ['disposition=lost', '/disposition'], ['from=yesterday', '/from'],
    ['to=2025-03-03T10:00:00', '/to'], ['cursor=abc', '/cursor'], ['number=---', '/number'], ['from=2000&to=1000', '/to'], ['sort=asc', '/sort'],
  ];
  for (const [q, path] of cases) {
    const r = await a.call('GET', `/v1/tenants/acme/cdrs?${q}`);
    t.equal(r.statusCode, 400, q);
    t.match(r.json(), { error: { code: 'DP_ADMIN_VALIDATION', issues: [{ in: 'query', path }] } }, `${q} names ${path}`);
  }
  t.equal((await a.call('GET', '/v1/tenants/nobody/cdrs')).statusCode, 404);
  t.equal((await a.call('GET', '/v1/tenants/nobody/cdrs.csv')).statusCode, 404);
});

t.test('GET /cdrs.csv: header, rows in the tenant time zone, quoting and formula guard, same filters', async (t) => {
  const { a, data } = await setup(t);
  await data.cdrs.append(cdr('acme', 1, { caller: '=HYPERLINK("x")', callerRegion: { province: '北京', city: '北京' } }));
  await data.cdrs.append(cdr('acme', 2, { route: 'a,b', disposition: 'busy', answeredAt: undefined }));
  const r = await a.call('GET', '/v1/tenants/acme/cdrs.csv');
  t.equal(r.statusCode, 200);
  t.equal(r.headers['content-type'], 'text/csv; charset=utf-8');
  t.match(r.headers['content-disposition'], /attachment; filename="cdrs-acme\.csv"/);
  const lines = r.body.split('\r\n');
  t.equal(lines[0], 'call_id,tenant,origin,called,caller,caller_province,caller_city,started_at,ringing_at,answered_at,ended_at,wait_seconds,talk_seconds,disposition,final_status,ended_by,route,rule,targets');
  t.equal(lines.length, 4, 'header, two rows, final CRLF');
  t.match(lines[1], /^call-acme-2,acme,trunk:carrier,4008123456,13912340001,,,2025-03-03T08:59:32\+08:00,/, 'newest first, times at +08:00');
  t.match(lines[1], ',"a,b",', 'a field with a comma is quoted');
  t.match(lines[2], `,"'=HYPERLINK(""x"")",北京,北京,`, 'a formula is defused, quotes doubled, Chinese kept');
  const busy = await a.call('GET', '/v1/tenants/acme/cdrs.csv?disposition=busy&bom=true');
  t.equal(busy.body.charCodeAt(0), 0xfeff, 'optional BOM');
  t.equal(busy.body.split('\r\n').length, 3, 'filters apply');
  const bad = await a.call('GET', '/v1/tenants/acme/cdrs.csv?from=soon');
  t.equal(bad.statusCode, 400, 'checked before anything is streamed');
  t.match(bad.json(), { error: { issues: [{ path: '/from' }] } });
  t.equal((await a.call('GET', '/v1/tenants/acme/cdrs.csv?limit=5')).statusCode, 400, 'no paging on the export');
  const empty = await a.call('GET', '/v1/tenants/acme/cdrs.csv?number=1');
  t.equal(empty.body.split('\r\n').length, 2, 'nothing selected: the header alone');
});

t.test('GET /reports/{report}', async (t) => {
  const { a, data } = await setup(t);
  await data.cdrs.append(cdr('acme', 1, { callerRegion: { province: '北京' } }));
  await data.cdrs.append(cdr('acme', 2, { callerRegion: { province: '北京' } }));
  await data.cdrs.append(cdr('acme', 3, {
    disposition: 'no-answer', answeredAt: undefined, called: '4008123457',
    attempts: [{ target: '1002', kind: 'extension', startedAt: 0, endedAt: 1, outcome: 'no-answer', status: 480 }],
  }));
  const get = async (q: string): Promise<Record<string, unknown>> => {
    const r = await a.call('GET', `/v1/tenants/acme/reports/${q}`);
    t.equal(r.statusCode, 200, q);
    return r.json() as Record<string, unknown>;
  };
  t.match(await get('answered-vs-missed'), { report: 'answered-vs-missed', timeZone: 'Asia/Shanghai', records: 3, truncated: false, result: { calls: 3, answered: 2, missed: 1, byDisposition: { answered: 2, 'no-answer': 1 } } });
  t.match(await get('wait-to-answer'), { result: { answered: 2, averageMs: 5000, maxMs: 5000 } });
  t.same((await get('by-province')).result, [{ province: '北京', calls: 2, answered: 2, missed: 0 }, { province: '未知', calls: 1, answered: 0, missed: 1 }]);
  t.same((await get('busiest-targets?top=1')).result, [{ target: '1001', attempts: 2, answered: 2, unanswered: 0 }]);
  t.same((await get('calls-per-number?bucket=hour')).result, [
    { number: '4008123456', period: '2025-03-03 08', calls: 2, answered: 2, missed: 0 },
    { number: '4008123457', period: '2025-03-03 08', calls: 1, answered: 0, missed: 1 },
  ]);
  t.match(await get('calls-per-number'), { result: [{ period: '2025-03-03' }, { period: '2025-03-03' }] }, 'bucket defaults to day');
  t.match(await get(`answered-vs-missed?from=${NOW - 3600_000 + 3000}`), { result: { calls: 1, missed: 1 } }, 'from/to select');
  for (const [q, path] of [['nothing', '/report'], ['by-province?top=3', '/top'], ['wait-to-answer?bucket=day', '/bucket'], ['calls-per-number?bucket=week', '/bucket'], ['busiest-targets?top=0', '/top']] as const) {
    const r = await a.call('GET', `/v1/tenants/acme/reports/${q}`);
    t.equal(r.statusCode, 400, q);
    t.match(r.json(), { error: { code: 'DP_ADMIN_VALIDATION', issues: [{ path }] } }, `${q} names ${path}`);
  }
});

t.test('GET /calls: the tenant\'s calls in progress only', async (t) => {
  const { a, data } = await setup(t);
  const live = (tenant: string, n: number): CallRecord => ({ ...cdr(tenant, n), endedAt: undefined, disposition: undefined, answeredAt: undefined } as CallRecord);
  data.active.push(live('acme', 2), live('other', 3), live('acme', 1));
  const r = await a.call('GET', '/v1/tenants/acme/calls');
  t.equal(r.statusCode, 200);
  t.same((r.json() as { items: CallRecord[] }).items.map((c) => c.callId), ['call-acme-1', 'call-acme-2'], 'oldest first, no other tenant');
  t.equal((await a.call('GET', '/v1/tenants/nobody/calls')).statusCode, 404);
});

t.test('DELETE /calls/{id}: hangs up a call of the tenant, never another tenant\'s', async (t) => {
  const { a, data } = await setup(t);
  const live = (tenant: string, n: number, answered: boolean): CallRecord => ({ ...cdr(tenant, n), endedAt: undefined, disposition: undefined, ...(answered ? {} : { answeredAt: undefined }) } as CallRecord);
  data.active.push(live('acme', 1, true), live('acme', 2, false), live('other', 3, true));
  t.equal((await a.call('DELETE', '/v1/tenants/acme/calls/call-other-3')).statusCode, 404, 'another tenant\'s call is not found');
  t.equal((await a.call('DELETE', '/v1/tenants/acme/calls/nonexistent')).statusCode, 404);
  const r = await a.call('DELETE', '/v1/tenants/acme/calls/call-acme-1');
  t.equal(r.statusCode, 200);
  t.same(r.json(), { callId: 'call-acme-1', ended: true, state: 'answered', byeResponses: { caller: 200, callee: 481 } });
  t.same((await a.call('DELETE', '/v1/tenants/acme/calls/call-acme-2')).json(), { callId: 'call-acme-2', ended: true, state: 'ringing' });
  t.equal((await a.call('DELETE', '/v1/tenants/acme/calls/call-acme-1')).statusCode, 404, 'gone once ended');
  t.same(data.active.map((c) => c.callId), ['call-other-3']);
  const encoded = encodeURIComponent('a@b;c');
  t.equal((await a.call('DELETE', `/v1/tenants/acme/calls/${encoded}`)).statusCode, 404, 'Call-IDs with @ and ; are path parameters');
});

t.test('webhooks: CRUD, secret write-only, validation naming the field, dispatcher told', async (t) => {
  const { a, data } = await setup(t);
  const secret = 'hook-secret-0123456789';
  const body = { url: 'https://crm.example/hooks', events: ['answered', 'ended'], secret, enabled: true };
  const created = await a.call('PUT', '/v1/tenants/acme/webhooks/crm', { body });
  t.equal(created.statusCode, 201);
  t.same(created.json(), { id: 'crm', url: body.url, events: body.events, enabled: true, hasSecret: true });
  t.same(data.invalidated, ['acme'], 'the dispatcher forgets the tenant\'s cache');
  t.equal((await data.webhooks.get('acme', 'crm'))?.secret, secret, 'stored with its secret');

  const replaced = await a.call('PUT', '/v1/tenants/acme/webhooks/crm', { body: { id: 'crm', url: 'http://crm.example/v2', events: ['missed'], enabled: false } });
  t.equal(replaced.statusCode, 200, 'replace without the secret keeps it');
  t.equal((await data.webhooks.get('acme', 'crm'))?.secret, secret);
  t.equal((await data.webhooks.get('acme', 'crm'))?.url, 'http://crm.example/v2');

  for (const url of ['/v1/tenants/acme/webhooks', '/v1/tenants/acme/webhooks/crm', '/v1/tenants/acme/webhooks/crm/failures']) {
    const r = await a.call('GET', url);
    t.equal(r.statusCode, 200, url);
    t.notMatch(r.body, secret, `${url}: no secret`);
    t.notMatch(r.body, /"secret"/, `${url}: no secret field`);
  }
  t.same((await a.call('GET', '/v1/tenants/acme/webhooks')).json(), { items: [{ id: 'crm', url: 'http://crm.example/v2', events: ['missed'], enabled: false, hasSecret: true }] });

  await data.webhooks.recordFailure('acme', 'crm', { at: NOW, event: 'missed', eventId: 'ev-1', callId: 'c-1', attempts: 5, status: 502, error: 'bad gateway' });
  t.match((await a.call('GET', '/v1/tenants/acme/webhooks/crm/failures')).json(), { items: [{ eventId: 'ev-1', status: 502, attempts: 5 }] });

  const invalid: Array<[string, unknown, number, string]> = [
    ['new', { url: 'https://x.example', events: ['ended'], enabled: true }, 400, '/secret'],
    ['new', { ...body, secret: 'short' }, 400, '/secret'],
    ['new', { ...body, url: 'ftp://x.example' }, 400, '/url'],
    ['new', { ...body, url: 'http://' }, 400, '/url'],
    ['new', { ...body, events: [] }, 400, '/events'],
    ['new', { ...body, events: ['hangup'] }, 400, '/events/0'],
    ['new', { ...body, enabled: 'yes' }, 400, '/enabled'],
    ['new', { ...body, colour: 'red' }, 400, '/colour'],
    ['new', { ...body, id: 'other' }, 400, '/id'],
    ['bad id!', body, 400, '/id'],
  ];
  for (const [id, b, status, path] of invalid) {
    const r = await a.call('PUT', `/v1/tenants/acme/webhooks/${encodeURIComponent(id)}`, { body: b });
    t.equal(r.statusCode, status, `${id} ${JSON.stringify(b)}`);
    t.match(r.json(), { error: { issues: [{ path }] } }, `names ${path}`);
    t.notMatch(r.body, secret);
  }
  t.equal((await a.call('GET', '/v1/tenants/acme/webhooks/new')).statusCode, 404, 'nothing written');
  t.equal(data.invalidated.length, 2, 'refused changes told nobody');

  t.equal((await a.call('DELETE', '/v1/tenants/acme/webhooks/crm')).statusCode, 204);
  t.equal(data.invalidated.length, 3);
  t.equal((await a.call('DELETE', '/v1/tenants/acme/webhooks/crm')).statusCode, 404);
  t.equal((await a.call('GET', '/v1/tenants/acme/webhooks/crm')).statusCode, 404);
  t.equal((await a.call('GET', '/v1/tenants/acme/webhooks/crm/failures')).statusCode, 404);
  t.equal((await a.call('PUT', '/v1/tenants/nobody/webhooks/crm', { body })).statusCode, 404, 'no webhook for a missing tenant');
});

t.test('GET /metrics: Prometheus text for the operator only', async (t) => {
  const { a } = await setup(t);
  const r = await a.call('GET', '/metrics');
  t.equal(r.statusCode, 200);
  t.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  t.match(r.body, 'dialplane_calls_total{disposition="answered"} 3');
  t.equal((await a.call('GET', '/metrics', { auth: null })).statusCode, 401);
  const key = (await a.call('POST', '/v1/tenants/acme/api-keys', { body: {} })).json() as { key: string };
  t.equal((await a.call('GET', '/metrics', { auth: key.key })).statusCode, 403);
});

t.test('without the call-data dependencies the routes do not exist', async (t) => {
  const a = await startAdmin(t, embedded);
  await a.call('PUT', '/v1/tenants/acme', { body: {} });
  for (const url of ['/v1/tenants/acme/cdrs', '/v1/tenants/acme/webhooks', '/v1/tenants/acme/calls', '/metrics']) {
    t.equal((await a.call('GET', url)).statusCode, 404, url);
  }
});

t.test('webhooks: the SSRF guard refuses internal destinations at registration, naming /url and the reason', async (t) => {
  const { a, data } = await setup(t);
  const ok = { events: ['ended'], secret: 'hook-secret-0123456789', enabled: true };
  const refused: Array<[string, RegExp]> = [
    ['http://127.0.0.1:8080/v1/tenants', /127\.0\.0\.1 is blocked \(loopback\)/],
    ['http://127.1/', /127\.0\.0\.1 is blocked \(loopback\)/],
    ['http://2130706433/', /127\.0\.0\.1 is blocked \(loopback\)/],
    ['http://169.254.169.254/latest/meta-data/', /link-local/],
    ['https://10.1.2.3/', /private, RFC 1918/],
    ['https://192.168.0.10/', /private, RFC 1918/],
    ['https://100.100.100.200/', /carrier-grade NAT/],
    ['http://0.0.0.0:8080/', /"this network"/],
    ['http://[::1]:8080/', /::1 is blocked \(loopback\)/],
    ['http://[::ffff:127.0.0.1]/', /loopback, carried in IPv6/],
    ['http://[fd00::5]/', /unique local/],
    ['http://localhost:8080/', /localhost is blocked/],
    ['https://user:pass@crm.example/', /user information/],
    ['http://', /is not a URL/],
  ];
  for (const [url, reason] of refused) {
    const r = await a.call('PUT', '/v1/tenants/acme/webhooks/crm', { body: { ...ok, url } });
    t.equal(r.statusCode, 400, url);
    t.match(r.json(), { error: { code: 'DP_ADMIN_VALIDATION', issues: [{ in: 'body', path: '/url', message: reason }] } }, `${url}: names /url and why`);
  }
  t.equal(await data.webhooks.get('acme', 'crm'), undefined, 'nothing stored');
  t.same(data.invalidated, []);
  t.equal((await a.call('PUT', '/v1/tenants/acme/webhooks/crm', { body: { ...ok, url: 'https://crm.example/in' } })).statusCode, 201, 'a name is accepted (its addresses are checked at delivery)');
  t.equal((await a.call('PUT', '/v1/tenants/acme/webhooks/crm', { body: { ...ok, url: 'http://10.1.2.3/' } })).statusCode, 400, 'a replacement is checked too');
  t.equal((await data.webhooks.get('acme', 'crm'))?.url, 'https://crm.example/in');
});

t.test('webhooks: the operator allow list lets chosen private destinations through, and only those', async (t) => {
  const { a } = await setup(t, new WebhookUrlGuard({ allow: ['10.20.0.0/16', 'crm.lan'] }));
  const ok = { events: ['ended'], secret: 'hook-secret-0123456789', enabled: true };
  t.equal((await a.call('PUT', '/v1/tenants/acme/webhooks/a', { body: { ...ok, url: 'http://10.20.3.4:8080/in' } })).statusCode, 201);
  t.equal((await a.call('PUT', '/v1/tenants/acme/webhooks/b', { body: { ...ok, url: 'http://crm.lan/in' } })).statusCode, 201);
  t.equal((await a.call('PUT', '/v1/tenants/acme/webhooks/c', { body: { ...ok, url: 'http://10.21.0.1/in' } })).statusCode, 400);
  t.equal((await a.call('PUT', '/v1/tenants/acme/webhooks/d', { body: { ...ok, url: 'http://127.0.0.1/in' } })).statusCode, 400);
});
