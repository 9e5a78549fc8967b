import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedWebhookStore } from '../../../src/store/embedded/webhook-store.js';
import { failure, hook, webhookContract } from './webhook-contract.js';

function tempFile(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'dp-webhooks-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'config.webhooks.json');
}

t.test('contract, in memory', async (t) => {
  webhookContract(t, async () => {
    const store = new EmbeddedWebhookStore();
    return { store, cleanup: () => store.close() };
  });
});

t.test('contract, in a file', async (t) => {
  webhookContract(t, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dp-webhooks-'));
    const store = await EmbeddedWebhookStore.open({ file: join(dir, 'w.json') });
    return { store, cleanup: async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); } };
  });
});

t.test('a closed store refuses with DP_STORE_CLOSED', async (t) => {
  const store = new EmbeddedWebhookStore();
  await store.close();
  await t.rejects(store.put('acme', hook('x')), { code: 'DP_STORE_CLOSED' });
  await t.rejects(store.list('acme'), { code: 'DP_STORE_CLOSED' });
});

t.test('reopen: configurations and failures read back equal; the file is private', async (t) => {
  const file = tempFile(t);
  const first = await EmbeddedWebhookStore.open({ file });
  const a = hook('a-crm', { events: ['ringing', 'answered'] });
  const b = hook('b-sms', { url: 'http://10.0.0.5:8080/短信?x=1', enabled: false });
  await first.put('acme', a);
  await first.put('acme', b);
  await first.put('租户', hook('crm'));
  await first.recordFailure('acme', 'a-crm', failure(1));
  await first.recordFailure('acme', 'a-crm', failure(2));
  await first.put('acme', { ...a, enabled: false });
  await first.put('gone', hook('x'));
  await first.delete('gone', 'x');
  await first.close();
  t.equal(statSync(file).mode & 0o777, 0o600, 'mode 0600: it holds signing secrets');

  const again = await EmbeddedWebhookStore.open({ file });
  t.teardown(() => again.close());
  t.strictSame(await again.list('acme'), [{ ...a, enabled: false }, b]);
  t.strictSame(await again.list('租户'), [hook('crm')]);
  t.strictSame(await again.list('gone'), []);
  t.strictSame(await again.failures('acme', 'a-crm'), [failure(2), failure(1)], 'failures newest first, kept across the replacement');
});

t.test('failures are written lazily: within failureFlushMs, and at close', async (t) => {
  const file = tempFile(t);
  const store = await EmbeddedWebhookStore.open({ file, failureFlushMs: 20 });
  await store.put('acme', hook('crm'));
  await store.recordFailure('acme', 'crm', failure(1));
  t.notMatch(readFileSync(file, 'utf8'), 'ev-1', 'not written with the failure itself');
  t.strictSame(await store.failures('acme', 'crm'), [failure(1)], 'but visible at once');
  await new Promise((r) => setTimeout(r, 100));
  t.match(readFileSync(file, 'utf8'), 'ev-1', 'written after the flush interval');
  await store.recordFailure('acme', 'crm', failure(2));
  await store.close();
  t.match(readFileSync(file, 'utf8'), 'ev-2', 'and at close');
});

t.test('a failed write changes nothing and rejects', async (t) => {
  const file = tempFile(t);
  const store = await EmbeddedWebhookStore.open({ file });
  t.teardown(() => store.close());
  await store.put('acme', hook('crm'));
  rmSync(join(file, '..'), { recursive: true, force: true });
  await t.rejects(store.put('acme', hook('sms')), { code: 'ENOENT' });
  t.strictSame((await store.list('acme')).map((h) => h.id), ['crm']);
});

t.test('a corrupt or foreign file stops start-up naming it', async (t) => {
  const file = tempFile(t);
  const cases: Array<[string, RegExp]> = [
    ['{"format":"dialplane-webhooks","formatVersion":1,"tenants":{', /corrupt/],
    ['{"format":"something-else","formatVersion":1,"tenants":{}}', /"format"/],
    [JSON.stringify({ format: 'dialplane-webhooks', formatVersion: 1, tenants: { acme: { crm: { config: { ...hook('crm'), url: 'ftp://x' }, failures: [] } } } }), /webhook "acme"\/"crm"/],
    [JSON.stringify({ format: 'dialplane-webhooks', formatVersion: 1, tenants: { acme: { crm: { config: hook('other'), failures: [] } } } }), /id differs/],
  ];
  for (const [text, reason] of cases) {
    writeFileSync(file, text);
    await t.rejects(EmbeddedWebhookStore.open({ file }), { code: 'DP_STORE_BAD_FILE', message: new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*`) }, text.slice(0, 60));
    await t.rejects(EmbeddedWebhookStore.open({ file }), { message: reason });
  }
});
