// Runs SIPp for the benchmark and reads its result files.
//
// Every run is bounded three ways: -m (calls), -timeout (SIPp's own global
// timeout, with -timeout_error so a timed-out run is not mistaken for a good
// one) and a kill timer on our side a little later.  Results come from the
// files SIPp writes into the run's directory:
//   stat.csv               -trace_stat -stf stat.csv: cumulative counters
//   <scenario>_<pid>_rtt.csv  -trace_rtt: one line per response-time sample
//                          (rtd 1 = INVITE -> 200, rtd 2 = BYE -> 200)
// SIPp times messages with a coarse clock (4 ms steps in Debian's build) and
// starts each tick's share of new calls right after the tick, so a call
// answered within the same tick reads 0 ms: samples are 0, 4, 8... ms, and
// 0 means "under 4 ms".  Neither percentiles nor the mean resolve anything
// finer; they do show queueing once it reaches several ticks.
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { ChildRegistry, RunningChild } from './child-registry.js';
import { udpPortBound } from './proc-usage.js';

export interface Endpoint {
  readonly ip: string;
  readonly port: number;
}

export interface LatencyStats {
  readonly samples: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface UacResult {
  readonly exitCode: number | null;
  readonly killed: boolean;
  readonly targetCps: number;
  /** Calls created per second, as SIPp counts it. */
  readonly generatedCps: number;
  /** Successful calls per second of the run's elapsed time. */
  readonly achievedCps: number;
  readonly created: number;
  readonly successful: number;
  readonly failed: number;
  readonly retransmissions: number;
  readonly deadCallMsgs: number;
  readonly elapsedSeconds: number;
  readonly setup: LatencyStats | null;
  readonly teardown: LatencyStats | null;
  readonly dir: string;
}

// Watchdog: on 2 busy cores SIPp's main loop can be late; its default
// watchdog would then abort the run instead of reporting slow calls.
const WATCHDOG_ARGS = [
  '-watchdog_minor_threshold', '5000',
  '-watchdog_major_threshold', '20000',
  '-watchdog_minor_maxtriggers', '100000',
  '-watchdog_major_maxtriggers', '1000',
];

const COMMON_ARGS = ['-nostdin', '-buff_size', '4194304', '-trace_err', '-max_log_size', '5000000', ...WATCHDOG_ARGS];

export interface SippEnv {
  readonly registry: ChildRegistry;
  readonly sipp: string;
  readonly scenarioDir: string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs SIPp with the given arguments in `dir`, bounded by killAfterSeconds. */
export async function runSipp(
  env: SippEnv,
  opts: { readonly name: string; readonly args: readonly string[]; readonly dir: string; readonly killAfterSeconds: number },
): Promise<{ readonly code: number | null; readonly killed: boolean }> {
  mkdirSync(opts.dir, { recursive: true });
  const child = await env.registry.spawn({
    name: opts.name,
    command: env.sipp,
    args: [...opts.args, ...COMMON_ARGS],
    cwd: opts.dir,
    logFile: join(opts.dir, `${opts.name}.log`),
  });
  const exit = await env.registry.waitOrKill(child, opts.killAfterSeconds * 1000);
  return { code: exit.code, killed: exit.killed };
}

/** Starts SIPp in the background; resolves once `at` is bound (a UAS). */
export async function startSipp(
  env: SippEnv,
  opts: { readonly name: string; readonly args: readonly string[]; readonly dir: string; readonly at: Endpoint },
): Promise<RunningChild> {
  mkdirSync(opts.dir, { recursive: true });
  const child = await env.registry.spawn({
    name: opts.name,
    command: env.sipp,
    args: [...opts.args, '-i', opts.at.ip, '-p', String(opts.at.port), ...COMMON_ARGS],
    cwd: opts.dir,
    logFile: join(opts.dir, `${opts.name}.log`),
  });
  for (let i = 0; i < 100; i++) {
    if (child.exit() !== null) {
      throw new Error(`${opts.name} exited at start (${describeExit(child)}); see ${opts.dir}`);
    }
    if (udpPortBound(opts.at.ip, opts.at.port)) {
      return child;
    }
    await sleep(50);
  }
  await env.registry.stop(child);
  throw new Error(`${opts.name} did not bind ${opts.at.ip}:${opts.at.port} within 5 s`);
}

/** Starts uas-answer-200.xml; resolves once its UDP port is bound. */
export async function startUas(
  env: SippEnv,
  opts: { readonly at: Endpoint; readonly dir: string; readonly maxSeconds: number },
): Promise<RunningChild> {
  return startSipp(env, {
    name: 'uas',
    args: [
      '-sf', join(env.scenarioDir, 'uas-answer-200.xml'),
      '-timeout', `${Math.ceil(opts.maxSeconds)}s`,
      '-trace_stat', '-stf', 'uas-stat.csv', '-fd', '5',
    ],
    dir: opts.dir,
    at: opts.at,
  });
}

/**
 * REGISTERs `user` with digest auth from `from` (normally the UAS's address,
 * before the UAS starts, so the binding's Contact is the UAS).
 */
export async function registerContact(
  env: SippEnv,
  opts: {
    readonly from: Endpoint;
    readonly registrar: Endpoint;
    readonly user: string;
    readonly password: string;
    readonly dir: string;
  },
): Promise<void> {
  mkdirSync(opts.dir, { recursive: true });
  const child = await env.registry.spawn({
    name: 'sipp-register',
    command: env.sipp,
    args: [
      '-sf', join(env.scenarioDir, 'uac-register-digest-expect-200.xml'),
      '-s', opts.user, '-au', opts.user, '-ap', opts.password,
      '-i', opts.from.ip, '-p', String(opts.from.port),
      `${opts.registrar.ip}:${opts.registrar.port}`,
      '-m', '1', '-timeout', '10s', '-timeout_error', '-trace_msg',
      ...COMMON_ARGS,
    ],
    cwd: opts.dir,
    logFile: join(opts.dir, 'register.log'),
  });
  const exit = await env.registry.waitOrKill(child, 15_000);
  if (exit.code !== 0) {
    throw new Error(`REGISTER of ${opts.user} failed (sipp ${exit.killed ? 'killed' : `exit ${String(exit.code)}`}); see ${opts.dir}`);
  }
}

export interface UacStep {
  readonly target: Endpoint;
  readonly bindIp: string;
  readonly service: string;
  readonly rate: number;
  readonly calls: number;
  readonly holdMs: number;
  readonly dir: string;
  /** SIPp's -timeout; we kill it 15 s after that. */
  readonly timeoutSeconds: number;
  /** Called every sampleMs while SIPp runs (soak sampling). */
  readonly onTick?: () => void;
  readonly sampleMs?: number;
}

/** Runs uac-call-expect-200.xml once and reads its results. */
export async function runUac(env: SippEnv, step: UacStep): Promise<UacResult> {
  mkdirSync(step.dir, { recursive: true });
  const limit = Math.ceil(step.rate * (step.holdMs / 1000 + 2)) + 100;
  const child = await env.registry.spawn({
    name: 'sipp-uac',
    command: env.sipp,
    args: [
      '-sf', join(env.scenarioDir, 'uac-call-expect-200.xml'),
      '-s', step.service, '-i', step.bindIp,
      `${step.target.ip}:${step.target.port}`,
      '-r', String(step.rate), '-m', String(step.calls), '-l', String(limit),
      '-d', String(step.holdMs),
      '-timeout', `${Math.ceil(step.timeoutSeconds)}s`, '-timeout_error',
      '-recv_timeout', '10000',
      '-trace_stat', '-stf', 'stat.csv', '-fd', '1',
      '-trace_rtt', '-rtt_freq', '500',
      '-trace_screen',
      ...COMMON_ARGS,
    ],
    cwd: step.dir,
    logFile: join(step.dir, 'uac.log'),
  });
  let timer: NodeJS.Timeout | undefined;
  if (step.onTick !== undefined) {
    timer = setInterval(step.onTick, step.sampleMs ?? 10_000);
  }
  let exit: Awaited<ReturnType<ChildRegistry['waitOrKill']>>;
  try {
    exit = await env.registry.waitOrKill(child, (step.timeoutSeconds + 15) * 1000);
  } finally {
    if (timer !== undefined) {
      clearInterval(timer);
    }
  }
  const stat = readLastStatRow(join(step.dir, 'stat.csv'));
  const rtt = readRtt(step.dir);
  const num = (key: string): number => {
    const v = Number(stat?.get(key) ?? Number.NaN);
    return Number.isFinite(v) ? v : 0;
  };
  const elapsed = stat === null ? 0 : epochOf(stat.get('CurrentTime')) - epochOf(stat.get('StartTime'));
  const successful = num('SuccessfulCall(C)');
  return {
    exitCode: exit.code,
    killed: exit.killed,
    targetCps: step.rate,
    generatedCps: num('CallRate(C)'),
    achievedCps: elapsed > 0 ? successful / elapsed : 0,
    created: num('TotalCallCreated'),
    successful,
    failed: num('FailedCall(C)'),
    retransmissions: num('Retransmissions(C)'),
    deadCallMsgs: num('DeadCallMsgs(C)'),
    elapsedSeconds: elapsed,
    setup: latency(rtt.get(1) ?? []),
    teardown: latency(rtt.get(2) ?? []),
    dir: step.dir,
  };
}

function describeExit(child: RunningChild): string {
  const e = child.exit();
  if (e === null) {
    return 'running';
  }
  return e.signal !== null ? `signal ${e.signal}` : `code ${String(e.code)}`;
}

/** Last data row of SIPp's -trace_stat CSV, by column name. */
export function readLastStatRow(file: string): Map<string, string> | null {
  if (!existsSync(file)) {
    return null;
  }
  const lines = readFileSync(file, 'latin1').split('\n').filter((l) => l.trim() !== '');
  const header = lines[0];
  const last = lines[lines.length - 1];
  if (header === undefined || last === undefined || lines.length < 2) {
    return null;
  }
  const names = header.split(';');
  const values = last.split(';');
  const row = new Map<string, string>();
  names.forEach((name, i) => row.set(name, values[i] ?? ''));
  return row;
}

/** "2026-11-24\t12:45:23.960925\t1795524323.960925" -> 1795524323.960925 */
function epochOf(field: string | undefined): number {
  const parts = (field ?? '').split('\t');
  const v = Number(parts[parts.length - 1]);
  return Number.isFinite(v) ? v : 0;
}

/** Response-time samples by rtd number, from <scenario>_<pid>_rtt.csv. */
export function readRtt(dir: string): Map<number, number[]> {
  const out = new Map<number, number[]>();
  const file = readdirSync(dir).find((f) => f.endsWith('_rtt.csv'));
  if (file === undefined) {
    return out;
  }
  const lines = readFileSync(join(dir, file), 'latin1').split('\n');
  for (const line of lines.slice(1)) {
    const [, ms, rtd] = line.split(';');
    const value = Number(ms);
    const n = Number(rtd);
    if (ms === undefined || rtd === undefined || !Number.isFinite(value) || !Number.isInteger(n)) {
      continue;
    }
    const list = out.get(n);
    if (list === undefined) {
      out.set(n, [value]);
    } else {
      list.push(value);
    }
  }
  return out;
}

/** Nearest-rank percentiles. */
export function latency(samples: readonly number[]): LatencyStats | null {
  if (samples.length === 0) {
    return null;
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    samples: sorted.length,
    meanMs: sum / sorted.length,
    p50Ms: rank(0.5),
    p99Ms: rank(0.99),
    maxMs: sorted[sorted.length - 1] ?? 0,
  };
}
