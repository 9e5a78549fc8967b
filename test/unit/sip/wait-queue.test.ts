// WaitQueue: the wait-state timers (D, I, J, K, L, M) of every transaction
// of one duration, with one clock timer for the head.
import t from 'tap';

import { WaitQueue, type Waiter } from '../../../src/sip/transaction/wait-queue.js';
import { ManualClock } from '../../helpers/manual-clock.js';

function recorder(): { fired: string[]; waiter: (name: string) => Waiter } {
  const fired: string[] = [];
  return { fired, waiter: (name) => ({ waitExpired: () => { fired.push(name); } }) };
}

t.test('each waiter expires exactly its duration after it was added, in order, with one timer armed', async (t) => {
  const clock = new ManualClock();
  const q = new WaitQueue(clock, 32_000);
  const r = recorder();
  q.add(r.waiter('a'));
  clock.advance(10);
  q.add(r.waiter('b'));
  q.add(r.waiter('c'));
  t.equal(clock.pending, 1, 'one clock timer however many wait');
  t.equal(q.size, 3);
  clock.advance(32_000 - 10 - 1);
  t.same(r.fired, [], 'not a millisecond early');
  clock.advance(1);
  t.same(r.fired, ['a']);
  t.equal(clock.pending, 1, 're-armed for the next head');
  clock.advance(9);
  t.same(r.fired, ['a']);
  clock.advance(1);
  t.same(r.fired, ['a', 'b', 'c'], 'entries due at the same time expire together');
  t.equal(clock.pending, 0, 'no timer left once empty');
  t.equal(q.size, 0);
});

t.test('a cancelled waiter never expires; cancelling the only one stops the timer', async (t) => {
  const clock = new ManualClock();
  const q = new WaitQueue(clock, 5000);
  const r = recorder();
  const a = q.add(r.waiter('a'));
  clock.advance(100);
  const b = q.add(r.waiter('b'));
  clock.advance(100);
  q.add(r.waiter('c'));
  q.cancel(b);
  q.cancel(b); // twice: harmless
  clock.advance(5000);
  t.same(r.fired, ['a', 'c']);
  const d = q.add(r.waiter('d'));
  t.equal(clock.pending, 1);
  q.cancel(d);
  t.equal(clock.pending, 0, 'nothing waits: no timer');
  t.equal(q.size, 0);
  q.cancel(a); // long expired: harmless
  clock.advance(10_000);
  t.same(r.fired, ['a', 'c']);
});

t.test('slots stay valid across compaction of a long queue', async (t) => {
  const clock = new ManualClock();
  const q = new WaitQueue(clock, 1000);
  const r = recorder();
  const slots: number[] = [];
  // 5000 waiters, one per millisecond: expiries interleave with additions,
  // so consumed slots are dropped while later ones are still queued.
  for (let i = 0; i < 5000; i++) {
    slots.push(q.add(r.waiter(String(i))));
    clock.advance(1);
  }
  // Waiter i is due at start + i + 1000, and the clock is at start + 5000.
  t.equal(r.fired.length, 4001);
  t.equal(r.fired[4000], '4000');
  for (let i = 4002; i < 5000; i += 2) q.cancel(slots[i] as number);
  clock.advance(1000);
  t.equal(r.fired.length, 4001 + 500);
  t.same(r.fired.slice(4001, 4004), ['4001', '4003', '4005'], 'the cancelled ones (even slots) were skipped');
  t.equal(clock.pending, 0);
});

t.test('a waiter added while others expire waits its full duration', async (t) => {
  const clock = new ManualClock();
  const q = new WaitQueue(clock, 1000);
  const fired: Array<[string, number]> = [];
  q.add({ waitExpired: () => {
    fired.push(['a', clock.now()]);
    q.add({ waitExpired: () => { fired.push(['b', clock.now()]); } });
  } });
  const start = clock.now();
  clock.advance(3000);
  t.same(fired, [['a', start + 1000], ['b', start + 2000]]);
});
