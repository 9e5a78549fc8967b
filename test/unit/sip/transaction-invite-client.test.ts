/**
 * INVITE client transaction, RFC 3261 §17.1.1 (Figure 5) with the RFC 6026
 * "Accepted" state. Time is driven by ManualClock; the transport is a fake.
 */
import t from 'tap';
import { generateBranch } from '../../../src/sip/transaction/branch.js';
import type { ClientTransaction } from '../../../src/sip/transaction/transaction-user.js';
import { again, makeRequest, makeResponse } from '../../helpers/sip-builders.js';
import { CONNECTION_REFUSED } from '../../helpers/fake-transaction-transport.js';
import { makeHarness, recordingHandler, TCP_DEST, UDP_DEST } from '../../helpers/transaction-harness.js';

function outgoingInvite(extra: Parameters<typeof makeRequest>[1] = {}) {
  return makeRequest('INVITE', { branch: generateBranch(), sentBy: '192.0.2.1:5060', transport: null, cseq: 314, ...extra });
}

t.test('Timer A: over UDP the INVITE MUST be retransmitted at intervals that double from T1 (500, 1000, 2000... ms), and Timer B MUST time out at 64*T1', async (t) => {
  const h = makeHarness();
  const handler = recordingHandler();
  const start = h.clock.now();
  const tx = h.layer.sendRequest(outgoingInvite(), UDP_DEST, handler);
  t.equal(tx.state, 'Calling');
  h.clock.advance(64 * 500 - 1);
  t.same(h.transport.requests('INVITE').map((s) => s.at - start), [0, 500, 1500, 3500, 7500, 15500, 31500]);
  t.equal(handler.timeouts, 0);
  h.clock.advance(1);
  t.equal(handler.timeouts, 1, 'TU informed of the timeout once');
  t.equal(tx.state, 'Terminated');
  t.equal(h.transport.requests('ACK').length, 0, 'Timer B: "The client transaction MUST NOT generate an ACK"');
  t.equal(h.transport.requests('INVITE').length, 7, 'no retransmission after Timer B');
  t.same(h.layer.size, { client: 0, server: 0 }, 'no leak');
  t.equal(h.clock.pending, 0, 'no timer left');
  t.equal(handler.terminated, 1);
});

t.test('Timer A MUST NOT run over a reliable transport (TCP); Timer B still fires at 64*T1', async (t) => {
  const h = makeHarness();
  const handler = recordingHandler();
  h.layer.sendRequest(outgoingInvite(), TCP_DEST, handler);
  h.clock.advance(64 * 500);
  t.equal(h.transport.requests('INVITE').length, 1, 'sent once, never retransmitted');
  t.equal(handler.timeouts, 1);
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
});

t.test('a provisional response MUST move Calling to Proceeding, stop retransmissions and be passed to the TU', async (t) => {
  const h = makeHarness();
  const handler = recordingHandler();
  const invite = outgoingInvite();
  const tx = h.layer.sendRequest(invite, UDP_DEST, handler);
  h.clock.advance(700);
  h.layer.receiveResponse(makeResponse(invite, 100, 'Trying', null));
  h.layer.receiveResponse(makeResponse(invite, 180, 'Ringing'));
  t.equal(tx.state, 'Proceeding');
  t.same(handler.responses.map((r) => r.status), [100, 180], 'every provisional goes up');
  h.clock.advance(10 * 64 * 500);
  t.equal(h.transport.requests('INVITE').length, 2, 'the original and the retransmission at 500 ms only');
  t.equal(handler.timeouts, 0, 'Timer B only guards Calling');
  t.equal(h.layer.size.client, 1, 'Proceeding waits for the TU (Timer C, §16.8)');
  tx.terminate();
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
});

t.test('§17.1.1.3: the ACK for a 486 MUST have the INVITE Request-URI, Call-ID, From, top Via only, CSeq number with method ACK, Route set, and the response To (with tag)', async (t) => {
  const h = makeHarness();
  const handler = recordingHandler();
  const invite = outgoingInvite({
    uri: 'sip:bob@198.51.100.7:5060;transport=udp',
    lowerVias: ['SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKupstream;received=203.0.113.5', 'SIP/2.0/TCP 203.0.113.9;branch=z9hG4bKorigin'],
    routes: ['<sip:edge1.example.net;lr>', '<sip:edge2.example.net;lr>'],
    maxForwards: 69,
    headers: ['Contact: <sip:alice@203.0.113.9>', 'Content-Type: application/sdp'],
    body: 'v=0\r\n',
  });
  h.layer.sendRequest(invite, UDP_DEST, handler);
  const busy = makeResponse(invite, 486, 'Busy Here', 'callee-tag');
  h.layer.receiveResponse(busy);

  const acks = h.transport.requests('ACK');
  t.equal(acks.length, 1);
  const ack = acks[0]!.message;
  t.same(acks[0]!.dest, UDP_DEST, '"The ACK MUST be sent to the same address, port, and transport to which the original request was sent."');
  t.equal(ack.uri.toString(), invite.uri.toString(), 'Request-URI');
  t.same(ack.getAll('via'), [invite.getAll('via')[0]], 'a single Via equal to the INVITE top Via');
  t.same(ack.getAll('route'), invite.getAll('route'), 'Route header fields of the INVITE');
  t.equal(ack.get('from'), invite.get('from'), 'From');
  t.equal(ack.get('to'), busy.get('to'), 'To of the response');
  t.equal(ack.to.tag, 'callee-tag');
  t.equal(ack.get('call-id'), invite.get('call-id'), 'Call-ID');
  t.equal(ack.get('cseq'), '314 ACK', 'CSeq number of the INVITE, method ACK');
  t.equal(ack.get('contact'), undefined, 'nothing else copied');
  t.equal(ack.body.length, 0);
  t.same(handler.responses.map((r) => r.status), [486], 'the 486 MUST be passed to the TU');
});

t.test('a retransmitted 486 in Completed MUST re-send the ACK and MUST NOT reach the TU; Timer D (32 s over UDP) terminates', async (t) => {
  const h = makeHarness();
  const handler = recordingHandler();
  const invite = outgoingInvite();
  const tx = h.layer.sendRequest(invite, UDP_DEST, handler);
  const busy = makeResponse(invite, 486, 'Busy Here');
  h.layer.receiveResponse(busy);
  t.equal(tx.state, 'Completed');
  h.clock.advance(500);
  h.layer.receiveResponse(again(busy));
  h.layer.receiveResponse(again(busy));
  t.equal(handler.responses.length, 1, 'TU sees the 486 once');
  t.equal(h.transport.requests('ACK').length, 3, 'ACK re-sent for each retransmission');
  t.equal(h.transport.requests('INVITE').length, 1, 'no INVITE retransmission after a final response');
  h.clock.advance(32_000 - 500 - 1);
  t.equal(tx.state, 'Completed');
  h.clock.advance(1);
  t.equal(tx.state, 'Terminated');
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
  t.equal(h.strays.length, 0);
});

t.test('the ACK MUST be generated even if the transport is reliable, and Timer D is 0 there', async (t) => {
  const h = makeHarness();
  const handler = recordingHandler();
  const invite = outgoingInvite({ viaTransport: 'TCP' });
  const tx = h.layer.sendRequest(invite, TCP_DEST, handler);
  h.layer.receiveResponse(makeResponse(invite, 603, 'Decline'));
  t.equal(h.transport.requests('ACK').length, 1);
  t.equal(tx.state, 'Terminated');
  t.equal(handler.terminated, 1);
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
});

t.test('RFC 6026: a 2xx MUST move to Accepted and go to the TU; retransmitted 2xx MUST go to the TU again; the transaction MUST NOT ACK a 2xx', async (t) => {
  const h = makeHarness();
  const handler = recordingHandler();
  const invite = outgoingInvite();
  const tx = h.layer.sendRequest(invite, UDP_DEST, handler);
  h.layer.receiveResponse(makeResponse(invite, 180, 'Ringing', 'a'));
  const ok = makeResponse(invite, 200, 'OK', 'a');
  h.layer.receiveResponse(ok);
  t.equal(tx.state, 'Accepted');
  h.clock.advance(500);
  h.layer.receiveResponse(again(ok));
  h.layer.receiveResponse(makeResponse(invite, 200, 'OK', 'other-fork'));
  t.same(handler.responses.map((r) => `${r.status}/${r.to.tag ?? ''}`), ['180/a', '200/a', '200/a', '200/other-fork']);
  h.layer.receiveResponse(makeResponse(invite, 486, 'Busy Here', 'late'));
  t.equal(handler.responses.length, 4, 'a non-2xx in Accepted is discarded');
  t.equal(h.transport.requests('ACK').length, 0, 'no ACK from the transaction for a 2xx');
  t.equal(h.strays.length, 0, 'retransmissions within Timer M are not stray');
  h.clock.advance(64 * 500 - 500);
  t.equal(tx.state, 'Terminated', 'Timer M = 64*T1');
  h.layer.receiveResponse(again(ok));
  t.equal(h.strays.length, 1, 'after Timer M a 2xx retransmission is a stray response for the TU');
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
});

t.test('a 2xx arriving after a non-2xx final is handed to the TU as stray, never lost (§16.7 step 5)', async (t) => {
  const h = makeHarness();
  const handler = recordingHandler();
  const invite = outgoingInvite();
  h.layer.sendRequest(invite, UDP_DEST, handler);
  h.layer.receiveResponse(makeResponse(invite, 487, 'Request Terminated'));
  h.layer.receiveResponse(makeResponse(invite, 200, 'OK', 'fork'));
  t.equal(handler.responses.length, 1);
  t.same(h.strays.map((r) => r.status), [200]);
  h.clock.advance(32_000);
  t.same(h.layer.size, { client: 0, server: 0 });
});

t.test('§17.1.4: a transport error MUST be reported to the TU and the transaction MUST terminate', async (t) => {
  for (const when of ['Calling', 'Completed'] as const) {
    const h = makeHarness();
    const handler = recordingHandler();
    const invite = outgoingInvite();
    const tx = h.layer.sendRequest(invite, UDP_DEST, handler);
    if (when === 'Completed') h.layer.receiveResponse(makeResponse(invite, 404, 'Not Found'));
    h.transport.last()!.fail();
    t.same(handler.errors, [CONNECTION_REFUSED], `in ${when}`);
    t.equal(tx.state, 'Terminated');
    t.same(h.layer.size, { client: 0, server: 0 });
    t.equal(h.clock.pending, 0);
    h.transport.last()!.fail();
    t.equal(handler.errors.length, 1, 'a late error after termination is ignored');
  }
});

t.test('a transport error reported synchronously during the first send terminates cleanly', async (t) => {
  const h = makeHarness();
  h.transport.failWith = { code: 'EHOSTUNREACH', message: 'no route' };
  const handler = recordingHandler();
  const tx = h.layer.sendRequest(outgoingInvite(), UDP_DEST, handler);
  t.equal(tx.state, 'Terminated');
  t.equal(handler.errors.length, 1);
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
});

t.test('a TU that throws never breaks the state machine', async (t) => {
  const h = makeHarness();
  const invite = outgoingInvite();
  const tx: ClientTransaction = h.layer.sendRequest(invite, UDP_DEST, {
    onResponse: () => { throw new Error('TU bug'); },
    onTimeout: () => { throw new Error('TU bug'); },
    onTransportError: () => { throw new Error('TU bug'); },
    onTerminated: () => { throw new Error('TU bug'); },
  });
  t.doesNotThrow(() => h.layer.receiveResponse(makeResponse(invite, 486, 'Busy Here')));
  t.equal(tx.state, 'Completed');
  t.equal(h.transport.requests('ACK').length, 1);
  t.doesNotThrow(() => h.clock.advance(32_000));
  t.same(h.layer.size, { client: 0, server: 0 });
  t.ok(h.log.at('error').length >= 2, 'logged');
});

t.test('each transaction logs through a child logger bound to { callId, branch }, state changes at debug', async (t) => {
  const h = makeHarness();
  const invite = outgoingInvite({ callId: 'log-call@example.com' });
  h.layer.sendRequest(invite, UDP_DEST, recordingHandler());
  h.layer.receiveResponse(makeResponse(invite, 180, 'Ringing'));
  const change = h.log.at('debug').find((e) => e.msg === 'transaction state change');
  t.ok(change);
  t.equal(change!.bindings.callId, 'log-call@example.com');
  t.equal(change!.bindings.branch, invite.topVia.branch);
  t.match(change!.obj, { from: 'Calling', to: 'Proceeding' });
});
