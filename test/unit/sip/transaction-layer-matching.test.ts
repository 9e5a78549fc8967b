/**
 * Matching (RFC 3261 §17.1.3, §17.2.3 including the RFC 2543 fallback) and
 * finding the INVITE a CANCEL cancels (§9.2).
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { createCancel } from '../../../src/sip/transaction/create-cancel.js';
import { createResponse } from '../../../src/sip/transaction/create-response.js';
import { generateBranch } from '../../../src/sip/transaction/branch.js';
import { again, makeRequest, makeResponse, parseRequest, sourceFor } from '../../helpers/sip-builders.js';
import { TransactionLayer } from '../../../src/sip/transaction/transaction-layer.js';
import { makeHarness, recordingHandler, UDP_DEST } from '../../helpers/transaction-harness.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures');

t.test('§17.2.3: a request matches only if branch AND sent-by match; the same branch from another sent-by is a new transaction', async (t) => {
  const h = makeHarness();
  h.layer.receiveRequest(makeRequest('OPTIONS', { branch: 'z9hG4bKsame', sentBy: '192.0.2.10:5060' }));
  h.layer.receiveRequest(makeRequest('OPTIONS', { branch: 'z9hG4bKsame', sentBy: '192.0.2.99:5060' }));
  h.layer.receiveRequest(makeRequest('OPTIONS', { branch: 'z9hG4bKsame', sentBy: '192.0.2.10:5060' }));
  t.equal(h.requests.length, 2);
  t.equal(h.layer.size.server, 2);
});

t.test('§17.2.3: sent-by host compares case-insensitively', async (t) => {
  const h = makeHarness();
  h.layer.receiveRequest(makeRequest('OPTIONS', { branch: 'z9hG4bKcase', sentBy: 'PC.Example.COM:5060' }));
  h.layer.receiveRequest(makeRequest('OPTIONS', { branch: 'z9hG4bKcase', sentBy: 'pc.example.com:5060' }));
  t.equal(h.requests.length, 1);
});

t.test('§9.2: a CANCEL MUST be its own server transaction, and findInviteForCancel MUST return the INVITE transaction with the same branch', async (t) => {
  const h = makeHarness();
  const invite = makeRequest('INVITE', { branch: 'z9hG4bKcancelme' });
  h.layer.receiveRequest(invite);
  const ist = h.requests[0]!.tx;
  const cancel = createCancel(invite);
  cancel.source = sourceFor('udp');
  h.layer.receiveRequest(cancel);
  t.equal(h.requests.length, 2, 'CANCEL reaches the TU as a new request');
  const cancelTx = h.requests[1]!.tx;
  t.not(cancelTx, ist);
  t.equal(cancelTx.isInvite, false);
  t.equal(h.layer.findInviteForCancel(cancel), ist);
  t.equal(h.layer.size.server, 2);

  // The proxy answers: 200 to the CANCEL, 487 to the INVITE.
  cancelTx.respond(createResponse(cancel, 200, 'OK'));
  ist.respond(createResponse(invite, 487, 'Request Terminated'));
  h.layer.receiveRequest(again(cancel));
  t.equal(h.requests.length, 2, 'a retransmitted CANCEL matches its own transaction');
  t.same(h.transport.responses().map((s) => `${s.message.status} ${s.message.cseq.method}`), ['200 CANCEL', '487 INVITE', '200 CANCEL']);
  h.clock.advance(64 * 500);
  t.same(h.layer.size, { client: 0, server: 0 });
});

t.test('§9.2: a CANCEL matching no INVITE (other branch, other sent-by, or INVITE gone) finds nothing, so the proxy can answer 481', async (t) => {
  const h = makeHarness();
  const invite = makeRequest('INVITE', { branch: 'z9hG4bKlive' });
  h.layer.receiveRequest(invite);
  t.equal(h.layer.findInviteForCancel(createCancel(makeRequest('INVITE', { branch: 'z9hG4bKother' }))), undefined);
  t.equal(h.layer.findInviteForCancel(createCancel(makeRequest('INVITE', { branch: 'z9hG4bKlive', sentBy: '203.0.113.1' }))), undefined);
  const opt = makeRequest('OPTIONS', { branch: 'z9hG4bKopt' });
  h.layer.receiveRequest(opt);
  t.equal(h.layer.findInviteForCancel(createCancel(opt)), undefined, 'only INVITE transactions are found');
  h.requests[0]!.tx.respond(createResponse(invite, 200, 'OK'));
  h.clock.advance(64 * 500);
  t.equal(h.layer.findInviteForCancel(createCancel(invite)), undefined, 'after Timer L');
  t.equal(h.layer.findInviteForCancel(makeRequest('CANCEL').remove('via')), undefined, 'no Via: nothing, no throw');
});

t.test('RFC 2543 fallback (inv2543 fixture, no branch): retransmission, ACK and CANCEL match by Request-URI, tags, Call-ID, CSeq, top Via', async (t) => {
  const h = makeHarness();
  const text = readFileSync(join(fixtures, 'rfc4475', 'inv2543.sip'));
  const load = () => {
    const r = parseRequest(text.toString('latin1'));
    r.source = sourceFor('udp');
    return r;
  };
  const invite = load();
  t.equal(invite.topVia.branch, undefined, 'fixture has no branch');
  h.layer.receiveRequest(invite);
  t.equal(h.requests.length, 1);
  const ist = h.requests[0]!.tx;
  ist.respond(createResponse(invite, 180, 'Ringing', { toTag: 'uas-2543' }));
  h.layer.receiveRequest(load());
  t.equal(h.requests.length, 1, 'retransmission matched');
  t.same(h.transport.responses().map((s) => s.message.status), [180, 180]);

  const cancel = createCancel(invite);
  cancel.source = sourceFor('udp');
  t.equal(h.layer.findInviteForCancel(cancel), ist, 'CANCEL finds the INVITE');

  ist.respond(createResponse(invite, 486, 'Busy Here', { toTag: 'uas-2543' }));
  const ackLines = (toTag: string) => [
    'ACK sip:UserB@example.com SIP/2.0',
    'Via: SIP/2.0/UDP iftgw.example.com',
    'From: <sip:+13035551111@ift.client.example.net;user=phone>',
    `To: sip:+16505552222@ss1.example.net;user=phone;tag=${toTag}`,
    'Call-ID: inv2543.1717@ift.client.example.com',
    'CSeq: 56 ACK',
    '', '',
  ].join('\r\n');
  const wrongAck = parseRequest(ackLines('someone-else'));
  wrongAck.source = sourceFor('udp');
  h.layer.receiveRequest(wrongAck);
  t.equal(h.acks.length, 1, 'an ACK whose To tag is not our response tag does not match');
  t.equal(ist.state, 'Completed');
  const ack = parseRequest(ackLines('uas-2543'));
  ack.source = sourceFor('udp');
  h.layer.receiveRequest(ack);
  t.equal(ist.state, 'Confirmed', 'the ACK for the 486 matched and was absorbed');
  t.equal(h.acks.length, 1);
  t.equal(ist.lastResponse?.to.tag, 'uas-2543', 'an RFC 2543 transaction keeps the To tag its ACKs are matched by');
  const again2543 = parseRequest(ackLines('uas-2543'));
  again2543.source = sourceFor('udp');
  h.layer.receiveRequest(again2543);
  t.equal(h.acks.length, 1, 'a retransmitted ACK still matches in Confirmed, and is absorbed');
  h.clock.advance(5000);
  t.same(h.layer.size, { client: 0, server: 0 });
});

t.test('RFC 2543 fallback for non-INVITE: To tag and CSeq method are part of the match', async (t) => {
  const h = makeHarness();
  const bye = makeRequest('BYE', { branch: null, toTag: 'd1', cseq: 7 });
  h.layer.receiveRequest(bye);
  h.layer.receiveRequest(again(bye));
  t.equal(h.requests.length, 1);
  h.layer.receiveRequest(makeRequest('BYE', { branch: null, toTag: 'd2', cseq: 7 }));
  h.layer.receiveRequest(makeRequest('INFO', { branch: null, toTag: 'd1', cseq: 7 }));
  t.equal(h.requests.length, 3);
  for (const r of h.requests) r.tx.respond(createResponse(r.req, 200, 'OK'));
  h.clock.advance(64 * 500);
  t.same(h.layer.size, { client: 0, server: 0 });
});

t.test('§17.1.3: a response matches a client transaction by top Via branch AND CSeq method; anything else is a stray for the TU', async (t) => {
  const h = makeHarness();
  const handler = recordingHandler();
  const req = makeRequest('OPTIONS', { branch: generateBranch(), transport: null });
  h.layer.sendRequest(req, UDP_DEST, handler);
  const other = makeResponse(makeRequest('OPTIONS', { branch: generateBranch() }), 200, 'OK');
  h.layer.receiveResponse(other);
  const wrongMethod = makeResponse(req, 200, 'OK').set('CSeq', `${req.cseq.seq} INFO`);
  h.layer.receiveResponse(wrongMethod);
  t.same(h.strays, [other, wrongMethod]);
  t.equal(handler.responses.length, 0);
  const noBranch = makeResponse(makeRequest('OPTIONS', { branch: null }), 200, 'OK');
  h.layer.receiveResponse(noBranch);
  t.equal(h.strays.length, 3, 'no branch: stray');
  h.layer.receiveResponse(makeResponse(req, 200, 'OK'));
  t.equal(handler.responses.length, 1);
});

t.test('messages without Via / CSeq, or with a status outside 100-699, are dropped without throwing', async (t) => {
  const h = makeHarness();
  const noVia = makeRequest('INVITE').remove('via');
  const noCseq = makeRequest('OPTIONS').remove('cseq');
  const badFrom = makeRequest('OPTIONS', { branch: null }).set('from', '<<<');
  t.doesNotThrow(() => h.layer.receiveRequest(noVia));
  t.doesNotThrow(() => h.layer.receiveRequest(noCseq));
  t.doesNotThrow(() => h.layer.receiveRequest(badFrom));
  const res = makeResponse(makeRequest('OPTIONS'), 200, 'OK');
  const weird = makeResponse(makeRequest('OPTIONS'), 200, 'OK');
  weird.status = 700;
  t.doesNotThrow(() => h.layer.receiveResponse(res.remove('via')));
  t.doesNotThrow(() => h.layer.receiveResponse(weird));
  t.equal(h.requests.length, 0, 'no transaction for a request missing a mandatory header');
  t.same(h.layer.size, { client: 0, server: 0 });
  t.equal(h.strays.length, 0);
});

t.test('a TU whose onAck / onStrayResponse throw cannot make receive methods throw', async (t) => {
  const h = makeHarness();
  const layer = new TransactionLayer({
    transport: h.transport, clock: h.clock, timers: { t1: 500, t2: 4000, t4: 5000 }, log: h.log,
    tu: {
      onRequest: () => undefined,
      onAck: () => { throw new Error('TU bug'); },
      onStrayResponse: () => { throw new Error('TU bug'); },
    },
  });
  t.doesNotThrow(() => layer.receiveRequest(makeRequest('ACK', { branch: 'z9hG4bKlonely' })));
  t.doesNotThrow(() => layer.receiveResponse(makeResponse(makeRequest('OPTIONS'), 200, 'OK')));
  t.equal(h.log.at('error').length, 2);
});
