/**
 * Schedules: weekly windows in the schedule's zone, windows crossing
 * midnight, holidays, make-up workdays (调休), and DST switch days.
 * Instants are written in UTC with the local time beside them, so the test
 * does not lean on the conversion it checks.
 */
import t from 'tap';
import { RoutingError } from '../../../src/routing/errors.js';
import { compileSchedule, describeScheduleStatus, scheduleStatus, wallClock, zoneOffsetMs, type CompiledSchedule } from '../../../src/routing/schedule.js';

const H = 3_600_000;
/** Local wall time in Asia/Shanghai (always UTC+8) → epoch ms. */
const sh = (y: number, mo: number, d: number, h: number, mi = 0): number => Date.UTC(y, mo - 1, d, h, mi) - 8 * H;
const utc = (iso: string): number => Date.parse(iso);

const office: CompiledSchedule = compileSchedule({
  id: 'office',
  weekly: [
    { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '18:00' },
    { days: ['fri'], from: '22:00', to: '02:00' },
    { days: ['sat'], from: '10:00', to: '14:00' },
  ],
  holidays: [
    { date: '2025-01-01', name: '元旦' },
    { date: '2025-01-28', to: '2025-02-04', name: '春节' },
  ],
  makeupWorkdays: [
    { date: '2025-01-26', name: '春节调休' },
    { date: '2025-02-08', as: 'fri', name: '春节调休 (Friday timetable)' },
  ],
});

interface Case { name: string; at: number; open: boolean; why?: string }

t.test('Asia/Shanghai (no DST): windows, midnight, holidays, make-up workdays', async (t) => {
  const cases: Case[] = [
    { name: 'Mon 08:59 before opening', at: sh(2025, 1, 6, 8, 59), open: false, why: 'outside' },
    { name: 'Mon 09:00 opening minute is inside [from, to)', at: sh(2025, 1, 6, 9, 0), open: true, why: 'window' },
    { name: 'Mon 17:59', at: sh(2025, 1, 6, 17, 59), open: true, why: 'window' },
    { name: 'Mon 18:00 closing minute is outside', at: sh(2025, 1, 6, 18, 0), open: false },
    { name: 'Mon 00:00 midnight', at: sh(2025, 1, 6, 0, 0), open: false },
    { name: 'Thu 23:00: only Friday has a night window', at: sh(2025, 1, 9, 23, 0), open: false },
    { name: 'Fri 22:00 night window starts', at: sh(2025, 1, 10, 22, 0), open: true, why: 'window' },
    { name: 'Fri 23:59', at: sh(2025, 1, 10, 23, 59), open: true, why: 'window' },
    { name: 'Sat 00:00 tail of Friday\'s window', at: sh(2025, 1, 11, 0, 0), open: true, why: 'previous-day-window' },
    { name: 'Sat 01:59 tail of Friday\'s window', at: sh(2025, 1, 11, 1, 59), open: true, why: 'previous-day-window' },
    { name: 'Sat 02:00 tail ends', at: sh(2025, 1, 11, 2, 0), open: false },
    { name: 'Sat 10:00 Saturday window', at: sh(2025, 1, 11, 10, 0), open: true, why: 'window' },
    { name: 'Sun 10:00 ordinary Sunday', at: sh(2025, 1, 19, 10, 0), open: false },
    { name: 'Wed 2025-01-01 10:00 holiday (元旦) on a weekday', at: sh(2025, 1, 1, 10, 0), open: false, why: 'holiday' },
    { name: 'Tue 2025-01-28 10:00 first day of 春节', at: sh(2025, 1, 28, 10, 0), open: false, why: 'holiday' },
    { name: 'Fri 2025-01-31 22:30 holiday: its night window does not open', at: sh(2025, 1, 31, 22, 30), open: false, why: 'holiday' },
    { name: 'Tue 2025-02-04 17:00 last day of 春节', at: sh(2025, 2, 4, 17, 0), open: false, why: 'holiday' },
    { name: 'Wed 2025-02-05 09:00 back to work', at: sh(2025, 2, 5, 9, 0), open: true, why: 'window' },
    { name: 'Sun 2025-01-26 10:00 make-up workday uses Monday windows', at: sh(2025, 1, 26, 10, 0), open: true, why: 'makeup-window' },
    { name: 'Sun 2025-01-26 08:00 make-up workday, before Monday opening', at: sh(2025, 1, 26, 8, 0), open: false, why: 'outside' },
    { name: 'Sat 2025-02-08 09:30 make-up as Friday (not Saturday 10-14)', at: sh(2025, 2, 8, 9, 30), open: true, why: 'makeup-window' },
    { name: 'Sat 2025-02-08 22:30 make-up as Friday gets Friday night', at: sh(2025, 2, 8, 22, 30), open: true, why: 'makeup-window' },
    { name: 'Sun 2025-02-09 01:00 tail of the make-up Friday night', at: sh(2025, 2, 9, 1, 0), open: true, why: 'previous-day-window' },
  ];
  for (const c of cases) {
    const st = scheduleStatus(office, c.at);
    t.equal(st.open, c.open, `${c.name}: ${describeScheduleStatus(office, st)}`);
    if (c.why !== undefined) t.equal(st.why, c.why, `${c.name}: why ${c.why}`);
  }
});

t.test('a holiday closes the after-midnight tail of the previous day', async (t) => {
  const s = compileSchedule({ id: 'nights', weekly: [{ days: ['tue'], from: '22:00', to: '02:00' }], holidays: [{ date: '2025-01-01' }] });
  t.equal(scheduleStatus(s, sh(2024, 12, 31, 23, 0)).open, true, 'Tue 2024-12-31 23:00 open');
  const tail = scheduleStatus(s, sh(2025, 1, 1, 1, 0));
  t.equal(tail.open, false, 'Wed 2025-01-01 01:00 closed: the holiday is closed all day');
  t.equal(tail.why, 'holiday');
});

t.test('whole days and the local date line', async (t) => {
  const s = compileSchedule({ id: 'sun', weekly: [{ days: ['sun'], from: '00:00', to: '24:00' }, { days: ['mon'], from: '00:00', to: '01:00' }] });
  t.equal(scheduleStatus(s, sh(2025, 1, 5, 0, 0)).open, true, 'Sun 00:00 open');
  t.equal(scheduleStatus(s, sh(2025, 1, 5, 23, 59)).open, true, 'Sun 23:59 open');
  // 2025-01-05T16:30Z is still Sunday in UTC but Monday 00:30 in Shanghai.
  const monday = scheduleStatus(s, utc('2025-01-05T16:30:00Z'));
  t.equal(monday.open, true, 'Mon 00:30 Shanghai is inside the Monday window');
  t.equal(monday.local.weekday, 1, 'weekday comes from the local date');
  t.equal(scheduleStatus(s, sh(2025, 1, 6, 1, 0)).open, false, 'Mon 01:00 closed');
  const wc = wallClock('Asia/Shanghai', utc('2025-01-05T16:30:00Z'));
  t.same(wc, { day: Date.UTC(2025, 0, 6) / 86_400_000, minute: 30, weekday: 1 });
});

t.test('Europe/Berlin across the DST switches', async (t) => {
  const s = compileSchedule({
    id: 'berlin',
    timeZone: 'Europe/Berlin',
    weekly: [
      { days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '01:00', to: '04:00' },
      { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' },
    ],
  });
  const cases: Array<[string, string, boolean]> = [
    // 2025-03-30: at 01:00 UTC clocks jump from 02:00 CET to 03:00 CEST.
    ['2025-03-28T08:00:00Z', 'Fri 09:00 CET (UTC+1) open', true],
    ['2025-03-28T07:30:00Z', 'Fri 08:30 CET closed', false],
    ['2025-03-30T00:30:00Z', 'Sun 01:30 CET, before the jump, open', true],
    ['2025-03-30T01:00:00Z', 'Sun 03:00 CEST, right after the jump, open', true],
    ['2025-03-30T02:00:00Z', 'Sun 04:00 CEST closed (03:00 if the offset were stale)', false],
    ['2025-03-31T07:30:00Z', 'Mon 09:30 CEST (UTC+2) open (08:30 if the offset were stale)', true],
    ['2025-03-31T06:59:00Z', 'Mon 08:59 CEST closed', false],
    // 2025-10-26: at 01:00 UTC clocks fall back from 03:00 CEST to 02:00 CET.
    ['2025-10-26T00:30:00Z', 'Sun 02:30 CEST, first time, open', true],
    ['2025-10-26T01:30:00Z', 'Sun 02:30 CET, second time, open', true],
    ['2025-10-26T02:30:00Z', 'Sun 03:30 CET open', true],
    ['2025-10-26T03:00:00Z', 'Sun 04:00 CET closed', false],
    ['2025-10-27T08:00:00Z', 'Mon 09:00 CET open', true],
    ['2025-10-27T07:30:00Z', 'Mon 08:30 CET closed (09:30 if the offset were stale)', false],
  ];
  for (const [iso, name, open] of cases) {
    const st = scheduleStatus(s, utc(iso));
    t.equal(st.open, open, `${name}: ${describeScheduleStatus(s, st)}`);
  }
  t.equal(zoneOffsetMs('Europe/Berlin', utc('2025-03-30T00:59:00Z')), 1 * H, 'CET before the switch');
  t.equal(zoneOffsetMs('Europe/Berlin', utc('2025-03-30T01:00:00Z')), 2 * H, 'CEST from the switch minute on');
  t.equal(zoneOffsetMs('Europe/Berlin', utc('2025-10-26T00:59:00Z')), 2 * H);
  t.equal(zoneOffsetMs('Europe/Berlin', utc('2025-10-26T01:00:00Z')), 1 * H);
  t.equal(zoneOffsetMs('Asia/Shanghai', utc('2025-07-01T00:00:00Z')), 8 * H, 'Shanghai is UTC+8 all year');
});

t.test('explanations name the window, holiday or make-up day', async (t) => {
  t.match(describeScheduleStatus(office, scheduleStatus(office, sh(2025, 1, 6, 10, 15))), 'open: 2025-01-06 mon 10:15 Asia/Shanghai is inside mon 09:00-18:00');
  t.match(describeScheduleStatus(office, scheduleStatus(office, sh(2025, 1, 28, 10, 0))), 'closed: 2025-01-28 tue 10:00 Asia/Shanghai is holiday "春节"');
  t.match(describeScheduleStatus(office, scheduleStatus(office, sh(2025, 1, 26, 10, 0))), 'make-up workday "春节调休"');
  t.match(describeScheduleStatus(office, scheduleStatus(office, sh(2025, 1, 11, 1, 0))), 'started the day before');
});

t.test('bad schedules are refused', async (t) => {
  t.throws(() => compileSchedule({ id: 'x', timeZone: 'Mars/Olympus_Mons', weekly: [] }), RoutingError);
  t.throws(() => compileSchedule({ id: 'x', weekly: [{ days: ['mon'], from: '09:00', to: '09:00' }] }), /empty/);
  t.throws(() => compileSchedule({ id: 'x', weekly: [{ days: ['mon'], from: '24:00', to: '02:00' }] }), /cannot start at 24:00/);
  t.throws(() => compileSchedule({ id: 'x', weekly: [], holidays: [{ date: '2025-02-30' }] }), /not a calendar date/);
  t.throws(() => compileSchedule({ id: 'x', weekly: [], holidays: [{ date: '2025-02-10', to: '2025-02-01' }] }), /range/);
});
