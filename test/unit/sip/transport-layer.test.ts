/**
 * Transport layer against real loopback sockets: RFC 3261 §18, RFC 3581,
 * RFC 7118. Each test binds ephemeral ports (port 0).
 */
import t from 'tap';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { WebSocket } from 'ws';
import { TransportLayer } from '../../../src/sip/transport/transport-layer.js';
import { nullLogger } from '../../../src/sip/logger.js';
import type { SipRequest, SipResponse } from '../../../src/sip/message/message.js';
import { createResponse } from '../../../src/sip/transaction/create-response.js';
import { parseMessage } from '../../../src/sip/message/parser.js';

async function layer(): Promise<{ tl: TransportLayer; requests: SipRequest[]; responses: SipResponse[] }> {
  const tl = new TransportLayer({ bind: '127.0.0.1', advertise: '127.0.0.1', udpPort: 0, tcpPort: 0, wsPort: 0, maxMessageSize: 4096, idleTimeoutMs: 60_000, log: nullLogger });
  const requests: SipRequest[] = [];
  const responses: SipResponse[] = [];
  tl.setHandlers({ onRequest: (r) => requests.push(r), onResponse: (r) => responses.push(r) });
  await tl.start();
  return { tl, requests, responses };
}

function options(viaHost: string, viaPort: number, extra = '', transport = 'UDP'): string {
  return `OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/${transport} ${viaHost}:${viaPort};branch=z9hG4bK-t-${Math.random().toString(36).slice(2)}${extra}\r\nMax-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: tl-${Math.random()}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`;
}

async function until<T>(fn: () => T | undefined, ms = 3000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

t.test('UDP: received and rport are stamped, and the response goes to received:rport (RFC 3581 §4)', async (t) => {
  const { tl, requests } = await layer();
  t.teardown(() => tl.stop());
  const client = createSocket('udp4');
  t.teardown(() => client.close());
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
  const got = new Promise<string>((r) => client.once('message', (m) => r(m.toString())));
  // sent-by names another host and port: only received/rport can bring the answer back.
  client.send(options('phone.invalid', 5999, ';rport'), tl.ports.udp ?? 0, '127.0.0.1');
  const req = await until(() => requests[0]);
  t.equal(req.topVia.received, '127.0.0.1', 'received added because sent-by is a domain name (§18.2.1)');
  t.equal(req.topVia.rport, String(client.address().port), 'rport filled with the source port');
  tl.sendResponse(createResponse(req, 200, 'OK'), () => t.fail('send error'));
  t.match(await got, /^SIP\/2\.0 200 OK/);
});

t.test('UDP: datagrams from one peer share one read-only source; another port is another source', async (t) => {
  const { tl, requests } = await layer();
  t.teardown(() => tl.stop());
  const a = createSocket('udp4');
  const b = createSocket('udp4');
  t.teardown(() => { a.close(); b.close(); });
  await new Promise<void>((r) => a.bind(0, '127.0.0.1', () => r()));
  await new Promise<void>((r) => b.bind(0, '127.0.0.1', () => r()));
  a.send(options('127.0.0.1', a.address().port), tl.ports.udp ?? 0, '127.0.0.1');
  await until(() => requests[0]);
  a.send(options('127.0.0.1', a.address().port), tl.ports.udp ?? 0, '127.0.0.1');
  b.send(options('127.0.0.1', b.address().port), tl.ports.udp ?? 0, '127.0.0.1');
  await until(() => requests[2]);
  const fromA = requests.filter((r) => r.source?.port === a.address().port);
  const fromB = requests.find((r) => r.source?.port === b.address().port);
  t.equal(fromA.length, 2);
  t.equal(fromA[0]?.source, fromA[1]?.source, 'the same object for the same address and port');
  t.not(fromB?.source, fromA[0]?.source);
  t.same(fromB?.source, { transport: 'udp', address: '127.0.0.1', port: b.address().port, localAddress: '127.0.0.1', localPort: tl.ports.udp });
});

t.test('UDP: no rport → response to received and the sent-by port (§18.2.2)', async (t) => {
  const { tl, requests } = await layer();
  t.teardown(() => tl.stop());
  const client = createSocket('udp4');
  t.teardown(() => client.close());
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
  const port = client.address().port;
  const got = new Promise<string>((r) => client.once('message', (m) => r(m.toString())));
  client.send(options('127.0.0.1', port), tl.ports.udp ?? 0, '127.0.0.1');
  const req = await until(() => requests[0]);
  t.equal(req.topVia.received, undefined, 'sent-by equals the source address: no received');
  tl.sendResponse(createResponse(req, 200, 'OK'), () => t.fail('send error'));
  t.match(await got, /^SIP\/2\.0 200 OK/);
});

t.test('UDP: oversized request → 513, malformed → 400 with reason, garbage dropped', async (t) => {
  const { tl, requests } = await layer();
  t.teardown(() => tl.stop());
  const client = createSocket('udp4');
  t.teardown(() => client.close());
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
  const port = client.address().port;
  const next = (): Promise<string> => new Promise((r) => client.once('message', (m) => r(m.toString())));
  let p = next();
  client.send(options('127.0.0.1', port, '', 'UDP').replace('Content-Length: 0\r\n', `X-Pad: ${'x'.repeat(5000)}\r\nContent-Length: 0\r\n`), tl.ports.udp ?? 0, '127.0.0.1');
  t.match(await p, /^SIP\/2\.0 513 Message Too Large/);
  p = next();
  client.send(options('127.0.0.1', port).replace('CSeq: 1 OPTIONS', 'CSeq: one OPTIONS'), tl.ports.udp ?? 0, '127.0.0.1');
  t.match(await p, /^SIP\/2\.0 400 Malformed CSeq header/);
  client.send(Buffer.from([0, 1, 2, 3, 255, 13, 10]), tl.ports.udp ?? 0, '127.0.0.1');
  client.send(options('127.0.0.1', port), tl.ports.udp ?? 0, '127.0.0.1');
  await until(() => requests[0]);
  t.equal(requests.length, 1, 'only the good request reached the transaction layer');
});

t.test('TCP: framing across chunk boundaries, two messages in one segment, response on the same connection', async (t) => {
  const { tl, requests } = await layer();
  t.teardown(() => tl.stop());
  const sock = connect(tl.ports.tcp ?? 0, '127.0.0.1');
  t.teardown(() => sock.destroy());
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const data: Buffer[] = [];
  sock.on('data', (d: Buffer) => data.push(d));
  const m1 = options('client.invalid', 5070, '', 'TCP');
  const m2 = options('client.invalid', 5070, '', 'TCP');
  const all = Buffer.from(m1 + m2);
  sock.write(all.subarray(0, 37));
  await new Promise((r) => setTimeout(r, 20));
  sock.write(all.subarray(37));
  await until(() => (requests.length === 2 ? true : undefined));
  const first = requests[0];
  if (!first) throw new Error('no request');
  t.equal(first.source?.transport, 'tcp');
  // The server transaction hands the request's connection to the transport (§18.2.2).
  const res = createResponse(first, 200, 'OK');
  res.source = first.source;
  tl.sendResponse(res, () => t.fail('send error'));
  const text = await until(() => { const s = Buffer.concat(data).toString(); return s.includes('\r\n\r\n') ? s : undefined; });
  t.match(text, /^SIP\/2\.0 200 OK/, 'response came back over the same connection (§18.2.2)');
  // RFC 5626 §3.5.1: CRLFCRLF ping → CRLF pong.
  data.length = 0;
  sock.write('\r\n\r\n');
  t.equal(await until(() => { const s = Buffer.concat(data).toString(); return s.length > 0 ? s : undefined; }), '\r\n');
});

t.test('TCP: a framing error closes the connection (RFC 4475 ncl over a stream)', async (t) => {
  const { tl } = await layer();
  t.teardown(() => tl.stop());
  const sock = connect(tl.ports.tcp ?? 0, '127.0.0.1');
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  sock.on('error', () => undefined);
  sock.write(options('a.invalid', 5070, '', 'TCP').replace('Content-Length: 0', 'Content-Length: -5'));
  await closed;
  t.pass('closed');
});

t.test('WebSocket: the sip subprotocol is required; SIP messages flow both ways (RFC 7118)', async (t) => {
  const { tl, requests } = await layer();
  t.teardown(() => tl.stop());
  const refused = new WebSocket(`ws://127.0.0.1:${tl.ports.ws}`, ['chat']);
  await new Promise<void>((r) => { refused.once('error', () => r()); refused.once('close', () => r()); });
  t.not(refused.protocol, 'sip', 'no sip subprotocol, no SIP');
  const ws = new WebSocket(`ws://127.0.0.1:${tl.ports.ws}`, ['sip']);
  t.teardown(() => ws.close());
  await new Promise<void>((r, j) => { ws.once('open', () => r()); ws.once('error', j); });
  t.equal(ws.protocol, 'sip');
  const got = new Promise<string>((r) => ws.once('message', (d: Buffer) => r(d.toString())));
  // RFC 7118 §5: a WS client's Via sent-by is an invalid domain; Content-Length optional.
  ws.send(options('df7jal23ls0d.invalid', 5060, '', 'WS').replace('Content-Length: 0\r\n', ''));
  const req = await until(() => requests[0]);
  t.equal(req.source?.transport, 'ws');
  const out = createResponse(req, 200, 'OK');
  out.source = req.source;
  tl.sendResponse(out, () => t.fail('send error'));
  const res = parseMessage(Buffer.from(await got), { stream: false });
  t.equal(res.kind, 'response');
});

t.test('responses whose top Via is not ours are discarded (§18.1.2, RFC 4475 bcast)', async (t) => {
  const { tl, responses } = await layer();
  t.teardown(() => tl.stop());
  const client = createSocket('udp4');
  t.teardown(() => client.close());
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
  const mk = (host: string, port: number): string => `SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP ${host}:${port};branch=z9hG4bK-x${Math.random()}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: r${Math.random()}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`;
  client.send(mk('192.0.2.198', 5060), tl.ports.udp ?? 0, '127.0.0.1');
  client.send(mk('127.0.0.1', tl.ports.udp ?? 0), tl.ports.udp ?? 0, '127.0.0.1');
  await until(() => responses[0]);
  await new Promise((r) => setTimeout(r, 50));
  t.equal(responses.length, 1, 'only the response with our sent-by was delivered');
});
