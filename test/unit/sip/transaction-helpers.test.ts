/** Branch and tag generation, the Via builder, createResponse (§8.2.6) and createCancel (§9.1). */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { TOKEN } from '../../../src/sip/message/grammar.js';
import { SipRequest } from '../../../src/sip/message/message.js';
import { parseVia } from '../../../src/sip/message/via.js';
import { generateBranch } from '../../../src/sip/transaction/branch.js';
import { branchOfKey, RFC2543_KEY_PREFIX } from '../../../src/sip/transaction/transaction-base.js';
import { buildVia } from '../../../src/sip/transaction/build-via.js';
import { createCancel } from '../../../src/sip/transaction/create-cancel.js';
import { createResponse, generateTag } from '../../../src/sip/transaction/create-response.js';
import { makeRequest, parseRequest, parseResponse } from '../../helpers/sip-builders.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures');

function isToken(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || TOKEN[c] !== 1) return false;
  }
  return s.length > 0;
}

t.test('§8.1.1.7: a branch MUST begin with z9hG4bK, be a token, and be unique (200,000 draws)', async (t) => {
  const seen = new Set<string>();
  let bad = 0;
  for (let i = 0; i < 200_000; i++) {
    const b = generateBranch();
    if (!b.startsWith('z9hG4bK') || !isToken(b) || b.length > 40) bad++;
    seen.add(b);
  }
  t.equal(bad, 0);
  t.equal(seen.size, 200_000);
});

t.test('branches are not predictable from the previous one (random suffix)', async (t) => {
  const a = generateBranch();
  const b = generateBranch();
  t.not(a.slice(-7), b.slice(-7));
});

t.test('§19.3: tags MUST be unique with at least 32 bits of randomness', async (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 100_000; i++) seen.add(generateTag());
  t.equal(seen.size, 100_000);
  const tag = generateTag();
  t.ok(isToken(tag));
  t.ok(tag.length * Math.log2(36) >= 64, '≥ 64 bits of base36');
});

t.test('buildVia: transport upper-case, sent-by, branch, rport, IPv6 in brackets; the result parses back', async (t) => {
  const v = buildVia({ transport: 'udp', host: '192.0.2.1', port: 5060, branch: 'z9hG4bKabc', rport: true });
  t.equal(v, 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc;rport');
  const w = parseVia(buildVia({ transport: 'wss', host: '2001:db8::1' }));
  t.equal(w.transport, 'WSS');
  t.equal(w.host, '[2001:db8::1]');
  t.equal(w.port, undefined);
  t.ok(w.isRfc3261Branch, 'a fresh branch is generated');
});

t.test('§8.2.6.2: a response MUST copy every Via in order, From, Call-ID, CSeq, and To adding a tag when the request had none', async (t) => {
  const req = makeRequest('INVITE', {
    lowerVias: ['SIP/2.0/TCP 203.0.113.4;branch=z9hG4bK2', 'SIP/2.0/UDP 203.0.113.5:5070;branch=z9hG4bK3;received=203.0.113.5'],
    headers: ['Timestamp: 1.5 0.2', 'Contact: <sip:alice@192.0.2.10>'],
  });
  const res = parseResponse(createResponse(req, 486, 'Busy Here', { toTag: 'abc' }).toBuffer());
  t.equal(res.status, 486);
  t.equal(res.reason, 'Busy Here');
  t.same(res.getAll('via'), req.getAll('via'));
  t.equal(res.get('from'), req.get('from'));
  t.equal(res.get('call-id'), req.get('call-id'));
  t.equal(res.get('cseq'), req.get('cseq'));
  t.equal(res.to.uri.toString(), req.to.uri.toString());
  t.equal(res.to.tag, 'abc');
  t.equal(res.get('timestamp'), undefined, 'Timestamp only in 100');
  t.equal(res.get('contact'), undefined);
  t.ok(createResponse(req, 404, 'Not Found').to.tag, 'a generated tag when none is given');
});

t.test('§8.2.6.2: if the request To has a tag, the response To MUST equal it', async (t) => {
  const req = makeRequest('BYE', { toTag: 'dialog-tag' });
  const res = createResponse(req, 200, 'OK', { toTag: 'ignored' });
  t.equal(res.get('to'), req.get('to'));
});

t.test('§8.2.6.1: 100 Trying MUST copy Timestamp, and needs no To tag', async (t) => {
  const req = makeRequest('INVITE', { headers: ['Timestamp: 54'] });
  const res = createResponse(req, 100, 'Trying');
  t.equal(res.get('timestamp'), '54');
  t.equal(res.to.tag, undefined);
});

t.test('createResponse with a bare addr-spec To (inv2543) adds the tag as a header parameter', async (t) => {
  const req = parseRequest(readFileSync(join(fixtures, 'rfc4475', 'inv2543.sip')).toString('latin1'));
  const res = parseResponse(createResponse(req, 180, 'Ringing', { toTag: 'x1' }).toBuffer());
  t.equal(res.to.tag, 'x1');
  t.equal(res.to.params.get('user'), 'phone', 'user=phone stays a header parameter, as in the request');
  t.equal(res.to.uri.toString(), req.to.uri.toString());
});

t.test('§9.1: a CANCEL MUST copy Request-URI, Call-ID, To, From, the CSeq number, only the top Via, and the Route set', async (t) => {
  const inv = makeRequest('INVITE', {
    uri: 'sip:bob@198.51.100.7', cseq: 9, maxForwards: 69,
    lowerVias: ['SIP/2.0/UDP 203.0.113.5;branch=z9hG4bKup'],
    routes: ['<sip:p1.example.net;lr>'],
    headers: ['Content-Type: application/sdp'], body: 'v=0\r\n',
  });
  const c = createCancel(inv);
  t.equal(c.method, 'CANCEL');
  t.equal(c.uri.toString(), inv.uri.toString());
  t.same(c.getAll('via'), [inv.getAll('via')[0]]);
  t.same(c.getAll('route'), inv.getAll('route'));
  for (const h of ['from', 'to', 'call-id']) t.equal(c.get(h), inv.get(h), h);
  t.equal(c.get('cseq'), '9 CANCEL');
  t.equal(c.get('max-forwards'), '69');
  t.equal(c.body.length, 0);
  t.equal(parseRequest(c.toString()).method, 'CANCEL', 'parses back');
});

t.test('branchOfKey reads the branch back from client and RFC 3261 server keys; RFC 2543 keys have none', async (t) => {
  t.equal(branchOfKey('z9hG4bK-abc INVITE'), 'z9hG4bK-abc');
  t.equal(branchOfKey('z9hG4bK-abc 192.0.2.1:5060 BYE'), 'z9hG4bK-abc');
  t.equal(branchOfKey(`${RFC2543_KEY_PREFIX}sip:a@b\n*\n1\nc\n1\nINVITE\nSIP/2.0/UDP h`), undefined);
});

t.test('§9.1: no CANCEL is built from a request released after its final response', async (t) => {
  t.throws(() => createCancel(SipRequest.released('INVITE')), { name: 'TransactionError', code: 'DP_SIP_TX_NOTHING_TO_CANCEL' });
});
