/**
 * SIP.js as a test softphone in Node 20 (DESIGN.md §2): `globalThis.WebSocket`
 * comes from `ws` (SIP.js asks for the `sip` subprotocol itself, RFC 7118
 * §4.1), and a SessionDescriptionHandler that answers with a static G.711
 * SDP instead of WebRTC. No media flows: these tests are about signalling.
 * And baresip, a real softphone from Debian, started headless.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket as WsWebSocket } from 'ws';
import {
  type Invitation,
  Registerer,
  RegistererState,
  SessionState,
  UserAgent,
  type BodyAndContentType,
  type Session,
  type SessionDescriptionHandler,
  type SessionDescriptionHandlerFactory,
} from 'sip.js';
import { allocPort, DEMO_PASSWORD, type Dialplane } from './harness.js';

/** Installs `ws` as the global WebSocket SIP.js's web transport constructs. Idempotent. */
export function installWebSocket(): void {
  const g = globalThis as { WebSocket?: unknown };
  // Node 20 has no global WebSocket (22 does, behind no flag): ours either way.
  g.WebSocket = WsWebSocket;
}

/** A G.711 (PCMU/PCMA + RFC 4733 events) SDP for 127.0.0.1:port. */
export function staticSdp(port: number): string {
  return [
    'v=0',
    `o=sipjs-e2e ${port} 1 IN IP4 127.0.0.1`,
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=audio ${port} RTP/AVP 0 8 101`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:8 PCMA/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-15',
    'a=ptime:20',
    'a=sendrecv',
    '',
  ].join('\r\n');
}

let nextMediaPort = 40000 + (process.pid % 500) * 20;

/**
 * SessionDescriptionHandler with a fixed offer/answer: getDescription always
 * returns the same G.711 SDP, setDescription records what the peer sent.
 */
export class StaticSdh implements SessionDescriptionHandler {
  readonly remote: string[] = [];
  private readonly sdp = staticSdp((nextMediaPort += 2));

  close(): void {
    // nothing to release: no media
  }
  getDescription(): Promise<BodyAndContentType> {
    return Promise.resolve({ body: this.sdp, contentType: 'application/sdp' });
  }
  hasDescription(contentType: string): boolean {
    return contentType === 'application/sdp';
  }
  setDescription(sdp: string): Promise<void> {
    if (!/^v=0/m.test(sdp) || !/^m=audio /m.test(sdp)) return Promise.reject(new Error('not an audio SDP'));
    this.remote.push(sdp);
    return Promise.resolve();
  }
  sendDtmf(): boolean {
    return false;
  }
}

export const staticSdhFactory: SessionDescriptionHandlerFactory = () => new StaticSdh();

export interface Phone {
  user: string;
  ua: UserAgent;
  registerer: Registerer;
  /** Incoming calls, in arrival order. */
  invitations: Invitation[];
  /** SIP.js warnings/errors and the SIP messages it sent and received (for failure messages). */
  log: string[];
  /** Whether SIP.js receives (or has received) a SIP message matching `re` within `ms`. */
  received(re: RegExp, ms: number): Promise<boolean>;
  /** Resolves with the next incoming call (bounded). */
  nextInvitation(ms?: number): Promise<Invitation>;
  stop(): Promise<void>;
}

export interface PhoneOptions {
  /** Accept every incoming call at once (Invitation.accept()). */
  autoAnswer?: boolean;
  password?: string;
}

/**
 * A SIP.js UserAgent for extension `user` of the demo tenant, connected to
 * the server's WebSocket listener (not yet registered).
 */
export async function startPhone(dp: Dialplane, user: string, opts: PhoneOptions = {}): Promise<Phone> {
  installWebSocket();
  const log: string[] = [];
  const onLog = new Set<(entry: string) => void>();
  const invitations: Invitation[] = [];
  const waiters: Array<(i: Invitation) => void> = [];
  const uri = UserAgent.makeURI(`sip:${user}@dialplane`);
  if (!uri) throw new Error('bad AOR');
  const ua = new UserAgent({
    uri,
    transportOptions: { server: `ws://127.0.0.1:${dp.wsPort}`, connectionTimeout: 5, traceSip: true },
    authorizationUsername: user,
    authorizationPassword: opts.password ?? DEMO_PASSWORD,
    sessionDescriptionHandlerFactory: staticSdhFactory,
    logBuiltinEnabled: false,
    logLevel: 'log',
    logConnector: (level, category, _label, content) => {
      // traceSip logs every message at level "log" on the transport category.
      if (level !== 'warn' && level !== 'error' && !category.toLowerCase().endsWith('transport')) return;
      const entry = `[${level} ${category}] ${content}`;
      log.push(entry);
      for (const l of onLog) l(entry);
    },
    delegate: {
      onInvite: (inv) => {
        invitations.push(inv);
        const w = waiters.shift();
        if (w) w(inv);
        if (opts.autoAnswer) inv.accept().catch((e: unknown) => log.push(`accept failed: ${String(e)}`));
      },
    },
  });
  await withDeadline(ua.start(), 5000, `${user}: WebSocket connect`);
  const registerer = new Registerer(ua, { expires: 120 });
  return {
    user, ua, registerer, invitations, log,
    received: (re, ms) => {
      const match = (e: string): boolean => e.includes('Received WebSocket') && re.test(e);
      if (log.some(match)) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const l = (e: string): void => { if (match(e)) { clearTimeout(timer); onLog.delete(l); resolve(true); } };
        const timer = setTimeout(() => { onLog.delete(l); resolve(false); }, ms);
        onLog.add(l);
      });
    },
    nextInvitation: (ms = 10_000) => {
      const queued = invitations.find((i) => i.state === SessionState.Initial);
      if (queued) return Promise.resolve(queued);
      return withDeadline(new Promise<Invitation>((r) => waiters.push(r)), ms, `${user}: incoming INVITE`);
    },
    stop: async () => {
      // UserAgent.stop() tears down sessions, unregisters if it can, and closes the socket.
      await withDeadline(ua.stop(), 5000, `${user}: stop`).catch(() => undefined);
    },
  };
}

/** Registers and resolves once the registrar said 200 (bounded). */
export async function register(p: Phone, ms = 5000): Promise<void> {
  const registered = waitForState(p.registerer.stateChange, () => p.registerer.state, RegistererState.Registered, ms, `${p.user}: Registered`);
  await p.registerer.register();
  await registered;
}

export async function unregister(p: Phone, ms = 5000): Promise<void> {
  const done = waitForState(p.registerer.stateChange, () => p.registerer.state, RegistererState.Unregistered, ms, `${p.user}: Unregistered`);
  await p.registerer.unregister();
  await done;
}

export function waitForSession(s: Session, state: SessionState, ms: number, what: string): Promise<void> {
  return waitForState(s.stateChange, () => s.state, state, ms, what);
}

interface StateEmitter<S> {
  addListener(listener: (s: S) => void): void;
  removeListener(listener: (s: S) => void): void;
}

/** Resolves when `current()` is (or becomes) `want`; rejects after `ms` naming the state reached. */
export function waitForState<S>(em: StateEmitter<S>, current: () => S, want: S, ms: number, what: string): Promise<void> {
  if (current() === want) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onChange = (s: S): void => {
      if (s !== want) return;
      clearTimeout(timer);
      em.removeListener(onChange);
      resolve();
    };
    const timer = setTimeout(() => {
      em.removeListener(onChange);
      reject(new Error(`${what}: still ${String(current())} after ${ms} ms`));
    }, ms);
    em.addListener(onChange);
  });
}

export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

// ---- baresip (Debian's baresip-core 1.0) ----------------------------------

const baresips = new Set<ChildProcess>();
process.on('exit', () => { for (const c of baresips) c.kill('SIGKILL'); });

export interface BaresipOptions {
  user: string;
  password?: string;
  /** Account parameter answermode (RFC-less baresip feature): 'auto' answers every call at once. */
  answermode?: 'manual' | 'early' | 'auto';
  /** Hard limit on baresip's life (its own -t), in case every other cleanup fails. */
  lifetimeSec?: number;
}

export interface Baresip {
  proc: ChildProcess;
  sipPort: number;
  /** Everything baresip printed (ANSI colours stripped), SIP trace (-s) included. */
  output(): string;
  /** Resolves once the output matches `re` (bounded); rejects with the output so far. */
  waitFor(re: RegExp, ms: number, what: string): Promise<RegExpMatchArray>;
  /** A menu command through the cons module (UDP), e.g. "/dial 1002". */
  command(cmd: string): Promise<void>;
  /** "/quit" (baresip un-REGISTERs, then exits), SIGKILL after a deadline. Resolves on exit. */
  stop(ms?: number): Promise<void>;
}

/**
 * Starts baresip headless with its own config directory (-f): SIP on
 * 127.0.0.1:sipPort (UDP), G.711 only, audio source = an 8 kHz WAV shipped
 * with baresip (aufile), no audio player at all (baresip then plays nothing
 * and the call still proceeds), the cons module on UDP for commands, SIP
 * trace on (-s). Registers `user` at the server with digest auth.
 */
export async function startBaresip(dp: Dialplane, o: BaresipOptions): Promise<Baresip> {
  const dir = mkdtempSync(join(tmpdir(), 'dp-baresip-'));
  const sipPort = allocPort();
  // baresip also listens on TCP sipPort and TLS sipPort + 1 (sip_listen).
  allocPort();
  const consPort = allocPort();
  // Module directory of Debian's baresip-core; aufile insists on 8 kHz input, and
  // ausine (the other file-less source) only runs at 48 kHz, so: a bundled 8 kHz WAV.
  writeFileSync(join(dir, 'config'), [
    'module_path\t\t/usr/lib/baresip/modules',
    'poll_method\t\tepoll',
    `sip_listen\t\t127.0.0.1:${sipPort}`,
    // Without it baresip advertises the machine's default address in Contact and SDP.
    'net_interface\t\t127.0.0.1',
    'call_local_timeout\t120',
    'call_max_calls\t\t4',
    'audio_source\t\taufile,/usr/share/baresip/callwaiting.wav',
    'module\t\t\tg711.so',
    'module\t\t\taufile.so',
    'module\t\t\tcons.so',
    `cons_listen\t\t127.0.0.1:${consPort}`,
    'module_tmp\t\taccount.so',
    'module_app\t\tmenu.so',
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'accounts'), `<sip:${o.user}@127.0.0.1:${dp.sipPort};transport=udp>;auth_pass=${o.password ?? DEMO_PASSWORD};answermode=${o.answermode ?? 'manual'};regint=60\n`);
  // stdbuf: baresip prints with stdio, block-buffered into a pipe; events must arrive as they happen.
  const proc = spawn('stdbuf', ['-oL', '-eL', 'baresip', '-f', dir, '-s', '-t', String(o.lifetimeSec ?? 55)], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  baresips.add(proc);
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer): void => {
    out += d.toString().replace(/\x1b\[[0-9;]*m/g, '');
    for (const l of listeners) l();
  };
  proc.stdout?.on('data', onData);
  proc.stderr?.on('data', onData);
  const exited = new Promise<void>((resolve) => {
    proc.once('exit', () => { baresips.delete(proc); for (const l of listeners) l(); resolve(); });
    proc.once('error', (err) => { out += `\nspawn error: ${err.message}`; baresips.delete(proc); resolve(); });
  });
  const waitFor = (re: RegExp, ms: number, what: string): Promise<RegExpMatchArray> => new Promise((resolve, reject) => {
    const check = (): void => {
      const m = out.match(re);
      if (m) { done(); resolve(m); return; }
      if (proc.exitCode !== null || proc.signalCode !== null) { done(); reject(new Error(`${what}: baresip exited (${proc.exitCode ?? proc.signalCode})`)); }
    };
    const timer = setTimeout(() => { done(); reject(new Error(`${what}: not within ${ms} ms`)); }, ms);
    const done = (): void => { clearTimeout(timer); listeners.delete(check); };
    listeners.add(check);
    check();
  });
  const sock = createSocket('udp4');
  sock.unref();
  let sockOpen = true;
  const command = (cmd: string): Promise<void> => new Promise((resolve, reject) => {
    // The menu reads "/" + a long command + newline (baresip 1.0 cmd.c).
    sock.send(`${cmd}\n`, consPort, '127.0.0.1', (err) => (err ? reject(err) : resolve()));
  });
  // "baresip is ready." is printed once modules, the cons socket and the account are up.
  await waitFor(/baresip is ready\./, 5000, 'baresip start-up');
  return {
    proc, sipPort, waitFor, command,
    output: () => out,
    stop: async (ms = 5000) => {
      if (proc.exitCode === null && proc.signalCode === null) {
        await command('/quit').catch(() => undefined);
        const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
        await exited;
        clearTimeout(timer);
      }
      if (sockOpen) sock.close();
      sockOpen = false;
    },
  };
}
