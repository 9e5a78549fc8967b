/**
 * Operator-level data: the global document and number portability (携号转网)
 * bulk import, on the embedded store. Also: the engine sees the new carrier
 * of a ported number through the tenant cache's global document.
 */
import t from 'tap';
import { EmbeddedApiKeyStore } from '../../../src/store/embedded/api-key-store.js';
import { EmbeddedTenantStore } from '../../../src/store/embedded/tenant-store.js';
import { startAdmin, type Backend } from './admin-suite.js';

async function embedded(): Promise<Backend> {
  const store = await EmbeddedTenantStore.open();
  const keys = await EmbeddedApiKeyStore.open();
  return { store, keys, cleanup: async () => { await keys.close(); await store.close(); } };
}

t.test('bulk import merges, a later row wins, every number is normalised; lookup and delete', async (t) => {
  const a = await startAdmin(t, embedded);
  const r1 = await a.call('POST', '/v1/portability', { body: { entries: [{ number: '13800138000', carrier: 'ctcc' }, { number: '+8613900139000', carrier: 'cucc' }] } });
  t.equal(r1.statusCode, 200, r1.body);
  t.match(r1.json(), { mode: 'merge', added: 2, updated: 0, total: 2 });
  const r2 = await a.call('POST', '/v1/portability', { body: { entries: [{ number: '008613800138000', carrier: 'cucc' }, { number: '13700137000', carrier: 'cmcc' }, { number: '13700137000', carrier: 'ctcc' }] } });
  t.match(r2.json(), { added: 1, updated: 1, total: 3 }, 'the same number in another form updates it; the later row for 137... wins');
  t.match((await a.call('GET', '/v1/portability?number=%2B8613800138000')).json(), { carrier: 'cucc' });
  t.match((await a.call('GET', '/v1/portability?number=13700137000')).json(), { carrier: 'ctcc' });
  t.equal((await a.call('GET', '/v1/portability?number=13600136000')).statusCode, 404);
  t.equal((await a.call('DELETE', '/v1/portability/13700137000')).statusCode, 204);
  t.equal((await a.call('DELETE', '/v1/portability/13700137000')).statusCode, 404);
  const replaced = await a.call('POST', '/v1/portability', { body: { mode: 'replace', entries: [{ number: '13500135000', carrier: 'cmcc' }] } });
  t.match(replaced.json(), { mode: 'replace', added: 1, total: 1 });
  const g = (await a.call('GET', '/v1/global')).json() as { carriers: { ported: unknown[] } };
  t.same(g.carriers.ported, [{ number: '13500135000', carrier: 'cmcc' }]);
});

t.test('one unreadable number refuses the whole file, naming the row; nothing is written', async (t) => {
  const a = await startAdmin(t, embedded);
  await a.call('POST', '/v1/portability', { body: { entries: [{ number: '13800138000', carrier: 'ctcc' }] } });
  const before = (await a.call('GET', '/v1/global')).json() as { version: string };
  const bad = await a.call('POST', '/v1/portability', { body: { entries: [{ number: '13900139000', carrier: 'cucc' }, { number: 'not-a-number', carrier: 'cmcc' }] } });
  t.equal(bad.statusCode, 400);
  t.match(bad.json(), { error: { code: 'DP_ADMIN_VALIDATION', issues: [{ in: 'body', path: '/entries/1/number' }] } });
  const unknownField = await a.call('POST', '/v1/portability', { body: { entries: [{ number: '13900139000', carrier: 'cucc', extra: 1 }] } });
  t.equal(unknownField.statusCode, 400, 'unknown fields are refused');
  t.equal(((await a.call('GET', '/v1/global')).json() as { version: string }).version, before.version, 'unchanged');
});

t.test('PUT /v1/global validates the whole document and honours If-Match; only the operator may touch it', async (t) => {
  const a = await startAdmin(t, embedded);
  const put = await a.call('PUT', '/v1/global', { body: { blacklist: { prefixes: ['170'] } } });
  t.equal(put.statusCode, 200, put.body);
  const v1 = (put.json() as { version: string }).version;
  const ok = await a.call('PUT', '/v1/global', { body: { blacklist: { prefixes: ['171'] } }, headers: { 'if-match': `"${v1}"` } });
  t.equal(ok.statusCode, 200, 'If-Match with the current version');
  const stale = await a.call('PUT', '/v1/global', { body: { blacklist: { prefixes: ['172'] } }, headers: { 'if-match': `"${v1}"` } });
  t.equal(stale.statusCode, 412, 'If-Match with the old version: 412, nothing written');
  t.same(((await a.call('GET', '/v1/global')).json() as { blacklist: unknown }).blacklist, { prefixes: ['171'] });
  const invalid = await a.call('PUT', '/v1/global', { body: { blacklist: { prefixes: ['abc'] } } });
  t.equal(invalid.statusCode, 400);
  t.match(invalid.json(), { error: { issues: [{ path: /blacklist/ }] } });
  t.equal((await a.call('GET', '/v1/global', { auth: null })).statusCode, 401);
  const key = await a.call('PUT', '/v1/tenants/acme', { body: {} });
  t.equal(key.statusCode, 201);
  const created = (await a.call('POST', '/v1/tenants/acme/api-keys', { body: {} })).json() as { key: string };
  t.equal((await a.call('GET', '/v1/global', { auth: created.key })).statusCode, 403, 'a tenant key may not read operator data');
  t.equal((await a.call('POST', '/v1/portability', { auth: created.key, body: { entries: [] } })).statusCode, 403);
});

t.test('the tenant cache (hence the engine) sees a ported number’s new carrier', async (t) => {
  const a = await startAdmin(t, embedded);
  await a.call('POST', '/v1/portability', { body: { entries: [{ number: '13800138000', carrier: 'ctcc' }] } });
  await a.cache.verify();
  t.equal(a.cache.global().compiled.ported.size, 1);
});

t.test('a tenant\'s own portability table: its key imports, looks up and deletes; another tenant sees nothing; a landline is refused naming the field', async (t) => {
  const a = await startAdmin(t, embedded);
  t.equal((await a.call('PUT', '/v1/tenants/acme', { body: {} })).statusCode, 201);
  t.equal((await a.call('PUT', '/v1/tenants/other', { body: {} })).statusCode, 201);
  const key = ((await a.call('POST', '/v1/tenants/acme/api-keys', { body: {} })).json() as { key: string }).key;
  const otherKey = ((await a.call('POST', '/v1/tenants/other/api-keys', { body: {} })).json() as { key: string }).key;
  const r1 = await a.call('POST', '/v1/tenants/acme/portability', { auth: key, body: { entries: [{ number: '13800138000', carrier: 'ctcc' }, { number: '+8613900139000', carrier: 'cucc' }] } });
  t.equal(r1.statusCode, 200, r1.body);
  t.match(r1.json(), { mode: 'merge', added: 2, updated: 0, total: 2 });
  t.match((await a.call('GET', '/v1/tenants/acme/portability?number=0086%20138%200013%208000', { auth: key })).json(), { number: '13800138000', carrier: 'ctcc' });
  t.equal((await a.call('GET', '/v1/portability?number=13800138000')).statusCode, 404, 'not in the operator\'s table');
  t.equal((await a.call('GET', '/v1/tenants/acme/portability?number=13800138000', { auth: otherKey })).statusCode, 404, 'another tenant\'s key');
  t.equal((await a.call('POST', '/v1/tenants/acme/portability', { auth: otherKey, body: { entries: [] } })).statusCode, 404);
  const landline = await a.call('POST', '/v1/tenants/acme/portability', { auth: key, body: { entries: [{ number: '02166668888', carrier: 'ctcc' }] } });
  t.equal(landline.statusCode, 422);
  t.match(landline.json(), { error: { issues: [{ path: '/ported/2/number', message: /not a mobile number/ }] } });
  const doc = (await a.call('GET', '/v1/tenants/acme/export', { auth: key })).json() as { ported: unknown[] };
  t.same(doc.ported, [{ number: '13800138000', carrier: 'ctcc' }, { number: '+8613900139000', carrier: 'cucc' }], 'part of the tenant document (export/import)');
  t.equal((await a.call('DELETE', '/v1/tenants/acme/portability/13800138000', { auth: key })).statusCode, 204);
  t.equal((await a.call('DELETE', '/v1/tenants/acme/portability/13800138000', { auth: key })).statusCode, 404);
  const replaced = await a.call('POST', '/v1/tenants/acme/portability', { auth: key, body: { mode: 'replace', entries: [] } });
  t.match(replaced.json(), { total: 0 });
  t.equal(((await a.call('GET', '/v1/tenants/acme/export', { auth: key })).json() as { ported?: unknown }).ported, undefined, 'an empty table leaves no field');
  await a.cache.verify();
});
