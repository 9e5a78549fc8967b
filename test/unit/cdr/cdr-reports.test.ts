/** 来电分析 reports as tables of records → expected rows. */
import t from 'tap';
import {
  answeredVsMissed, busiestTargets, callsByProvince, callsPerNumber, waitToAnswer,
} from '../../../src/cdr/cdr-reports.js';
import { isoLocal, zonedTime } from '../../../src/cdr/time-zone.js';
import type { CdrRecord } from '../../../src/store/cdr-store.js';

/** A call that started at `start` (UTC ISO), answered after `waitS` seconds unless `missed`. */
function call(start: string, o: { called?: string; province?: string; waitS?: number; disposition?: CdrRecord['disposition']; targets?: Array<[string, string]> } = {}): CdrRecord {
  const startedAt = Date.parse(start);
  const answered = o.disposition === undefined || o.disposition === 'answered';
  const rec: CdrRecord = {
    callId: `${start}-${o.called ?? ''}`, tenant: 'acme', origin: { kind: 'trunk', trunk: 'ct' },
    called: o.called ?? '4008123456', caller: '13800138000', startedAt, endedAt: startedAt + 60_000,
    attempts: (o.targets ?? []).map(([target, outcome]) => ({ target, kind: 'extension', startedAt, endedAt: startedAt + 1000, outcome, status: outcome === 'answered' ? 200 : 486 })),
    disposition: o.disposition ?? 'answered',
  };
  if (o.province !== undefined) rec.callerRegion = { province: o.province };
  if (answered) rec.answeredAt = startedAt + (o.waitS ?? 10) * 1000;
  return rec;
}

t.test('time zones: local wall clock and offset', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['2024-05-01T16:30:00Z', 'Asia/Shanghai', '2024-05-02T00:30:00+08:00'],
    ['2024-05-01T16:30:00Z', 'UTC', '2024-05-01T16:30:00+00:00'],
    ['2024-07-01T12:00:00Z', 'America/New_York', '2024-07-01T08:00:00-04:00'],
    ['2024-01-01T12:00:00Z', 'America/New_York', '2024-01-01T07:00:00-05:00'],
    ['2024-01-01T00:00:00Z', 'Asia/Kolkata', '2024-01-01T05:30:00+05:30'],
    ['2023-12-31T15:59:59.999Z', 'Asia/Shanghai', '2023-12-31T23:59:59+08:00'],
  ];
  for (const [utc, zone, expected] of cases) t.equal(isoLocal(Date.parse(utc), zone), expected, `${utc} in ${zone}`);
  t.equal(zonedTime(Date.parse('2024-05-01T16:00:00Z'), 'Asia/Shanghai').hour, 0, 'midnight is hour 0');
});

t.test('calls per number per hour and per day, in the tenant\'s time zone', async (t) => {
  const records = [
    call('2024-05-01T15:10:00Z'), // 23:10 Shanghai, May 1
    call('2024-05-01T15:50:00Z', { disposition: 'no-answer' }), // 23:50
    call('2024-05-01T16:05:00Z'), // 00:05 May 2
    call('2024-05-01T16:20:00Z', { called: '4008123457', disposition: 'busy' }),
  ];
  const cases: Array<[string, Parameters<typeof callsPerNumber>[1], unknown[]]> = [
    ['by day, Shanghai (default)', { bucket: 'day' }, [
      { number: '4008123456', period: '2024-05-01', calls: 2, answered: 1, missed: 1 },
      { number: '4008123456', period: '2024-05-02', calls: 1, answered: 1, missed: 0 },
      { number: '4008123457', period: '2024-05-02', calls: 1, answered: 0, missed: 1 },
    ]],
    ['by day, UTC: all on May 1', { bucket: 'day', timeZone: 'UTC' }, [
      { number: '4008123456', period: '2024-05-01', calls: 3, answered: 2, missed: 1 },
      { number: '4008123457', period: '2024-05-01', calls: 1, answered: 0, missed: 1 },
    ]],
    ['by hour, Shanghai', { bucket: 'hour' }, [
      { number: '4008123456', period: '2024-05-01 23', calls: 2, answered: 1, missed: 1 },
      { number: '4008123456', period: '2024-05-02 00', calls: 1, answered: 1, missed: 0 },
      { number: '4008123457', period: '2024-05-02 00', calls: 1, answered: 0, missed: 1 },
    ]],
  ];
  for (const [name, options, expected] of cases) t.strictSame(callsPerNumber(records, options), expected, name);
  t.strictSame(callsPerNumber([], { bucket: 'day' }), [], 'no calls, no rows');
  t.throws(() => callsPerNumber(records, { bucket: 'week' as 'day' }), { code: 'DP_CDR_BAD_OPTION' });
  t.throws(() => callsPerNumber(records, { bucket: 'day', timeZone: 'Asia/Atlantis' }), { code: 'DP_CDR_BAD_TIME_ZONE' });
});

t.test('answered versus missed, per disposition', async (t) => {
  const cases: Array<[string, CdrRecord[], unknown]> = [
    ['no calls', [], { calls: 0, answered: 0, missed: 0, answerRate: 0 }],
    ['mixed', [
      call('2024-05-01T01:00:00Z'), call('2024-05-01T02:00:00Z'), call('2024-05-01T03:00:00Z', { disposition: 'busy' }),
      call('2024-05-01T04:00:00Z', { disposition: 'abandoned' }),
    ], { calls: 4, answered: 2, missed: 2, answerRate: 0.5, byDisposition: { answered: 2, busy: 1, abandoned: 1, 'no-answer': 0, unknown: 0 } }],
    ['a record without disposition counts as unknown and missed', [{ ...call('2024-05-01T01:00:00Z', { disposition: 'failed' }), disposition: undefined }],
      { calls: 1, missed: 1, byDisposition: { unknown: 1, failed: 0 } }],
  ];
  for (const [name, records, expected] of cases) t.match(answeredVsMissed(records), expected, name);
});

t.test('wait to answer: answeredAt − startedAt over answered calls', async (t) => {
  const cases: Array<[string, CdrRecord[], unknown]> = [
    ['none answered', [call('2024-05-01T01:00:00Z', { disposition: 'busy' })], { answered: 0, averageMs: undefined, maxMs: undefined }],
    ['average and max', [
      call('2024-05-01T01:00:00Z', { waitS: 5 }), call('2024-05-01T02:00:00Z', { waitS: 10 }), call('2024-05-01T03:00:00Z', { waitS: 30 }),
      call('2024-05-01T04:00:00Z', { disposition: 'no-answer' }),
    ], { answered: 3, averageMs: 15_000, maxMs: 30_000 }],
    ['an answer time before the start is ignored', [{ ...call('2024-05-01T01:00:00Z'), answeredAt: 0 }, call('2024-05-01T02:00:00Z', { waitS: 4 })],
      { answered: 1, averageMs: 4000, maxMs: 4000 }],
  ];
  for (const [name, records, expected] of cases) t.strictSame(waitToAnswer(records), expected, name);
});

t.test('calls by caller province, busiest first, unknown as 未知', async (t) => {
  const records = [
    call('2024-05-01T01:00:00Z', { province: '江苏省' }), call('2024-05-01T02:00:00Z', { province: '浙江省', disposition: 'busy' }),
    call('2024-05-01T03:00:00Z', { province: '浙江省' }), call('2024-05-01T04:00:00Z'), call('2024-05-01T05:00:00Z', { province: '' }),
  ];
  t.strictSame(callsByProvince(records), [
    { province: '未知', calls: 2, answered: 2, missed: 0 },
    { province: '浙江省', calls: 2, answered: 1, missed: 1 },
    { province: '江苏省', calls: 1, answered: 1, missed: 0 },
  ]);
});

t.test('busiest targets over every attempt, top N', async (t) => {
  const records = [
    call('2024-05-01T01:00:00Z', { targets: [['1001', 'no-answer'], ['1002', 'answered']] }),
    call('2024-05-01T02:00:00Z', { targets: [['1001', 'busy'], ['1003', 'no-answer'], ['1002', 'answered']] }),
    call('2024-05-01T03:00:00Z', { targets: [['1001', 'answered']] }),
    { ...call('2024-05-01T04:00:00Z'), attempts: 'broken' as unknown as CdrRecord['attempts'] },
  ];
  const cases: Array<[string, number | undefined, unknown[]]> = [
    ['default top 10', undefined, [
      { target: '1001', attempts: 3, answered: 1, unanswered: 2 },
      { target: '1002', attempts: 2, answered: 2, unanswered: 0 },
      { target: '1003', attempts: 1, answered: 0, unanswered: 1 },
    ]],
    ['top 1', 1, [{ target: '1001', attempts: 3, answered: 1, unanswered: 2 }]],
  ];
  for (const [name, top, expected] of cases) t.strictSame(busiestTargets(records, top === undefined ? {} : { top }), expected, name);
  t.throws(() => busiestTargets(records, { top: 0 }), { code: 'DP_CDR_BAD_OPTION' });
});
