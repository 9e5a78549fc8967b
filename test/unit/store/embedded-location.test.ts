import t from 'tap';
import { EmbeddedLocationStore, type IntervalScheduler } from '../../../src/store/embedded/location-store.js';
import type { Binding } from '../../../src/sip/registrar/location-service.js';
import { locationContract } from './location-contract.js';

t.test('contract', async (t) => {
  locationContract(t, async () => {
    const store = new EmbeddedLocationStore({ sweepIntervalMs: 0 });
    return { store, cleanup: async () => store.close() };
  });
});

const T0 = 1_700_000_000_000;

function binding(aor: string, n: number, expiresAt: number): Binding {
  return {
    aor,
    contact: `sip:phone${n}@192.0.2.1:5060`,
    expiresAt,
    q: 1,
    callId: `c${n}`,
    cseq: 1,
    path: [],
    flow: { transport: 'udp', address: '192.0.2.1', port: 5060 },
    registeredAt: T0,
  };
}

/** A scheduler the test fires by hand, recording what was scheduled and stopped. */
function manualScheduler(): IntervalScheduler & { fire(): void; intervals: number[]; stopped: number } {
  const jobs: (() => void)[] = [];
  const scheduler = Object.assign(
    (job: () => void, intervalMs: number) => {
      jobs.push(job);
      scheduler.intervals.push(intervalMs);
      return () => { scheduler.stopped += 1; };
    },
    {
      intervals: [] as number[],
      stopped: 0,
      fire: () => { for (const job of jobs) job(); },
    },
  );
  return scheduler;
}

t.test('the background sweep forgets AORs nobody reads again (no leak)', async (t) => {
  let now = T0;
  const scheduler = manualScheduler();
  const store = new EmbeddedLocationStore({ clock: () => now, sweepIntervalMs: 30_000, scheduleInterval: scheduler });
  t.strictSame(scheduler.intervals, [30_000], 'one sweep job at the configured interval');

  let written = 0;
  for (let i = 0; i < 10_000; i++) {
    const aor = `sip:user${i}@example.com`;
    if (await store.put(aor, 0, [binding(aor, i, T0 + 60_000 + (i % 2) * 60_000)])) written += 1;
  }
  t.equal(written, 10_000);
  t.equal(store.size, 10_000);

  now = T0 + 60_000;
  scheduler.fire();
  t.equal(store.size, 5_000, 'AORs whose bindings all expired at the sweep are gone');
  now = T0 + 120_000;
  scheduler.fire();
  t.equal(store.size, 0, 'every AOR forgotten once all bindings expired');

  store.close();
  t.equal(scheduler.stopped, 1, 'close stops the sweep');
});

t.test('reads forget fully expired AORs even without the timer', async (t) => {
  const store = new EmbeddedLocationStore({ sweepIntervalMs: 0 });
  await store.put('sip:a@example.com', 0, [binding('sip:a@example.com', 1, T0 + 10)]);
  await store.put('sip:b@example.com', 0, [binding('sip:b@example.com', 2, T0 + 10)]);
  await store.put('sip:c@example.com', 0, [binding('sip:c@example.com', 3, T0 + 20)]);
  t.equal(store.size, 3);
  t.strictSame(await store.get('sip:a@example.com', T0 + 10), { version: 0, bindings: [] });
  t.equal(store.size, 2, 'get dropped the expired AOR');
  t.strictSame(await store.list(T0 + 10), ['sip:c@example.com']);
  t.equal(store.size, 1, 'list dropped the other expired AOR');
  t.equal(store.sweep(T0 + 20), 1, 'sweep reports how many it forgot');
  t.equal(store.size, 0);
});

t.test('get drops expired bindings from storage but keeps the version', async (t) => {
  const store = new EmbeddedLocationStore({ sweepIntervalMs: 0 });
  const aor = 'sip:a@example.com';
  const keep = binding(aor, 2, T0 + 20);
  await store.put(aor, 0, [binding(aor, 1, T0 + 10), keep]);
  const before = await store.get(aor, T0);
  const after = await store.get(aor, T0 + 10);
  t.equal(after.version, before.version, 'dropping expired bindings is not a new version');
  t.strictSame(after.bindings, [keep]);
  t.strictSame((await store.get(aor, T0)).bindings, [keep], 'the expired binding is gone for good');
  t.equal(await store.put(aor, before.version, []), true, 'a CAS from the earlier read still holds');
});

t.test('rejects a negative sweep interval', async (t) => {
  t.throws(() => new EmbeddedLocationStore({ sweepIntervalMs: -1 }), RangeError);
});
