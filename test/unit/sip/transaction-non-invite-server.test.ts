/** Non-INVITE server transaction, RFC 3261 §17.2.2 (Figure 8). */
import t from 'tap';
import { createResponse } from '../../../src/sip/transaction/create-response.js';
import type { ServerTransaction } from '../../../src/sip/transaction/transaction-user.js';
import { again, makeRequest } from '../../helpers/sip-builders.js';
import { makeHarness } from '../../helpers/transaction-harness.js';

function only(h: ReturnType<typeof makeHarness>): ServerTransaction {
  const r = h.requests[0];
  if (!r) throw new Error('no server transaction');
  return r.tx;
}

t.test('Trying: the request MUST be passed to the TU once; retransmissions MUST be discarded; no automatic 100', async (t) => {
  const h = makeHarness();
  const req = makeRequest('OPTIONS');
  h.layer.receiveRequest(req);
  h.layer.receiveRequest(again(req));
  h.clock.advance(1000);
  t.equal(h.requests.length, 1);
  t.equal(only(h).state, 'Trying');
  t.equal(only(h).isInvite, false);
  t.equal(h.transport.sent.length, 0);
});

t.test('Proceeding: a provisional MUST be sent; a retransmission MUST re-send the most recent provisional', async (t) => {
  const h = makeHarness();
  const req = makeRequest('REGISTER');
  h.layer.receiveRequest(req);
  const tx = only(h);
  tx.respond(createResponse(req, 100, 'Trying'));
  t.equal(tx.state, 'Proceeding');
  h.layer.receiveRequest(again(req));
  t.same(h.transport.responses().map((s) => s.message.status), [100, 100]);
});

t.test('Completed: the final response MUST be re-sent for each retransmission; other finals MUST be discarded; Timer J = 64*T1 over UDP', async (t) => {
  const h = makeHarness();
  const req = makeRequest('BYE', { toTag: 'dialog' });
  h.layer.receiveRequest(req);
  const tx = only(h);
  tx.respond(createResponse(req, 200, 'OK'));
  t.equal(tx.state, 'Completed');
  tx.respond(createResponse(req, 500, 'Server Internal Error'));
  h.clock.advance(1000);
  h.layer.receiveRequest(again(req));
  h.layer.receiveRequest(again(req));
  t.same(h.transport.responses().map((s) => s.message.status), [200, 200, 200]);
  // What is re-sent are the bytes first sent, kept without the parsed response.
  const [first, ...resent] = h.transport.responses().map((s) => s.message.toBuffer());
  for (const b of resent) t.ok(b.equals(first!), 'a retransmission is the same bytes');
  t.not(tx.lastResponse, h.transport.responses()[0]?.message, 'the response object is not kept');
  t.equal(tx.lastResponse?.get('content-type'), undefined, 'only the rows a retransmission needs are kept');
  t.equal(tx.lastResponse?.topVia.branch, req.topVia.branch);
  t.equal(h.requests.length, 1);
  h.clock.advance(64 * 500 - 1000 - 1);
  t.equal(tx.state, 'Completed');
  h.clock.advance(1);
  t.equal(tx.state, 'Terminated');
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
  h.layer.receiveRequest(again(req));
  t.equal(h.requests.length, 2, 'after Timer J a retransmission is a new transaction');
});

t.test('Timer J MUST be zero over a reliable transport', async (t) => {
  let terminated = 0;
  const h = makeHarness({ onRequest: (tx) => { tx.onTerminated = () => { terminated++; }; } });
  const req = makeRequest('MESSAGE', { viaTransport: 'TCP', transport: 'tcp' });
  h.layer.receiveRequest(req);
  const tx = only(h);
  tx.respond(createResponse(req, 202, 'Accepted'));
  t.equal(tx.state, 'Terminated');
  t.equal(terminated, 1);
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.clock.pending, 0);
});

t.test('a transport error is reported to the TU; the transaction stays and Timer J ends it', async (t) => {
  const errors: string[] = [];
  const h = makeHarness({ onRequest: (tx) => { tx.onTransportError = (_tx, err) => errors.push(err.code); } });
  const req = makeRequest('OPTIONS');
  h.layer.receiveRequest(req);
  const tx = only(h);
  tx.respond(createResponse(req, 200, 'OK'));
  h.transport.last()!.fail({ code: 'ECONNRESET', message: 'reset' });
  t.same(errors, ['ECONNRESET']);
  t.equal(tx.state, 'Completed');
  h.clock.advance(64 * 500);
  t.same(h.layer.size, { client: 0, server: 0 });
});
