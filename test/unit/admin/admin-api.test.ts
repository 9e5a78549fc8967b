/** The admin API on the embedded store (the same suite runs on Redis in test/integration/admin-redis.test.ts). */
import t from 'tap';
import { EmbeddedApiKeyStore } from '../../../src/store/embedded/api-key-store.js';
import { EmbeddedTenantStore } from '../../../src/store/embedded/tenant-store.js';
import { adminSuite, type Backend } from './admin-suite.js';

async function embedded(): Promise<Backend> {
  const store = await EmbeddedTenantStore.open();
  const keys = await EmbeddedApiKeyStore.open();
  return { store, keys, cleanup: async () => { await keys.close(); await store.close(); } };
}

adminSuite(t, embedded);
