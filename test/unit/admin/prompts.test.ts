/** The prompt routes through fastify.inject, on the embedded stores. */
import t, { type Test } from 'tap';
import type { LightMyRequestResponse } from 'fastify';
import { EmbeddedApiKeyStore } from '../../../src/store/embedded/api-key-store.js';
import { EmbeddedPromptStore } from '../../../src/store/embedded/prompt-store.js';
import { EmbeddedTenantStore } from '../../../src/store/embedded/tenant-store.js';
import { baseTenant, startAdmin, type Admin, type Backend } from './admin-suite.js';
import { tonePcm16, wav } from '../../helpers/wav-builder.js';

async function embedded(): Promise<Backend> {
  const store = await EmbeddedTenantStore.open();
  const keys = await EmbeddedApiKeyStore.open();
  return { store, keys, cleanup: async () => { await keys.close(); await store.close(); } };
}

interface Setup {
  a: Admin;
  prompts: EmbeddedPromptStore;
  upload: (id: string, body: Buffer, opts?: { query?: string; headers?: Record<string, string>; auth?: string | null }) => Promise<LightMyRequestResponse>;
}

async function setup(t: Test, extra: { promptBodyLimit?: number } = {}): Promise<Setup> {
  const prompts = await EmbeddedPromptStore.open({ now: () => 1_740_960_000_000 });
  t.teardown(() => prompts.close());
  const a = await startAdmin(t, embedded, { prompts, ...extra });
  const upload: Setup['upload'] = (id, body, opts = {}) => a.call('PUT', `/v1/tenants/acme/prompts/${id}${opts.query ?? ''}`, {
    body, headers: { 'content-type': 'audio/wav', ...(opts.headers ?? {}) }, ...(opts.auth !== undefined ? { auth: opts.auth } : {}),
  });
  return { a, prompts, upload };
}

async function createTenant(a: Admin, id: string, marker: string): Promise<LightMyRequestResponse> {
  const r = await a.call('POST', `/v1/tenants/${id}/import`, { body: baseTenant(marker) });
  if (r.statusCode !== 201) throw new Error(`import of ${id} failed: ${r.statusCode} ${r.body}`);
  return r;
}

async function createKey(a: Admin, tenant: string, readOnly: boolean): Promise<string> {
  const r = await a.call('POST', `/v1/tenants/${tenant}/api-keys`, { body: { name: 'k', readOnly } });
  return (r.json() as { key: string }).key;
}

/** 0.5 s of μ-law; `n` varies the bytes. */
function ulaw(n = 0): Buffer {
  return wav({ format: 7, data: Buffer.alloc(4000, 0xd0 + n) });
}

t.test('upload, describe, list, download byte for byte', async (t) => {
  const { a, upload } = await setup(t);
  await createTenant(a, 'acme', 'ACME');
  const file = ulaw();
  const put = await upload('welcome', file, { query: `?name=${encodeURIComponent('欢迎语')}&description=${encodeURIComponent('Press 1 for sales')}` });
  t.equal(put.statusCode, 201, put.body);
  const meta = put.json() as Record<string, unknown>;
  t.match(meta, {
    id: 'welcome', name: '欢迎语', description: 'Press 1 for sales', codec: 'pcmu', sampleRate: 8000, channels: 1,
    durationMs: 500, bytes: file.length, updatedAt: 1_740_960_000_000,
  });
  t.match(meta.version, /^[0-9a-f]{16}$/);
  t.equal(put.headers.etag, `"${String(meta.version)}"`);

  const got = await a.call('GET', '/v1/tenants/acme/prompts/welcome');
  t.equal(got.statusCode, 200);
  t.strictSame(got.json(), meta, 'GET shows what PUT answered');
  t.equal(got.headers.etag, put.headers.etag);
  t.match(got.headers['content-type'], /^application\/json/);

  const audio = await a.call('GET', '/v1/tenants/acme/prompts/welcome/audio');
  t.equal(audio.statusCode, 200);
  t.equal(audio.headers['content-type'], 'audio/wav');
  t.equal(audio.headers.etag, put.headers.etag);
  t.ok(audio.rawPayload.equals(file), 'the bytes uploaded');
  const negotiated = await a.call('GET', '/v1/tenants/acme/prompts/welcome', { headers: { accept: 'audio/wav' } });
  t.equal(negotiated.headers['content-type'], 'audio/wav', 'Accept: audio/wav on the prompt gives the file');
  t.ok(negotiated.rawPayload.equals(file));
  const cached = await a.call('GET', '/v1/tenants/acme/prompts/welcome/audio', { headers: { 'if-none-match': String(put.headers.etag) } });
  t.equal(cached.statusCode, 304, 'unchanged: 304');
  t.equal(cached.rawPayload.length, 0);

  const pcm = wav({ sampleRate: 16000, data: tonePcm16(16000, 16000) });
  t.equal((await upload('closed', pcm, { headers: { 'content-type': 'audio/x-wav' } })).statusCode, 201, 'audio/x-wav, 16 kHz PCM');
  t.equal((await upload('busy', wav({ format: 6 }), { headers: { 'content-type': 'application/octet-stream' } })).statusCode, 201, 'application/octet-stream, A-law');

  const list = await a.call('GET', '/v1/tenants/acme/prompts?limit=2');
  t.equal(list.statusCode, 200);
  const page1 = list.json() as { items: Array<Record<string, unknown>>; nextCursor?: string };
  t.strictSame(page1.items.map((i) => i.id), ['busy', 'closed']);
  t.match(page1.items[1], { codec: 'pcm16', sampleRate: 16000, durationMs: 1000, bytes: pcm.length });
  t.notOk('audio' in (page1.items[0] as object), 'descriptions only');
  const page2 = (await a.call('GET', `/v1/tenants/acme/prompts?limit=2&cursor=${page1.nextCursor as string}`)).json() as { items: Array<Record<string, unknown>>; nextCursor?: string };
  t.strictSame(page2.items.map((i) => i.id), ['welcome']);
  t.equal(page2.nextCursor, undefined);
  t.equal((await a.call('GET', '/v1/tenants/acme/prompts?cursor=bm9wZQ-bad')).statusCode, 400, 'a cursor we never made');
  t.equal((await a.call('GET', '/v1/tenants/acme/prompts/missing')).statusCode, 404);
  t.equal((await a.call('GET', '/v1/tenants/acme/prompts/missing/audio')).statusCode, 404);
  t.equal((await a.call('GET', '/v1/tenants/nobody/prompts')).statusCode, 404, 'unknown tenant');
  t.equal((await upload('bad..id/x', file)).statusCode, 404, 'a slash is another path');
  t.equal((await upload('.hidden', file)).statusCode, 400, 'ids follow the Id pattern');
});

t.test('versions: If-Match, If-None-Match: *, 412 with the current version', async (t) => {
  const { a, upload } = await setup(t);
  await createTenant(a, 'acme', 'ACME');
  const v1 = (await upload('p', ulaw(1), { headers: { 'if-none-match': '*' } })).json() as { version: string };
  const again = await upload('p', ulaw(2), { headers: { 'if-none-match': '*' } });
  t.equal(again.statusCode, 412, 'create-only on an existing prompt');
  t.match(again.json(), { error: { code: 'DP_ADMIN_PRECONDITION', currentVersion: v1.version } });
  const stale = await upload('p', ulaw(2), { headers: { 'if-match': '"0000000000000000"' } });
  t.equal(stale.statusCode, 412);
  t.match(stale.json(), { error: { code: 'DP_ADMIN_PRECONDITION', currentVersion: v1.version } });
  const ok = await upload('p', ulaw(2), { headers: { 'if-match': `"${v1.version}"` } });
  t.equal(ok.statusCode, 200, 'replaced');
  const v2 = (ok.json() as { version: string }).version;
  t.not(v2, v1.version);
  t.equal((await upload('p', ulaw(2))).statusCode, 200, 'no precondition: last writer wins');
  t.equal(((await a.call('GET', '/v1/tenants/acme/prompts/p')).json() as { version: string }).version, v2, 'same bytes, same version');
  t.equal((await upload('q', ulaw(), { headers: { 'if-match': '*' } })).statusCode, 412, 'If-Match: * needs an existing prompt');
  t.equal((await a.call('DELETE', '/v1/tenants/acme/prompts/p', { headers: { 'if-match': `"${v1.version}"` } })).statusCode, 412, 'stale delete');
  t.equal((await a.call('DELETE', '/v1/tenants/acme/prompts/p', { headers: { 'if-match': `"${v2}"` } })).statusCode, 204);
  t.equal((await a.call('DELETE', '/v1/tenants/acme/prompts/p')).statusCode, 404);
});

t.test('415 wrong content type, 413 too big, 400 naming what is wrong with the audio', async (t) => {
  const { a, upload } = await setup(t, { promptBodyLimit: 64 * 1024 });
  await createTenant(a, 'acme', 'ACME');
  for (const type of ['application/json', 'text/plain', 'audio/mpeg', 'multipart/form-data; boundary=x']) {
    const r = await upload('p', ulaw(), { headers: { 'content-type': type } });
    t.equal(r.statusCode, 415, type);
    t.match(r.json(), { error: { code: 'DP_ADMIN_MEDIA_TYPE', message: /Content-Type audio\/wav/ } });
  }
  const json = await a.call('PUT', '/v1/tenants/acme/prompts/p', { body: { audio: 'UklGRg==' } });
  t.equal(json.statusCode, 415, 'JSON with base64 inside is not an upload');
  t.equal((await upload('p', ulaw(), { headers: { 'content-type': 'Audio/WAV; codecs=7' } })).statusCode, 201, 'media type case-insensitive, parameters ignored');

  const big = wav({ format: 7, data: Buffer.alloc(64 * 1024, 0xff) });
  const tooBig = await upload('big', big);
  t.equal(tooBig.statusCode, 413);
  t.match(tooBig.json(), { error: { code: 'DP_ADMIN_TOO_LARGE', message: `a prompt file is at most 65536 bytes, this one is ${big.length}` } });
  const other = await a.call('PUT', '/v1/tenants/acme/extensions/1009', { body: Buffer.alloc(10), headers: { 'content-type': 'audio/wav' } });
  t.equal(other.statusCode, 415, 'other routes still take JSON only');

  const cases: Array<[string, Buffer, string]> = [
    ['stereo', wav({ channels: 2 }), '2 channels: prompts must be 8000 Hz mono G.711 (μ-law or A-law) or 16-bit PCM at 8000 or 16000 Hz'],
    ['44.1 kHz', wav({ sampleRate: 44100, samples: 100 }), 'sample rate 44100 Hz: PCM prompts must be 8000 or 16000 Hz mono'],
    ['truncated', ulaw().subarray(0, 1000), `truncated: the RIFF header says ${ulaw().length} bytes, the file has 1000`],
    ['junk', Buffer.from('this is not audio at all'), 'not a WAV file (no RIFF header)'],
    ['empty', Buffer.alloc(0), 'the body is empty: send the WAV file\'s bytes'],
  ];
  for (const [name, body, reason] of cases) {
    const r = await upload('p', body);
    t.equal(r.statusCode, 400, name);
    t.strictSame(r.json(), { error: { code: 'DP_ADMIN_BAD_AUDIO', message: reason, issues: [{ in: 'body', path: '', message: reason }] } }, name);
  }
  t.equal((await upload('p', ulaw(), { query: `?name=${'n'.repeat(201)}` })).statusCode, 400, 'name too long');
  t.equal((await upload('p', ulaw(), { query: '?colour=red' })).statusCode, 400, 'unknown query field');
  t.equal(((await a.call('GET', '/v1/tenants/acme/prompts/p')).json() as { name?: string }).name, undefined, 'refused uploads changed nothing');
});

t.test('references: delete refused while named (409), new references to missing prompts refused (422), imports warn', async (t) => {
  const { a, upload } = await setup(t);
  const imported = await createTenant(a, 'acme', 'ACME');
  t.match(imported.json(), {
    created: true,
    warnings: [{ in: 'document', path: '/ivrMenus/0/prompt', object: 'ivr-menus/menu', message: 'prompt "welcome" does not exist (upload it with PUT /v1/tenants/acme/prompts/welcome)' }],
  }, 'an import naming a prompt without audio is written, with a warning');
  t.equal((await a.call('PATCH', '/v1/tenants/acme/ivr-menus/menu', { body: { retries: 2 } })).statusCode, 200, 'a reference already missing does not block other edits');

  const menu = await a.call('PUT', '/v1/tenants/acme/ivr-menus/m2', { body: { prompt: 'nope', route: 'main' } });
  t.equal(menu.statusCode, 422);
  t.strictSame(menu.json(), { error: {
    code: 'DP_ADMIN_REFERENCE', message: 'prompt "nope" does not exist (upload it with PUT /v1/tenants/acme/prompts/nope)',
    issues: [{ in: 'body', path: '/prompt', message: 'prompt "nope" does not exist (upload it with PUT /v1/tenants/acme/prompts/nope)' }],
  } });
  const route = await a.call('PATCH', '/v1/tenants/acme/routes/main', { body: { rules: [{ id: 'closed', actions: [{ kind: 'announce', prompt: 'after-hours' }] }] } });
  t.equal(route.statusCode, 422, 'an announce action naming a missing prompt');
  t.match(route.json(), { error: { issues: [{ in: 'body', path: '/rules/0/actions/0/prompt', message: /prompt "after-hours" does not exist/ }] } });

  t.equal((await upload('welcome', ulaw())).statusCode, 201);
  t.equal((await upload('after-hours', ulaw(1))).statusCode, 201);
  t.equal((await a.call('PUT', '/v1/tenants/acme/ivr-menus/m2', { body: { prompt: 'welcome', route: 'main' } })).statusCode, 201, 'with audio: accepted');
  t.equal((await a.call('PATCH', '/v1/tenants/acme/routes/main', { body: { rules: [
    { id: 'office', actions: [{ kind: 'announce', prompt: 'after-hours', then: 'next' }, { kind: 'ringGroup', group: 'everyone' }] },
  ] } })).statusCode, 200);

  const del = await a.call('DELETE', '/v1/tenants/acme/prompts/welcome');
  t.equal(del.statusCode, 409);
  t.strictSame(del.json(), { error: {
    code: 'DP_ADMIN_CONFLICT', message: 'prompt welcome is used by IVR menu menu; IVR menu m2: change them first',
    issues: [
      { in: 'document', path: '/ivrMenus/0/prompt', object: 'ivr-menus/menu', message: 'IVR menu menu plays prompt "welcome"' },
      { in: 'document', path: '/ivrMenus/1/prompt', object: 'ivr-menus/m2', message: 'IVR menu m2 plays prompt "welcome"' },
    ],
  } });
  const del2 = await a.call('DELETE', '/v1/tenants/acme/prompts/after-hours');
  t.equal(del2.statusCode, 409);
  t.match(del2.json(), { error: { message: 'prompt after-hours is used by route main, rule office, action 0: change it first', issues: [{ object: 'routes/main', path: '/routes/0/rules/0/actions/0/prompt' }] } });
  t.equal((await a.call('GET', '/v1/tenants/acme/prompts/welcome/audio')).statusCode, 200, 'still there');

  t.equal((await a.call('DELETE', '/v1/tenants/acme/ivr-menus/m2')).statusCode, 204);
  t.equal((await a.call('PATCH', '/v1/tenants/acme/ivr-menus/menu', { body: { prompt: 'after-hours' } })).statusCode, 200);
  t.equal((await a.call('DELETE', '/v1/tenants/acme/prompts/welcome')).statusCode, 204, 'no longer named: deleted');

  const reimport = await a.call('POST', '/v1/tenants/acme/import', { body: baseTenant('ACME') });
  t.equal(reimport.statusCode, 200);
  t.match(reimport.json(), { created: false, warnings: [{ path: '/ivrMenus/0/prompt' }] }, 'import warns again: welcome is gone');
});

t.test('tenants: isolation, read-only keys, deletion takes the prompts along', async (t) => {
  const { a, prompts, upload } = await setup(t);
  await createTenant(a, 'acme', 'ACME');
  await createTenant(a, 'beta', 'BETA');
  const file = ulaw(3);
  t.equal((await upload('welcome', file, { query: '?name=acme-secret-greeting' })).statusCode, 201);
  const beta = await createKey(a, 'beta', false);
  const reader = await createKey(a, 'acme', true);
  for (const [method, url] of [['GET', 'prompts'], ['GET', 'prompts/welcome'], ['GET', 'prompts/welcome/audio'], ['DELETE', 'prompts/welcome']] as const) {
    const r = await a.call(method, `/v1/tenants/acme/${url}`, { auth: beta });
    t.equal(r.statusCode, 404, `${method} ${url} with another tenant's key`);
    t.notMatch(r.body, /acme-secret/);
  }
  const put = await upload('welcome', ulaw(4), { auth: beta });
  t.equal(put.statusCode, 404, 'upload with another tenant\'s key');
  t.equal((await upload('welcome', ulaw(4), { auth: reader })).statusCode, 403, 'read-only key');
  t.equal((await upload('welcome', ulaw(4), { auth: null })).statusCode, 401, 'no key');
  t.equal((await a.call('GET', '/v1/tenants/acme/prompts/welcome/audio', { auth: reader })).statusCode, 200, 'the read-only key reads');
  t.equal((await a.call('GET', '/v1/tenants/beta/prompts/welcome', { auth: beta })).statusCode, 404, 'beta has no prompt of that id');
  t.ok((await prompts.getAudio('acme', 'welcome'))?.audio.equals(file), 'refused uploads changed nothing');

  t.equal((await a.call('DELETE', '/v1/tenants/acme')).statusCode, 204);
  t.equal(await prompts.getMeta('acme', 'welcome'), undefined, 'deleting the tenant deleted its prompts');
  await createTenant(a, 'acme', 'ACME');
  t.strictSame((await a.call('GET', '/v1/tenants/acme/prompts')).json(), { items: [] }, 'a tenant re-created under the same id starts without prompts');
});

t.test('OpenAPI documents the upload', async (t) => {
  const { a } = await setup(t);
  const doc = (await a.call('GET', '/docs/json', { auth: null })).json() as { paths: Record<string, Record<string, { requestBody?: { content?: Record<string, unknown> } }>> };
  const put = doc.paths['/v1/tenants/{tenant}/prompts/{id}']?.put;
  t.ok(put, 'the upload route is in the OpenAPI document');
  t.strictSame(Object.keys(put?.requestBody?.content ?? {}), ['audio/wav', 'audio/x-wav', 'audio/wave', 'audio/vnd.wave', 'application/octet-stream'], 'with its media types');
});
