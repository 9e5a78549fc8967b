// Message-layer micro-benchmark: parse and re-serialise the six messages a
// proxied call carries (INVITE, 180, 200 with SDP, ACK, BYE, 200 for BYE),
// doing to each what the proxy does (requests: Via stamped, cloned,
// Max-Forwards decremented, Record-Route and Via pushed; responses: top Via
// popped), then toBuffer(). Reports the best of several rounds in µs per
// call, so that an optimisation of the parser/serialiser can be judged on a
// noisy machine without a load test.
//
//   npm run build && node dist/test/bench/message-bench.js [--rounds 15] [--calls 20000]
import { parseArgs } from 'node:util';

import { parseMessage } from '../../src/sip/message/parser.js';
import { SipRequest, SipResponse } from '../../src/sip/message/message.js';
import { buildVia } from '../../src/sip/transaction/build-via.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '15' }, calls: { type: 'string', default: '20000' } } });
const ROUNDS = Number(values.rounds);
const CALLS = Number(values.calls);

const SDP = 'v=0\r\no=sipp 53655765 2353687637 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 101\r\n' +
  'a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n';
const P = '127.0.0.1:5060';
const FROM = 'From: "SIPp" <sip:18912345678@127.0.0.2:5070>;tag=4711SIPpTag001';
const CALLID = 'Call-ID: 1-4711@127.0.0.2';
const RR = `Record-Route: <sip:${P};transport=udp;lr>`;
const UAS_VIA = `Via: SIP/2.0/UDP ${P};branch=z9hG4bK1eca9oe100fazmt.1a2jk58n6f8kd`;
const UAC_VIA = 'Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-4711-1-0;rport=5070;received=127.0.0.2';
const TO_TAG = `To: <sip:4008123456@${P}>;tag=4712SIPpTag011`;

const msg = (lines: string[], body = ''): Buffer =>
  Buffer.from(`${lines.join('\r\n')}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);

const MESSAGES: Buffer[] = [
  msg([`INVITE sip:4008123456@${P} SIP/2.0`, 'Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-4711-1-0;rport', 'Max-Forwards: 70', FROM,
    `To: <sip:4008123456@${P}>`, CALLID, 'CSeq: 1 INVITE', 'Contact: <sip:18912345678@127.0.0.2:5070;transport=UDP>',
    'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS', 'User-Agent: dialplane-sipp-uac', 'Content-Type: application/sdp'], SDP),
  msg(['SIP/2.0 180 Ringing', UAS_VIA, UAC_VIA, RR, FROM, TO_TAG, CALLID, 'CSeq: 1 INVITE', 'Contact: <sip:127.0.0.1:5080;transport=UDP>']),
  msg(['SIP/2.0 200 OK', UAS_VIA, UAC_VIA, RR, FROM, TO_TAG, CALLID, 'CSeq: 1 INVITE', 'Contact: <sip:127.0.0.1:5080;transport=UDP>',
    'Content-Type: application/sdp'], SDP),
  msg(['ACK sip:127.0.0.1:5080;transport=UDP SIP/2.0', `Route: <sip:${P};transport=udp;lr>`, 'Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-4711-1-5;rport',
    'Max-Forwards: 70', FROM, TO_TAG, CALLID, 'CSeq: 1 ACK', 'Contact: <sip:18912345678@127.0.0.2:5070;transport=UDP>']),
  msg(['BYE sip:127.0.0.1:5080;transport=UDP SIP/2.0', `Route: <sip:${P};transport=udp;lr>`, 'Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-4711-1-7;rport',
    'Max-Forwards: 70', FROM, TO_TAG, CALLID, 'CSeq: 2 BYE', 'Contact: <sip:18912345678@127.0.0.2:5070;transport=UDP>']),
  msg(['SIP/2.0 200 OK', UAS_VIA, UAC_VIA, FROM, TO_TAG, CALLID, 'CSeq: 2 BYE', 'Contact: <sip:127.0.0.1:5080;transport=UDP>']),
];

let sink = 0;
function oneCall(): void {
  for (const buf of MESSAGES) {
    const r = parseMessage(buf, { stream: false });
    if (r.kind === 'error') throw new Error(r.error.reason);
    const m = r.message;
    if (m instanceof SipRequest) {
      // What the transport (received/rport), transaction layer and proxy read and change.
      const via = m.topVia;
      sink += via.branch?.length ?? 0;
      if (via.rport === null) {
        m.removeFirst('via');
        m.prepend('via', `${m.getAll('via')[0] ?? ''};rport=5070;received=127.0.0.2`);
      }
      sink += m.cseq.seq + (m.to.tag?.length ?? 0) + (m.from.tag?.length ?? 0);
      if (m.method !== 'INVITE') sink += m.get('route')?.length ?? 0;
      const fwd = m.clone();
      fwd.set('max-forwards', String((fwd.maxForwards ?? 70) - 1));
      if (m.method === 'INVITE') fwd.prepend('record-route', `<sip:${P};transport=udp;lr>`);
      fwd.prepend('via', buildVia({ transport: 'udp', host: '127.0.0.1', port: 5060 }));
      sink += fwd.toBuffer().length;
    } else if (m instanceof SipResponse) {
      sink += m.topVia.branch?.length ?? 0;
      sink += m.cseq.seq;
      const up = m.clone();
      up.removeFirst('via');
      sink += up.toBuffer().length;
    }
  }
}

for (let i = 0; i < CALLS; i++) oneCall(); // warm-up
let best = Infinity;
const all: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) oneCall();
  const us = Number(process.hrtime.bigint() - t0) / 1000 / CALLS;
  all.push(us);
  best = Math.min(best, us);
}
all.sort((a, b) => a - b);
process.stdout.write(`message path: best ${best.toFixed(2)} us/call, median ${all[Math.floor(all.length / 2)]?.toFixed(2)} us/call (${ROUNDS} rounds x ${CALLS} calls; sink ${sink % 7})\n`);
