/** Metrics: each series from its source, bounded labels, one registry per instance. */
import t from 'tap';
import { CallTracker, type CallRecord } from '../../../src/call/call-tracker.js';
import { DialplaneMetrics } from '../../../src/metrics/metrics.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { RecordingLogger } from '../../helpers/recording-logger.js';

function rec(callId: string): CallRecord {
  return { callId, tenant: 'acme', origin: { kind: 'trunk', trunk: 't' }, called: '4008123456', startedAt: 0, attempts: [] };
}

/** The value of one series in the text format; undefined when absent. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

t.test('calls by disposition and active calls follow the tracker', async (t) => {
  const m = new DialplaneMetrics({ processMetrics: false });
  t.teardown(() => m.close());
  const tracker = new CallTracker({ clock: new ManualClock(), log: new RecordingLogger() });
  m.trackCalls(tracker);
  tracker.start(rec('a'), undefined);
  tracker.start(rec('b'), undefined);
  tracker.start(rec('c'), undefined);
  tracker.final('a', 486);
  tracker.final('b', 200);
  tracker.refused(rec('d'), 403);
  const text = await m.render();
  t.equal(value(text, 'dialplane_active_calls'), 2, 'b (answered) and c (ringing)');
  t.equal(value(text, 'dialplane_calls_total{disposition="busy"}'), 1);
  t.equal(value(text, 'dialplane_calls_total{disposition="rejected"}'), 1);
  t.equal(value(text, 'dialplane_calls_total{disposition="answered"}'), undefined, 'an answered call counts when it ends');
  tracker.bye('b');
  t.equal(value(await m.render(), 'dialplane_calls_total{disposition="answered"}'), 1);
});

t.test('SIP messages: methods and statuses, anything else under a bounded label', async (t) => {
  const m = new DialplaneMetrics({ processMetrics: false });
  const inputs: Array<string | number> = ['INVITE', 'invite', 'BYE', 'FOO', '', 200, 180, 99, 700, 200.5, Number.NaN];
  for (const i of inputs) m.countSipMessage(i);
  m.countSipMessage(486, 'out');
  m.countSipMessage(undefined as unknown as string);
  const text = await m.render();
  const cases: Array<[string, number]> = [
    ['dialplane_sip_messages_total{kind="request",value="INVITE",direction="in"}', 2],
    ['dialplane_sip_messages_total{kind="request",value="BYE",direction="in"}', 1],
    ['dialplane_sip_messages_total{kind="request",value="other",direction="in"}', 3],
    ['dialplane_sip_messages_total{kind="response",value="200",direction="in"}', 1],
    ['dialplane_sip_messages_total{kind="response",value="180",direction="in"}', 1],
    ['dialplane_sip_messages_total{kind="response",value="invalid",direction="in"}', 4],
    ['dialplane_sip_messages_total{kind="response",value="486",direction="out"}', 1],
  ];
  for (const [series, expected] of cases) t.equal(value(text, series), expected, series);
});

t.test('hooks: routing histogram, Redis errors, registrations and queue sources', async (t) => {
  const m = new DialplaneMetrics({ processMetrics: false });
  m.observeRouting(0.00003);
  m.observeRouting(0.002);
  m.observeRouting(-1);
  m.observeRouting(Number.NaN);
  m.countRedisError();
  m.countRedisError();
  let text = await m.render();
  t.equal(value(text, 'dialplane_routing_evaluation_seconds_count'), 2, 'bad durations are ignored');
  t.equal(value(text, 'dialplane_routing_evaluation_seconds_bucket{le="0.00005"}'), 1);
  t.equal(value(text, 'dialplane_redis_errors_total'), 2);
  t.equal(value(text, 'dialplane_registrations'), 0, 'no source yet: 0');
  m.setRegistrationsSource(async () => 42);
  m.setQueueSources({ cdr: () => ({ queued: 3, dropped: 1 }), webhooks: () => ({ queued: 7, dropped: 0 }) });
  text = await m.render();
  t.equal(value(text, 'dialplane_registrations'), 42);
  t.equal(value(text, 'dialplane_queue_length{queue="cdr"}'), 3);
  t.equal(value(text, 'dialplane_queue_length{queue="webhook"}'), 7);
  t.equal(value(text, 'dialplane_queue_dropped{queue="cdr"}'), 1);
  t.match(m.contentType, /^text\/plain/);
});

t.test('two instances keep separate counts; process metrics are on by default', async (t) => {
  const a = new DialplaneMetrics();
  const b = new DialplaneMetrics({ processMetrics: false });
  a.countRedisError();
  t.equal(value(await b.render(), 'dialplane_redis_errors_total'), 0);
  t.match(await a.render(), /dialplane_process_cpu_seconds_total/);
  a.close();
  b.close();
});
