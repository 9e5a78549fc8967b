import t from 'tap';
import { EmbeddedWebhookStore } from '../../../src/store/embedded/webhook-store.js';
import { hook, webhookContract } from './webhook-contract.js';

t.test('contract', async (t) => {
  webhookContract(t, async () => {
    const store = new EmbeddedWebhookStore();
    return { store, cleanup: () => store.close() };
  });
});

t.test('a closed store refuses with DP_STORE_CLOSED', async (t) => {
  const store = new EmbeddedWebhookStore();
  await store.close();
  await t.rejects(store.put('acme', hook('x')), { code: 'DP_STORE_CLOSED' });
  await t.rejects(store.list('acme'), { code: 'DP_STORE_CLOSED' });
});
