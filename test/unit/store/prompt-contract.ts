/**
 * Behaviour every PromptStore must have: embedded (memory and a directory)
 * in embedded-prompt.test.ts, Redis in test/integration/redis-prompt.test.ts.
 */
import { createHash } from 'node:crypto';
import type { Test } from 'tap';
import {
  MAX_PROMPT_BYTES, PromptConflict, promptVersion, type PromptDescription, type PromptLimits, type PromptStore,
} from '../../../src/store/prompt-store.js';

export interface PromptStoreUnderTest {
  store: PromptStore;
  cleanup: () => Promise<void>;
}

/** The clock the contract's stores are built with. */
export const PROMPT_NOW = 1_740_960_000_000;
/** The limits they are built with: small, so reaching them is quick (the defaults are 200 prompts and 100 MiB). */
export const TEST_LIMITS: PromptLimits = { prompts: 12, bytes: 40_000 };

/** Bytes that differ per `n` and include every byte value (binary safety: NUL, 0x80-0xff, CR/LF). */
export function audioBytes(n: number, length = 2048): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 7 + n * 13) & 0xff;
  return b;
}

export function described(extra: Partial<PromptDescription> = {}): PromptDescription {
  return { codec: 'pcmu', sampleRate: 8000, durationMs: 256, ...extra };
}

/** The PromptConflict a call rejects with (or what else happened, to fail the test readably). */
async function conflictOf(p: Promise<unknown>): Promise<{ conflict: boolean; actual?: string | undefined; code?: unknown; other?: unknown }> {
  try {
    await p;
    return { conflict: false, other: 'resolved' };
  } catch (err) {
    return err instanceof PromptConflict ? { conflict: true, actual: err.actual, code: err.code } : { conflict: false, other: err };
  }
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export function promptContract(t: Test, make: () => Promise<PromptStoreUnderTest>): void {
  async function fresh(t: Test): Promise<PromptStore> {
    const under = await make();
    t.teardown(under.cleanup);
    return under.store;
  }

  t.test('put, get meta, get audio (byte for byte), replace, delete', async (t) => {
    const store = await fresh(t);
    t.equal(await store.getMeta('acme', 'welcome'), undefined);
    t.equal(await store.getAudio('acme', 'welcome'), undefined);
    const audio = audioBytes(1);
    const put = await store.put('acme', 'welcome', { audio, meta: described({ name: '欢迎语', description: 'Main greeting' }) });
    const version = promptVersion(sha(audio), described({ name: '欢迎语', description: 'Main greeting' }));
    const expected = {
      id: 'welcome', name: '欢迎语', description: 'Main greeting', codec: 'pcmu', sampleRate: 8000, durationMs: 256,
      bytes: 2048, sha256: sha(audio), version, updatedAt: PROMPT_NOW,
    };
    t.strictSame(put, { meta: expected, created: true });
    t.match(version, /^[0-9a-f]{16}$/);
    t.strictSame(await store.getMeta('acme', 'welcome'), expected);
    const got = await store.getAudio('acme', 'welcome');
    t.strictSame(got?.meta, expected);
    t.ok(got?.audio.equals(audio), 'the bytes as put');

    const audio2 = audioBytes(2, 3001);
    const replaced = await store.put('acme', 'welcome', { audio: audio2, meta: described({ codec: 'pcm16', durationMs: 187 }) });
    t.equal(replaced.created, false);
    t.not(replaced.meta.version, version, 'new content, new version');
    t.strictSame(await store.getMeta('acme', 'welcome'), { id: 'welcome', codec: 'pcm16', sampleRate: 8000, durationMs: 187, bytes: 3001, sha256: sha(audio2), version: replaced.meta.version, updatedAt: PROMPT_NOW }, 'name and description gone with the replacement');
    t.ok((await store.getAudio('acme', 'welcome'))?.audio.equals(audio2));

    t.equal(await store.delete('acme', 'welcome'), true);
    t.equal(await store.delete('acme', 'welcome'), false, 'twice: nothing there');
    t.equal(await store.getMeta('acme', 'welcome'), undefined);
    t.equal(await store.getAudio('acme', 'welcome'), undefined);
  });

  t.test('the version is the content: same bytes and description, same version; the name counts', async (t) => {
    const store = await fresh(t);
    const a = await store.put('acme', 'a', { audio: audioBytes(5), meta: described({ name: 'x' }) });
    const b = await store.put('acme', 'b', { audio: audioBytes(5), meta: described({ name: 'x' }) });
    t.equal(a.meta.version, b.meta.version);
    const c = await store.put('acme', 'c', { audio: audioBytes(5), meta: described({ name: 'y' }) });
    t.not(c.meta.version, a.meta.version);
    const again = await store.put('acme', 'a', { audio: audioBytes(5), meta: described({ name: 'x' }) });
    t.equal(again.meta.version, a.meta.version, 'writing the same again keeps the version');
  });

  t.test('tenants are separate', async (t) => {
    const store = await fresh(t);
    await store.put('acme', 'welcome', { audio: audioBytes(1), meta: described() });
    await store.put('globex', 'welcome', { audio: audioBytes(2), meta: described({ name: 'globex' }) });
    t.ok((await store.getAudio('acme', 'welcome'))?.audio.equals(audioBytes(1)));
    t.equal((await store.getMeta('globex', 'welcome'))?.name, 'globex');
    t.equal(await store.getMeta('initech', 'welcome'), undefined);
    t.equal(await store.delete('globex', 'welcome'), true);
    t.ok(await store.getMeta('acme', 'welcome'), 'the other tenant\'s prompt stays');
  });

  t.test('preconditions: ifVersion and ifAbsent refuse with PromptConflict and change nothing', async (t) => {
    const store = await fresh(t);
    t.strictSame(await conflictOf(store.put('acme', 'p', { audio: audioBytes(1), meta: described() }, { ifVersion: '0123456789abcdef' })),
      { conflict: true, actual: undefined, code: 'DP_STORE_CONFLICT' }, 'If-Match on a missing prompt');
    const v1 = (await store.put('acme', 'p', { audio: audioBytes(1), meta: described() }, { ifAbsent: true })).meta.version;
    t.strictSame(await conflictOf(store.put('acme', 'p', { audio: audioBytes(2), meta: described() }, { ifAbsent: true })),
      { conflict: true, actual: v1, code: 'DP_STORE_CONFLICT' }, 'create-only on an existing prompt names its version');
    t.strictSame(await conflictOf(store.put('acme', 'p', { audio: audioBytes(2), meta: described() }, { ifVersion: '0123456789abcdef' })),
      { conflict: true, actual: v1, code: 'DP_STORE_CONFLICT' }, 'stale version');
    t.ok((await store.getAudio('acme', 'p'))?.audio.equals(audioBytes(1)), 'nothing was written');
    const v2 = (await store.put('acme', 'p', { audio: audioBytes(2), meta: described() }, { ifVersion: v1 })).meta.version;
    t.strictSame(await conflictOf(store.delete('acme', 'p', { ifVersion: v1 })), { conflict: true, actual: v2, code: 'DP_STORE_CONFLICT' }, 'stale delete');
    t.ok(await store.getMeta('acme', 'p'), 'still there');
    t.equal(await store.delete('acme', 'p', { ifVersion: v2 }), true);
    t.equal(await store.delete('acme', 'p', { ifVersion: v2 }), false, 'gone: false, not a conflict');
  });

  t.test('concurrent conditional creates: exactly one wins', async (t) => {
    const store = await fresh(t);
    const results = await Promise.allSettled([1, 2, 3, 4].map((n) => store.put('acme', 'race', { audio: audioBytes(n), meta: described() }, { ifAbsent: true })));
    t.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    t.equal(results.filter((r) => r.status === 'rejected' && r.reason instanceof PromptConflict).length, 3);
    const winner = results.findIndex((r) => r.status === 'fulfilled') + 1;
    t.ok((await store.getAudio('acme', 'race'))?.audio.equals(audioBytes(winner)), 'the stored bytes are the winner\'s');
  });

  t.test('list: by id, paginated with `after`, descriptions only', async (t) => {
    const store = await fresh(t);
    t.strictSame(await store.list('acme', { limit: 10 }), { items: [] });
    const ids = ['b', 'a.1', 'A', 'c-2', '0', 'a_2'];
    for (const [i, id] of ids.entries()) await store.put('acme', id, { audio: audioBytes(i, 16 + i), meta: described({ durationMs: i }) });
    await store.put('other', 'zzz', { audio: audioBytes(9), meta: described() });
    const sorted = [...ids].sort();
    t.strictSame(sorted, ['0', 'A', 'a.1', 'a_2', 'b', 'c-2']);
    const p1 = await store.list('acme', { limit: 4 });
    t.strictSame(p1.items.map((m) => m.id), sorted.slice(0, 4));
    t.equal(p1.nextAfter, 'a_2');
    t.equal(p1.items[1]?.bytes, 16 + ids.indexOf('A'));
    t.equal((p1.items[0] as unknown as Record<string, unknown>).audio, undefined, 'no audio in listings');
    const p2 = await store.list('acme', { limit: 4, after: p1.nextAfter as string });
    t.strictSame(p2.items.map((m) => m.id), ['b', 'c-2']);
    t.equal(p2.nextAfter, undefined, 'last page');
    const exact = await store.list('acme', { limit: 6 });
    t.equal(exact.items.length, 6);
    t.equal(exact.nextAfter, undefined, 'a page ending exactly at the end has no next');
    t.strictSame((await store.list('acme', { limit: 10, after: 'a' })).items.map((m) => m.id), ['a.1', 'a_2', 'b', 'c-2'], '`after` need not be an existing id');
    await t.rejects(store.list('acme', { limit: 0 }), { code: 'DP_STORE_BAD_QUERY' });
  });

  t.test('results are copies', async (t) => {
    const store = await fresh(t);
    const audio = audioBytes(3);
    await store.put('acme', 'p', { audio, meta: described() });
    audio.fill(0);
    const got = await store.getAudio('acme', 'p');
    t.ok(got?.audio.equals(audioBytes(3)), 'changing the caller\'s buffer after put changes nothing');
    got?.audio.fill(1);
    if (got) got.meta.name = 'changed';
    const again = await store.getAudio('acme', 'p');
    t.ok(again?.audio.equals(audioBytes(3)));
    t.equal(again?.meta.name, undefined);
  });

  t.test('bad puts are refused with DP_STORE_BAD_PROMPT and store nothing', async (t) => {
    const store = await fresh(t);
    const bad: Array<[string, string, unknown]> = [
      ['id with a slash', 'a/b', { audio: audioBytes(1), meta: described() }],
      ['id climbing out', '..', { audio: audioBytes(1), meta: described() }],
      ['empty id', '', { audio: audioBytes(1), meta: described() }],
      ['65-character id', 'x'.repeat(65), { audio: audioBytes(1), meta: described() }],
      ['empty audio', 'p', { audio: Buffer.alloc(0), meta: described() }],
      ['audio not bytes', 'p', { audio: 'RIFF', meta: described() }],
      ['too large', 'p', { audio: Buffer.alloc(MAX_PROMPT_BYTES + 1), meta: described() }],
      ['unknown codec', 'p', { audio: audioBytes(1), meta: described({ codec: 'mp3' as 'pcmu' }) }],
      ['no sample rate', 'p', { audio: audioBytes(1), meta: described({ sampleRate: 0 }) }],
      ['fractional duration', 'p', { audio: audioBytes(1), meta: described({ durationMs: 1.5 }) }],
      ['long name', 'p', { audio: audioBytes(1), meta: described({ name: 'n'.repeat(201) }) }],
      ['lone surrogate in the description', 'p', { audio: audioBytes(1), meta: described({ description: 'a\ud800b' }) }],
    ];
    for (const [name, id, prompt] of bad) {
      await t.rejects(store.put('acme', id, prompt as { audio: Buffer; meta: PromptDescription }), { code: 'DP_STORE_BAD_PROMPT' }, name);
    }
    await t.rejects(store.put('', 'p', { audio: audioBytes(1), meta: described() }), { code: 'DP_STORE_BAD_TENANT_ID' }, 'empty tenant');
    await t.rejects(store.getMeta('acme', '../x'), { code: 'DP_STORE_BAD_PROMPT' }, 'get with a bad id');
    await t.rejects(store.getAudio('acme', 'a b'), { code: 'DP_STORE_BAD_PROMPT' }, 'audio with a bad id');
    t.strictSame(await store.list('acme', { limit: 10 }), { items: [] });
  });

  t.test('a tenant id that is not a file name is still one tenant, and only that one', async (t) => {
    const store = await fresh(t);
    for (const tenant of ['租户', '../etc', 'a/b', '~61']) await store.put(tenant, 'p', { audio: audioBytes(tenant.length), meta: described({ name: tenant }) });
    for (const tenant of ['租户', '../etc', 'a/b', '~61']) t.equal((await store.getMeta(tenant, 'p'))?.name, tenant, tenant);
    t.equal(await store.getMeta('a', 'p'), undefined, '"~61" is not "a"');
    t.equal(await store.getMeta('etc', 'p'), undefined);
  });

  t.test(`quotas: at most ${TEST_LIMITS.prompts} prompts and ${TEST_LIMITS.bytes} bytes per tenant; replacing is measured by the difference`, async (t) => {
    const store = await fresh(t);
    const chunk = 9_000;
    const full = Math.floor(TEST_LIMITS.bytes / chunk);
    for (let i = 0; i < full; i++) await store.put('acme', `big${i}`, { audio: audioBytes(i, chunk), meta: described() });
    const spare = TEST_LIMITS.bytes - full * chunk;
    await t.rejects(store.put('acme', 'one-more', { audio: audioBytes(1, spare + 1), meta: described() }),
      { code: 'DP_STORE_PROMPT_QUOTA', message: `a tenant's prompts total at most ${TEST_LIMITS.bytes} bytes (this one would make ${TEST_LIMITS.bytes + 1})` });
    await t.resolves(store.put('acme', 'one-more', { audio: audioBytes(1, spare), meta: described() }), 'exactly the limit fits');
    await t.resolves(store.put('acme', 'big0', { audio: audioBytes(7, chunk), meta: described() }), 'replacing with the same size fits');
    await t.rejects(store.put('acme', 'big0', { audio: audioBytes(7, chunk + 1), meta: described() }), { code: 'DP_STORE_PROMPT_QUOTA' }, 'but not one byte more');
    await t.resolves(store.put('other', 'big0', { audio: audioBytes(1, chunk), meta: described() }), 'another tenant has its own quota');
    t.equal((await store.getMeta('acme', 'big0'))?.bytes, chunk, 'the refused replacement wrote nothing');
    t.equal(await store.deleteTenant('acme'), full + 1);
    t.strictSame(await store.list('acme', { limit: 10 }), { items: [] });
    for (let i = 0; i < TEST_LIMITS.prompts; i++) await store.put('acme', `p${i}`, { audio: audioBytes(i, 8), meta: described() });
    await t.rejects(store.put('acme', 'p-extra', { audio: audioBytes(1, 8), meta: described() }), { code: 'DP_STORE_PROMPT_QUOTA', message: `a tenant has at most ${TEST_LIMITS.prompts} prompts` });
    await t.resolves(store.put('acme', 'p0', { audio: audioBytes(1, 16), meta: described() }), 'replacing one is always allowed');
  });

  t.test('deleteTenant removes every prompt of that tenant only', async (t) => {
    const store = await fresh(t);
    for (const id of ['a', 'b', 'c']) await store.put('acme', id, { audio: audioBytes(1), meta: described() });
    await store.put('globex', 'a', { audio: audioBytes(1), meta: described() });
    t.equal(await store.deleteTenant('acme'), 3);
    t.equal(await store.deleteTenant('acme'), 0);
    t.equal(await store.getAudio('acme', 'a'), undefined);
    t.ok(await store.getAudio('globex', 'a'));
  });
}
