import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { EmbeddedTenantStore, writeFileAtomic } from '../../../src/store/embedded/tenant-store.js';
import { exampleGlobal, exampleTenant, recordChanges, smallTenant, tenantContract, until } from './tenant-contract.js';

t.test('contract, memory only', async (t) => {
  tenantContract(t, async () => {
    const store = await EmbeddedTenantStore.open();
    return { store, cleanup: () => store.close() };
  });
});

t.test('contract, persisted to a file', async (t) => {
  const dir = t.testdir();
  let n = 0;
  tenantContract(t, async () => {
    n += 1;
    const store = await EmbeddedTenantStore.open({ file: join(dir, `store-${n}.json`) });
    return { store, cleanup: () => store.close() };
  });
});

t.test('everything survives a close and reopen: documents, versions, global, counters', async (t) => {
  const file = join(t.testdir(), 'tenants.json');
  const first = await EmbeddedTenantStore.open({ file });
  const hotline = exampleTenant('hotline-400');
  const vHotline = await first.putTenant(hotline);
  const vGone = await first.putTenant(smallTenant('gone'));
  await first.deleteTenant('gone');
  const vGlobal = await first.putGlobal(exampleGlobal());
  for (let i = 0; i < 5; i++) await first.incrCounter('rr:acme-hotline:group:sales');
  await first.close();

  const second = await EmbeddedTenantStore.open({ file });
  t.teardown(() => second.close());
  t.strictSame(await second.getTenant(hotline.id), { version: vHotline, doc: hotline });
  t.equal(await second.getTenant('gone'), undefined, 'a deleted tenant stays deleted');
  t.strictSame(await second.getGlobal(), { version: vGlobal, doc: exampleGlobal() });
  t.equal(await second.incrCounter('rr:acme-hotline:group:sales'), 6, 'counters go on where they were');
  const recreated = await second.putTenant(smallTenant('gone'), { ifVersion: 0 });
  t.ok(recreated > vGlobal && recreated > vGone, 'versions are never reused across a restart');
  await t.rejects(second.putTenant(hotline, { ifVersion: vHotline - 1 }), { code: 'DP_STORE_CONFLICT' }, 'conditional writes use the persisted versions');
});

t.test('the file is written when the store opens and is readable JSON with one tenant per line', async (t) => {
  const file = join(t.testdir(), 'fresh.json');
  const store = await EmbeddedTenantStore.open({ file });
  t.teardown(() => store.close());
  t.match(JSON.parse(await readFile(file, 'utf8')), { format: 'dialplane-tenant-store', formatVersion: 1, tenants: {}, global: null });
  t.equal((await stat(file)).mode & 0o777, 0o600, 'mode 0600: tenant documents carry digest hashes');
  await store.putTenant(smallTenant('b'));
  await store.putTenant(smallTenant('a'));
  const lines = (await readFile(file, 'utf8')).split('\n');
  t.match(lines.filter((l) => l.startsWith('  "')), [/^ {2}"a":\{"version":\d+,"doc":\{"id":"a"/, /^ {2}"b":/], 'sorted by id, one per line');
});

t.test('a crash mid-write leaves the old file; its temp file is ignored and removed at the next open', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'tenants.json');
  const first = await EmbeddedTenantStore.open({ file });
  const v1 = await first.putTenant(smallTenant('acme', 'committed'));
  await first.close();
  const committed = await readFile(file);

  // What a process killed between writing the temp file and the rename
  // leaves behind: a partial newer state next to the intact old file.
  const leftover = join(dir, `tenants.json.tmp-12345-abcdef`);
  await writeFile(leftover, committed.subarray(0, Math.floor(committed.length / 2)));
  const unrelated = join(dir, 'other.json.tmp-1-2');
  await writeFile(unrelated, 'not ours');

  const second = await EmbeddedTenantStore.open({ file });
  t.teardown(() => second.close());
  t.strictSame(await second.getTenant('acme'), { version: v1, doc: smallTenant('acme', 'committed') }, 'the committed state is loaded');
  t.strictSame((await readdir(dir)).sort(), ['other.json.tmp-1-2', 'tenants.json'], 'the leftover temp file is removed, other files are not');
  await second.putTenant(smallTenant('acme', 'next'));
  t.strictSame((await readdir(dir)).sort(), ['other.json.tmp-1-2', 'tenants.json'], 'a write leaves no temp file behind');
});

t.test('a file that cannot be read or parsed stops start-up with an error naming it, and is left untouched', async (t) => {
  const dir = t.testdir();
  const valid = '{"format":"dialplane-tenant-store","formatVersion":1,"lastVersion":3,"global":null,"tenants":{"a":{"version":3,"doc":{"id":"a"}}},"counters":{}}';
  const cases: [string, string | Buffer][] = [
    ['empty file', ''],
    ['truncated JSON', valid.slice(0, 60)],
    ['not JSON at all', 'tenants:\n  - a\n'],
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d])],
    ['another program\'s JSON', '{"tenants":{}}'],
    ['a newer format version', valid.replace('"formatVersion":1', '"formatVersion":2')],
    ['a document filed under another id', valid.replace('{"id":"a"}', '{"id":"b"}')],
    ['a version that is not a positive integer', valid.replace('"version":3', '"version":0')],
    ['a negative counter', valid.replace('"counters":{}', '"counters":{"rr:a:x":-1}')],
    ['a JSON array', '[]'],
  ];
  for (const [name, content] of cases) {
    const file = join(dir, `${name.replace(/\W+/g, '-')}.json`);
    await writeFile(file, content);
    const before = await readFile(file);
    const err: unknown = await EmbeddedTenantStore.open({ file }).then(() => undefined, (e: unknown) => e);
    t.match(err, { code: 'DP_STORE_BAD_FILE', message: /corrupt/ }, `${name}: DP_STORE_BAD_FILE`);
    t.ok(err instanceof Error && err.message.includes(file), `${name}: the message names the file`);
    t.ok((await readFile(file)).equals(before), `${name}: the file is unchanged`);
  }

  const directory = join(dir, 'is-a-directory.json');
  await mkdir(directory);
  await t.rejects(EmbeddedTenantStore.open({ file: directory }), { code: 'DP_STORE_BAD_FILE', message: new RegExp(`cannot read .*is-a-directory\\.json`) },
    'an unreadable path');
  await t.rejects(EmbeddedTenantStore.open({ file: join(dir, 'missing-dir', 'tenants.json') }), { code: 'DP_STORE_BAD_FILE', message: /cannot create .*missing-dir/ },
    'a file that cannot be created fails at open, not at the first write');

  const ok = join(dir, 'valid.json');
  await writeFile(ok, valid);
  const store = await EmbeddedTenantStore.open({ file: ok });
  t.teardown(() => store.close());
  t.strictSame(await store.getTenant('a'), { version: 3, doc: { id: 'a' } }, 'the same content, well-formed, loads');
  t.ok((await store.putTenant(smallTenant('b'))) > 3, 'and versions continue after lastVersion');
});

t.test('concurrent writes are serialised: one file write at a time, each conditional write sees the one before', async (t) => {
  const file = join(t.testdir(), 'tenants.json');
  let active = 0;
  let maxActive = 0;
  let writes = 0;
  const store = await EmbeddedTenantStore.open({
    file,
    writeFile: async (path, text) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      try {
        // Yield a few times mid-write so an unserialised store would overlap.
        for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
        await writeFileAtomic(path, text);
        writes += 1;
      } finally {
        active -= 1;
      }
    },
  });
  t.teardown(() => store.close());
  writes = 0;

  const ids = Array.from({ length: 30 }, (_, i) => `tenant-${i}`);
  const versions = await Promise.all([
    ...ids.map((id) => store.putTenant(smallTenant(id))),
    store.putGlobal(exampleGlobal()),
  ]);
  t.equal(maxActive, 1, 'never two file writes at once');
  t.equal(writes, 31, 'one durable write per committed change');
  t.equal(new Set(versions).size, 31, 'every write got its own version');

  const base = await store.putTenant(smallTenant('race'));
  const raced = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => store.putTenant(smallTenant('race', `w${i}`), { ifVersion: base })));
  t.equal(raced.filter((r) => r.status === 'fulfilled').length, 1, 'queued conditional writes see each other');

  const reopened = await EmbeddedTenantStore.open({ file });
  t.teardown(() => reopened.close());
  t.strictSame(await reopened.tenantVersions(), await store.tenantVersions(), 'the file holds every write');
});

t.test('a failed file write rejects and changes nothing; the next write works', async (t) => {
  const file = join(t.testdir(), 'tenants.json');
  let failNext = false;
  const store = await EmbeddedTenantStore.open({
    file,
    writeFile: async (path, text) => {
      if (failNext) {
        failNext = false;
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      }
      await writeFileAtomic(path, text);
    },
  });
  t.teardown(() => store.close());
  const rec = recordChanges(store);
  t.teardown(rec.stop);
  const v1 = await store.putTenant(smallTenant('acme', 'one'));
  failNext = true;
  await t.rejects(store.putTenant(smallTenant('acme', 'two'), { ifVersion: v1 }), { code: 'ENOSPC' });
  t.strictSame(await store.getTenant('acme'), { version: v1, doc: smallTenant('acme', 'one') }, 'readers still see the old document');
  const v2 = await store.putTenant(smallTenant('acme', 'three'), { ifVersion: v1 });
  t.ok(v2 > v1, 'the version the failed write expected still holds');
  await until(() => rec.changes.length === 2, 'two announcements');
  t.strictSame(rec.changes.map((c) => c.version), [v1, v2], 'the failed write was not announced');
  const reopened = await EmbeddedTenantStore.open({ file });
  t.teardown(() => reopened.close());
  t.strictSame(await reopened.getTenant('acme'), { version: v2, doc: smallTenant('acme', 'three') });
});

t.test('counters are written lazily: after the flush delay, with any document write, and on close', async (t) => {
  const file = join(t.testdir(), 'tenants.json');
  let writes = 0;
  const store = await EmbeddedTenantStore.open({
    file,
    counterFlushMs: 20,
    writeFile: async (path, text) => { await writeFileAtomic(path, text); writes += 1; },
  });
  const counterOnDisk = async (): Promise<unknown> => (JSON.parse(await readFile(file, 'utf8')) as { counters: Record<string, number> }).counters['rr:a:g'];
  writes = 0;
  for (let i = 0; i < 100; i++) await store.incrCounter('rr:a:g');
  t.equal(writes, 0, 'increments alone do not write at once');
  await until(() => writes === 1, 'the debounced flush');
  t.equal(await counterOnDisk(), 100, 'one write carries all 100 increments');

  await store.incrCounter('rr:a:g');
  await store.putTenant(smallTenant('a'));
  t.equal(await counterOnDisk(), 101, 'a document write includes pending increments');
  await store.incrCounter('rr:a:g');
  await store.close();
  t.equal(await counterOnDisk(), 102, 'close writes what is pending');
  await t.rejects(store.incrCounter('rr:a:g'), { code: 'DP_STORE_CLOSED' }, 'a closed store refuses writes');
  await t.rejects(store.putTenant(smallTenant('a')), { code: 'DP_STORE_CLOSED' });
});

t.test('listeners are called outside the writer\'s stack, and a throwing listener harms nobody', async (t) => {
  const errors: unknown[] = [];
  const store = await EmbeddedTenantStore.open({ onListenerError: (err) => { errors.push(err); } });
  t.teardown(() => store.close());
  let inWriterStack = true;
  const heard: number[] = [];
  store.watch(() => { throw new Error('listener bug'); });
  store.watch((change) => {
    t.equal(inWriterStack, false, 'not called synchronously inside putTenant');
    heard.push(change.version);
  });
  const writing = store.putTenant(smallTenant('acme'));
  inWriterStack = false;
  const version = await writing;
  await until(() => heard.length === 1, 'the second listener');
  t.strictSame(heard, [version], 'the other listener still heard the write');
  t.match(errors, [{ message: 'listener bug' }], 'the exception went to onListenerError');
});

t.test('rejects a negative counter flush delay', async (t) => {
  await t.rejects(EmbeddedTenantStore.open({ counterFlushMs: -1 }), RangeError);
});
