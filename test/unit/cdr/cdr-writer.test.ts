/**
 * The CDR writer: records reach the store off the call path; a full queue
 * drops and counts; an outage is logged once, retried on the clock, and
 * healed in order.
 */
import t from 'tap';
import { CallTracker, type CallRecord } from '../../../src/call/call-tracker.js';
import { CdrWriter } from '../../../src/cdr/cdr-writer.js';
import type { CdrPage, CdrQuery, CdrRecord, CdrStore } from '../../../src/store/cdr-store.js';
import { EmbeddedCdrStore } from '../../../src/store/embedded/cdr-store.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { RecordingLogger } from '../../helpers/recording-logger.js';

function rec(callId: string, tenant = 'acme'): CallRecord {
  return { callId, tenant, origin: { kind: 'trunk', trunk: 't' }, called: '4008123456', caller: '13800000000', startedAt: 1, attempts: [] };
}

/** Wraps a store: fails while `down`, holds appends while `hold`, counts trims. */
class FlakyStore implements CdrStore {
  down = false;
  held: Array<() => void> = [];
  hold = false;
  trims = 0;
  appended: string[] = [];
  constructor(readonly inner: CdrStore = new EmbeddedCdrStore()) {}
  async append(r: Readonly<CdrRecord>): Promise<void> {
    if (this.hold) await new Promise<void>((resolve) => this.held.push(resolve));
    if (this.down) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
    await this.inner.append(r);
    this.appended.push(r.callId);
  }
  query(q: CdrQuery): Promise<CdrPage> { return this.inner.query(q); }
  async trim(): Promise<void> { this.trims++; }
  close(): Promise<void> { return this.inner.close(); }
}

function setup(options: Partial<ConstructorParameters<typeof CdrWriter>[0]> = {}) {
  const clock = new ManualClock();
  const log = new RecordingLogger();
  const store = new FlakyStore(new EmbeddedCdrStore({ now: () => clock.now() }));
  const tracker = new CallTracker({ clock, log });
  const writer = new CdrWriter({ store, clock, log, ...options });
  writer.listen(tracker);
  return { clock, log, store, tracker, writer };
}

t.test('every ended call is appended; the listener returns before the store does', async (t) => {
  const { store, tracker, writer } = setup();
  store.hold = true;
  tracker.refused(rec('c1'), 403);
  tracker.start(rec('c2'), undefined);
  tracker.final('c2', 486);
  t.equal(store.appended.length, 0, 'nothing written yet: the tracker did not wait');
  t.equal(writer.stats().queued, 2);
  store.hold = false;
  for (const release of store.held.splice(0)) release();
  await writer.flush();
  t.strictSame(store.appended, ['c1', 'c2']);
  const { items } = await store.query({ tenant: 'acme', limit: 10 });
  t.strictSame(items.map((r) => [r.callId, r.disposition]), [['c2', 'busy'], ['c1', 'rejected']]);
  t.match(writer.stats(), { queued: 0, written: 2, dropped: 0 });
});

t.test('a full queue drops the newest records and counts them, logging once', async (t) => {
  const { store, writer, log } = setup({ maxQueue: 3, concurrency: 1 });
  store.hold = true;
  const accepted = ['a', 'b', 'c', 'd', 'e'].map((id) => writer.enqueue({ ...rec(id), endedAt: 5 }));
  t.strictSame(accepted, [true, true, true, false, false]);
  t.match(writer.stats(), { queued: 3, dropped: 2 });
  t.equal(log.at('warn').filter((e) => e.msg === 'CDR queue full: records dropped').length, 1, 'one warning, not one per record');
  store.hold = false;
  while (store.held.length > 0 || writer.size > 0) {
    for (const release of store.held.splice(0)) release();
    await new Promise((resolve) => setImmediate(resolve));
  }
  await writer.flush();
  t.strictSame(store.appended, ['a', 'b', 'c']);
});

t.test('an outage: logged once, retried after retryMs, written in order when the store is back', async (t) => {
  const { store, writer, log, clock } = setup({ retryMs: 1000, concurrency: 2 });
  store.down = true;
  for (const id of ['r1', 'r2', 'r3']) writer.enqueue({ ...rec(id), endedAt: 10 });
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(writer.stats().queued, 3, 'failed records stay queued');
  t.ok(writer.stats().storeErrors >= 1);
  clock.advance(1000);
  await new Promise((resolve) => setImmediate(resolve));
  clock.advance(1000);
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(log.at('warn').filter((e) => e.msg?.startsWith('CDR store unavailable')).length, 1, 'one warning for the outage');
  store.down = false;
  clock.advance(1000);
  await writer.flush();
  t.strictSame(store.appended, ['r1', 'r2', 'r3'], 'in order');
  t.equal(log.at('info').filter((e) => e.msg === 'CDR store writable again').length, 1, 'one notice of recovery');
});

t.test('a record the store refuses as malformed is counted and not retried', async (t) => {
  const { store, writer, log, clock } = setup();
  writer.enqueue(rec('no-end'));
  writer.enqueue({ ...rec('fine'), endedAt: 3 });
  await writer.flush();
  clock.advance(10_000);
  t.strictSame(store.appended, ['fine']);
  t.match(writer.stats(), { rejected: 1, written: 1, storeErrors: 0, queued: 0 });
  t.match(log.at('error')[0], { msg: 'CDR refused by the store; not retried', obj: { callId: 'no-end' } });
});

t.test('retention trim runs every trimEveryMs', async (t) => {
  const { store, clock, writer } = setup({ trimEveryMs: 60_000 });
  clock.advance(60_000);
  await new Promise((resolve) => setImmediate(resolve));
  clock.advance(60_000);
  t.equal(store.trims, 2);
  await writer.close();
  clock.advance(600_000);
  t.equal(store.trims, 2, 'none after close');
});

t.test('close drains what it can, then gives up on an outage and says how much was lost', async (t) => {
  const { store, writer, log, clock, tracker } = setup({ closeTimeoutMs: 500 });
  writer.enqueue({ ...rec('ok'), endedAt: 1 });
  await writer.flush();
  store.down = true;
  writer.enqueue({ ...rec('lost'), endedAt: 2 });
  await new Promise((resolve) => setImmediate(resolve));
  const closing = writer.close();
  clock.advance(500);
  await closing;
  t.match(log.at('warn').at(-1), { msg: 'CDR writer closed with records unwritten', obj: { lost: 1 } });
  tracker.refused(rec('after'), 403);
  t.equal(writer.enqueue({ ...rec('after2'), endedAt: 3 }), false, 'a closed writer takes nothing');
  t.strictSame(store.appended, ['ok']);
});

t.test('bad options throw at construction', async (t) => {
  const clock = new ManualClock();
  const log = new RecordingLogger();
  const store = new EmbeddedCdrStore();
  t.throws(() => new CdrWriter({ store, clock, log, maxQueue: 0 }), RangeError);
  t.throws(() => new CdrWriter({ store, clock, log, concurrency: 1.5 }), RangeError);
});
