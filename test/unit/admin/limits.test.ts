/**
 * What protects the admin API itself: rate limits per credential, body size
 * limits, redaction of secrets in logs; and the coded error list.
 */
import { Writable } from 'node:stream';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { pino } from 'pino';
import { ADMIN_ERROR_CODES } from '../../../src/admin/errors.js';
import { REDACT_PATHS } from '../../../src/log.js';
import { EmbeddedApiKeyStore } from '../../../src/store/embedded/api-key-store.js';
import { EmbeddedTenantStore } from '../../../src/store/embedded/tenant-store.js';
import { OPERATOR, startAdmin, type Backend } from './admin-suite.js';

async function embedded(): Promise<Backend> {
  const store = await EmbeddedTenantStore.open();
  const keys = await EmbeddedApiKeyStore.open();
  return { store, keys, cleanup: async () => { await keys.close(); await store.close(); } };
}

t.test('rate limit per credential; failed guesses count per address', async (t) => {
  const a = await startAdmin(t, embedded, { rateLimit: { max: 3, timeWindowMs: 60_000 } });
  await a.call('PUT', '/v1/tenants/acme', { body: {} });
  const key = (await a.call('POST', '/v1/tenants/acme/api-keys', { body: {} })).json() as { key: string };
  for (let i = 0; i < 2; i++) t.equal((await a.call('GET', '/v1/tenants/acme', { auth: key.key })).statusCode, 200);
  const limited = await a.call('GET', '/v1/tenants/acme', { auth: key.key });
  t.equal(limited.statusCode, 200, 'third request of the key');
  const over = await a.call('GET', '/v1/tenants/acme', { auth: key.key });
  t.equal(over.statusCode, 429);
  t.match(over.json(), { error: { code: 'DP_ADMIN_RATE_LIMITED' } });
  t.ok(over.headers['retry-after'], 'says when to come back');
  t.equal((await a.call('GET', '/v1/tenants/acme')).statusCode, 200, 'the operator has its own bucket');
  for (let i = 0; i < 3; i++) await a.call('GET', '/v1/tenants/acme', { auth: 'guess' });
  t.equal((await a.call('GET', '/v1/tenants/acme', { auth: 'guess' })).statusCode, 429, 'bad credentials are limited per address');
  t.equal((await a.call('GET', '/health', { auth: null })).statusCode, 200, 'probes are never limited');
});

t.test('body size limits: ordinary routes and import', async (t) => {
  const a = await startAdmin(t, embedded, { bodyLimit: 2048, importBodyLimit: 4096 });
  await a.call('PUT', '/v1/tenants/acme', { body: {} });
  const big = await a.call('PUT', '/v1/tenants/acme/blacklist', { body: { numbers: Array.from({ length: 300 }, (_, i) => `1360000${String(i).padStart(4, '0')}`) } });
  t.equal(big.statusCode, 413);
  t.match(big.json(), { error: { code: 'DP_ADMIN_TOO_LARGE' } });
  const imp = await a.call('POST', '/v1/tenants/acme/import', { body: { blacklist: { numbers: Array.from({ length: 200 }, (_, i) => `1360000${String(i).padStart(4, '0')}`) } } });
  t.equal(imp.statusCode, 200, 'an import may be larger');
  const huge = await a.call('POST', '/v1/tenants/acme/import', { body: { blacklist: { numbers: Array.from({ length: 400 }, (_, i) => `1360000${String(i).padStart(4, '0')}`) } } });
  t.equal(huge.statusCode, 413, 'up to its own limit');
});

t.test('logs redact credentials and passwords', async (t) => {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(chunk.toString()); done(); } });
  const log = pino({ level: 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, sink);
  log.info({ req: { headers: { authorization: `Bearer ${OPERATOR}`, 'x-api-key': 'dpk_0123456789abcdef_secret' } }, body: { password: 'pw-123456' } }, 'request');
  const text = lines.join('');
  t.notMatch(text, OPERATOR);
  t.notMatch(text, 'dpk_0123456789abcdef_secret');
  t.notMatch(text, 'pw-123456');
  t.match(text, '[redacted]');
});

t.test('every error code has a status, and the README lists them', async (t) => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  for (const [code, def] of Object.entries(ADMIN_ERROR_CODES)) {
    t.ok(def.status >= 400 && def.status < 600, `${code} is an error status`);
    t.match(code, /^DP_ADMIN_[A-Z_]+$/);
    t.ok(readme.includes(code), `README names ${code}`);
  }
});
