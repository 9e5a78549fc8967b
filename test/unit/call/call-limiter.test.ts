/** Concurrent calls per tenant: slots from fork to final failure or BYE, with a safety release. */
import t from 'tap';
import { CallLimiter } from '../../../src/call/call-limiter.js';
import { ManualClock } from '../../helpers/manual-clock.js';

t.test('a tenant at its limit is refused; a failed call frees its slot at the final response', async (t) => {
  const l = new CallLimiter({ clock: new ManualClock() });
  t.ok(l.acquire('a', 'c1', 2));
  t.ok(l.acquire('a', 'c2', 2));
  t.notOk(l.acquire('a', 'c3', 2), 'third call over the limit');
  t.ok(l.acquire('b', 'c4', 2), 'another tenant is not affected');
  l.final('c1', 486);
  t.equal(l.count('a'), 1);
  t.ok(l.acquire('a', 'c3', 2));
});

t.test('an answered call holds its slot until its BYE; a BYE for an unanswered or unknown call changes nothing', async (t) => {
  const l = new CallLimiter({ clock: new ManualClock() });
  l.acquire('a', 'c1', 1);
  l.bye('c1');
  t.equal(l.count('a'), 1, 'BYE before the answer (impossible in-dialog) is ignored');
  l.final('c1', 200);
  l.final('c1', 200);
  t.equal(l.count('a'), 1);
  l.final('c1', 487);
  t.equal(l.count('a'), 1, 'a late failure after the answer does not free it');
  l.bye('c1');
  t.equal(l.count('a'), 0);
  l.bye('c1');
  l.bye('nope');
  t.equal(l.count('a'), 0);
});

t.test('an answered call whose BYE never passes through us gives its slot back after maxCallMs', async (t) => {
  const clock = new ManualClock();
  const l = new CallLimiter({ clock, maxCallMs: 60_000 });
  l.acquire('a', 'c1', 1);
  l.final('c1', 200);
  clock.advance(59_999);
  t.equal(l.count('a'), 1);
  clock.advance(1);
  t.equal(l.count('a'), 0);
  t.equal(clock.pending, 0);
});

t.test('no limit: counted, never refused; the same Call-ID routed twice (a spiral) holds one slot', async (t) => {
  const l = new CallLimiter({ clock: new ManualClock() });
  for (let i = 0; i < 50; i++) t.ok(l.acquire('a', `c${i}`, undefined));
  t.ok(l.acquire('a', 'c1', 1), 'the same call again');
  t.equal(l.count('a'), 50);
});
