import { mkdtempSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { EmbeddedApiKeyStore } from '../../../src/store/embedded/api-key-store.js';
import { StoreError } from '../../../src/store/store-error.js';
import { apiKeyContract, record } from './api-key-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'dp-keys-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('contract, memory only', async (t) => {
  apiKeyContract(t, async () => {
    const store = await EmbeddedApiKeyStore.open();
    return { store, cleanup: () => store.close() };
  });
});

let n = 0;
t.test('contract, with a file', async (t) => {
  apiKeyContract(t, async () => {
    const store = await EmbeddedApiKeyStore.open({ file: join(dir, `keys-${n++}.json`) });
    return { store, cleanup: () => store.close() };
  });
});

t.test('keys survive a reopen; the file holds hashes only and is private', async (t) => {
  const file = join(dir, 'persist.json');
  const s1 = await EmbeddedApiKeyStore.open({ file });
  const r = record('acme', { name: 'sync' });
  await s1.create(r);
  await s1.close();
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.match(readFileSync(file, 'utf8'), r.secretHash);
  const s2 = await EmbeddedApiKeyStore.open({ file });
  t.same(await s2.get(r.id), r);
  await s2.close();
});

t.test('a broken file stops start-up instead of revoking every key', async (t) => {
  const file = join(dir, 'broken.json');
  writeFileSync(file, '{ nope');
  await t.rejects(EmbeddedApiKeyStore.open({ file }), StoreError);
  writeFileSync(file, JSON.stringify({ format: 'something-else', keys: [] }));
  await t.rejects(EmbeddedApiKeyStore.open({ file }), /not an API key file/);
});

t.test('malformed records in the file are skipped, good ones kept', async (t) => {
  const file = join(dir, 'partial.json');
  const good = record('acme');
  writeFileSync(file, JSON.stringify({ format: 'dialplane-api-keys', keys: [good, { id: 'zz', tenant: 'x' }, null] }));
  const s = await EmbeddedApiKeyStore.open({ file });
  t.same(await s.list('acme'), [good]);
  await s.close();
});
