/**
 * End-to-end harness: starts the built server (dist/src/main.js) as a child
 * process on loopback with its own ports, and runs SIPp scenarios against it.
 * Every child is killed when the test ends, even on failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../../src/node-flags.js';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(here, '..', '..');
export const SCENARIOS = join(here, 'scenarios');
export const DEMO_PASSWORD = 'e2e-secret';

const children = new Set<ChildProcess>();
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });

/**
 * Ports per test file: base + 0..99, derived from the pid so parallel files
 * do not collide, and all below 32768: Linux hands out ephemeral ports
 * (ip_local_port_range, 32768-60999) to every socket bound to port 0, SIPp's
 * and Redis clients' included, and one of those once took a port a test had
 * picked (EADDRINUSE at start-up).
 */
let nextPort = 20000 + (process.pid % 120) * 100;
export function allocPort(): number {
  return nextPort++;
}

export interface Dialplane {
  sipPort: number;
  wsPort: number;
  proc: ChildProcess;
  logs: string[];
  stop(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string>;
  /** Profile fields to override (written to a temporary sip-profiles dir). */
  profile?: Record<string, unknown>;
}

/**
 * Starts the built server. A port taken by another process meanwhile
 * (EADDRINUSE) is retried on fresh ports, twice: a test is about the
 * server, not about which ports were free.
 */
export async function startDialplane(opts: StartOptions = {}): Promise<Dialplane> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      if (attempt >= 3 || !String(err).includes('EADDRINUSE')) throw err;
    }
  }
}

async function startOnce(opts: StartOptions): Promise<Dialplane> {
  const sipPort = allocPort();
  const wsPort = allocPort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    DIALPLANE_BIND: '127.0.0.1',
    DIALPLANE_SIP_PORT: String(sipPort),
    DIALPLANE_WS_PORT: String(wsPort),
    DIALPLANE_HTTP_PORT: String(allocPort()),
    DIALPLANE_DEMO: '1',
    DIALPLANE_DEMO_PASSWORD: DEMO_PASSWORD,
    LOG_LEVEL: 'info',
    // Nothing on disk unless a test asks for it: parallel test files must not share a file.
    DIALPLANE_STORE_FILE: 'memory',
    ...opts.env,
  };
  if (opts.profile) {
    const dir = mkdtempSync(join(tmpdir(), 'dp-profile-'));
    writeFileSync(join(dir, 'test.json'), JSON.stringify({ name: 'test', ...opts.profile }));
    env.DIALPLANE_PROFILES_DIR = dir;
  }
  // Same V8 flags as `npm start` and the Docker image.
  const proc = spawn(process.execPath, [...NODE_FLAGS, join(ROOT, 'dist', 'src', 'main.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  const logs: string[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${logs.join('')}`)), 15_000);
    const onData = (d: Buffer): void => {
      logs.push(d.toString());
      if (d.toString().includes('Dialplane SIP listening')) { clearTimeout(timer); resolve(); }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', (d: Buffer) => logs.push(d.toString()));
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}:\n${logs.join('')}`)); });
  });
  await ready;
  return {
    sipPort, wsPort, proc, logs,
    stop: () => new Promise<void>((resolve) => {
      if (proc.exitCode !== null) { children.delete(proc); return resolve(); }
      proc.once('exit', () => { children.delete(proc); resolve(); });
      proc.kill('SIGTERM');
      setTimeout(() => proc.kill('SIGKILL'), 3000).unref();
    }),
  };
}

/** Waits (10 s at most) until the admin API on `httpPort` answers /health: it listens just after the SIP listeners startDialplane() waits for. */
export async function waitAdminReady(httpPort: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && !(await fetch(`http://127.0.0.1:${httpPort}/health`).then((r) => r.ok, () => false))) {
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface SippResult {
  code: number | null;
  output: string;
}

export interface Sipp {
  done: Promise<SippResult>;
  kill(): void;
}

/**
 * Runs SIPp with a scenario from test/e2e/scenarios. `args` are SIPp's own;
 * a timeout, -nostdin and -timeout_error are always added so a scenario can
 * never hang a test.
 */
export function sipp(scenario: string, args: string[], timeoutSec = 20): Sipp {
  const full = ['-sf', join(SCENARIOS, scenario), ...args, '-nostdin', '-timeout', `${timeoutSec}s`, '-timeout_error', '-trace_err', '-error_file', join(tmpdir(), `sipp-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.err`)];
  const proc = spawn('sipp', full, { cwd: SCENARIOS, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let output = '';
  proc.stdout?.on('data', (d: Buffer) => { output += d.toString(); });
  proc.stderr?.on('data', (d: Buffer) => { output += d.toString(); });
  const done = new Promise<SippResult>((resolve) => {
    proc.once('exit', (code) => { children.delete(proc); resolve({ code, output }); });
    proc.once('error', (err) => { children.delete(proc); resolve({ code: -1, output: `${output}\n${err.message}` }); });
  });
  return { done, kill: () => proc.kill('SIGKILL') };
}

/** Registers `user`'s contact at 127.0.0.1:contactPort with digest auth, via a short-lived SIPp on that port. */
export async function registerContact(dp: Dialplane, user: string, contactPort: number, password = DEMO_PASSWORD): Promise<SippResult> {
  return sipp('uac-register-digest-expect-200.xml', [
    `127.0.0.1:${dp.sipPort}`, '-i', '127.0.0.1', '-p', String(contactPort), '-s', user, '-au', user, '-ap', password, '-m', '1',
  ], 10).done;
}

export function summary(r: SippResult): string {
  return r.output.split('\n').filter((l) => /Successful call|Failed call|Unexpected|error|Aborting|Error/i.test(l)).slice(0, 12).join('\n');
}

/** Whether something listens on UDP 127.0.0.1:port (reads /proc/net/udp: no sleeping guesses). */
function udpBound(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  try {
    return readFileSync('/proc/net/udp', 'utf8').includes(hex);
  } catch {
    return true;
  }
}

/** Starts a SIPp UAS on 127.0.0.1:port and resolves once its socket is bound (bounded wait). */
export async function startUas(scenario: string, port: number, extra: string[] = [], timeoutSec = 20): Promise<Sipp> {
  const s = sipp(scenario, ['-i', '127.0.0.1', '-p', String(port), '-m', '1', ...extra], timeoutSec);
  const deadline = Date.now() + 5000;
  while (!udpBound(port) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return s;
}
