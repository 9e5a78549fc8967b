/**
 * Every RFC 4475 torture message (and RFC 5118 IPv6 message) gets the verdict
 * its manifest asks of a parser and a proxy front end. The fixtures are
 * byte-exact copies (.gitattributes -text); the manifest is iterated so no
 * message can be forgotten.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { parseMessage, parseContacts } from '../../../src/sip/message/parser.js';
import { validateProxyRequest } from '../../../src/sip/proxy/request-validation.js';
import { SipRequest } from '../../../src/sip/message/message.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, '..', '..', 'fixtures');

/**
 * What our element does with each message arriving over UDP:
 *  'accept'      parsed, and the proxy front end would process it;
 *  number        a request answered with that status (parse error or §16.3 validation);
 *  'drop'        discarded without an answer (bad responses; requests without a usable Via).
 * `contact: 'reject'` marks REGISTERs whose Contact the registrar must refuse with 400.
 */
interface Verdict { outcome: 'accept' | 'drop' | number; contact?: 'accept' | 'reject' }
const RFC4475: Record<string, Verdict> = {
  wsinv: { outcome: 'accept' }, intmeth: { outcome: 'accept' }, esc01: { outcome: 'accept' },
  escnull: { outcome: 'accept', contact: 'accept' }, esc02: { outcome: 'accept' }, lwsdisp: { outcome: 'accept' },
  longreq: { outcome: 'accept' }, dblreq: { outcome: 'accept' }, semiuri: { outcome: 'accept' },
  transports: { outcome: 'accept' }, mpart01: { outcome: 'accept' }, unreason: { outcome: 'accept' },
  noreason: { outcome: 'accept' }, badinv01: { outcome: 400 }, clerr: { outcome: 400 }, ncl: { outcome: 400 },
  scalar02: { outcome: 400 }, scalarlg: { outcome: 'drop' }, quotbal: { outcome: 400 }, ltgtruri: { outcome: 400 },
  lwsruri: { outcome: 400 }, lwsstart: { outcome: 400 }, trws: { outcome: 400 }, escruri: { outcome: 400 },
  baddate: { outcome: 'accept' }, regbadct: { outcome: 'accept', contact: 'reject' }, badaspec: { outcome: 400 },
  baddn: { outcome: 400 }, badvers: { outcome: 505 }, mismatch01: { outcome: 400 }, mismatch02: { outcome: 501 },
  bigcode: { outcome: 'drop' }, badbranch: { outcome: 400 }, insuf: { outcome: 400 }, unkscm: { outcome: 416 },
  novelsc: { outcome: 416 }, unksm2: { outcome: 'accept' }, bext01: { outcome: 420 }, invut: { outcome: 'accept' },
  regaut01: { outcome: 'accept' }, multi01: { outcome: 400 }, mcl01: { outcome: 400 }, bcast: { outcome: 'accept' },
  zeromf: { outcome: 483 }, cparam01: { outcome: 'accept', contact: 'accept' }, cparam02: { outcome: 'accept', contact: 'accept' },
  regescrt: { outcome: 'accept', contact: 'accept' }, sdp01: { outcome: 'accept' }, inv2543: { outcome: 'accept' },
  // Not described by any section; its request line has no SIP-Version and it has no Via: nothing to answer.
  test: { outcome: 'drop' },
};
const RFC5118: Record<string, Verdict> = {
  'ipv6-good': { outcome: 'accept' }, 'ipv6-bad': { outcome: 400 }, 'port-ambiguous': { outcome: 'accept' },
  'port-unambiguous': { outcome: 'accept' }, 'via-received-param-with-delim': { outcome: 'accept' },
  'via-received-param-no-delim': { outcome: 'accept' },
  // As printed, its Content-Length exceeds the body: over UDP that is a 400 (RFC 3261 §18.3).
  'ipv6-in-sdp': { outcome: 400 }, 'mult-ip-in-header': { outcome: 'accept' },
  'mult-ip-in-sdp': { outcome: 'accept' }, 'ipv4-mapped-ipv6': { outcome: 'accept' },
  'ipv6-bug-abnf-3-colons': { outcome: 'accept' }, 'ipv6-correct-abnf-2-colons': { outcome: 'accept' },
};

function outcomeOf(buf: Buffer): 'accept' | 'drop' | number {
  const r = parseMessage(buf, { stream: false });
  if (r.kind === 'error') {
    if (!r.isRequest) return 'drop';
    // A request we cannot address a response to (no Via row) is dropped.
    if (!r.headers.some((h) => h.name === 'via')) return 'drop';
    return r.error.status;
  }
  if (r.kind === 'request') {
    const rej = validateProxyRequest(r.message);
    if (rej) return rej.status;
  }
  return 'accept';
}

interface Entry { name: string; file: string; sha256: string }

for (const [dir, table] of [['rfc4475', RFC4475], ['rfc5118', RFC5118]] as const) {
  const manifest = JSON.parse(readFileSync(join(fixtures, dir, 'manifest.json'), 'utf8')) as { messages: Entry[] };
  t.test(`${dir}: every manifest message has a verdict`, async (t) => {
    t.same(manifest.messages.map((m) => m.name).sort(), Object.keys(table).sort());
  });
  for (const m of manifest.messages) {
    t.test(`${dir} ${m.name}`, async (t) => {
      const buf = readFileSync(join(fixtures, dir, m.file));
      t.equal(createHash('sha256').update(buf).digest('hex'), m.sha256, 'fixture is byte-exact');
      const v = table[m.name];
      if (!v) return t.fail('no verdict');
      t.equal(outcomeOf(buf), v.outcome, `outcome for ${m.name}`);
      if (v.contact) {
        const r = parseMessage(buf, { stream: false });
        if (r.kind !== 'request') return t.fail('expected a request');
        let ok = true;
        try {
          parseContacts(r.message.getAll('contact'));
        } catch {
          ok = false;
        }
        t.equal(ok ? 'accept' : 'reject', v.contact, 'registrar Contact verdict');
      }
    });
  }
}

function req(name: string): SipRequest {
  const r = parseMessage(readFileSync(join(fixtures, 'rfc4475', `${name}.sip`)), { stream: false });
  if (r.kind !== 'request') throw new Error(`${name} did not parse as a request`);
  return r.message;
}

t.test('details the RFC spells out', async (t) => {
  const esc01 = req('esc01');
  t.equal(esc01.uri.userDecoded, 'sips:user@example.com', 'esc01: R-URI user decodes once');
  const semiuri = req('semiuri');
  t.equal(semiuri.uri.userDecoded, 'user;par=u@example.net', 'semiuri: user part keeps ; and escaped @');
  t.equal(semiuri.uri.host, 'example.com');
  const dblreq = req('dblreq');
  t.equal(dblreq.method, 'REGISTER');
  t.equal(dblreq.body.length, 0, 'dblreq: trailing INVITE octets ignored');
  t.notOk(dblreq.toString().includes('INVITE'), 'dblreq: forwarded form carries no INVITE octets');
  const transports = req('transports');
  t.same(transports.vias.map((v) => v.transport), ['UDP', 'SCTP', 'TLS', 'UNKNOWN', 'TCP']);
  const esc02 = req('esc02');
  t.equal(esc02.method, 'RE%47IST%45R');
  const esc02Contacts = parseContacts(esc02.getAll('contact'));
  t.equal(esc02Contacts === '*' ? 0 : esc02Contacts.length, 2, 'esc02: C%6Fntact is not a Contact');
  const escnull = req('escnull');
  const contacts = parseContacts(escnull.getAll('contact'));
  t.not(contacts, '*');
  if (contacts !== '*') t.same(contacts.map((c) => c.uri.userDecoded), ['\u0000', '\u0000\u0000']);
  const wsinv = req('wsinv');
  t.equal(wsinv.maxForwards, 68, 'wsinv: leading zeros in Max-Forwards');
  t.equal(wsinv.cseq.seq, 9, 'wsinv: leading zeros in CSeq');
  t.ok(wsinv.toString().includes('UnknownHeaderWithUnusualValue'), 'wsinv: unknown header forwarded');
  const mpart = req('mpart01');
  t.equal(mpart.body.length, Number(mpart.get('content-length')), 'mpart01: binary body framed by Content-Length');
  const cp1 = parseContacts(req('cparam01').getAll('contact'));
  const cp2 = parseContacts(req('cparam02').getAll('contact'));
  if (cp1 !== '*' && cp2 !== '*') {
    t.notOk(cp1[0]?.uri.params.has('unknownparam'), 'cparam01: unknownparam is a contact-param');
    t.ok(cp1[0]?.params.has('unknownparam'));
    t.ok(cp2[0]?.uri.params.has('unknownparam'), 'cparam02: unknownparam is a URI param');
  }
  const regescrt = parseContacts(req('regescrt').getAll('contact'));
  if (regescrt !== '*') t.equal(regescrt[0]?.uri.headers, 'Route=%3Csip:sip.example.com%3E', 'regescrt: escaped Route kept in the contact URI');
  t.equal(req('zeromf').maxForwards, 0);
  t.same(validateProxyRequest(req('bext01'))?.headers, [['Unsupported', 'noProxiesSupportThis, norDoAnyProxiesSupportThis']], 'bext01: Unsupported lists the Proxy-Require tags');
});

t.test('RFC 5118 IPv6 details', async (t) => {
  const load = (n: string): SipRequest => {
    const r = parseMessage(readFileSync(join(fixtures, 'rfc5118', `${n}.sip`)), { stream: false });
    if (r.kind !== 'request') throw new Error(n);
    return r.message;
  };
  const amb = load('port-ambiguous');
  t.equal(amb.uri.host, '[2001:db8::10:5070]');
  t.equal(amb.uri.port, undefined, 'port-ambiguous: no port');
  const unamb = load('port-unambiguous');
  t.equal(unamb.uri.host, '[2001:db8::10]');
  t.equal(unamb.uri.port, 5070);
  t.equal(load('via-received-param-with-delim').topVia.received, '[2001:db8::9:255]');
  t.equal(load('via-received-param-no-delim').topVia.received, '2001:db8::9:255');
  for (const f of ['ipv6-in-sdp', 'mult-ip-in-sdp', 'ipv4-mapped-ipv6']) {
    const r = parseMessage(readFileSync(join(fixtures, 'rfc5118', 'length-fixed', `${f}.sip`)), { stream: false });
    t.equal(r.kind, 'request', `length-fixed ${f} parses`);
  }
});
