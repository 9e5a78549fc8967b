/**
 * The admin API's behaviour, through fastify.inject, run against the
 * embedded store (admin-api.test.ts) and a real Redis
 * (test/integration/admin-redis.test.ts): same assertions, both backends.
 */
import { readFileSync } from 'node:fs';
import type { Test } from 'tap';
import { pino } from 'pino';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { adminRoutes, buildAdminApp, type AdminDeps } from '../../../src/admin/app.js';
import type { ApiKeyStore } from '../../../src/store/api-key-store.js';
import type { TenantDocument } from '../../../src/routing/index.js';
import { computeHa1 } from '../../../src/sip/registrar/digest.js';
import type { Binding, LocationService } from '../../../src/sip/registrar/location-service.js';
import { EmbeddedLocationStore } from '../../../src/store/embedded/location-store.js';
import { TenantCache } from '../../../src/store/tenant-cache.js';
import type { TenantStore } from '../../../src/store/tenant-store.js';
import type { CdrRecord } from '../../../src/store/cdr-store.js';
import { EmbeddedCdrStore } from '../../../src/store/embedded/cdr-store.js';
import { EmbeddedWebhookStore } from '../../../src/store/embedded/webhook-store.js';
import { EmbeddedPromptStore } from '../../../src/store/embedded/prompt-store.js';
import type { CallRecord } from '../../../src/call/call-tracker.js';

export const OPERATOR = 'operator-token-for-tests';
export const REALM = 'pbx.test';

export interface Backend {
  store: TenantStore;
  keys: ApiKeyStore;
  /** Resolves once the store's change announcements reach watchers (Redis: SUBSCRIBE acknowledged). */
  watchReady?: () => Promise<void>;
  cleanup: () => Promise<void>;
}

export interface Admin {
  app: FastifyInstance;
  store: TenantStore;
  cache: TenantCache;
  location: LocationService;
  /** Sends a request; `auth` is a token (operator or key), null for none. */
  call: (method: string, url: string, opts?: { auth?: string | null; body?: unknown; headers?: Record<string, string> }) => Promise<LightMyRequestResponse>;
}

export async function startAdmin(t: Test, backend: () => Promise<Backend>, extra: Partial<AdminDeps> = {}): Promise<Admin> {
  const b = await backend();
  const log = pino({ level: 'silent' });
  const cache = new TenantCache({ store: b.store, log, verifyIntervalMs: 60_000 });
  await cache.start();
  await b.watchReady?.();
  const location = new EmbeddedLocationStore({});
  const app = await buildAdminApp({
    store: b.store, cache, keys: b.keys, location, defaultRealm: REALM, adminToken: OPERATOR, log, ready: () => true,
    rateLimit: { max: 100_000, timeWindowMs: 60_000 }, now: () => Date.parse('2025-03-03T10:00:00+08:00'),
    ...extra,
  });
  await app.ready();
  t.teardown(async () => {
    await app.close();
    await cache.stop();
    location.close();
    await b.cleanup();
  });
  const call: Admin['call'] = (method, url, opts = {}) => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    const auth = opts.auth === undefined ? OPERATOR : opts.auth;
    if (auth !== null) headers.authorization = `Bearer ${auth}`;
    return app.inject({ method: method as 'GET', url, headers, ...(opts.body !== undefined ? { payload: opts.body as object } : {}) });
  };
  return { app, store: b.store, cache, location, call };
}

/** The clock of startAdmin's app; CDR fixtures end around it. */
export const NOW = Date.parse('2025-03-03T10:00:00+08:00');

/** Embedded CDR and webhook stores, a recording dispatcher, fixed metrics and a list of active calls. */
export interface CallData {
  deps: Pick<AdminDeps, 'cdrs' | 'webhooks' | 'dispatcher' | 'metrics' | 'calls'>;
  cdrs: EmbeddedCdrStore;
  webhooks: EmbeddedWebhookStore;
  invalidated: string[];
  active: CallRecord[];
}

export function callData(t: Test): CallData {
  const cdrs = new EmbeddedCdrStore({ now: () => NOW });
  const webhooks = new EmbeddedWebhookStore();
  const invalidated: string[] = [];
  const active: CallRecord[] = [];
  t.teardown(async () => { await cdrs.close(); await webhooks.close(); });
  return {
    cdrs, webhooks, invalidated, active,
    deps: {
      cdrs, webhooks,
      dispatcher: { invalidate: (tenant) => { invalidated.push(tenant); } },
      metrics: { contentType: 'text/plain; version=0.0.4; charset=utf-8', render: async () => '# HELP dialplane_calls_total Calls ended\ndialplane_calls_total{disposition="answered"} 3\n' },
      calls: {
        list: () => active,
        // A stand-in for the tracker: an answered call is ended (BYEs answered 200/481), a ringing one stopped.
        hangUp: async (tenant, callId) => {
          const i = active.findIndex((c) => c.callId === callId && c.tenant === tenant);
          if (i < 0) return { state: 'unknown' };
          const [c] = active.splice(i, 1);
          return c?.answeredAt !== undefined ? { state: 'answered', caller: 200, callee: 481 } : { state: 'ringing' };
        },
      },
    },
  };
}

/** A finished call of `tenant`, ending `endedAgoMs` before NOW. */
export function cdr(tenant: string, n: number, over: Partial<CdrRecord> = {}): CdrRecord {
  const endedAt = NOW - 3600_000 + n * 1000;
  return {
    callId: `call-${tenant}-${n}`, tenant, origin: { kind: 'trunk', trunk: 'carrier' }, called: '4008123456', caller: '13912340001',
    route: 'main', startedAt: endedAt - 30_000, ringingAt: endedAt - 29_000, answeredAt: endedAt - 25_000, endedAt,
    attempts: [{ target: '1001', kind: 'extension', startedAt: endedAt - 29_500, endedAt, outcome: 'answered', status: 200 }],
    finalStatus: 200, disposition: 'answered', endedBy: 'bye', ...over,
  };
}

export function example(name: string): TenantDocument {
  return JSON.parse(readFileSync(new URL(`../../../routing-rules/examples/${name}.json`, import.meta.url), 'utf8')) as TenantDocument;
}

/** A tenant with something of every kind, as an import body (passwords, not hashes). */
export function baseTenant(marker: string): Record<string, unknown> {
  return {
    name: `${marker} Ltd`,
    numbers: [{ number: '4008123456', route: 'main', label: `${marker}-hotline` }],
    extensions: [
      { number: '1001', name: `${marker}-reception`, password: `${marker}-pw-1001` },
      { number: '1002', name: `${marker}-sales`, password: `${marker}-pw-1002` },
    ],
    groups: [{ id: 'everyone', name: `${marker}-group`, strategy: 'simultaneous', members: [{ extension: '1001' }, { extension: '1002' }] }],
    shortNumberPlans: [{ id: 'vpmn', name: `${marker}-plan`, members: [{ code: '601', extension: '1001' }] }],
    schedules: [{ id: 'office', weekly: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '18:00' }] }],
    blacklist: { numbers: ['13600001111'] },
    inboundTrunks: [{ id: 'carrier', name: `${marker}-trunk`, sources: ['203.0.113.10'] }],
    outboundGateways: [{ id: 'gw', host: `${marker.toLowerCase()}.gw.example.invalid` }],
    ivrMenus: [{ id: 'menu', prompt: 'welcome', route: 'main' }],
    routes: [{
      id: 'main', name: `${marker}-route`,
      rules: [
        { id: 'office', when: { schedule: { id: 'office', inside: true } }, actions: [{ kind: 'ringGroup', group: 'everyone' }] },
        { id: 'closed', actions: [{ kind: 'voicemail', box: 'main' }] },
      ],
    }],
  };
}

/** A new object of each collection, an edit of it, and a field the edit changes. */
export const FIXTURES: Record<string, { key: string; body: Record<string, unknown>; patch: Record<string, unknown> }> = {
  'numbers': { key: '4008123457', body: { route: 'main', label: 'second' }, patch: { label: 'renamed' } },
  'extensions': { key: '1003', body: { name: 'C', password: 'password-1003' }, patch: { name: 'C2' } },
  'groups': { key: 'g2', body: { strategy: 'sequential', members: [{ extension: '1001' }] }, patch: { strategy: 'random' } },
  'short-numbers': { key: 'vpmn2', body: { members: [{ code: '602', extension: '1002' }] }, patch: { name: 'VPMN' } },
  'routes': { key: 'r2', body: { rules: [{ id: 'all', actions: [{ kind: 'ring', targets: [{ extension: '1001' }] }] }] }, patch: { name: 'Route 2' } },
  'schedules': { key: 's2', body: { weekly: [{ days: ['mon'], from: '09:00', to: '18:00' }] }, patch: { timeZone: 'Asia/Shanghai' } },
  'trunks': { key: 't2', body: { sources: ['198.51.100.7'] }, patch: { name: 'T2' } },
  'gateways': { key: 'gw2', body: { host: 'gw2.example.invalid' }, patch: { priority: 5 } },
  'ivr-menus': { key: 'm2', body: { prompt: 'welcome', route: 'main' }, patch: { retries: 2 } },
};

async function createTenant(a: Admin, id: string, marker: string): Promise<void> {
  const r = await a.call('POST', `/v1/tenants/${id}/import`, { body: baseTenant(marker) });
  if (r.statusCode !== 201) throw new Error(`import of ${id} failed: ${r.statusCode} ${r.body}`);
}

async function createKey(a: Admin, tenant: string, readOnly: boolean): Promise<string> {
  const r = await a.call('POST', `/v1/tenants/${tenant}/api-keys`, { body: { name: readOnly ? 'reader' : 'writer', readOnly } });
  if (r.statusCode !== 201) throw new Error(`key creation failed: ${r.statusCode} ${r.body}`);
  return (r.json() as { key: string }).key;
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return cond();
}

export function adminSuite(t: Test, backend: () => Promise<Backend>): void {
  t.test('CRUD of every collection, with versions', async (t) => {
    const a = await startAdmin(t, backend);
    await createTenant(a, 'acme', 'ACME');
    for (const [path, f] of Object.entries(FIXTURES)) {
      await t.test(path, async (t) => {
        const url = `/v1/tenants/acme/${path}/${f.key}`;
        const created = await a.call('PUT', url, { body: f.body });
        t.equal(created.statusCode, 201, created.body);
        const v1 = (created.json() as { version: string }).version;
        t.equal(created.headers.etag, `"${v1}"`);

        const got = await a.call('GET', url);
        t.equal(got.statusCode, 200);
        t.equal(got.headers.etag, `"${v1}"`, 'GET shows the version PUT returned');

        const listed = await a.call('GET', `/v1/tenants/acme/${path}`);
        t.ok((listed.json() as { items: Array<{ version: string }> }).items.some((i) => i.version === v1), 'listed');

        const patched = await a.call('PATCH', url, { body: f.patch, headers: { 'if-match': `"${v1}"` } });
        t.equal(patched.statusCode, 200, patched.body);
        const v2 = (patched.json() as { version: string }).version;
        t.not(v2, v1, 'an edit changes the version');
        t.match(patched.json(), f.patch);

        const stale = await a.call('PUT', url, { body: f.body, headers: { 'if-match': `"${v1}"` } });
        t.equal(stale.statusCode, 412, 'a PUT on a stale version is refused');
        t.equal((stale.json() as { error: { code: string; currentVersion: string } }).error.currentVersion, v2);

        const exists = await a.call('PUT', url, { body: f.body, headers: { 'if-none-match': '*' } });
        t.equal(exists.statusCode, 412, 'create-only PUT on an existing object');

        const replaced = await a.call('PUT', url, { body: { ...f.body, version: v2 } });
        t.equal(replaced.statusCode, 200, `a PUT with the body version: ${replaced.body}`);
        t.equal((replaced.json() as { version: string }).version, v1, 'same content, same version');

        t.equal((await a.call('DELETE', url, { headers: { 'if-match': `"${v2}"` } })).statusCode, 412, 'stale DELETE');
        t.equal((await a.call('DELETE', url, { headers: { 'if-match': `"${v1}"` } })).statusCode, 204);
        t.equal((await a.call('GET', url)).statusCode, 404);
        t.equal((await a.call('DELETE', url)).statusCode, 404);
        t.equal((await a.call('PATCH', url, { body: f.patch })).statusCode, 404);
      });
    }

    await t.test('blacklist', async (t) => {
      const url = '/v1/tenants/acme/blacklist';
      const got = await a.call('GET', url);
      t.same((got.json() as { numbers: string[] }).numbers, ['13600001111']);
      const v = (got.json() as { version: string }).version;
      const patched = await a.call('PATCH', url, { body: { anonymous: true }, headers: { 'if-match': `"${v}"` } });
      t.equal(patched.statusCode, 200, patched.body);
      t.match(patched.json(), { numbers: ['13600001111'], anonymous: true });
      t.equal((await a.call('PUT', url, { body: { prefixes: ['+86165'] }, headers: { 'if-match': `"${v}"` } })).statusCode, 412);
      t.equal((await a.call('PUT', url, { body: { prefixes: ['+86165'] } })).statusCode, 200);
      t.equal((await a.call('DELETE', url)).statusCode, 204);
      t.equal((await a.call('DELETE', url)).statusCode, 404);
    });

    await t.test('the tenant itself', async (t) => {
      const got = await a.call('GET', '/v1/tenants/acme');
      t.match(got.json(), { id: 'acme', name: 'ACME Ltd', counts: { extensions: 2 } });
      const v = (got.json() as { version: string }).version;
      const patched = await a.call('PATCH', '/v1/tenants/acme', { body: { timeZone: 'Asia/Shanghai' }, headers: { 'if-match': `"${v}"` } });
      t.equal(patched.statusCode, 200, patched.body);
      t.equal((await a.call('PATCH', '/v1/tenants/acme', { body: { name: 'x' }, headers: { 'if-match': `"${v}"` } })).statusCode, 412);
      const moved = await a.call('PATCH', '/v1/tenants/acme', { body: { domain: 'elsewhere.test' } });
      t.equal(moved.statusCode, 409, 'a new domain would invalidate every HA1');
      t.match(moved.json(), { error: { code: 'DP_ADMIN_CONFLICT', extensions: ['1001', '1002'] } });
      const list = await a.call('GET', '/v1/tenants');
      t.same((list.json() as { items: Array<{ id: string }> }).items.map((i) => i.id), ['acme']);
      t.equal((await a.call('PUT', '/v1/tenants/zeta', { body: { name: 'Z' } })).statusCode, 201);
      t.equal((await a.call('PUT', '/v1/tenants/zeta', { body: { id: 'other' } })).statusCode, 400);
      t.equal((await a.call('DELETE', '/v1/tenants/zeta')).statusCode, 204);
      t.equal((await a.call('GET', '/v1/tenants/zeta')).statusCode, 404);
    });
  });

  t.test('validation errors name the field (400)', async (t) => {
    const a = await startAdmin(t, backend);
    await createTenant(a, 'acme', 'ACME');
    const unknown = await a.call('PUT', '/v1/tenants/acme/groups/g', { body: { strategy: 'sequential', members: [{ extension: '1001' }], colour: 'red' } });
    t.equal(unknown.statusCode, 400);
    t.match(unknown.json(), { error: { code: 'DP_ADMIN_VALIDATION', issues: [{ in: 'body', path: '/colour', message: /known/ }] } });

    const bad = await a.call('PUT', '/v1/tenants/acme/groups/g', { body: { strategy: 'loudest', members: [{ extension: 'abc' }] } });
    t.equal(bad.statusCode, 400);
    const paths = (bad.json() as { error: { issues: Array<{ path: string; message: string }> } }).error.issues.map((i) => i.path);
    t.ok(paths.includes('/strategy'), 'names the bad enum');
    t.ok(paths.includes('/members/0/extension'), 'names the bad pattern deep inside');

    const missing = await a.call('PUT', '/v1/tenants/acme/groups/g', { body: { members: [{ extension: '1001' }] } });
    t.match(missing.json(), { error: { issues: [{ path: '/strategy', message: 'is required' }] } });

    const nested = await a.call('PUT', '/v1/tenants/acme/routes/r', { body: { rules: [{ id: 'x', actions: [{ kind: 'ring', targets: [{ extension: '1001', colour: 1 }] }] }] } });
    t.equal(nested.statusCode, 400);
    t.match(nested.body, /colour/);

    const mismatch = await a.call('PUT', '/v1/tenants/acme/groups/g', { body: { id: 'h', strategy: 'sequential', members: [{ extension: '1001' }] } });
    t.match(mismatch.json(), { error: { code: 'DP_ADMIN_KEY_MISMATCH' } });
    t.equal((await a.call('PUT', '/v1/tenants/acme/extensions/1004', { body: { name: 'no password' } })).statusCode, 400, 'a new extension needs a password');
    const query = await a.call('GET', '/v1/tenants/acme/extensions?limit=0');
    t.match(query.json(), { error: { issues: [{ in: 'query', path: '/limit' }] } });
    t.equal((await a.call('GET', '/v1/tenants/acme/extensions?sort=name')).statusCode, 400, 'unknown query parameter');
    const text = await a.app.inject({ method: 'PUT', url: '/v1/tenants/acme/groups/g', headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'text/plain' }, payload: 'hello' });
    t.equal(text.statusCode, 415);
    const broken = await a.app.inject({ method: 'PUT', url: '/v1/tenants/acme/groups/g', headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' }, payload: '{"id": ' });
    t.equal(broken.statusCode, 400);
    t.match(broken.json(), { error: { code: 'DP_ADMIN_BAD_BODY' } });
  });

  t.test('references are checked (422 naming the field)', async (t) => {
    const a = await startAdmin(t, backend);
    await createTenant(a, 'acme', 'ACME');
    const r = await a.call('PUT', '/v1/tenants/acme/groups/g', { body: { strategy: 'sequential', members: [{ extension: '1009' }] } });
    t.equal(r.statusCode, 422);
    t.match(r.json(), { error: { code: 'DP_ADMIN_REFERENCE', issues: [{ in: 'body', path: '/members/0/extension', message: 'extension 1009 does not exist' }] } });
    const del = await a.call('DELETE', '/v1/tenants/acme/groups/everyone');
    t.equal(del.statusCode, 422, 'a group a route rings cannot go');
    t.match(del.json(), { error: { issues: [{ in: 'document', object: 'routes/main', message: /group "everyone"/ }] } });
    t.equal((await a.call('GET', '/v1/tenants/acme/groups/everyone')).statusCode, 200, 'nothing was written');
  });

  t.test('concurrent edits of different objects both succeed', async (t) => {
    const a = await startAdmin(t, backend);
    await createTenant(a, 'acme', 'ACME');
    const results = await Promise.all(['2001', '2002', '2003', '2004'].map((n) =>
      a.call('PUT', `/v1/tenants/acme/extensions/${n}`, { body: { name: `ext ${n}`, password: `password-${n}` } })));
    t.same(results.map((r) => r.statusCode), [201, 201, 201, 201]);
    const list = await a.call('GET', '/v1/tenants/acme/extensions');
    t.equal((list.json() as { items: unknown[] }).items.length, 6);
  });

  t.test('authentication and tenant isolation', async (t) => {
    const data = callData(t);
    const prompts = await EmbeddedPromptStore.open();
    t.teardown(() => prompts.close());
    const a = await startAdmin(t, backend, { ...data.deps, prompts });
    // A prompt of alpha, named like alpha's other objects, so a leak would show.
    await prompts.put('alpha', 'main', { audio: Buffer.from('RIFF-alpha-audio'), meta: { name: 'alpha-prompt', codec: 'pcmu', sampleRate: 8000, durationMs: 2 } });
    // Call data of alpha, marked so a leak would show.
    await data.cdrs.append(cdr('alpha', 1, { route: 'alpha-route', caller: 'ALPHA-caller' }));
    await data.webhooks.put('alpha', { id: 'main', url: 'https://alpha-hooks.example/in', events: ['ended'], secret: 'alpha-secret-0123456789', enabled: true });
    await data.webhooks.recordFailure('alpha', 'main', { at: NOW, event: 'ended', eventId: 'e1', callId: 'alpha-call', attempts: 3, status: 500, error: 'alpha-endpoint down' });
    data.active.push({ ...cdr('alpha', 2, { route: 'alpha-route' }), endedAt: undefined } as CallRecord);
    await createTenant(a, 'alpha', 'ALPHA');
    await createTenant(a, 'beta', 'BETA');
    const betaKey = await createKey(a, 'beta', false);
    const alphaReader = await createKey(a, 'alpha', true);
    const alphaWriter = await createKey(a, 'alpha', false);

    t.equal((await a.call('GET', '/v1/tenants/alpha', { auth: null })).statusCode, 401);
    t.equal((await a.call('GET', '/v1/tenants/alpha', { auth: 'wrong' })).statusCode, 401);
    t.equal((await a.call('GET', '/v1/tenants/alpha', { auth: `${alphaReader.slice(0, -1)}${alphaReader.endsWith('A') ? 'B' : 'A'}` })).statusCode, 401, 'a key with a wrong secret');
    t.equal((await a.call('GET', '/v1/tenants/alpha', { auth: null, headers: { 'x-api-key': alphaReader } })).statusCode, 200, 'X-API-Key works too');

    // Every route of a tenant, with the values alpha has.
    const values: Record<string, string> = { tenant: 'alpha', number: '4008123456', ext: '1001', id: 'main', plan: 'vpmn', report: 'busiest-targets' };
    const routes = adminRoutes(a.app).filter((r) => r.url.includes(':tenant'));
    t.ok(routes.length >= 69, `every route is tried (${routes.length})`);
    for (const u of ['/cdrs', '/cdrs.csv', '/reports/:report', '/calls', '/webhooks', '/webhooks/:id', '/webhooks/:id/failures', '/prompts', '/prompts/:id', '/prompts/:id/audio']) {
      t.ok(routes.some((r) => r.url === `/v1/tenants/:tenant${u}`), `${u} is among them`);
    }
    const alphaMarkers = /ALPHA|alpha-|alpha\.gw/;
    for (const r of routes) {
      const url = r.url.replace(/:([a-z]+)/g, (_m, p: string) => (r.url.endsWith('/api-keys/:id') && p === 'id' ? '0123456789abcdef' : values[p] ?? 'x'));
      const body = r.method === 'GET' || r.method === 'DELETE' ? undefined : r.url.endsWith('/simulate') ? { called: '4008123456' } : {};
      const res = await a.call(r.method, url, { auth: betaKey, ...(body !== undefined ? { body } : {}) });
      t.equal(res.statusCode, 404, `${r.method} ${url} with beta's key`);
      t.notMatch(res.body, alphaMarkers, `${r.method} ${url}: no data of alpha`);
      t.equal((await a.call(r.method, url, { auth: null, ...(body !== undefined ? { body } : {}) })).statusCode, 401, `${r.method} ${url} without a key`);
      if (r.access === 'tenant-write' || r.access === 'operator') {
        const ro = await a.call(r.method, url, { auth: alphaReader, ...(body !== undefined ? { body } : {}) });
        t.equal(ro.statusCode, 403, `${r.method} ${url} with alpha's read-only key`);
      }
    }
    t.equal((await a.call('GET', '/v1/tenants', { auth: betaKey })).statusCode, 403, 'listing tenants is the operator\'s');
    t.equal((await a.call('DELETE', '/v1/tenants/alpha', { auth: alphaWriter })).statusCode, 403, 'a key cannot delete its tenant');
    t.equal((await a.call('PUT', '/v1/tenants/gamma', { auth: alphaWriter, body: {} })).statusCode, 404, 'nor create another');

    for (const u of ['cdrs', 'cdrs.csv', 'reports/busiest-targets', 'calls', 'webhooks', 'webhooks/main', 'webhooks/main/failures', 'prompts', 'prompts/main', 'prompts/main/audio']) {
      const own = await a.call('GET', `/v1/tenants/alpha/${u}`, { auth: alphaReader });
      t.equal(own.statusCode, 200, `alpha's read-only key reads ${u}`);
      t.notMatch(own.body, 'alpha-secret-0123456789', `${u}: never the webhook secret`);
    }
    t.equal((await a.call('GET', '/metrics', { auth: alphaWriter })).statusCode, 403, 'metrics are the operator\'s');
    t.equal((await a.call('GET', '/metrics', { auth: null })).statusCode, 401);
    t.same(data.invalidated, [], 'no refused request changed a webhook');
    t.strictSame((await prompts.getAudio('alpha', 'main'))?.audio, Buffer.from('RIFF-alpha-audio'), 'nor alpha\'s prompt');

    const reads = await a.call('GET', '/v1/tenants/alpha/extensions', { auth: alphaReader });
    t.equal(reads.statusCode, 200, 'a read-only key reads');
    t.equal((await a.call('POST', '/v1/tenants/alpha/simulate', { auth: alphaReader, body: { called: '4008123456' } })).statusCode, 200, 'and simulates');
    t.equal((await a.call('GET', '/v1/tenants/alpha/export?secrets=true', { auth: alphaReader })).statusCode, 403, 'but gets no hashes');
    t.equal((await a.call('PUT', '/v1/tenants/alpha/extensions/1005', { auth: alphaWriter, body: { password: 'password-1005' } })).statusCode, 201, 'a read-write key writes');

    const keys = await a.call('GET', '/v1/tenants/alpha/api-keys', { auth: alphaWriter });
    const items = (keys.json() as { items: Array<Record<string, unknown>> }).items;
    t.equal(items.length, 2);
    t.notMatch(keys.body, /secretHash|dpk_/, 'listing shows no secret');
    const readerId = alphaReader.split('_')[1] as string;
    t.equal((await a.call('DELETE', `/v1/tenants/beta/api-keys/${readerId}`, { auth: betaKey })).statusCode, 404, 'another tenant cannot revoke it');
    t.equal((await a.call('DELETE', `/v1/tenants/alpha/api-keys/${readerId}`, { auth: alphaWriter })).statusCode, 204);
    t.equal((await a.call('GET', '/v1/tenants/alpha', { auth: alphaReader })).statusCode, 401, 'a revoked key is refused at once');

    t.equal((await a.call('DELETE', '/v1/tenants/alpha')).statusCode, 204);
    t.equal((await a.call('GET', '/v1/tenants/alpha', { auth: alphaWriter })).statusCode, 401, 'deleting a tenant revokes its keys');
  });

  t.test('extension passwords are write-only, stored as HA1 for the realm', async (t) => {
    const a = await startAdmin(t, backend);
    await createTenant(a, 'acme', 'ACME');
    const put = await a.call('PUT', '/v1/tenants/acme/extensions/1003', { body: { name: 'C', password: 'correct horse', sip: { username: 'carol' } } });
    t.equal(put.statusCode, 201);
    t.match(put.json(), { number: '1003', hasPassword: true, sip: { username: 'carol' } });
    const stored = (await a.store.getTenant('acme'))!.doc.extensions!.find((e) => e.number === '1003')!;
    t.equal(stored.sip.ha1Md5, computeHa1('MD5', 'carol', REALM, 'correct horse'));
    t.equal(stored.sip.ha1Sha256, computeHa1('SHA-256', 'carol', REALM, 'correct horse'));
    for (const url of ['/v1/tenants/acme/extensions/1003', '/v1/tenants/acme/extensions', '/v1/tenants/acme/export']) {
      const body = (await a.call('GET', url)).body;
      t.notMatch(body, /ha1|correct horse|"password"/i, `${url} shows neither hash nor password`);
    }
    const renamed = await a.call('PATCH', '/v1/tenants/acme/extensions/1003', { body: { name: 'Carol' } });
    t.equal(renamed.statusCode, 200, 'an edit without password keeps the hashes');
    t.equal((await a.store.getTenant('acme'))!.doc.extensions!.find((e) => e.number === '1003')!.sip.ha1Md5, stored.sip.ha1Md5);
    const user = await a.call('PATCH', '/v1/tenants/acme/extensions/1003', { body: { sip: { username: 'caroline' } } });
    t.equal(user.statusCode, 400, 'a new user name needs the password again');
    t.match(user.json(), { error: { issues: [{ path: '/password' }] } });
  });

  t.test('export and import', async (t) => {
    const a = await startAdmin(t, backend);
    await createTenant(a, 'acme', 'ACME');
    const exported = await a.call('GET', '/v1/tenants/acme/export?secrets=true');
    t.equal(exported.statusCode, 200);
    t.equal(exported.headers['cache-control'], 'no-store');
    const doc = exported.json() as Record<string, unknown>;

    const into = await a.call('POST', '/v1/tenants/copy/import', { body: { ...doc, id: 'copy' } });
    t.equal(into.statusCode, 201, into.body);
    const again = (await a.call('GET', '/v1/tenants/copy/export?secrets=true')).json() as Record<string, unknown>;
    t.same({ ...again, id: 'acme' }, doc, 'export → import into an empty tenant → export is equal');

    const plain = (await a.call('GET', '/v1/tenants/acme/export')).json() as { extensions: Array<Record<string, unknown>> };
    t.match(plain.extensions[0], { number: '1001', hasPassword: true });
    const restore = await a.call('POST', '/v1/tenants/acme/import', { body: plain });
    t.equal(restore.statusCode, 200, 'an export without hashes re-imports into its own tenant (hashes kept)');
    const blank = await a.call('POST', '/v1/tenants/fresh/import', { body: { ...plain, id: 'fresh' } });
    t.equal(blank.statusCode, 400, 'but not into a tenant that has no hashes for them');
    t.match(blank.json(), { error: { issues: [{ path: '/extensions/0/password' }, { path: '/extensions/1/password' }] } });

    const before = await a.call('GET', '/v1/tenants/acme/export?secrets=true');
    const tag = before.headers.etag as string;
    const invalid = { ...doc, name: 'changed', groups: [{ id: 'everyone', strategy: 'simultaneous', members: [{ extension: '1999' }] }] };
    const refused = await a.call('POST', '/v1/tenants/acme/import', { body: invalid });
    t.equal(refused.statusCode, 422, refused.body);
    const after = await a.call('GET', '/v1/tenants/acme/export?secrets=true');
    t.equal(after.headers.etag, tag, 'an invalid import changes nothing (same version)');
    t.same(after.json(), before.json(), 'and the same document');

    const stale = await a.call('POST', '/v1/tenants/acme/import', { body: doc, headers: { 'if-match': '"1"' } });
    t.equal(stale.statusCode, 412, 'import honours If-Match on the tenant version');
    t.equal((await a.call('POST', '/v1/tenants/acme/import', { body: doc, headers: { 'if-match': tag } })).statusCode, 200);
    t.equal((await a.call('POST', '/v1/tenants/acme/import', { body: { ...doc, id: 'other' } })).statusCode, 400);
  });

  t.test('simulate: the 400 hotline, Beijing caller in and after office hours', async (t) => {
    const a = await startAdmin(t, backend);
    const hotline = example('hotline-400');
    t.equal((await a.call('POST', '/v1/tenants/acme-hotline/import', { body: hotline })).statusCode, 201);
    const sim = (time: string) => a.call('POST', '/v1/tenants/acme-hotline/simulate', { body: { called: '4008123456', caller: '13912340001', time } });

    const open = await sim('2025-03-03T10:00:00+08:00');
    t.equal(open.statusCode, 200, open.body);
    const o = open.json() as { plan: { steps: Array<{ kind: string; groups?: Array<{ targets: Array<{ extension?: string }> }> }> }; explanation: { outcome: string; routes: Array<{ matchedRule?: string; rules?: Array<{ rule: string; matched: boolean; conditions: unknown[] }> }> } };
    t.equal(o.explanation.outcome, 'routed');
    t.equal(o.explanation.routes[0]?.matchedRule, 'beijing', 'Monday 10:00, Beijing caller → the Beijing rule');
    t.ok(o.explanation.routes[0]?.rules?.some((r) => r.rule === 'after-hours' && !r.matched), 'the explanation shows the rules that did not match');
    const first = o.plan.steps[0];
    t.equal(first?.kind, 'ring');
    t.same(first?.groups?.flatMap((g) => g.targets.map((x) => x.extension)).sort(), ['2001', '2002'], 'Beijing agents first');

    const closed = await sim('2025-03-03T20:00:00+08:00');
    const c = closed.json() as { plan: { steps: Array<{ kind: string }> }; explanation: { routes: Array<{ matchedRule?: string }> } };
    t.equal(c.explanation.routes[0]?.matchedRule, 'after-hours');
    t.same(c.plan.steps.map((s) => s.kind), ['announce', 'voicemail']);

    const holiday = await sim('2025-10-01T10:00:00+08:00');
    t.equal((holiday.json() as { explanation: { routes: Array<{ matchedRule?: string }> } }).explanation.routes[0]?.matchedRule, 'after-hours', '国庆 is closed all day');

    const badTime = await a.call('POST', '/v1/tenants/acme-hotline/simulate', { body: { called: '4008123456', time: 'yesterday' } });
    t.match(badTime.json(), { error: { issues: [{ path: '/time' }] } });
    const noCall = await a.call('GET', '/v1/tenants/acme-hotline/export');
    t.equal(noCall.statusCode, 200, 'simulate wrote nothing');
  });

  t.test('simulate an IVR choice', async (t) => {
    const a = await startAdmin(t, backend);
    const ivr = example('main-number-ivr');
    t.equal((await a.call('POST', `/v1/tenants/${ivr.id}/import`, { body: ivr })).statusCode, 201);
    const r = await a.call('POST', `/v1/tenants/${ivr.id}/simulate`, { body: { called: '057188880000', caller: '13800138000', time: '2025-03-03T10:00:00+08:00', digit: '1' } });
    t.equal(r.statusCode, 200, r.body);
    const body = r.json() as { plan: { steps: Array<{ kind: string }> }; ivr?: { digits: string; plan: { steps: Array<{ kind: string }> } } };
    t.ok(body.plan.steps.some((s) => s.kind === 'ivr'), 'the main number reaches the menu');
    t.equal(body.ivr?.digits, '1');
    t.ok((body.ivr?.plan.steps.length ?? 0) > 0, 'and the digit leads somewhere');
  });

  t.test('pagination and filters', async (t) => {
    const a = await startAdmin(t, backend);
    await createTenant(a, 'acme', 'ACME');
    for (const n of ['1003', '1004', '1005']) await a.call('PUT', `/v1/tenants/acme/extensions/${n}`, { body: { name: `agent ${n}`, password: `password-${n}` } });
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await a.call('GET', `/v1/tenants/acme/extensions?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      const page = r.json() as { items: Array<{ number: string }>; nextCursor?: string };
      t.ok(page.items.length <= 2);
      seen.push(...page.items.map((i) => i.number));
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== undefined && pages < 10);
    t.same(seen, ['1001', '1002', '1003', '1004', '1005'], 'every item once, in order');
    t.equal(pages, 3);
    const q = await a.call('GET', '/v1/tenants/acme/extensions?q=AGENT');
    t.same((q.json() as { items: Array<{ number: string }> }).items.map((i) => i.number), ['1003', '1004', '1005'], 'q searches names');
    await a.call('PUT', '/v1/tenants/acme/numbers/4008123458', { body: { route: 'other-route' } });
    await a.call('PUT', '/v1/tenants/acme/routes/r9', { body: { rules: [{ id: 'x', actions: [{ kind: 'voicemail', box: 'b' }] }] } });
    await a.call('PUT', '/v1/tenants/acme/numbers/4008123459', { body: { route: 'r9' } });
    const byRoute = await a.call('GET', '/v1/tenants/acme/numbers?route=r9');
    t.same((byRoute.json() as { items: Array<{ number: string }> }).items.map((i) => i.number), ['4008123459'], 'filter by route');
    t.equal((await a.call('GET', '/v1/tenants/acme/extensions?cursor=%%%')).statusCode, 400);
  });

  t.test('registrations show the tenant\'s devices only', async (t) => {
    const a = await startAdmin(t, backend);
    await createTenant(a, 'acme', 'ACME');
    const now = Date.parse('2025-03-03T10:00:00+08:00');
    const binding = (aor: string): Binding => ({
      aor, contact: 'sip:1001@192.0.2.5:5062', expiresAt: now + 3_600_000, q: 1, callId: 'c1', cseq: 1, path: [],
      flow: { transport: 'udp', address: '192.0.2.5', port: 5062 }, registeredAt: now, userAgent: 'test-phone',
    });
    await a.location.put(`sip:1001@${REALM}`, 0, [binding(`sip:1001@${REALM}`)]);
    await a.location.put('sip:1001@other.test', 0, [binding('sip:1001@other.test')]);
    const r = await a.call('GET', '/v1/tenants/acme/registrations');
    t.equal(r.statusCode, 200, r.body);
    t.match(r.json(), { items: [{ extension: '1001', aor: `sip:1001@${REALM}`, contacts: [{ contact: 'sip:1001@192.0.2.5:5062', transport: 'udp', userAgent: 'test-phone' }] }] });
    t.equal((r.json() as { items: unknown[] }).items.length, 1);
  });

  t.test('changes reach the compiled rules without restart', async (t) => {
    const a = await startAdmin(t, backend);
    await createTenant(a, 'acme', 'ACME');
    const put = await a.call('PUT', '/v1/tenants/acme/extensions/1009', { body: { password: 'password-1009' } });
    t.equal(put.statusCode, 201);
    const version = (await a.store.getTenant('acme'))!.version;
    t.ok(await until(() => a.cache.get('acme')?.version === version, 1000), 'the cache has the new version within a second');
    t.ok(a.cache.get('acme')?.compiled.extensions.has('1009'));
  });

  t.test('health, readiness and the OpenAPI document', async (t) => {
    const a = await startAdmin(t, backend);
    t.same((await a.call('GET', '/health', { auth: null })).json(), { status: 'ok' });
    t.equal((await a.call('GET', '/ready', { auth: null })).statusCode, 200);
    const docs = await a.call('GET', '/docs/json', { auth: null });
    const spec = docs.json() as { paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } };
    t.ok(spec.paths['/v1/tenants/{tenant}/extensions/{ext}'], 'paths');
    t.ok(spec.components.schemas['dp.extensionInput'] && spec.components.schemas['dp.route'], 'the routing schemas are components');
    type Op = { responses: Record<string, { description?: string; content?: Record<string, { schema: Record<string, unknown> }> }> };
    const op = (path: string, method: string): Op => (spec.paths[path] as Record<string, Op>)[method] as Op;
    const one = op('/v1/tenants/{tenant}/extensions/{ext}', 'get');
    t.same(Object.keys(one.responses).sort(), ['200', '400', '401', '403', '404', '429', '503'], 'GET one: success and the errors it can answer');
    const body = JSON.stringify(one.responses['200']?.content?.['application/json']?.schema ?? {});
    t.match(body, /hasPassword/, 'the success body is the extension as shown');
    t.notMatch(body, /"password"/, 'which never includes the password');
    t.match(JSON.stringify(one.responses['404']), /DP_ADMIN_VALIDATION|error/, 'errors have their schema');
    const put = op('/v1/tenants/{tenant}/routes/{id}', 'put');
    t.same(Object.keys(put.responses).sort(), ['200', '201', '400', '401', '403', '404', '412', '413', '415', '422', '429', '503']);
    t.same(Object.keys(op('/v1/tenants/{tenant}/routes/{id}', 'delete').responses).sort(), ['204', '400', '401', '403', '404', '412', '422', '429', '503']);
    t.match(JSON.stringify(op('/v1/tenants/{tenant}/groups', 'get').responses['200']), /"items"/, 'lists are pages');
    // Documenting responses must not filter what routes send (a response schema drives the serializer).
    t.equal((await a.call('PUT', '/v1/tenants/acme', { body: {} })).statusCode, 201);
    t.equal((await a.call('PUT', '/v1/tenants/acme/extensions/1001', { body: { password: 'password-1001', name: '张三' } })).statusCode, 201);
    const ext = (await a.call('GET', '/v1/tenants/acme/extensions/1001')).json() as Record<string, unknown>;
    t.match(ext, { number: '1001', name: '张三', hasPassword: true, version: String });
    const stale = await a.call('PUT', '/v1/tenants/acme/extensions/1001', { body: { name: 'x' }, headers: { 'if-match': '"nope"' } });
    t.match(stale.json(), { error: { code: 'DP_ADMIN_PRECONDITION', currentVersion: ext.version } }, 'error extras still reach the client');
    t.equal((await a.call('GET', '/docs', { auth: null })).statusCode, 200, 'browsable');
    t.equal((await a.call('GET', '/v1/nothing')).statusCode, 404);
  });
}
