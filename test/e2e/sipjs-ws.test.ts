/**
 * End-to-end: SIP.js 0.21 in Node as a browser-style softphone over SIP
 * WebSocket (RFC 7118) against the built server. Exercises digest auth over
 * WS (401 for REGISTER, 407 for INVITE), Via with a `.invalid` sent-by,
 * responses over the WS connection, Record-Route on WS and the WS ↔ UDP
 * bridge (double Record-Route, RFC 5658), and in-dialog routing back to a
 * WS client.
 */
import t, { type Test } from 'tap';
import { Inviter, SessionState, UserAgent } from 'sip.js';
import { allocPort, sipp, startDialplane, summary, type Dialplane } from './harness.js';
import { register, startPhone, unregister, waitForSession, withDeadline, type Phone, type StaticSdh } from './softphone-helpers.js';

const CARRIER = '127.0.0.2';

/**
 * SIP.js 0.21 keeps only the LAST WWW-/Proxy-Authenticate of a response (its
 * parser's setHeader() replaces) and aborts on any algorithm but MD5, so with
 * the default profile's challenges ["MD5", "SHA-256"] it cannot authenticate
 * at all. The profile here offers MD5 alone, as a deployment serving SIP.js
 * clients must (profile field `digestAlgorithms`).
 */
const SIPJS_PROFILE = { digestAlgorithms: ['MD5'] };

async function withServer(t: Test, fn: (dp: Dialplane) => Promise<void>): Promise<void> {
  const dp = await startDialplane({ env: { LOG_LEVEL: 'debug' }, profile: SIPJS_PROFILE });
  t.teardown(async () => {
    // Failures come with the server's side of the story.
    if (!t.passing()) t.comment(dp.logs.join('').slice(-20_000));
    await dp.stop();
  });
  await fn(dp);
}

async function phone(t: Test, dp: Dialplane, user: string, autoAnswer = false): Promise<Phone> {
  const p = await startPhone(dp, user, { autoAnswer });
  t.teardown(() => p.stop());
  return p;
}

function dumpOnFailure(t: Test, ...phones: Phone[]): void {
  t.teardown(() => {
    if (t.passing()) return;
    for (const p of phones) t.comment(`--- SIP.js ${p.user} ---\n${p.log.join('\n').slice(-20_000)}`);
  });
}

/** Whether the server currently has a binding for `user`: a carrier INVITE gets 480 when it has none. */
async function carrierCallGets480(dp: Dialplane, user: string): Promise<boolean> {
  const r = await sipp('uac-call-expect-480.xml', [`127.0.0.1:${dp.sipPort}`, '-i', CARRIER, '-p', String(allocPort()), '-s', user, '-m', '1'], 10).done;
  return r.code === 0;
}

t.test('REGISTER over WebSocket with digest auth, then un-REGISTER (RFC 7118, §10.2.2)', (t) => withServer(t, async (dp) => {
  const p = await phone(t, dp, '1001');
  dumpOnFailure(t, p);
  await register(p);
  t.pass('Registerer reached Registered (401 challenge answered, 200 received over the WS connection)');
  t.match(p.log.join('\n'), /SIP\/2\.0 401 /, 'the first REGISTER was challenged');
  const contact = p.ua.contact.uri.toString();
  t.match(contact, /\.invalid/, `SIP.js registers an unresolvable WS contact (${contact})`);
  const ok200 = p.log.find((e) => e.includes('Received WebSocket') && /^SIP\/2\.0 200 /m.test(e) && /^CSeq: \d+ REGISTER/m.test(e)) ?? '';
  t.ok(ok200.includes(`Contact: <${contact}>;expires=`), 'the 200 lists the new binding with its expiry (§10.3 step 8)');
  await unregister(p);
  t.pass('Registerer reached Unregistered');
  t.ok(await carrierCallGets480(dp, '4008123456'), 'after un-REGISTER a carrier call to 4008123456 (1001, then 1002) finds no binding (480)');
}));

t.test('WS phone 1001 calls WS phone 1002: 407 answered, both Established, BYE ends both (§12, §16.6)', (t) => withServer(t, async (dp) => {
  const a = await phone(t, dp, '1001');
  const b = await phone(t, dp, '1002', true);
  dumpOnFailure(t, a, b);
  await register(a);
  await register(b);

  const target = UserAgent.makeURI('sip:1002@dialplane');
  if (!target) throw new Error('bad target');
  const inviter = new Inviter(a.ua, target);
  const incoming = b.nextInvitation();
  const aUp = waitForSession(inviter, SessionState.Established, 10_000, 'caller Established');
  await inviter.invite();
  const inv = await incoming;
  await Promise.all([aUp, waitForSession(inv, SessionState.Established, 10_000, 'callee Established')]);
  t.pass('both sessions Established');
  t.ok(await b.received(/^ACK sip:\S+\.invalid;transport=ws SIP\/2\.0/m, 5000), 'the caller\'s ACK reached the callee over its own WS connection');
  t.match(a.log.join('\n'), /SIP\/2\.0 407 /, 'the INVITE was challenged with 407 and SIP.js answered it');
  t.match(inv.request.getHeader('Record-Route') ?? '', new RegExp(`transport=ws`), 'the callee saw our WS Record-Route');
  t.match((inviter.sessionDescriptionHandler as StaticSdh | undefined)?.remote[0] ?? '', /m=audio \d+ RTP\/AVP 0 8 101/, 'the caller got the callee\'s G.711 answer');

  const aEnd = waitForSession(inviter, SessionState.Terminated, 10_000, 'caller Terminated');
  const bEnd = waitForSession(inv, SessionState.Terminated, 10_000, 'callee Terminated (BYE routed to it over WS)');
  await withDeadline(inviter.bye(), 10_000, 'BYE');
  await Promise.all([aEnd, bEnd]);
  t.pass('BYE reached the callee through the proxy and both sessions ended');
  t.match(a.log.join('\n'), /SIP\/2\.0 200 OK[\s\S]*CSeq: \d+ BYE/, 'the caller got 200 to its BYE');
}));

t.test('carrier over UDP calls the 400 number, the WS phone answers (UDP ↔ WS bridge, RFC 5658)', (t) => withServer(t, async (dp) => {
  const p = await phone(t, dp, '1001', true);
  dumpOnFailure(t, p);
  await register(p);

  const incoming = p.nextInvitation(15_000);
  const uac = sipp('uac-call-expect-200.xml', [`127.0.0.1:${dp.sipPort}`, '-i', CARRIER, '-p', String(allocPort()), '-s', '4008123456', '-m', '1', '-d', '300'], 20);
  t.teardown(() => uac.kill());
  const inv = await incoming;
  t.match(inv.request.ruri?.toString() ?? '', /\.invalid/, 'the proxy retargeted the INVITE to the registered WS contact');
  const rr = inv.request.getHeaders('Record-Route').join(',');
  t.match(rr, /transport=ws[\s\S]*transport=udp/, 'double Record-Route: WS side first, then UDP side');
  const established = waitForSession(inv, SessionState.Established, 10_000, 'callee Established');
  const ended = waitForSession(inv, SessionState.Terminated, 15_000, 'callee Terminated by the carrier\'s BYE');
  await established;
  t.pass('SIP.js answered');
  const ack = await p.received(/^ACK sip:\S+\.invalid;transport=ws SIP\/2\.0/m, 5000);
  t.ok(ack, 'the carrier\'s ACK reached SIP.js over WS (routed by the flow token in our Record-Route)');
  await ended;
  t.pass('the carrier\'s BYE reached SIP.js over WS');
  const r = await uac.done;
  t.equal(r.code, 0, `SIPp carrier call completed (200, ACK, BYE/200): ${summary(r)}`);
}));
