/** Behaviour every WebhookStore must have (embedded here, Redis in test/integration). */
import type { Test } from 'tap';
import {
  MAX_FAILURES_PER_WEBHOOK, MAX_WEBHOOKS_PER_TENANT, type WebhookConfig, type WebhookFailure, type WebhookStore,
} from '../../../src/store/webhook-store.js';

export interface WebhookStoreUnderTest {
  store: WebhookStore;
  cleanup: () => Promise<void>;
}

export function hook(id: string, extra: Partial<WebhookConfig> = {}): WebhookConfig {
  return { id, url: `https://crm.example.cn/hooks/${id}`, events: ['missed'], secret: 'secret-0123456789abcdef', enabled: true, ...extra };
}

export function failure(n: number): WebhookFailure {
  return { at: 1_700_000_000_000 + n, event: 'missed', eventId: `ev-${n}`, callId: `call-${n}`, attempts: 5, status: 503, error: `HTTP 503 (${n})` };
}

export function webhookContract(t: Test, make: () => Promise<WebhookStoreUnderTest>): void {
  async function fresh(t: Test): Promise<WebhookStore> {
    const under = await make();
    t.teardown(under.cleanup);
    return under.store;
  }

  t.test('put, get, list by id, replace, delete', async (t) => {
    const store = await fresh(t);
    t.strictSame(await store.list('acme'), []);
    t.equal(await store.get('acme', 'crm'), undefined);
    const b = hook('b-sms', { events: ['missed', 'ended'], url: 'http://10.0.0.5:8080/短信?x=1' });
    const a = hook('a-crm', { events: ['ringing', 'answered'] });
    await store.put('acme', b);
    await store.put('acme', a);
    await store.put('other', hook('a-crm', { enabled: false }));
    t.strictSame(await store.list('acme'), [a, b], 'sorted by id');
    t.strictSame(await store.get('acme', 'b-sms'), b);
    const replaced = { ...a, enabled: false, events: ['ended' as const] };
    await store.put('acme', replaced);
    t.strictSame(await store.get('acme', 'a-crm'), replaced);
    t.equal((await store.get('other', 'a-crm'))?.enabled, false, 'tenants are separate');
    t.equal(await store.delete('acme', 'a-crm'), true);
    t.equal(await store.delete('acme', 'a-crm'), false, 'twice: nothing there');
    t.strictSame(await store.list('acme'), [b]);
  });

  t.test('only schema fields are stored; results are copies', async (t) => {
    const store = await fresh(t);
    const withExtra = { ...hook('x'), note: 'ignored' } as unknown as WebhookConfig;
    await t.rejects(store.put('acme', withExtra), { code: 'DP_STORE_BAD_WEBHOOK' }, 'unknown fields are refused by the schema');
    const h = hook('x');
    await store.put('acme', h);
    h.url = 'https://changed.example';
    const got = await store.get('acme', 'x');
    if (got) got.events.push('ringing');
    t.strictSame(await store.get('acme', 'x'), hook('x'));
  });

  t.test('bad configurations are refused with DP_STORE_BAD_WEBHOOK and store nothing', async (t) => {
    const store = await fresh(t);
    const bad: Array<[string, unknown]> = [
      ['no url', { ...hook('x'), url: undefined }],
      ['ftp url', hook('x', { url: 'ftp://example.com/x' })],
      ['url without a host', hook('x', { url: 'http://' })],
      ['url with spaces in the host', hook('x', { url: 'http://exa mple.com/' })],
      ['no events', hook('x', { events: [] })],
      ['unknown event', hook('x', { events: ['hangup' as 'ended'] })],
      ['repeated event', hook('x', { events: ['ended', 'ended'] })],
      ['short secret', hook('x', { secret: 'short' })],
      ['enabled not boolean', hook('x', { enabled: 'yes' as unknown as boolean })],
      ['id with a slash', hook('a/b')],
      ['empty id', hook('')],
      ['not an object', null],
    ];
    for (const [name, config] of bad) await t.rejects(store.put('acme', config as WebhookConfig), { code: 'DP_STORE_BAD_WEBHOOK' }, name);
    await t.rejects(store.put('', hook('x')), { code: 'DP_STORE_BAD_TENANT_ID' }, 'empty tenant');
    await t.rejects(store.get('acme', '../x'), { code: 'DP_STORE_BAD_WEBHOOK' }, 'get with a bad id');
    t.strictSame(await store.list('acme'), []);
  });

  t.test(`a tenant has at most ${MAX_WEBHOOKS_PER_TENANT} webhooks; replacing one is always allowed`, async (t) => {
    const store = await fresh(t);
    for (let i = 0; i < MAX_WEBHOOKS_PER_TENANT; i++) await store.put('acme', hook(`h${String(i).padStart(2, '0')}`));
    await t.rejects(store.put('acme', hook('one-more')), { code: 'DP_STORE_BAD_WEBHOOK' });
    await t.resolves(store.put('acme', hook('h00', { enabled: false })));
    await t.resolves(store.put('other', hook('one-more')), 'another tenant has its own limit');
    t.equal((await store.list('acme')).length, MAX_WEBHOOKS_PER_TENANT);
  });

  t.test(`failures: newest first, the last ${MAX_FAILURES_PER_WEBHOOK} kept, only for existing webhooks, gone with the webhook`, async (t) => {
    const store = await fresh(t);
    await store.put('acme', hook('crm'));
    await store.put('acme', hook('sms'));
    for (let i = 1; i <= MAX_FAILURES_PER_WEBHOOK + 5; i++) await store.recordFailure('acme', 'crm', failure(i));
    await store.recordFailure('acme', 'sms', { ...failure(99), status: undefined, error: 'timeout after 5000 ms' });
    const crm = await store.failures('acme', 'crm');
    t.equal(crm.length, MAX_FAILURES_PER_WEBHOOK);
    t.strictSame(crm[0], failure(MAX_FAILURES_PER_WEBHOOK + 5), 'newest first');
    t.strictSame(crm.at(-1), failure(6), 'oldest kept');
    t.strictSame(await store.failures('acme', 'sms'), [{ ...failure(99), status: undefined, error: 'timeout after 5000 ms' }].map(({ status: _s, ...f }) => f));
    await store.recordFailure('acme', 'ghost', failure(1));
    t.strictSame(await store.failures('acme', 'ghost'), [], 'nothing recorded for a webhook that does not exist');
    await store.delete('acme', 'crm');
    await store.put('acme', hook('crm'));
    t.strictSame(await store.failures('acme', 'crm'), [], 'a re-created webhook starts without failures');
    await t.rejects(store.recordFailure('acme', 'sms', { at: 1 } as WebhookFailure), { code: 'DP_STORE_BAD_WEBHOOK' }, 'a malformed failure');
  });
}
