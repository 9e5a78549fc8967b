// In-process proxy-path benchmark: the real server (startServer, demo mode)
// with its UDP socket replaced by a queue, and a simulated carrier UAC
// (127.0.0.2) and UAS (registered as 1001) exchanging
// INVITE/180/200/ACK/BYE/200 through it — the `npm run bench` call flow
// without SIPp, the kernel or another process, so CPU per call of our own
// code is measured with little noise (A/B of an optimisation) and can be
// profiled with `node --cpu-prof`.
//
//   npm run build && node dist/test/bench/inproc-bench.js [--rate 2000] [--seconds 10] [--settle 3]
//
// Prints CPU µs per completed call for the proxy: process CPU over the run
// and the settle time, minus the time spent in the simulated endpoints.
// Messages are delivered from a queue drained on setImmediate, so Node's
// timers (transaction timers, 100 Trying) run between them as they would.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';

import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/log.js';
import { startServer } from '../../src/main.js';
import { NODE_FLAGS } from '../../src/node-flags.js';

// The server's V8 flags (src/node-flags.ts) change what is measured here
// (allocation-site pretenuring doubled the bytes promoted per call in some
// runs): run again under them when started without.
if (!NODE_FLAGS.every((f) => process.execArgv.includes(f))) {
  const r = spawnSync(process.execPath, [...NODE_FLAGS, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '10' },
    settle: { type: 'string', default: '3' },
  },
});
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const SETTLE = Number(values.settle);

const here = dirname(fileURLToPath(import.meta.url));
const root = here.includes(join('dist', 'test')) ? join(here, '..', '..', '..') : join(here, '..', '..');
const PASSWORD = 'bench-secret';
const UAC = { ip: '127.0.0.2', port: 5070 };
const UAS = { ip: '127.0.0.1', port: 5080 };

interface Datagram { buf: Buffer; from: { ip: string; port: number }; to: { ip: string; port: number } }

const config = loadConfig({
  DIALPLANE_BIND: '127.0.0.1', DIALPLANE_SIP_PORT: '0', DIALPLANE_WS_PORT: '0', DIALPLANE_HTTP_PORT: '0',
  DIALPLANE_DEMO: '1', DIALPLANE_STORE_FILE: 'memory', DIALPLANE_DEMO_PASSWORD: PASSWORD, LOG_LEVEL: 'warn',
}, [], join(root, 'sip-profiles'));
const server = await startServer(config, createLogger('warn'));
const transport = server.transport as unknown as {
  udp: { send: (buf: Buffer, port: number, address: string, cb?: (err: Error | null) => void) => void };
  onDatagram: (buf: Buffer, rinfo: { address: string; port: number; family: string; size: number }) => void;
  ports: { udp?: number };
};
const PROXY = { ip: '127.0.0.1', port: transport.ports.udp ?? 0 };

// ---- the wire ---------------------------------------------------------------
const queue: Datagram[] = [];
let endpointMs = 0;
let pumping = false;
transport.udp.send = (buf, port, address, cb) => {
  queue.push({ buf: Buffer.from(buf), from: PROXY, to: { ip: address, port } });
  schedulePump();
  if (cb) process.nextTick(cb, null);
};
function toProxy(text: string, from: { ip: string; port: number }): void {
  // A received datagram has a backing store of exactly its size (not a slice of Buffer's pool).
  const buf = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
  buf.write(text);
  queue.push({ buf, from, to: PROXY });
  schedulePump();
}
function schedulePump(): void {
  if (pumping) return;
  pumping = true;
  setImmediate(pump);
}
function pump(): void {
  pumping = false;
  const batch = queue.splice(0, queue.length);
  for (const d of batch) {
    if (d.to.port === PROXY.port && d.to.ip === PROXY.ip) {
      transport.onDatagram(d.buf, { address: d.from.ip, port: d.from.port, family: 'IPv4', size: d.buf.length });
    } else {
      const t0 = performance.now();
      const text = d.buf.toString('utf8');
      if (d.to.port === UAS.port) uas(text);
      else if (d.to.port === UAC.port) uac(text);
      endpointMs += performance.now() - t0;
    }
  }
}

// ---- simulated endpoints ----------------------------------------------------
function headerLines(text: string, name: string): string[] {
  const head = text.slice(0, text.indexOf('\r\n\r\n'));
  const lower = `${name.toLowerCase()}:`;
  return head.split('\r\n').filter((l) => l.toLowerCase().startsWith(lower));
}
function value(line: string | undefined): string {
  return line === undefined ? '' : line.slice(line.indexOf(':') + 1).trim();
}
const SDP = 'v=0\r\no=sipp 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n';

function respond(req: string, status: string, toTag: string | undefined, withRr: boolean, body = ''): string {
  const keep = ['via', ...(withRr ? ['record-route'] : []), 'from'].flatMap((n) => headerLines(req, n));
  const to = headerLines(req, 'to')[0] ?? '';
  return `SIP/2.0 ${status}\r\n${keep.join('\r\n')}\r\n${toTag && !to.includes(';tag=') ? `${to};tag=${toTag}` : to}\r\n` +
    `${headerLines(req, 'call-id')[0]}\r\n${headerLines(req, 'cseq')[0]}\r\n` +
    `Contact: <sip:${UAS.ip}:${UAS.port};transport=UDP>\r\n` +
    (body ? `Content-Type: application/sdp\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}` : 'Content-Length: 0\r\n\r\n');
}

function uas(text: string): void {
  if (process.env.BENCH_TRACE) process.stderr.write(`UAS <- ${text}\n`);
  if (text.startsWith('INVITE ')) {
    // A tag is a token: the call number alone.
    const tag = `uas${value(headerLines(text, 'call-id')[0]).replace(/[^0-9]/g, '')}`;
    toProxy(respond(text, '180 Ringing', tag, true), UAS);
    toProxy(respond(text, '200 OK', tag, true, SDP), UAS);
  } else if (text.startsWith('BYE ')) {
    toProxy(respond(text, '200 OK', undefined, false), UAS);
  } else if (text.startsWith('SIP/2.0 ')) {
    onRegisterResponse(text);
  }
}

let started = 0;
let completed = 0;
let branchSeq = 0;
function inviteText(n: number): string {
  const callId = `${n}-bench@127.0.0.2`;
  return `INVITE sip:4008123456@${PROXY.ip}:${PROXY.port} SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP ${UAC.ip}:${UAC.port};branch=z9hG4bK-uac-${++branchSeq};rport\r\n` +
    'Max-Forwards: 70\r\n' +
    `From: "SIPp" <sip:18912345678@${UAC.ip}:${UAC.port}>;tag=${n}SIPpTag00${n}\r\n` +
    `To: <sip:4008123456@${PROXY.ip}:${PROXY.port}>\r\n` +
    `Call-ID: ${callId}\r\nCSeq: 1 INVITE\r\n` +
    `Contact: <sip:18912345678@${UAC.ip}:${UAC.port};transport=UDP>\r\n` +
    'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\nUser-Agent: dialplane-sipp-uac\r\n' +
    `Content-Type: application/sdp\r\nContent-Length: ${Buffer.byteLength(SDP)}\r\n\r\n${SDP}`;
}

function inDialog(method: string, ok200: string, cseq: string): string {
  // Route set = Record-Route of the 2xx in order (UAC side, §12.1.2); remote target = its Contact.
  const routes = headerLines(ok200, 'record-route').map((l) => `Route: ${value(l)}`);
  const target = /<([^>]+)>/.exec(value(headerLines(ok200, 'contact')[0]))?.[1] ?? '';
  return `${method} ${target} SIP/2.0\r\n${routes.map((r) => `${r}\r\n`).join('')}` +
    `Via: SIP/2.0/UDP ${UAC.ip}:${UAC.port};branch=z9hG4bK-uac-${++branchSeq};rport\r\nMax-Forwards: 70\r\n` +
    `${headerLines(ok200, 'from')[0]}\r\n${headerLines(ok200, 'to')[0]}\r\n${headerLines(ok200, 'call-id')[0]}\r\n` +
    `CSeq: ${cseq}\r\nContact: <sip:18912345678@${UAC.ip}:${UAC.port};transport=UDP>\r\nContent-Length: 0\r\n\r\n`;
}

function uac(text: string): void {
  if (process.env.BENCH_TRACE) process.stderr.write(`UAC <- ${text}\n`); // BENCH_TRACE=1: every message the endpoints receive
  if (!text.startsWith('SIP/2.0 200')) return;
  const cseq = value(headerLines(text, 'cseq')[0]);
  if (cseq.endsWith('INVITE')) {
    toProxy(inDialog('ACK', text, '1 ACK'), UAC);
    toProxy(inDialog('BYE', text, '2 BYE'), UAC);
  } else if (cseq.endsWith('BYE')) {
    completed++;
  }
}

// ---- registration of the UAS as 1001 (digest, RFC 2069 form) ---------------
let registered: (() => void) | undefined;
function registerText(auth?: string): string {
  return `REGISTER sip:${PROXY.ip}:${PROXY.port} SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP ${UAS.ip}:${UAS.port};branch=z9hG4bK-reg-${++branchSeq};rport\r\nMax-Forwards: 70\r\n` +
    `From: <sip:1001@${PROXY.ip}>;tag=reg1\r\nTo: <sip:1001@${PROXY.ip}>\r\nCall-ID: reg-1@bench\r\n` +
    `CSeq: ${auth ? 2 : 1} REGISTER\r\nContact: <sip:${UAS.ip}:${UAS.port};transport=UDP>\r\nExpires: 3600\r\n` +
    `${auth ? `Authorization: ${auth}\r\n` : ''}Content-Length: 0\r\n\r\n`;
}
function onRegisterResponse(text: string): void {
  if (text.startsWith('SIP/2.0 401')) {
    const ch = value(headerLines(text, 'www-authenticate')[0]);
    const realm = /realm="([^"]*)"/.exec(ch)?.[1] ?? '';
    const nonce = /nonce="([^"]*)"/.exec(ch)?.[1] ?? '';
    const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
    const uri = `sip:${PROXY.ip}:${PROXY.port}`;
    const response = md5(`${md5(`1001:${realm}:${PASSWORD}`)}:${nonce}:${md5(`REGISTER:${uri}`)}`);
    toProxy(registerText(`Digest username="1001", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5`), UAS);
  } else if (text.startsWith('SIP/2.0 200')) {
    registered?.();
  } else {
    throw new Error(`REGISTER failed: ${text.split('\r\n')[0]}`);
  }
}

await new Promise<void>((resolve, reject) => {
  registered = resolve;
  setTimeout(() => reject(new Error('REGISTER timed out')), 3000).unref();
  toProxy(registerText(), UAS);
});

// ---- load ---------------------------------------------------------------------
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
// Warm-up: JIT and the first old-generation growth are not what we measure.
for (let i = 0; i < 2000; i++) { started++; toProxy(inviteText(started), UAC); if (i % 100 === 99) await sleep(50); }
await sleep(1000);

// BENCH_ALLOC_PROFILE=file: every allocation sampled during the load (those
// the collectors freed as well: what costs scavenges), by stack, as a
// .heapprofile for Chrome DevTools or a summary script.
const allocProfile = process.env.BENCH_ALLOC_PROFILE;
let session: import('node:inspector').Session | undefined;
const post = (method: string, params?: object): Promise<unknown> => new Promise((resolve, reject) => {
  session?.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res)));
});
if (allocProfile) {
  const inspector = await import('node:inspector');
  session = new inspector.Session();
  session.connect();
  // BENCH_ALLOC_MINOR=0: leave out what the scavenger freed, so the profile
  // shows what a call promotes to the old generation (kept or collected later).
  // BENCH_ALLOC_MAJOR=0 as well: only what is still alive when the load ends.
  const minor = process.env.BENCH_ALLOC_MINOR !== '0';
  const major = process.env.BENCH_ALLOC_MAJOR !== '0';
  await post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: major, includeObjectsCollectedByMinorGC: minor });
}

const total = Math.round(RATE * SECONDS);
const first = started;
const doneBefore = completed;
endpointMs = 0;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const tickMs = 10;
const perTick = RATE * tickMs / 1000;
while (started - first < total) {
  const due = (performance.now() - t0) / tickMs * perTick - (started - first);
  const owed = Math.min(due, total - (started - first));
  for (let k = 0; k < owed; k++) { started++; toProxy(inviteText(started), UAC); }
  await sleep(tickMs);
}
const mem = process.memoryUsage();
if (allocProfile) {
  const { profile } = await post('HeapProfiler.stopSampling') as { profile: unknown };
  const { writeFileSync } = await import('node:fs');
  writeFileSync(allocProfile, JSON.stringify(profile));
  process.stdout.write(`allocation profile ${allocProfile}\n`);
}
if (process.env.BENCH_HEAPSNAPSHOT) { const v8 = await import('node:v8'); process.stdout.write(`heap snapshot ${v8.writeHeapSnapshot(process.env.BENCH_HEAPSNAPSHOT)}\n`); }
await sleep(SETTLE * 1000);
const cpu = process.cpuUsage(cpu0);
const wallS = (performance.now() - t0) / 1000;
const calls = completed - doneBefore;
const cpuUs = cpu.user + cpu.system - endpointMs * 1000;
process.stdout.write(`rate ${RATE}/s for ${SECONDS} s (+${SETTLE} s settle, ${wallS.toFixed(1)} s wall): ${calls}/${total} calls completed\n`);
process.stdout.write(`proxy CPU ${(cpuUs / 1e6).toFixed(2)} s (user ${(cpu.user / 1e6).toFixed(2)}, sys ${(cpu.system / 1e6).toFixed(2)}, endpoints ${(endpointMs / 1000).toFixed(2)})` +
  ` = ${(cpuUs / calls).toFixed(1)} us/call; at the end of the load RSS ${(mem.rss / 1e6).toFixed(0)} MB, heap ${(mem.heapUsed / 1e6).toFixed(0)} MB, external+buffers ${((mem.external + mem.arrayBuffers) / 1e6).toFixed(0)} MB\n`);
await server.stop();
process.exit(calls === total ? 0 : 1);
