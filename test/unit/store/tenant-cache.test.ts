/**
 * TenantCache over the embedded store, with a hand-fired scheduler instead
 * of timers and a wrapper store that can fail, drop announcements, inject
 * announcements and hold reads. Nothing sleeps.
 */
import t, { type Test } from 'tap';
import type { GlobalDocument, TenantDocument } from '../../../src/routing/model.js';
import { compileGlobal, compileTenant } from '../../../src/routing/index.js';
import type { Logger } from '../../../src/sip/logger.js';
import { EmbeddedTenantStore } from '../../../src/store/embedded/tenant-store.js';
import { StoredDocumentCorrupt } from '../../../src/store/store-error.js';
import { TenantCache, type CachedTenant, type IntervalScheduler } from '../../../src/store/tenant-cache.js';
import type { ConfigChange, TenantStore, Versioned, WriteOptions } from '../../../src/store/tenant-store.js';
import { exampleGlobal, exampleTenant, smallTenant } from './tenant-contract.js';

interface Line { level: 'debug' | 'info' | 'warn' | 'error'; obj: object; msg: string | undefined }

function recordingLogger(): Logger & { lines: Line[]; at(level: Line['level']): Line[] } {
  const lines: Line[] = [];
  const log = {
    lines,
    at: (level: Line['level']) => lines.filter((l) => l.level === level),
    child: () => log,
    debug: (obj: object, msg?: string) => { lines.push({ level: 'debug', obj, msg }); },
    info: (obj: object, msg?: string) => { lines.push({ level: 'info', obj, msg }); },
    warn: (obj: object, msg?: string) => { lines.push({ level: 'warn', obj, msg }); },
    error: (obj: object, msg?: string) => { lines.push({ level: 'error', obj, msg }); },
  };
  return log;
}

function manualScheduler(): IntervalScheduler & { fire(): void; intervals: number[]; stopped: number } {
  const jobs: (() => void)[] = [];
  const scheduler = Object.assign(
    (job: () => void, intervalMs: number) => {
      jobs.push(job);
      scheduler.intervals.push(intervalMs);
      return () => { scheduler.stopped += 1; };
    },
    { intervals: [] as number[], stopped: 0, fire: () => { for (const job of jobs) job(); } },
  );
  return scheduler;
}

/**
 * A TenantStore in front of an embedded one. `failing`: every call rejects
 * like an unreachable Redis. `muted`: announcements are dropped (a missed
 * pub/sub message). `announce`: delivers a made-up announcement. `holdReads`:
 * getTenant reads at once but answers only when `release` is called.
 */
class TestStore implements TenantStore {
  failing = false;
  muted = false;
  holdReads = false;
  readonly getTenantCalls: string[] = [];
  readonly corrupt = new Map<string, number>();
  readonly held: { id: string; release: () => void }[] = [];
  readonly #listeners = new Set<(change: ConfigChange) => void>();

  constructor(readonly inner: EmbeddedTenantStore) {
    inner.watch((change) => {
      if (!this.muted) this.announce(change);
    });
  }

  announce(change: ConfigChange): void {
    for (const listener of this.#listeners) listener(change);
  }

  #check(): void {
    if (this.failing) throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
  }

  async getTenant(id: string): Promise<Versioned<TenantDocument> | undefined> {
    this.#check();
    this.getTenantCalls.push(id);
    const corruptVersion = this.corrupt.get(id);
    if (corruptVersion !== undefined) throw new StoredDocumentCorrupt(`tenant ${id}`, corruptVersion, 'not JSON');
    const result = await this.inner.getTenant(id);
    if (this.holdReads) await new Promise<void>((resolve) => { this.held.push({ id, release: resolve }); });
    return result;
  }

  async putTenant(doc: TenantDocument, opts?: WriteOptions): Promise<number> { this.#check(); return this.inner.putTenant(doc, opts); }
  async deleteTenant(id: string, opts?: WriteOptions): Promise<boolean> { this.#check(); return this.inner.deleteTenant(id, opts); }
  async tenantVersions(): Promise<Map<string, number>> { this.#check(); return this.inner.tenantVersions(); }
  async getGlobal(): Promise<Versioned<GlobalDocument>> { this.#check(); return this.inner.getGlobal(); }
  async globalVersion(): Promise<number> { this.#check(); return this.inner.globalVersion(); }
  async putGlobal(doc: GlobalDocument, opts?: WriteOptions): Promise<number> { this.#check(); return this.inner.putGlobal(doc, opts); }
  async incrCounter(key: string): Promise<number> { this.#check(); return this.inner.incrCounter(key); }

  watch(listener: (change: ConfigChange) => void): () => void {
    this.#listeners.add(listener);
    return () => { this.#listeners.delete(listener); };
  }

  get watchers(): number {
    return this.#listeners.size;
  }

  async close(): Promise<void> {
    await this.inner.close();
  }
}

/** An invalid tenant document: `routes` must be an array. */
function brokenTenant(id: string): TenantDocument {
  return { id, routes: 5 } as unknown as TenantDocument;
}

async function setup(t: Test, options: { seed?: (store: EmbeddedTenantStore) => Promise<void>; start?: boolean } = {}): Promise<{
  inner: EmbeddedTenantStore; store: TestStore; cache: TenantCache; log: ReturnType<typeof recordingLogger>;
  scheduler: ReturnType<typeof manualScheduler>; settle: () => Promise<void>; poll: () => Promise<void>;
}> {
  const inner = await EmbeddedTenantStore.open();
  await options.seed?.(inner);
  const store = new TestStore(inner);
  const log = recordingLogger();
  const scheduler = manualScheduler();
  const cache = new TenantCache({ store, log, verifyIntervalMs: 500, scheduleInterval: scheduler });
  t.teardown(async () => {
    await cache.stop();
    await inner.close();
  });
  if (options.start !== false) await cache.start();
  // Announcements arrive in microtasks; let them run, then wait for the reloads they started.
  const settle = async (): Promise<void> => {
    await new Promise((resolve) => setImmediate(resolve));
    await cache.idle();
  };
  const poll = async (): Promise<void> => {
    scheduler.fire();
    await cache.idle();
  };
  return { inner, store, cache, log, scheduler, settle, poll };
}

t.test('start loads every tenant and the global document', async (t) => {
  const { cache, log, scheduler } = await setup(t, {
    seed: async (s) => {
      for (const name of ['hotline-400', 'main-number-ivr', 'short-number-plan']) await s.putTenant(exampleTenant(name));
      await s.putGlobal(exampleGlobal());
    },
  });
  t.strictSame([...cache.all()].map((e) => e.id).sort(), ['acme-hotline', 'hz-trading', 'sh-group']);
  t.equal(cache.size, 3);
  const entry = cache.get('sh-group');
  t.strictSame(entry?.doc, exampleTenant('short-number-plan'));
  t.equal(entry?.compiled.id, 'sh-group', 'compiled with compileTenant');
  t.ok(entry !== undefined && Object.isFrozen(entry), 'entries are frozen');
  t.equal(cache.get('nobody'), undefined);
  t.ok(cache.global().version > 0);
  const expectedGlobal = compileGlobal(exampleGlobal());
  t.strictSame(
    [cache.global().compiled.segments.size, cache.global().compiled.ported.size, cache.global().compiled.blacklist.exact.size],
    [expectedGlobal.segments.size, expectedGlobal.ported.size, expectedGlobal.blacklist.exact.size],
    'the global document is compiled');
  t.ok(expectedGlobal.segments.size > 0, '(the example has carrier segments)');
  t.strictSame(scheduler.intervals, [500], 'the version check runs at verifyIntervalMs');
  t.match(log.at('info'), [{ obj: { tenants: 3, rejected: 0 }, msg: 'tenant rules loaded' }]);
  t.strictSame(log.at('warn'), []);
  await t.rejects(cache.start(), /already running/, 'start twice is a bug');
});

t.test('without a global document the global rules are empty at version 0', async (t) => {
  const { cache } = await setup(t);
  t.equal(cache.global().version, 0);
  t.strictSame(cache.global().doc, {});
  t.equal(cache.size, 0);
});

t.test('start rejects with DP_STORE_UNAVAILABLE when the store is unreachable, and schedules nothing', async (t) => {
  const { store, cache, scheduler } = await setup(t, { start: false });
  store.failing = true;
  await t.rejects(cache.start(), { code: 'DP_STORE_UNAVAILABLE', message: /ECONNREFUSED/ });
  t.strictSame(scheduler.intervals, []);
  t.equal(store.watchers, 0, 'and leaves no subscription behind');
});

t.test('an announced change is reloaded and change listeners are told', async (t) => {
  const { inner, cache, settle } = await setup(t, { seed: async (s) => { await s.putTenant(smallTenant('acme', 'one')); } });
  const changes: [string, CachedTenant | undefined][] = [];
  const globals: number[] = [];
  cache.onChange((id, entry) => { changes.push([id, entry]); });
  cache.onGlobalChange((g) => { globals.push(g.version); });

  const v2 = await inner.putTenant(smallTenant('acme', 'two'));
  await settle();
  t.equal(cache.get('acme')?.version, v2);
  t.equal(cache.get('acme')?.doc.name, 'two');
  t.equal(changes.length, 1);
  t.equal(changes[0]?.[1], cache.get('acme'), 'the listener gets the entry now in the cache');

  const vNew = await inner.putTenant(smallTenant('newco'));
  await settle();
  t.equal(cache.get('newco')?.version, vNew, 'a new tenant is added');
  const gv = await inner.putGlobal(exampleGlobal());
  await settle();
  t.equal(cache.global().version, gv);
  t.strictSame(globals, [gv], 'global changes go to onGlobalChange');
  t.strictSame(changes.map(([id]) => id), ['acme', 'newco'], 'and not to onChange');
});

t.test('an announcement not newer than the cached version is ignored', async (t) => {
  const { inner, store, cache, settle } = await setup(t, { seed: async (s) => { await s.putTenant(smallTenant('acme')); } });
  const v = cache.get('acme')?.version ?? 0;
  const calls = store.getTenantCalls.length;
  store.announce({ kind: 'tenant', tenant: 'acme', version: v });
  store.announce({ kind: 'tenant', tenant: 'acme', version: v - 1 });
  store.announce({ kind: 'tenant', tenant: 'acme', version: v - 1, deleted: true });
  store.announce({ kind: 'tenant', tenant: 'ghost', version: v + 5, deleted: true });
  store.announce({ kind: 'global', version: 0 });
  await settle();
  t.equal(store.getTenantCalls.length, calls, 'no reload for the same, older or irrelevant versions');

  store.muted = true;
  const v2 = await inner.putTenant(smallTenant('acme', 'newer'));
  store.announce({ kind: 'tenant', tenant: 'acme', version: v2 });
  await settle();
  t.equal(store.getTenantCalls.length, calls + 1, 'a newer version is reloaded');
  t.equal(cache.get('acme')?.version, v2);
});

t.test('a document that does not compile keeps the previous rules and is logged once per version', async (t) => {
  const { inner, store, cache, log, settle, poll } = await setup(t, { seed: async (s) => { await s.putTenant(smallTenant('acme', 'good')); } });
  const good = cache.get('acme');
  const changes: string[] = [];
  cache.onChange((id) => { changes.push(id); });

  const bad = await inner.putTenant(brokenTenant('acme'));
  await settle();
  t.equal(cache.get('acme'), good, 'the previous rules stay in force');
  t.equal(log.at('error').length, 1);
  t.match(log.at('error')[0], { obj: { tenant: 'acme', version: bad, keptVersion: good?.version, err: { code: 'DP_ROUTE_INVALID_TENANT' } }, msg: /keep the previous rules/ });

  const calls = store.getTenantCalls.length;
  for (let i = 0; i < 5; i++) await poll();
  store.announce({ kind: 'tenant', tenant: 'acme', version: bad });
  await settle();
  t.equal(store.getTenantCalls.length, calls, 'the rejected version is not reloaded by polls or announcements');
  t.equal(log.at('error').length, 1, 'nor logged again');
  t.strictSame(changes, [], 'listeners heard nothing');

  const fixed = await inner.putTenant(smallTenant('acme', 'fixed'));
  await settle();
  t.equal(cache.get('acme')?.version, fixed, 'a later good version replaces the rules');
  const badAgain = await inner.putTenant(brokenTenant('acme'));
  await settle();
  t.equal(log.at('error').length, 2, 'another bad version is logged again');
  t.match(log.at('error')[1], { obj: { version: badAgain, keptVersion: fixed } });
  t.equal(cache.get('acme')?.version, fixed);
});

t.test('a new tenant whose document does not compile has no rules, logged once', async (t) => {
  const { inner, cache, log, settle, poll } = await setup(t);
  const v = await inner.putTenant(brokenTenant('broken'));
  await settle();
  await poll();
  t.equal(cache.get('broken'), undefined);
  t.match(log.at('error'), [{ obj: { tenant: 'broken', version: v, keptVersion: undefined }, msg: /has no rules/ }]);
});

t.test('a document the store cannot decode is a rejected version, not an outage', async (t) => {
  const { inner, store, cache, log, settle, poll } = await setup(t, { seed: async (s) => { await s.putTenant(smallTenant('acme')); } });
  const before = cache.get('acme');
  store.muted = true;
  const v2 = await inner.putTenant(smallTenant('acme', 'unreadable'));
  store.corrupt.set('acme', v2);
  await poll();
  await poll();
  await settle();
  t.equal(cache.get('acme'), before);
  t.match(log.at('error'), [{ obj: { tenant: 'acme', version: v2, err: { code: 'DP_STORE_CORRUPT_DOCUMENT' } } }]);
  t.strictSame(log.at('warn'), [], 'no outage reported');
});

t.test('a document filed under another tenant\'s id is rejected', async (t) => {
  const { inner, store, cache, log, poll } = await setup(t);
  store.muted = true;
  await inner.putTenant(smallTenant('real'));
  const realGet = store.getTenant.bind(store);
  store.getTenant = async (id) => {
    const got = await realGet(id);
    return got === undefined ? undefined : { ...got, doc: { ...got.doc, id: 'someone-else' } };
  };
  await poll();
  t.equal(cache.get('real'), undefined);
  t.match(log.at('error'), [{ obj: { tenant: 'real', err: { message: /someone-else/ } } }]);
});

t.test('a deleted tenant is removed and listeners are told', async (t) => {
  const { inner, cache, log, settle } = await setup(t, {
    seed: async (s) => { await s.putTenant(smallTenant('gone')); await s.putTenant(smallTenant('stays')); },
  });
  const changes: [string, CachedTenant | undefined][] = [];
  cache.onChange((id, entry) => { changes.push([id, entry]); });
  await inner.deleteTenant('gone');
  await settle();
  t.equal(cache.get('gone'), undefined);
  t.ok(cache.get('stays'));
  t.strictSame(changes, [['gone', undefined]]);
  t.match(log.at('info'), [{ msg: 'tenant rules loaded' }, { obj: { tenant: 'gone' }, msg: 'tenant removed' }]);
});

t.test('missed announcements are healed by the next version check', async (t) => {
  const { inner, store, cache, settle, poll } = await setup(t, {
    seed: async (s) => { await s.putTenant(smallTenant('changed')); await s.putTenant(smallTenant('deleted')); },
  });
  store.muted = true;
  const vChanged = await inner.putTenant(smallTenant('changed', 'v2'));
  await inner.deleteTenant('deleted');
  const vAdded = await inner.putTenant(smallTenant('added'));
  const vGlobal = await inner.putGlobal(exampleGlobal());
  await settle();
  t.not(cache.get('changed')?.version, vChanged, 'nothing announced, nothing changed yet');
  t.ok(cache.get('deleted'));

  await poll();
  t.equal(cache.get('changed')?.version, vChanged, 'changed tenant reloaded');
  t.equal(cache.get('deleted'), undefined, 'deleted tenant removed');
  t.equal(cache.get('added')?.version, vAdded, 'new tenant added');
  t.equal(cache.global().version, vGlobal, 'global document reloaded');

  const calls = store.getTenantCalls.length;
  await poll();
  t.equal(store.getTenantCalls.length, calls, 'a check that finds nothing different reads no document');
});

t.test('an unreachable store: calls keep the cached rules, one warning, one info, then a resync', async (t) => {
  const { inner, store, cache, log, settle, poll } = await setup(t, {
    seed: async (s) => { await s.putTenant(smallTenant('acme', 'before')); await s.putTenant(smallTenant('doomed')); },
  });
  const before = cache.get('acme');
  store.failing = true;
  for (let i = 0; i < 10; i++) await poll();
  store.announce({ kind: 'tenant', tenant: 'acme', version: (before?.version ?? 0) + 100 });
  await settle();
  t.equal(cache.get('acme'), before, 'calls still get the cached rules');
  t.equal(log.at('warn').length, 1, 'exactly one warning for the whole outage');
  t.match(log.at('warn')[0], { obj: { err: /ECONNREFUSED/ }, msg: /unreachable/ });
  t.equal(log.at('info').filter((l) => /reachable again/.test(l.msg ?? '')).length, 0);

  // Changes made while this node could not see them.
  store.muted = true;
  const v2 = await inner.putTenant(smallTenant('acme', 'during the outage'));
  await inner.deleteTenant('doomed');
  store.failing = false;
  await poll();
  t.equal(log.at('warn').length, 1);
  t.match(log.at('info').filter((l) => /reachable again/.test(l.msg ?? '')), [{ obj: { downForMs: Number } }], 'exactly one recovery info');
  t.equal(cache.get('acme')?.version, v2, 'the resync picked up the change');
  t.equal(cache.get('doomed'), undefined, 'and the deletion');
  for (let i = 0; i < 3; i++) await poll();
  t.equal(log.at('warn').length + log.at('info').filter((l) => /reachable again/.test(l.msg ?? '')).length, 2, 'nothing more logged');

  store.failing = true;
  await poll();
  t.equal(log.at('warn').length, 2, 'a second outage is a second warning');
});

t.test('overlapping loads of one tenant: the one started last wins, whatever order they finish in', async (t) => {
  const { inner, store, cache, settle } = await setup(t, { seed: async (s) => { await s.putTenant(smallTenant('acme', 'v1')); } });
  store.holdReads = true;
  const v2 = await inner.putTenant(smallTenant('acme', 'v2'));
  await new Promise((resolve) => setImmediate(resolve));
  const v3 = await inner.putTenant(smallTenant('acme', 'v3'));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(store.held.length, 2, 'two loads in flight (read v2, then v3)');
  store.held[1]?.release();
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(cache.get('acme')?.version, v3);
  store.held[0]?.release();
  await settle();
  t.equal(cache.get('acme')?.version, v3, 'the slower, older read does not overwrite the newer one');
  t.ok(v2 < v3);
});

t.test('a throwing change listener is logged and harms neither the cache nor other listeners', async (t) => {
  const { inner, cache, log, settle } = await setup(t);
  const heard: string[] = [];
  cache.onChange(() => { throw new Error('index bug'); });
  cache.onChange((id) => { heard.push(id); });
  cache.onGlobalChange(() => { throw new Error('global index bug'); });
  await inner.putTenant(smallTenant('acme'));
  await inner.putGlobal({});
  await settle();
  t.ok(cache.get('acme'));
  t.strictSame(heard, ['acme']);
  t.match(log.at('error'), [{ obj: { tenant: 'acme', err: { message: 'index bug' } } }, { obj: { err: { message: 'global index bug' } } }]);
});

t.test('a listener can unsubscribe', async (t) => {
  const { inner, cache, settle } = await setup(t);
  const heard: string[] = [];
  const off = cache.onChange((id) => { heard.push(id); });
  await inner.putTenant(smallTenant('first'));
  await settle();
  off();
  await inner.putTenant(smallTenant('second'));
  await settle();
  t.strictSame(heard, ['first']);
});

t.test('a global document that does not compile keeps the previous global rules', async (t) => {
  const { inner, cache, log, settle, poll } = await setup(t, { seed: async (s) => { await s.putGlobal(exampleGlobal()); } });
  const before = cache.global();
  const bad = await inner.putGlobal({ blacklist: { numbers: 'all' } } as unknown as GlobalDocument);
  await settle();
  await poll();
  t.equal(cache.global(), before);
  t.match(log.at('error'), [{ obj: { version: bad, keptVersion: before.version }, msg: /global document rejected/ }]);
});

t.test('a custom compile function is used', async (t) => {
  const compiled: string[] = [];
  const inner = await EmbeddedTenantStore.open();
  t.teardown(() => inner.close());
  await inner.putTenant(smallTenant('acme'));
  const cache = new TenantCache({
    store: inner,
    log: recordingLogger(),
    compile: (doc) => { compiled.push(doc.id); return compileTenant(doc); },
    scheduleInterval: manualScheduler(),
  });
  await cache.start();
  t.teardown(() => cache.stop());
  t.strictSame(compiled, ['acme']);
});

t.test('stop unsubscribes and stops the version check; the last rules stay readable', async (t) => {
  const { inner, store, cache, scheduler, settle } = await setup(t, { seed: async (s) => { await s.putTenant(smallTenant('acme')); } });
  const entry = cache.get('acme');
  await cache.stop();
  t.equal(scheduler.stopped, 1);
  t.equal(store.watchers, 0);
  await inner.putTenant(smallTenant('acme', 'after stop'));
  await settle();
  await cache.verify();
  t.equal(cache.get('acme'), entry);
});

t.test('rejects nonsensical options', async (t) => {
  const store = await EmbeddedTenantStore.open();
  t.throws(() => new TenantCache({ store, log: recordingLogger(), verifyIntervalMs: 0 }), RangeError);
  t.throws(() => new TenantCache({ store, log: recordingLogger(), loadConcurrency: 0 }), RangeError);
});
