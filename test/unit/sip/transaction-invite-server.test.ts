/** INVITE server transaction, RFC 3261 §17.2.1 (Figure 7) with the RFC 6026 "Accepted" state. */
import t from 'tap';
import { SipRequest, SipResponse } from '../../../src/sip/message/message.js';
import { createResponse } from '../../../src/sip/transaction/create-response.js';
import type { ServerTransaction } from '../../../src/sip/transaction/transaction-user.js';
import { CONNECTION_REFUSED } from '../../helpers/fake-transaction-transport.js';
import { again, makeRequest } from '../../helpers/sip-builders.js';
import { makeHarness } from '../../helpers/transaction-harness.js';

function incomingInvite(extra: Parameters<typeof makeRequest>[1] = {}) {
  return makeRequest('INVITE', { branch: 'z9hG4bK-inv-1', headers: ['Timestamp: 54.3'], ...extra });
}

/**
 * The ACK a UAC's INVITE client transaction sends for our non-2xx: same
 * branch, To from the last final response sent (the transaction itself
 * keeps no To row once it waits).
 */
function ackFor(invite: ReturnType<typeof incomingInvite>, h: ReturnType<typeof makeHarness>) {
  const finals = h.transport.responses().filter((s) => s.message.status >= 200);
  const ack = makeRequest('ACK', {
    branch: invite.topVia.branch ?? null, sentBy: `${invite.topVia.host}:${invite.topVia.port ?? 5060}`,
    viaTransport: invite.topVia.transport, toTag: finals[finals.length - 1]?.message.to.tag, cseq: invite.cseq.seq,
    transport: invite.source?.transport ?? 'udp',
  });
  return ack;
}

function only(h: ReturnType<typeof makeHarness>): ServerTransaction {
  const r = h.requests[0];
  if (!r) throw new Error('no server transaction');
  return r.tx;
}

t.test('§17.2.1: the server transaction MUST send 100 Trying when the TU has not answered within 200 ms, copying Timestamp (§8.2.6.1)', async (t) => {
  const h = makeHarness();
  h.layer.receiveRequest(incomingInvite());
  t.equal(h.requests.length, 1, 'the INVITE is passed to the TU');
  const tx = only(h);
  t.equal(tx.state, 'Proceeding');
  h.clock.advance(199);
  t.equal(h.transport.responses().length, 0);
  h.clock.advance(1);
  const sent = h.transport.responses();
  t.same(sent.map((s) => s.message.status), [100]);
  const trying = sent[0]!.message;
  t.equal(trying.get('timestamp'), '54.3');
  t.equal(trying.to.tag, undefined, 'no To tag needed on 100');
  t.equal(tx.state, 'Proceeding');
});

t.test('the server transaction MUST NOT send its own 100 when the TU sent a provisional within 200 ms', async (t) => {
  const h = makeHarness({ onRequest: (tx, req) => tx.respond(createResponse(req, 180, 'Ringing', { toTag: 'uas' })) });
  h.layer.receiveRequest(incomingInvite());
  h.clock.advance(1000);
  t.same(h.transport.responses().map((s) => s.message.status), [180]);
});

t.test('trying100DelayMs 0: 100 Trying goes out at once, before the TU sees the INVITE', async (t) => {
  let sentBeforeTu = -1;
  const h = makeHarness({ trying100DelayMs: 0, onRequest: () => { sentBeforeTu = h.transport.responses(100).length; } });
  h.layer.receiveRequest(incomingInvite());
  t.equal(sentBeforeTu, 1);
  h.clock.advance(1000);
  t.equal(h.transport.responses(100).length, 1, 'only one');
});

t.test('a retransmitted INVITE MUST NOT reach the TU and MUST cause the last provisional to be re-sent', async (t) => {
  const h = makeHarness();
  const invite = incomingInvite();
  h.layer.receiveRequest(invite);
  h.layer.receiveRequest(again(invite));
  t.equal(h.transport.responses().length, 0, 'nothing to re-send before any provisional');
  const tx = only(h);
  tx.respond(createResponse(invite, 183, 'Session Progress', { toTag: 'uas' }));
  tx.respond(createResponse(invite, 180, 'Ringing', { toTag: 'uas' }));
  h.layer.receiveRequest(again(invite));
  t.equal(h.requests.length, 1, 'TU saw the INVITE once');
  t.same(h.transport.responses().map((s) => s.message.status), [183, 180, 180]);
});

t.test('300-699: Timer G MUST retransmit the response over UDP (T1, doubling, capped at T2) until the ACK; the ACK MUST be absorbed, not given to the TU; Timer I = T4', async (t) => {
  const h = makeHarness();
  const invite = incomingInvite();
  h.layer.receiveRequest(invite);
  const tx = only(h);
  const start = h.clock.now();
  tx.respond(createResponse(invite, 486, 'Busy Here', { toTag: 'uas' }));
  t.equal(tx.state, 'Completed');
  h.clock.advance(11_600);
  t.same(h.transport.responses(486).map((s) => s.at - start), [0, 500, 1500, 3500, 7500, 11500]);
  const [first, ...resent] = h.transport.responses(486).map((s) => s.message.toBuffer());
  for (const b of resent) t.ok(b.equals(first!), 'Timer G re-sends the bytes first sent');
  h.layer.receiveRequest(ackFor(invite, h));
  t.equal(tx.state, 'Confirmed');
  t.equal(h.acks.length, 0, 'the ACK for a non-2xx is part of the transaction');
  t.equal(h.requests.length, 1);
  h.clock.advance(4000);
  t.equal(h.transport.responses(486).length, 6, 'retransmissions cease in Confirmed');
  h.layer.receiveRequest(ackFor(invite, h));
  t.equal(h.acks.length, 0, 'Confirmed absorbs further ACKs');
  h.clock.advance(999);
  t.equal(tx.state, 'Confirmed');
  h.clock.advance(1);
  t.equal(tx.state, 'Terminated', 'Timer I = T4 after the ACK');
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
});

t.test('Timer H: without an ACK the transaction MUST terminate at 64*T1 and indicate a failure to the TU', async (t) => {
  let timeouts = 0;
  let terminated = 0;
  const h = makeHarness({
    onRequest: (tx) => {
      tx.onTimeout = () => { timeouts++; };
      tx.onTerminated = () => { terminated++; };
    },
  });
  const invite = incomingInvite();
  h.layer.receiveRequest(invite);
  const tx = only(h);
  const start = h.clock.now();
  tx.respond(createResponse(invite, 480, 'Temporarily Unavailable'));
  h.clock.advance(64 * 500 - 1);
  t.equal(tx.state, 'Completed');
  t.equal(timeouts, 0);
  h.clock.advance(1);
  t.equal(tx.state, 'Terminated');
  t.equal(timeouts, 1);
  t.equal(terminated, 1);
  const at = h.transport.responses(480).map((s) => s.at - start);
  t.same(at, [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500], 'G capped at T2 until H');
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
});

t.test('a retransmitted INVITE in Completed MUST cause the final response to be re-sent', async (t) => {
  const h = makeHarness();
  const invite = incomingInvite();
  h.layer.receiveRequest(invite);
  only(h).respond(createResponse(invite, 404, 'Not Found'));
  h.clock.advance(100);
  h.layer.receiveRequest(again(invite));
  t.same(h.transport.responses().map((s) => s.message.status), [404, 404]);
  t.equal(h.requests.length, 1);
});

t.test('over TCP Timer G MUST NOT run, and Timer I is zero: the ACK terminates the transaction', async (t) => {
  const h = makeHarness();
  const invite = incomingInvite({ viaTransport: 'TCP', transport: 'tcp' });
  h.layer.receiveRequest(invite);
  const tx = only(h);
  tx.respond(createResponse(invite, 486, 'Busy Here'));
  h.clock.advance(20_000);
  t.equal(h.transport.responses(486).length, 1);
  h.layer.receiveRequest(ackFor(invite, h));
  t.equal(tx.state, 'Terminated');
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
});

t.test('RFC 6026 Accepted: retransmitted INVITEs MUST be absorbed, 2xx from the TU MUST be sent, Timer L = 64*T1', async (t) => {
  const h = makeHarness();
  const invite = incomingInvite();
  h.layer.receiveRequest(invite);
  const tx = only(h);
  const ok = createResponse(invite, 200, 'OK', { toTag: 'uas' });
  tx.respond(ok);
  t.equal(tx.state, 'Accepted');
  h.clock.advance(500);
  h.layer.receiveRequest(again(invite));
  t.equal(h.requests.length, 1, 'not passed to the TU');
  t.same(h.transport.responses().map((s) => s.message.status), [200], 'the transaction does not retransmit the 2xx itself');
  tx.respond(ok);
  tx.respond(createResponse(invite, 200, 'OK', { toTag: 'other-fork' }));
  t.equal(h.transport.responses(200).length, 3, "the TU's 2xx retransmissions and other forks' 2xx pass");
  tx.respond(createResponse(invite, 486, 'Busy Here'));
  tx.respond(createResponse(invite, 180, 'Ringing'));
  t.equal(h.transport.responses().length, 3, 'non-2xx after a 2xx discarded');
  h.clock.advance(64 * 500 - 500 - 1);
  t.equal(tx.state, 'Accepted');
  h.clock.advance(1);
  t.equal(tx.state, 'Terminated');
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
});

t.test('wait states keep no message of their own: the shared, unchangeable SipRequest.released() and SipResponse.released()', async (t) => {
  const h = makeHarness();
  const invite = incomingInvite();
  h.layer.receiveRequest(invite);
  const tx = only(h);
  tx.respond(createResponse(invite, 200, 'OK', { toTag: 'uas' }));
  t.equal(tx.state, 'Accepted');
  t.equal(tx.request, SipRequest.released('INVITE'));
  t.equal(tx.request.headers.length, 0, 'no rows: nothing of the call is kept for 64*T1');
  t.equal(tx.lastResponse, SipResponse.released(200));
  t.throws(() => tx.request.append('X-Test', '1'), 'a shared request cannot be changed');
  t.throws(() => tx.lastResponse?.set('X-Test', '1'), 'nor a shared response');
  t.equal(SipRequest.released('INVITE').headers.length, 0);

  const other = incomingInvite({ branch: 'z9hG4bK-inv-2' });
  h.layer.receiveRequest(other);
  const busy = h.requests[1]!.tx;
  busy.respond(createResponse(other, 486, 'Busy Here', { toTag: 'busy' }));
  t.equal(busy.state, 'Completed');
  t.match(busy.lastResponse?.toBuffer().toString(), /^SIP\/2\.0 486 Busy Here\r\n/, 'Completed keeps what it resends');
  h.layer.receiveRequest(ackFor(other, h));
  t.equal(busy.state, 'Confirmed');
  t.equal(busy.lastResponse, SipResponse.released(486), 'Confirmed resends nothing');
});

t.test('the ACK for a 2xx is not part of the transaction: it MUST reach the TU (onAck), whether it matches nothing or matches Accepted', async (t) => {
  const h = makeHarness();
  const invite = incomingInvite();
  h.layer.receiveRequest(invite);
  const tx = only(h);
  tx.respond(createResponse(invite, 200, 'OK', { toTag: 'uas' }));
  const ack2xx = makeRequest('ACK', { branch: 'z9hG4bK-new-for-ack', toTag: 'uas' });
  h.layer.receiveRequest(ack2xx);
  const sameBranchAck = ackFor(invite, h);
  h.layer.receiveRequest(sameBranchAck);
  t.same(h.acks, [ack2xx, sameBranchAck]);
  t.equal(h.requests.length, 1, 'an ACK never creates a server transaction');
  t.equal(h.layer.size.server, 1);
  h.clock.advance(64 * 500);
  t.same(h.layer.size, { client: 0, server: 0 });
});

t.test('a 2xx the TU passes after a non-2xx final is sent statelessly (§16.7 step 5), without a state change', async (t) => {
  const h = makeHarness();
  const invite = incomingInvite();
  h.layer.receiveRequest(invite);
  const tx = only(h);
  tx.respond(createResponse(invite, 487, 'Request Terminated'));
  tx.respond(createResponse(invite, 200, 'OK'));
  tx.respond(createResponse(invite, 603, 'Decline'));
  t.same(h.transport.responses().map((s) => s.message.status), [487, 200]);
  t.equal(tx.state, 'Completed');
});

t.test('§17.2.4 / RFC 6026 §8.8: a transport error MUST be reported to the TU and the transaction MUST remain in its state; Timer H still ends it', async (t) => {
  const errors: string[] = [];
  const h = makeHarness({ onRequest: (tx) => { tx.onTransportError = (_tx, err) => errors.push(err.code); } });
  const invite = incomingInvite();
  h.layer.receiveRequest(invite);
  const tx = only(h);
  tx.respond(createResponse(invite, 500, 'Server Internal Error'));
  h.transport.last()!.fail();
  t.same(errors, [CONNECTION_REFUSED.code]);
  t.equal(tx.state, 'Completed');
  h.clock.advance(64 * 500);
  t.equal(tx.state, 'Terminated');
  t.same(h.layer.size, { client: 0, server: 0 });
});

t.test('a TU that throws in onRequest still gets the INVITE answered (500) so the transaction can end', async (t) => {
  const h = makeHarness({ onRequest: () => { throw new Error('TU bug'); } });
  t.doesNotThrow(() => h.layer.receiveRequest(incomingInvite()));
  t.same(h.transport.responses().map((s) => s.message.status), [500]);
  h.clock.advance(64 * 500);
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
});

t.test('respond() never throws: invalid status and responses after termination are logged and dropped', async (t) => {
  const h = makeHarness();
  const invite = incomingInvite({ viaTransport: 'TCP', transport: 'tcp' });
  h.layer.receiveRequest(invite);
  const tx = only(h);
  const bad = createResponse(invite, 200, 'OK');
  bad.status = 99;
  t.doesNotThrow(() => tx.respond(bad));
  tx.respond(createResponse(invite, 404, 'Not Found'));
  h.layer.receiveRequest(ackFor(invite, h));
  t.equal(tx.state, 'Terminated');
  t.doesNotThrow(() => tx.respond(createResponse(invite, 404, 'Not Found')));
  t.same(h.transport.responses().map((s) => s.message.status), [404]);
});
