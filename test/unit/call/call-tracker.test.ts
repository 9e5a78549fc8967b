/**
 * Calls in progress: per-tenant limits, and one record per call with its
 * disposition, from fork to final failure or BYE, with a safety release.
 */
import t from 'tap';
import { CallTracker, type CallRecord } from '../../../src/call/call-tracker.js';
import type { SipRequest } from '../../../src/sip/message/message.js';
import type { ProxiedDialog } from '../../../src/sip/proxy/proxied-dialog.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { makeRequest } from '../../helpers/sip-builders.js';
import { RecordingLogger } from '../../helpers/recording-logger.js';

function rec(callId: string, tenant = 'a'): CallRecord {
  return { callId, tenant, origin: { kind: 'trunk', trunk: 't' }, called: '4008123456', caller: '13800000000', startedAt: 0, attempts: [] };
}

function tracker(maxCallMs?: number) {
  const clock = new ManualClock();
  const log = new RecordingLogger();
  const tr = new CallTracker({ clock, log, ...(maxCallMs !== undefined ? { maxCallMs } : {}) });
  const events: string[] = [];
  const ended: CallRecord[] = [];
  tr.listen({
    ringing: (r) => events.push(`ringing ${r.callId}`),
    answered: (r) => events.push(`answered ${r.callId}`),
    ended: (r) => { events.push(`ended ${r.callId} ${r.disposition ?? '?'}`); ended.push(r); },
  });
  return { clock, log, tr, events, ended };
}

t.test('a tenant at its limit is refused; a failed call frees its slot at the final response', async (t) => {
  const { tr } = tracker();
  t.ok(tr.start(rec('c1'), 2));
  t.ok(tr.start(rec('c2'), 2));
  t.notOk(tr.start(rec('c3'), 2), 'third call over the limit');
  t.ok(tr.start(rec('c4', 'b'), 2), 'another tenant is not affected');
  tr.final('c1', 486);
  t.equal(tr.count('a'), 1);
  t.ok(tr.start(rec('c3'), 2));
  t.equal(tr.list().length, 3);
});

t.test('an answered call holds its slot until its BYE; events ringing → answered → ended come once each', async (t) => {
  const { tr, clock, events, ended } = tracker();
  const t0 = clock.now();
  tr.start(rec('c1'), 1);
  tr.bye('c1');
  t.equal(tr.count('a'), 1, 'a BYE before the answer is ignored');
  clock.advance(1000);
  tr.ringing('c1');
  tr.ringing('c1');
  clock.advance(2000);
  tr.final('c1', 200);
  tr.final('c1', 200);
  tr.final('c1', 487);
  t.equal(tr.count('a'), 1, 'a late failure of another fork does not end an answered call');
  clock.advance(60_000);
  tr.bye('c1');
  tr.bye('c1');
  t.equal(tr.count('a'), 0);
  t.same(events, ['ringing c1', 'answered c1', 'ended c1 answered']);
  const r = ended[0];
  t.match(r, { ringingAt: t0 + 1000, answeredAt: t0 + 3000, finalStatus: 200, endedBy: 'bye' });
  t.equal((r?.endedAt ?? 0) - (r?.answeredAt ?? 0), 60_000, 'duration');
});

t.test('an answered call whose BYE never passes through us ends after maxCallMs, marked so', async (t) => {
  const { tr, clock, ended } = tracker(60_000);
  tr.start(rec('c1'), 1);
  tr.final('c1', 200);
  clock.advance(59_999);
  t.equal(tr.count('a'), 1);
  clock.advance(1);
  t.equal(tr.count('a'), 0);
  t.equal(ended[0]?.endedBy, 'timeout');
  t.equal(clock.pending, 0);
});

t.test('dispositions: what a PBX user means by each ending', async (t) => {
  const cases: Array<[string, number, string | undefined, string]> = [
    ['caller hung up while ringing', 487, undefined, 'abandoned'],
    ['busy', 486, 'busy', 'busy'],
    ['hunt ended on a busy target, best response 486', 486, 'no-answer', 'busy'],
    ['every target timed out', 480, 'no-answer', 'no-answer'],
    ['declined', 603, 'declined', 'rejected'],
    ['nobody registered', 480, 'unreachable', 'failed'],
    ['server error downstream', 500, undefined, 'failed'],
  ];
  for (const [name, status, kind, want] of cases) {
    const { tr, ended } = tracker();
    tr.start(rec('c'), undefined);
    if (kind) tr.failure('c', kind as Parameters<CallTracker['failure']>[1]);
    tr.final('c', status);
    t.equal(ended[0]?.disposition, want, name);
  }
  const { tr, ended } = tracker();
  tr.refused(rec('r1'), 603);
  tr.refused(rec('r2'), 503);
  t.same(ended.map((r) => [r.disposition, r.endedBy]), [['rejected', 'final'], ['failed', 'final']], 'refusals end at once');
});

t.test('attempts are recorded in order; a throwing listener is logged and the others still hear', async (t) => {
  const { tr, log, ended } = tracker();
  tr.listen({ ended: () => { throw new Error('listener bug'); } });
  tr.start(rec('c1'), undefined);
  tr.attempt('c1', { target: '1001', kind: 'extension', startedAt: 0, endedAt: 8000, outcome: 'no-answer', status: 408 });
  tr.attempt('c1', { target: '1002', kind: 'extension', startedAt: 8000, endedAt: 8001, outcome: 'busy', status: 486 });
  tr.attempt('unknown', { target: 'x', kind: 'extension', startedAt: 0, endedAt: 0, outcome: 'busy', status: 486 });
  tr.final('c1', 486);
  t.same(ended[0]?.attempts.map((a) => [a.target, a.outcome]), [['1001', 'no-answer'], ['1002', 'busy']]);
  t.equal(log.at('error').length, 1);
});

t.test('no limit: counted, never refused; the same Call-ID routed twice (a spiral) is one call', async (t) => {
  const { tr } = tracker();
  for (let i = 0; i < 50; i++) t.ok(tr.start(rec(`c${i}`), undefined));
  t.ok(tr.start(rec('c1'), 1), 'the same call again');
  t.equal(tr.count('a'), 50);
});

function dialog(callId: string): ProxiedDialog {
  return {
    callId, callerTag: 'ct', calleeTag: 'et',
    caller: { identity: '<sip:13800000000@carrier>;tag=ct', target: 'sip:13800000000@127.0.0.2', route: [], cseq: 5 },
    callee: { identity: '<sip:1001@demo>;tag=et', target: 'sip:1001@127.0.0.1:5070', route: [], cseq: 0 },
  };
}

function inDialog(method: string, callId: string, fromTag: string, cseq: number, contact?: string): SipRequest {
  return makeRequest(method, { callId, fromTag, toTag: fromTag === 'ct' ? 'et' : 'ct', cseq, ...(contact ? { headers: [`Contact: <${contact}>`] } : {}) });
}

t.test('hang-up of an answered call: its own tenant only; BYEs through the ender; the record ends at once with endedBy admin', async (t) => {
  const { tr, ended } = tracker();
  tr.start(rec('c1'), undefined);
  tr.final('c1', 200);
  const d = dialog('c1');
  tr.answeredDialog('c1', d);
  tr.inDialog(inDialog('INVITE', 'c1', 'ct', 6, 'sip:13800000000@127.0.0.3'));
  tr.inDialog(inDialog('INFO', 'c1', 'et', 3));
  t.equal(d.caller.cseq, 6, 'the caller\'s re-INVITE raised its CSeq');
  t.equal(d.caller.target, 'sip:13800000000@127.0.0.3', 'and refreshed its target');
  t.equal(d.callee.cseq, 3);
  const sent: ProxiedDialog[] = [];
  const ender = { hangUp: async (x: ProxiedDialog) => { sent.push(x); return { caller: 200, callee: 200 }; }, abort: () => false };
  t.same(await tr.hangUp('b', 'c1', ender), { state: 'unknown' }, 'another tenant cannot end it');
  t.same(sent, []);
  t.same(await tr.hangUp('a', 'c1', ender), { state: 'answered', caller: 200, callee: 200 });
  t.same(sent, [d]);
  t.equal(tr.count('a'), 0);
  t.match(ended[0], { disposition: 'answered', endedBy: 'admin' });
  t.same(await tr.hangUp('a', 'c1', ender), { state: 'unknown' }, 'ended');
  tr.inDialog(inDialog('BYE', 'c1', 'ct', 7));
  t.equal(ended.length, 1, 'the phone\'s own late BYE ends nothing twice');
});

t.test('hang-up of a ringing call: the proxy aborts it and its record says rejected by admin; no dialog, no abort → not addressable', async (t) => {
  const { tr, ended } = tracker();
  tr.start(rec('c1'), undefined);
  tr.ringing('c1');
  const aborted: string[] = [];
  t.same(await tr.hangUp('a', 'c1', { hangUp: async () => ({ caller: 0, callee: 0 }), abort: (id) => { aborted.push(id); tr.final(id, 487); return true; } }), { state: 'ringing' });
  t.same(aborted, ['c1']);
  t.match(ended[0], { disposition: 'rejected', endedBy: 'admin', finalStatus: 487 });

  tr.start(rec('c2'), undefined);
  t.same(await tr.hangUp('a', 'c2', { hangUp: async () => ({ caller: 0, callee: 0 }), abort: () => false }), { state: 'not-addressable' }, 'still being routed');
  tr.final('c2', 486);
  t.match(ended[1], { disposition: 'busy', endedBy: 'final' }, 'a refused abort leaves no admin mark');
  tr.start(rec('c3'), undefined);
  tr.final('c3', 200);
  tr.answeredDialog('c3', undefined);
  t.same(await tr.hangUp('a', 'c3', { hangUp: async () => ({ caller: 0, callee: 0 }), abort: () => false }), { state: 'not-addressable' }, 'answered without an addressable dialog');
  t.equal(tr.count('a'), 1);
});

t.test('calls are tracked the same after every call has ended (the table of calls is started afresh)', async (t) => {
  const { tr, events } = tracker();
  tr.start(rec('c1'), 2);
  tr.final('c1', 486);
  t.equal(tr.list().length, 0);
  tr.start(rec('c2'), 2);
  tr.final('c2', 200);
  tr.bye('c1');
  t.equal(tr.count('a'), 1, 'a BYE of an ended call changes nothing');
  tr.bye('c2');
  t.equal(tr.count('a'), 0);
  t.same(events.filter((e) => e.startsWith('ended')), ['ended c1 busy', 'ended c2 answered']);
});
