/**
 * End-to-end: the built server driven by SIPp over real loopback sockets.
 * Carrier calls come from 127.0.0.2 (the demo tenant's trusted trunk);
 * phones are SIPp UAS instances registered with digest auth.
 */
import t, { type Test } from 'tap';
import { createSocket } from 'node:dgram';
import { allocPort, DEMO_PASSWORD, registerContact, sipp, startDialplane, startUas, summary, type Dialplane } from './harness.js';

const CARRIER = '127.0.0.2';

async function withServer(t: Test, opts: Parameters<typeof startDialplane>[0], fn: (dp: Dialplane) => Promise<void>): Promise<void> {
  const dp = await startDialplane(opts);
  t.teardown(() => dp.stop());
  await fn(dp);
}

t.test('REGISTER with digest authentication is accepted (RFC 3261 §10.3, §22)', (t) => withServer(t, {}, async (dp) => {
  const r = await registerContact(dp, '1001', allocPort());
  t.equal(r.code, 0, `register 1001: ${summary(r)}`);
}));

t.test('REGISTER with a wrong password is refused and a retry is challenged again', (t) => withServer(t, {}, async (dp) => {
  const r = await registerContact(dp, '1001', allocPort(), 'wrong-password');
  t.not(r.code, 0, 'the scenario expecting 200 fails');
  t.match(r.output + dp.logs.join(''), /authentication failed|401/, 'the server challenged again');
}));

t.test('carrier call to the 400 number reaches the registered phone and routes ACK/BYE through the proxy', (t) => withServer(t, {}, async (dp) => {
  const phone = allocPort();
  t.equal((await registerContact(dp, '1001', phone)).code, 0, 'phone registered as 1001');
  const uas = await startUas('uas-answer-200.xml', phone);
  const uac = await sipp('uac-call-expect-200.xml', [`127.0.0.1:${dp.sipPort}`, '-i', CARRIER, '-p', String(allocPort()), '-s', '4008123456', '-m', '1', '-d', '200']).done;
  t.equal(uac.code, 0, `caller: ${summary(uac)}`);
  const u = await uas.done;
  t.equal(u.code, 0, `phone: ${summary(u)}`);
}));

t.test('a call over TCP is bridged to a UDP phone (double Record-Route, RFC 5658)', (t) => withServer(t, {}, async (dp) => {
  const phone = allocPort();
  t.equal((await registerContact(dp, '1002', phone)).code, 0);
  const uas = await startUas('uas-answer-200.xml', phone);
  const uac = await sipp('uac-call-expect-200.xml', [`127.0.0.1:${dp.sipPort}`, '-t', 't1', '-i', CARRIER, '-p', String(allocPort()), '-s', '4008123456', '-m', '1', '-d', '200']).done;
  t.equal(uac.code, 0, `caller over TCP: ${summary(uac)}`);
  t.equal((await uas.done).code, 0, 'phone over UDP');
}));

t.test('the caller cancels while the phone rings: 200 to CANCEL, 487 to the INVITE (§16.10)', (t) => withServer(t, {}, async (dp) => {
  const phone = allocPort();
  t.equal((await registerContact(dp, '1001', phone)).code, 0);
  const uas = await startUas('uas-no-answer-487.xml', phone);
  const uac = await sipp('uac-cancel-expect-487.xml', [`127.0.0.1:${dp.sipPort}`, '-i', CARRIER, '-p', String(allocPort()), '-s', '4008123456', '-m', '1']).done;
  t.equal(uac.code, 0, `caller: ${summary(uac)}`);
  t.equal((await uas.done).code, 0, 'phone saw the CANCEL and answered 487');
}));

t.test('ring-all of one extension: one of 1001’s phones busy while the other answers → the caller is connected (§16.7)', (t) => withServer(t, {}, async (dp) => {
  const busy = allocPort();
  const answer = allocPort();
  t.equal((await registerContact(dp, '1001', busy)).code, 0, 'first contact of 1001');
  t.equal((await registerContact(dp, '1001', answer)).code, 0, 'second contact of 1001');
  const b = await startUas('uas-busy-486.xml', busy);
  const a = await startUas('uas-answer-200.xml', answer);
  const uac = await sipp('uac-call-expect-200.xml', [`127.0.0.1:${dp.sipPort}`, '-i', CARRIER, '-p', String(allocPort()), '-s', '4008123456', '-m', '1', '-d', '200']).done;
  t.equal(uac.code, 0, `caller connected: ${summary(uac)}`);
  t.equal((await a.done).code, 0, 'answering contact');
  t.equal((await b.done).code, 0, 'busy contact got its ACK');
}));

t.test('demo hunt: 1001 does not answer within 8 s → CANCELled; 1002 has no phone; the caller hears 480 after 8 s', (t) => withServer(t, {}, async (dp) => {
  const phone = allocPort();
  t.equal((await registerContact(dp, '1001', phone)).code, 0);
  const uas = await startUas('uas-no-answer-487.xml', phone);
  const started = Date.now();
  const uac = await sipp('uac-call-expect-480.xml', [`127.0.0.1:${dp.sipPort}`, '-i', CARRIER, '-p', String(allocPort()), '-s', '4008123456', '-m', '1']).done;
  const elapsed = Date.now() - started;
  t.equal(uac.code, 0, `caller got 480: ${summary(uac)}`);
  t.equal((await uas.done).code, 0, 'phone was cancelled by the proxy');
  t.ok(elapsed >= 7900 && elapsed < 10_000, `480 came after 1001's 8 s (${elapsed} ms)`);
}));

t.test('an unknown number gets 404', (t) => withServer(t, {}, async (dp) => {
  const uac = await sipp('uac-call-expect-404.xml', [`127.0.0.1:${dp.sipPort}`, '-i', CARRIER, '-p', String(allocPort()), '-s', '4000000000', '-m', '1']).done;
  t.equal(uac.code, 0, summary(uac));
}));

t.test('a 400 number whose extensions have no registered phone gets 480 at once', (t) => withServer(t, {}, async (dp) => {
  const uac = await sipp('uac-call-expect-480.xml', [`127.0.0.1:${dp.sipPort}`, '-i', CARRIER, '-p', String(allocPort()), '-s', '4008123456', '-m', '1']).done;
  t.equal(uac.code, 0, summary(uac));
}));

t.test('a carrier cannot dial an extension directly: extensions are internal (404, like any number not rented)', (t) => withServer(t, {}, async (dp) => {
  const uac = await sipp('uac-call-expect-404.xml', [`127.0.0.1:${dp.sipPort}`, '-i', CARRIER, '-p', String(allocPort()), '-s', '1002', '-m', '1']).done;
  t.equal(uac.code, 0, summary(uac));
}));

t.test('an extension calls another: INVITE challenged with 407, answered after Proxy-Authorization', (t) => withServer(t, {}, async (dp) => {
  const phone = allocPort();
  t.equal((await registerContact(dp, '1002', phone)).code, 0);
  const uas = await startUas('uas-answer-200.xml', phone);
  const uac = await sipp('uac-invite-digest-expect-200.xml', [`127.0.0.1:${dp.sipPort}`, '-i', '127.0.0.1', '-p', String(allocPort()), '-s', '1002', '-au', '1001', '-ap', DEMO_PASSWORD, '-m', '1', '-d', '200']).done;
  t.equal(uac.code, 0, `caller: ${summary(uac)}`);
  t.equal((await uas.done).code, 0, 'callee');
}));

t.test('an unauthenticated INVITE from a non-carrier address is challenged, not routed', (t) => withServer(t, {}, async (dp) => {
  const uac = await sipp('uac-call-expect-200.xml', [`127.0.0.1:${dp.sipPort}`, '-i', '127.0.0.1', '-p', String(allocPort()), '-s', '4008123456', '-m', '1'], 5).done;
  t.not(uac.code, 0, 'no call without credentials');
  t.match(uac.output, /407|Unexpected|Aborting/, 'SIPp saw the 407');
}));

t.test('a malformed request gets a 400 naming the problem and the server keeps serving', (t) => withServer(t, {}, async (dp) => {
  const sock = createSocket('udp4');
  t.teardown(() => sock.close());
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const port = sock.address().port;
  const send = (text: string): Promise<string> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer')), 3000);
    sock.once('message', (m) => { clearTimeout(timer); resolve(m.toString()); });
    sock.send(Buffer.from(text.replace(/\n/g, '\r\n')), dp.sipPort, '127.0.0.1');
  });
  const head = (cseq: string, method = 'OPTIONS'): string => `${method} sip:127.0.0.1:${dp.sipPort} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-e2e-${Math.random().toString(36).slice(2)}\nMax-Forwards: 70\nFrom: <sip:probe@127.0.0.1>;tag=1\nTo: <sip:127.0.0.1>\nCall-ID: e2e-${Math.random()}\nCSeq: ${cseq}\nContent-Length: 0\n\n`;
  const bad = await send(head('99999999999 OPTIONS'));
  t.match(bad, /^SIP\/2\.0 400 CSeq number out of range\r\n/, '400 with a reason naming the field');
  const mismatch = await send(head('1 INVITE'));
  t.match(mismatch, /^SIP\/2\.0 400 CSeq method does not match Request-Line/, 'CSeq/method mismatch');
  // Garbage must be dropped silently; the server still answers afterwards.
  sock.send(Buffer.from('\x00\x01garbage\r\n\r\n'), dp.sipPort, '127.0.0.1');
  const ok = await send(`OPTIONS sip:127.0.0.1:${dp.sipPort} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-e2e-ok\nMax-Forwards: 70\nFrom: <sip:probe@127.0.0.1>;tag=1\nTo: <sip:127.0.0.1>\nCall-ID: e2e-ok\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n`);
  t.match(ok, /^SIP\/2\.0 (200|407)/, 'still serving');
  t.equal(dp.proc.exitCode, null, 'process alive');
}));
