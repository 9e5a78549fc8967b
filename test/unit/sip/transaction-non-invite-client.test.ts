/** Non-INVITE client transaction, RFC 3261 §17.1.2 (Figure 6). */
import t from 'tap';
import { SipRequest, SipResponse } from '../../../src/sip/message/message.js';
import { generateBranch } from '../../../src/sip/transaction/branch.js';
import { createCancel } from '../../../src/sip/transaction/create-cancel.js';
import { TransactionError } from '../../../src/sip/transaction/transaction-error.js';
import { again, makeRequest, makeResponse } from '../../helpers/sip-builders.js';
import { makeHarness, recordingHandler, TCP_DEST, UDP_DEST } from '../../helpers/transaction-harness.js';

function outgoing(method: string, extra: Parameters<typeof makeRequest>[1] = {}) {
  return makeRequest(method, { branch: generateBranch(), sentBy: '192.0.2.1:5060', transport: null, ...extra });
}

t.test('Timer E: over UDP the request MUST be retransmitted at T1, then doubling intervals capped at T2; Timer F MUST time out at 64*T1', async (t) => {
  const h = makeHarness();
  const handler = recordingHandler();
  const start = h.clock.now();
  const tx = h.layer.sendRequest(outgoing('OPTIONS'), UDP_DEST, handler);
  t.equal(tx.state, 'Trying');
  h.clock.advance(64 * 500 - 1);
  const at = h.transport.requests('OPTIONS').map((s) => s.at - start);
  t.same(at, [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
  const gaps = at.slice(1).map((v, i) => v - (at[i] ?? 0));
  t.same(gaps, [500, 1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000, 4000], 'MIN(2^n*T1, T2)');
  t.equal(handler.timeouts, 0);
  h.clock.advance(1);
  t.equal(handler.timeouts, 1, 'TU informed of the timeout');
  t.equal(tx.state, 'Terminated');
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
});

t.test('in Proceeding, Timer E MUST retransmit every T2; Timer F still times out', async (t) => {
  const h = makeHarness();
  const handler = recordingHandler();
  const start = h.clock.now();
  const req = outgoing('REGISTER');
  const tx = h.layer.sendRequest(req, UDP_DEST, handler);
  h.clock.advance(600);
  h.layer.receiveResponse(makeResponse(req, 100, 'Trying', null));
  t.equal(tx.state, 'Proceeding', 'a provisional MUST be passed to the TU, then Proceeding');
  t.equal(handler.responses.length, 1);
  h.clock.advance(64 * 500 - 600);
  t.same(h.transport.requests('REGISTER').map((s) => s.at - start), [0, 500, 1500, 5500, 9500, 13500, 17500, 21500, 25500, 29500]);
  t.equal(handler.timeouts, 1, 'Timer F fires in Proceeding too');
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
});

t.test('Timer E MUST NOT run over TCP; Timer F still does', async (t) => {
  const h = makeHarness();
  const handler = recordingHandler();
  h.layer.sendRequest(outgoing('BYE'), TCP_DEST, handler);
  h.clock.advance(64 * 500);
  t.equal(h.transport.requests('BYE').length, 1);
  t.equal(handler.timeouts, 1);
  t.same(h.layer.size, { client: 0, server: 0 });
});

t.test('a final response MUST go to the TU and enter Completed; retransmissions are absorbed; Timer K = T4 over UDP', async (t) => {
  const h = makeHarness();
  const handler = recordingHandler();
  const req = outgoing('BYE');
  const tx = h.layer.sendRequest(req, UDP_DEST, handler);
  h.clock.advance(100);
  const ok = makeResponse(req, 200, 'OK');
  h.layer.receiveResponse(ok);
  t.equal(tx.state, 'Completed');
  h.layer.receiveResponse(again(ok));
  h.layer.receiveResponse(again(ok));
  t.same(handler.responses.map((r) => r.status), [200], 'TU sees the final once');
  t.equal(h.strays.length, 0);
  t.equal(tx.request, SipRequest.released('BYE'), 'Completed keeps no request of its own');
  t.equal(tx.lastResponse, SipResponse.released(200), 'nor response');
  t.equal(tx.branch, req.topVia.branch, 'the branch is read back from the key');
  h.clock.advance(4999);
  t.equal(tx.state, 'Completed');
  h.clock.advance(1);
  t.equal(tx.state, 'Terminated', 'Timer K = T4');
  t.equal(h.transport.requests('BYE').length, 1, 'no retransmission after a final response');
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
});

t.test('Timer K is exactly T4 (5 s) over UDP', async (t) => {
  const h = makeHarness();
  const req = outgoing('MESSAGE');
  const tx = h.layer.sendRequest(req, UDP_DEST, recordingHandler());
  h.layer.receiveResponse(makeResponse(req, 404, 'Not Found'));
  h.clock.advance(4999);
  t.equal(tx.state, 'Completed');
  h.clock.advance(1);
  t.equal(tx.state, 'Terminated');
});

t.test('Timer K MUST be zero over a reliable transport', async (t) => {
  const h = makeHarness();
  const handler = recordingHandler();
  const req = outgoing('OPTIONS', { viaTransport: 'TCP' });
  const tx = h.layer.sendRequest(req, TCP_DEST, handler);
  h.layer.receiveResponse(makeResponse(req, 200, 'OK'));
  t.equal(tx.state, 'Terminated');
  t.equal(handler.responses.length, 1);
  t.equal(handler.terminated, 1);
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
});

t.test('§17.1.3: CANCEL shares the INVITE branch but MUST be its own transaction, matched by CSeq method', async (t) => {
  const h = makeHarness();
  const invH = recordingHandler();
  const canH = recordingHandler();
  const invite = outgoing('INVITE');
  const inv = h.layer.sendRequest(invite, UDP_DEST, invH);
  h.layer.receiveResponse(makeResponse(invite, 180, 'Ringing'));
  const cancel = createCancel(invite);
  const can = h.layer.sendRequest(cancel, UDP_DEST, canH);
  t.equal(can.branch, inv.branch);
  t.equal(h.layer.size.client, 2);
  h.layer.receiveResponse(makeResponse(cancel, 200, 'OK'));
  h.layer.receiveResponse(makeResponse(invite, 487, 'Request Terminated'));
  t.same(canH.responses.map((r) => r.status), [200]);
  t.same(invH.responses.map((r) => r.status), [180, 487]);
  t.equal(h.transport.requests('ACK').length, 1, 'the 487 is ACKed by the INVITE transaction');
  h.clock.advance(32_000);
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
});

t.test('§17.1.4: a transport error MUST be reported to the TU and terminate the transaction', async (t) => {
  const h = makeHarness();
  const handler = recordingHandler();
  const tx = h.layer.sendRequest(outgoing('OPTIONS'), UDP_DEST, handler);
  h.clock.advance(500);
  h.transport.last()!.fail({ code: 'EHOSTUNREACH', message: 'ICMP host unreachable' });
  t.same(handler.errors.map((e) => e.code), ['EHOSTUNREACH']);
  t.equal(tx.state, 'Terminated');
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
});

t.test('a late transport error in Completed is ignored: the TU already has its final response', async (t) => {
  const h = makeHarness();
  const handler = recordingHandler();
  const req = outgoing('OPTIONS');
  const tx = h.layer.sendRequest(req, UDP_DEST, handler);
  h.clock.advance(500);
  h.layer.receiveResponse(makeResponse(req, 200, 'OK'));
  h.transport.last()!.fail();
  t.equal(handler.errors.length, 0);
  t.equal(tx.state, 'Completed');
  h.clock.advance(5000);
  t.same(h.layer.size, { client: 0, server: 0 });
});

t.test('an ACK MUST NOT create a client transaction: sendRequest refuses it, sendAck sends it statelessly', async (t) => {
  const h = makeHarness();
  const ack = outgoing('ACK');
  t.throws(() => h.layer.sendRequest(ack, UDP_DEST, recordingHandler()), { code: 'DP_SIP_TX_ACK_NOT_A_TRANSACTION' });
  h.layer.sendAck(ack, UDP_DEST);
  t.equal(h.transport.requests('ACK').length, 1);
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
  t.throws(() => h.layer.sendAck(outgoing('BYE'), UDP_DEST), { code: 'DP_SIP_TX_NOT_ACK' });
  h.transport.last()!.fail();
  t.pass('a failed stateless ACK is only logged');
});

t.test('sendRequest refuses a branch without the magic cookie, a CSeq method mismatch, and a duplicate branch+method', async (t) => {
  const h = makeHarness();
  const err = (code: string) => ({ code, constructor: TransactionError });
  t.throws(() => h.layer.sendRequest(outgoing('OPTIONS', { branch: 'old2543branch' }), UDP_DEST, recordingHandler()), err('DP_SIP_TX_BAD_BRANCH'));
  t.throws(() => h.layer.sendRequest(outgoing('OPTIONS', { branch: null }), UDP_DEST, recordingHandler()), err('DP_SIP_TX_BAD_BRANCH'));
  const mismatched = outgoing('INFO').set('CSeq', '1 OPTIONS');
  t.throws(() => h.layer.sendRequest(mismatched, UDP_DEST, recordingHandler()), err('DP_SIP_TX_CSEQ_MISMATCH'));
  const req = outgoing('OPTIONS');
  h.layer.sendRequest(req, UDP_DEST, recordingHandler());
  t.throws(() => h.layer.sendRequest(again(req), UDP_DEST, recordingHandler()), err('DP_SIP_TX_DUPLICATE'));
  t.equal(h.layer.size.client, 1);
  h.clock.advance(64 * 500);
  t.same(h.layer.size, { client: 0, server: 0 });
});
