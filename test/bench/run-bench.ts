// SIP proxy benchmark: Dialplane against Kamailio, same machine, same run.
//
//   npm run bench -- [--only kamailio|dialplane|dialplane-redis-rr|dialplane-base] [--rates 500,1000,2000]
//                    [--seconds 10] [--hold-ms 0] [--settle 5] [--step-warmup 5] [--json FILE] [--keep]
//   npm run bench -- --soak 300 --rate 1000 [--sample 10] [--warmup 60] [--only dialplane]
//
// Each proxy runs as a child process with a SIPp UAS behind it
// (uas-answer-200.xml); a SIPp UAC (uac-call-expect-200.xml) offers calls at
// each rate in turn, INVITE/100/180/200/ACK/BYE/200 through the proxy.  For
// every step: offered and achieved calls/s, successes, failures,
// retransmissions, setup (INVITE->200) and teardown (BYE->200) times, the
// proxy's CPU per successful call (its whole process tree, from /proc) and
// its memory.  Then a table of dialplane/kamailio CPU per call at each rate.
// One load at a time; every SIPp run is bounded by -m, -timeout and a kill
// timer; all children are stopped on exit, on error and on SIGINT.
//
// Environment equivalents: BENCH_ONLY, BENCH_RATES, BENCH_SECONDS,
// BENCH_HOLD_MS, BENCH_SETTLE, BENCH_KEEP=1, BENCH_SIPP, BENCH_KAMAILIO,
// BENCH_NODE_ARGS (extra node options for our server, e.g. --cpu-prof),
// BENCH_BASELINE (another built checkout, run as "dialplane-base": an A/B),
// BENCH_KAMAILIO_SHM_MB (default 2048: Kamailio keeps each transaction about
// 15 kB for 5 s after it ends, 2 per call, so 4000 calls/s needs ~600 MB).
// Exit code: 0 when every proxy asked for ran, 2 when one could not (its
// error is printed and the others' figures still are), 1 on a harness error.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';

import { ChildRegistry, type RunningChild } from './child-registry.js';
import { cpuBetween, freeUdpPort, memoryOfTree, sampleTree, type Memory } from './proc-usage.js';
import { dialplaneProxy, kamailioProxy, type ProxyContext, type ProxyUnderTest, type StartedProxy } from './proxies-under-test.js';
import { computeHa1 } from '../../src/sip/registrar/digest.js';
import { nullLogger } from '../../src/sip/logger.js';
import { createRedisClient, waitForRedisReady } from '../../src/store/redis/connect.js';
import { RedisTenantStore } from '../../src/store/redis/tenant-store.js';
import { deleteKeysWithPrefix } from '../helpers/redis-prefix.js';
import { runUac, startUas, type LatencyStats, type SippEnv, type UacResult } from './sipp-runner.js';

interface Options {
  readonly only: readonly string[];
  readonly rates: readonly number[];
  readonly seconds: number;
  readonly holdMs: number;
  readonly settleSeconds: number;
  readonly soakSeconds: number | null;
  readonly soakRate: number;
  readonly sampleSeconds: number;
  readonly warmupSeconds: number;
  /** Calls at the lowest rate before the measured steps (every proxy alike). */
  readonly stepWarmupSeconds: number;
  readonly keep: boolean;
  readonly json: string | null;
  readonly sipp: string;
  readonly kamailio: string;
}

interface StepResult {
  readonly rate: number;
  readonly uac: UacResult;
  readonly cpuSeconds: number;
  readonly cpuSource: 'sched' | 'stat';
  readonly statCpuSeconds: number;
  readonly usPerCall: number | null;
  readonly memory: Memory;
}

interface ProxyRun {
  readonly name: string;
  readonly error: string | null;
  readonly idleCpuPercent: number | null;
  readonly steps: StepResult[];
}

const PROXIES = ['kamailio', 'dialplane', 'dialplane-redis-rr', 'dialplane-base'] as const;
/**
 * BENCH_BASELINE: another checkout of this repository, built (npm ci && npm
 * run build), whose server runs as "dialplane-base" right after "dialplane":
 * an optimisation measured against the code before it in the same run, under
 * the same load (this machine's speed varies by 10-30 % from run to run).
 */
const BASELINE = process.env.BENCH_BASELINE;
/** BENCH_NODE_ARGS: extra options for our server's node, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". */
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const out = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      rates: { type: 'string' },
      seconds: { type: 'string' },
      'hold-ms': { type: 'string' },
      settle: { type: 'string' },
      soak: { type: 'string' },
      rate: { type: 'string' },
      sample: { type: 'string' },
      warmup: { type: 'string' },
      'step-warmup': { type: 'string' },
      keep: { type: 'boolean' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  });
  if (values.help === true) {
    const self = readFileSync(fileURLToPath(import.meta.url), 'utf8');
    out(self.split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
    process.exit(0);
  }
  const env = process.env;
  const positive = (name: string, raw: string | undefined, fallback: number, allowZero = false): number => {
    if (raw === undefined || raw === '') {
      return fallback;
    }
    const v = Number(raw);
    if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
      throw new Error(`${name}: not a ${allowZero ? 'non-negative' : 'positive'} number: ${raw}`);
    }
    return v;
  };
  const onlyRaw = values.only ?? env.BENCH_ONLY;
  const all = BASELINE === undefined || BASELINE === '' ? PROXIES.filter((p) => p !== 'dialplane-base') : [...PROXIES];
  const only = onlyRaw === undefined || onlyRaw === '' ? all : onlyRaw.split(',').map((s) => s.trim());
  for (const name of only) {
    if (!(PROXIES as readonly string[]).includes(name)) {
      throw new Error(`--only: unknown proxy "${name}" (known: ${PROXIES.join(', ')})`);
    }
  }
  if (only.includes('dialplane-base')) {
    const main = join(BASELINE ?? '', 'dist', 'src', 'main.js');
    if (BASELINE === undefined || BASELINE === '' || !existsSync(main)) {
      throw new Error(`dialplane-base needs BENCH_BASELINE=<another checkout, built>: ${main} does not exist`);
    }
  }
  const ratesRaw = values.rates ?? env.BENCH_RATES ?? '500,1000,2000,3000,4000';
  const rates = ratesRaw.split(',').map((r) => positive('--rates', r.trim(), 0));
  const soak = values.soak === undefined ? null : positive('--soak', values.soak, 300);
  return {
    only,
    rates,
    seconds: positive('--seconds', values.seconds ?? env.BENCH_SECONDS, 10),
    holdMs: positive('--hold-ms', values['hold-ms'] ?? env.BENCH_HOLD_MS, 0, true),
    settleSeconds: positive('--settle', values.settle ?? env.BENCH_SETTLE, 5, true),
    soakSeconds: soak,
    soakRate: positive('--rate', values.rate, 1000),
    sampleSeconds: positive('--sample', values.sample, 10),
    // 32 s of RFC 6026 wait states, the CDR store's cap and V8's heap growth come first.
    warmupSeconds: positive('--warmup', values.warmup, 60, true),
    stepWarmupSeconds: positive('--step-warmup', values['step-warmup'] ?? env.BENCH_STEP_WARMUP, 5, true),
    keep: values.keep === true || env.BENCH_KEEP === '1',
    json: values.json ?? null,
    sipp: env.BENCH_SIPP ?? 'sipp',
    kamailio: env.BENCH_KAMAILIO ?? 'kamailio',
  };
}

/** The directory holding this repository's package.json. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'dialplane') {
      return dir;
    }
    dir = dirname(dir);
  }
  throw new Error('cannot find the repository root (package.json named "dialplane")');
}

async function freeTcpPort(ip: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, ip, () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') {
    throw new Error('cannot allocate a TCP port');
  }
  return address.port;
}

function requireTool(command: string, args: readonly string[], hint: string): void {
  try {
    execFileSync(command, [...args], { stdio: 'ignore', timeout: 10_000 });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ENOENT') {
      throw new Error(`${command} not found: ${hint}`, { cause: err });
    }
    // sipp -v exits non-zero on some builds: being found is enough
  }
}

async function makeProxy(name: string, opts: Options): Promise<ProxyUnderTest> {
  const uacIp = '127.0.0.2';
  const service = '4008123456';
  if (name === 'kamailio') {
    return kamailioProxy({
      binary: opts.kamailio,
      sip: { ip: '127.0.0.1', port: await freeUdpPort('127.0.0.1') },
      uacIp,
      service,
      sharedMemoryMb: Number(process.env.BENCH_KAMAILIO_SHM_MB ?? '2048'),
    });
  }
  const password = process.env.BENCH_DEMO_PASSWORD ?? `bench-${process.pid}-${Date.now().toString(36)}`;
  if (name === 'dialplane-redis-rr') {
    // Issue 3's load: a 400 number routed by rules kept in Redis, round-robin over
    // three extensions (one shared INCR per call); the three are registered at
    // the one SIPp UAS, so the figure differs from "dialplane" by the routing only.
    const url = BENCH_REDIS_URL;
    const prefix = BENCH_REDIS_PREFIX;
    const users = ['3001', '3002', '3003'];
    return dialplaneProxy({
      name,
      node: process.execPath,
      nodeArgs: NODE_ARGS,
      sip: { ip: '127.0.0.1', port: await freeUdpPort('127.0.0.1') },
      wsPort: await freeTcpPort('127.0.0.1'),
      httpPort: await freeTcpPort('127.0.0.1'),
      uacIp,
      service: '4001230002',
      user: users[0] ?? '3001',
      password,
      redis: { url, prefix, users, provision: () => provisionRedisTenant(url, prefix, users, password) },
    });
  }
  return dialplaneProxy({
    ...(name === 'dialplane-base' ? { name, repoRoot: BASELINE } : {}),
    node: process.execPath,
    nodeArgs: NODE_ARGS,
    sip: { ip: '127.0.0.1', port: await freeUdpPort('127.0.0.1') },
    wsPort: await freeTcpPort('127.0.0.1'),
    httpPort: await freeTcpPort('127.0.0.1'),
    uacIp,
    service,
    user: '1001',
    password,
  });
}

const BENCH_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const BENCH_REDIS_PREFIX = `dpbench:${process.pid}:`;

/** Writes the round-robin tenant for dialplane-redis-rr (realm `dialplane`, the default profile's). */
async function provisionRedisTenant(url: string, prefix: string, users: readonly string[], password: string): Promise<void> {
  const redis = createRedisClient(url, nullLogger);
  try {
    await waitForRedisReady(redis, 5000);
    const store = new RedisTenantStore({ redis, prefix });
    await store.putTenant({
      id: 'bench',
      numbers: [{ number: '4001230002', route: 'rotate' }],
      extensions: users.map((u) => ({ number: u, sip: { ha1Md5: computeHa1('MD5', u, 'dialplane', password), ha1Sha256: computeHa1('SHA-256', u, 'dialplane', password) } })),
      inboundTrunks: [{ id: 'carrier', sources: ['127.0.0.2'] }],
      routes: [{ id: 'rotate', rules: [{ id: 'rr', actions: [{ kind: 'ring', strategy: 'round-robin', targets: users.map((u) => ({ extension: u })) }] }] }],
    });
    await store.close();
  } finally {
    redis.disconnect();
  }
}

/** Deletes every key of a bench run's prefix (SCAN + UNLINK, never KEYS/FLUSHDB: the Redis may be shared). */
async function cleanRedis(url: string, prefix: string): Promise<void> {
  const redis = createRedisClient(url, nullLogger);
  try {
    await waitForRedisReady(redis, 5000);
    await deleteKeysWithPrefix(redis, prefix);
  } finally {
    redis.disconnect();
  }
}

interface Started {
  readonly proxy: StartedProxy;
  readonly uas: RunningChild;
  readonly idleCpuPercent: number | null;
}

/** Proxy, pre-load setup, UAS, then a small smoke run that must succeed. */
async function bringUp(put: ProxyUnderTest, ctx: ProxyContext): Promise<Started> {
  const proxy = await put.start(ctx);
  const idleBefore = sampleTree(proxy.pid);
  await put.setup?.(ctx);
  const uas = await startUas(ctx.sippEnv, { at: ctx.uas, dir: join(ctx.workDir, 'uas'), maxSeconds: ctx.maxSeconds });
  await sleep(2000);
  const idle = cpuBetween(idleBefore, sampleTree(proxy.pid));
  const smoke = await runUac(ctx.sippEnv, {
    target: put.sip,
    bindIp: put.uacIp,
    service: put.service,
    rate: 50,
    calls: 50,
    holdMs: 0,
    dir: join(ctx.workDir, 'smoke'),
    timeoutSeconds: 20,
  });
  if (smoke.successful === 0) {
    throw new Error(`smoke test: 0 of 50 calls succeeded (${smoke.failed} failed); see ${smoke.dir}`);
  }
  if (smoke.failed > 0) {
    out(`  warning: smoke test had ${smoke.failed} failed call(s); see ${smoke.dir}`);
  }
  const cpu = idle.schedSeconds ?? idle.statSeconds;
  return { proxy, uas, idleCpuPercent: idle.wallSeconds > 0 ? (100 * cpu) / idle.wallSeconds : null };
}

async function runRates(put: ProxyUnderTest, opts: Options, base: Omit<ProxyContext, 'workDir' | 'uas' | 'maxSeconds'>, root: string): Promise<ProxyRun> {
  const workDir = join(root, put.name);
  mkdirSync(workDir, { recursive: true });
  const perStep = opts.seconds + opts.holdMs / 1000 + opts.settleSeconds + 50;
  const ctx: ProxyContext = {
    ...base,
    workDir,
    uas: { ip: '127.0.0.1', port: await freeUdpPort('127.0.0.1') },
    maxSeconds: 120 + perStep * opts.rates.length,
  };
  const steps: StepResult[] = [];
  let started: Started | null = null;
  try {
    out(`\n== ${put.name}: starting (SIP ${put.sip.ip}:${put.sip.port}, UAS ${ctx.uas.ip}:${ctx.uas.port}, work dir ${workDir})`);
    started = await bringUp(put, ctx);
    // Warm-up, the same for every proxy: a JIT-compiled proxy's first seconds
    // (compilation, first heap growth) are a start-up cost, not a per-call one.
    const lowest = Math.min(...opts.rates);
    if (opts.stepWarmupSeconds > 0) {
      await runUac(base.sippEnv, {
        target: put.sip, bindIp: put.uacIp, service: put.service, rate: lowest,
        calls: Math.max(1, Math.round(lowest * opts.stepWarmupSeconds)), holdMs: opts.holdMs,
        dir: join(workDir, 'warm-up'), timeoutSeconds: opts.stepWarmupSeconds + opts.holdMs / 1000 + 30,
      });
      await sleep(opts.settleSeconds * 1000);
    }
    // Idle CPU once warm (timers, housekeeping), over 3 s.
    const idleBefore = sampleTree(started.proxy.pid);
    await sleep(3000);
    const idle = cpuBetween(idleBefore, sampleTree(started.proxy.pid));
    const idleCpu = idle.schedSeconds ?? idle.statSeconds;
    started = { ...started, idleCpuPercent: idle.wallSeconds > 0 ? (100 * idleCpu) / idle.wallSeconds : null };
    out(row(STEP_HEAD, STEP_W));
    for (const rate of opts.rates) {
      if (started.proxy.child.exit() !== null) {
        throw new Error(`${put.name} exited during the run; see ${workDir}`);
      }
      const calls = Math.max(1, Math.round(rate * opts.seconds));
      const before = sampleTree(started.proxy.pid);
      const uac = await runUac(base.sippEnv, {
        target: put.sip,
        bindIp: put.uacIp,
        service: put.service,
        rate,
        calls,
        holdMs: opts.holdMs,
        dir: join(workDir, `rate-${rate}`),
        timeoutSeconds: opts.seconds + opts.holdMs / 1000 + 30,
      });
      await sleep(opts.settleSeconds * 1000);
      const after = sampleTree(started.proxy.pid);
      const memory = memoryOfTree(started.proxy.pid);
      const cpu = cpuBetween(before, after);
      const cpuSeconds = cpu.schedSeconds ?? cpu.statSeconds;
      const step: StepResult = {
        rate,
        uac,
        cpuSeconds,
        cpuSource: cpu.schedSeconds === null ? 'stat' : 'sched',
        statCpuSeconds: cpu.statSeconds,
        usPerCall: uac.successful > 0 ? (cpuSeconds * 1e6) / uac.successful : null,
        memory,
      };
      steps.push(step);
      out(stepLine(step));
    }
    return { name: put.name, error: null, idleCpuPercent: started.idleCpuPercent, steps };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    out(`!! ${put.name}: ${message}`);
    return { name: put.name, error: message, idleCpuPercent: started?.idleCpuPercent ?? null, steps };
  } finally {
    if (started !== null) {
      await base.registry.stop(started.uas);
      await base.registry.stop(started.proxy.child);
    }
    await base.registry.stopAll();
  }
}

// ---------------------------------------------------------------- output

const f0 = (v: number | null): string => (v === null ? 'n/a' : v.toFixed(0));
const f1 = (v: number | null): string => (v === null ? 'n/a' : v.toFixed(1));
const f2 = (v: number | null): string => (v === null ? 'n/a' : v.toFixed(2));
const mb = (kb: number | null): string => (kb === null ? 'n/a' : (kb / 1024).toFixed(1));
const lat = (l: LatencyStats | null): string => (l === null ? 'n/a' : `${f0(l.p50Ms)}/${f0(l.p99Ms)}/${f0(l.maxMs)}`);

function row(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((c, i) => c.padStart(widths[i] ?? 8)).join(' ');
}

const STEP_HEAD = ['offered/s', 'sent/s', 'ok/s', 'ok', 'failed', 'retrans', 'setup p50/p99/max ms', 'bye p50/p99/max ms', 'cpu us/call', '(stat)', 'RSS MB', 'PSS MB', 'exit'];
const STEP_W = [9, 8, 8, 7, 6, 7, 21, 19, 11, 7, 7, 7, 5];

function stepLine(s: StepResult): string {
  const u = s.uac;
  const statUs = u.successful > 0 ? (s.statCpuSeconds * 1e6) / u.successful : null;
  return row(
    [
      String(s.rate), f0(u.generatedCps), f0(u.achievedCps), String(u.successful), String(u.failed), String(u.retransmissions),
      lat(u.setup), lat(u.teardown), f1(s.usPerCall), f0(statUs), mb(s.memory.rssKb), mb(s.memory.pssKb),
      u.killed ? 'kill' : String(u.exitCode),
    ],
    STEP_W,
  );
}

function printReport(runs: readonly ProxyRun[], opts: Options): void {
  out('\n==================== results ====================');
  out(`steps: ${opts.seconds} s each, hold ${opts.holdMs} ms, CPU window = step + ${opts.settleSeconds} s settle`);
  out('cpu us/call: CPU time of the proxy process tree / successful calls (/proc task sched runtime; "(stat)" = utime+stime ticks)');
  out('latency: SIPp rtd (setup = INVITE->200, bye = BYE->200) in 4 ms clock ticks: 0 means under 4 ms');
  for (const run of runs) {
    out(`\n-- ${run.name}${run.idleCpuPercent === null ? '' : ` (idle CPU ${f2(run.idleCpuPercent)} %)`}`);
    if (run.steps.length > 0) {
      out(row(STEP_HEAD, STEP_W));
      for (const s of run.steps) {
        out(stepLine(s));
      }
    }
    if (run.error !== null) {
      out(`   FAILED: ${run.error.split('\n').join('\n   ')}`);
    }
  }
  const kam = runs.find((r) => r.name === 'kamailio');
  const dp = runs.find((r) => r.name === 'dialplane');
  const rr = runs.find((r) => r.name === 'dialplane-redis-rr');
  const us = (run: ProxyRun | undefined, rate: number): number | null => run?.steps.find((s) => s.rate === rate)?.usPerCall ?? null;
  const ratio = (a: number | null, b: number | null): string => (a !== null && b !== null && b > 0 ? `${f2(a / b)}x` : 'n/a');
  if (kam !== undefined && (dp !== undefined || rr !== undefined)) {
    out('\n-- CPU per call against kamailio (same run); dialplane-redis-rr = rules in Redis, round-robin over 3 extensions');
    const w = [9, 12, 13, 14, 15, 14, 14];
    out(row(['offered/s', 'kamailio us', 'dialplane us', 'redis-rr us', 'dialplane/kam', 'redis-rr/kam', 'redis-rr/dp'], w));
    for (const rate of opts.rates) {
      const k = us(kam, rate);
      const d = us(dp, rate);
      const r = us(rr, rate);
      out(row([String(rate), f1(k), f1(d), f1(r), ratio(d, k), ratio(r, k), ratio(r, d)], w));
    }
  }
  const base = runs.find((r) => r.name === 'dialplane-base');
  if (base !== undefined && dp !== undefined) {
    out(`\n-- this checkout against BENCH_BASELINE (${BASELINE ?? ''}), same run`);
    const w = [9, 12, 13, 15, 14, 14];
    out(row(['offered/s', 'base us', 'dialplane us', 'dialplane/base', 'base/kam', 'dialplane/kam'], w));
    for (const rate of opts.rates) {
      const b = us(base, rate);
      const d = us(dp, rate);
      const k = us(kam, rate);
      out(row([String(rate), f1(b), f1(d), ratio(d, b), ratio(b, k), ratio(d, k)], w));
    }
  }
}

// ---------------------------------------------------------------- soak

interface MemSample {
  readonly t: number;
  readonly memory: Memory;
}

function drift(values: readonly number[]): string {
  const first = values[0];
  const last = values[values.length - 1];
  if (first === undefined || last === undefined || first === 0) {
    return 'n/a';
  }
  const min = Math.min(...values);
  const max = Math.max(...values);
  const pct = (v: number): string => `${v >= 0 ? '+' : ''}${((100 * v) / first).toFixed(1)} %`;
  return `first ${mb(first)}  last ${mb(last)}  min ${mb(min)}  max ${mb(max)} MB;  drift ${pct(last - first)}  (range ${pct(max - min)})`;
}

/**
 * The memory a garbage-collected heap returns to between collections: the
 * lowest sample of each window. A leak raises that floor from window to
 * window; the sawtooth above it (V8 lets the old generation grow by a
 * factor of what survived the last full collection before collecting
 * again) is allocation, not retention. Printed beside the raw drift, which
 * compares two arbitrary points of the sawtooth.
 */
function floors(samples: readonly MemSample[], windowSeconds: number): string {
  const t0 = samples[0]?.t ?? 0;
  const mins: number[] = [];
  for (const s of samples) {
    const w = Math.floor((s.t - t0) / windowSeconds);
    mins[w] = Math.min(mins[w] ?? Infinity, s.memory.rssKb);
  }
  const full = mins.filter((v) => Number.isFinite(v));
  const first = full[0];
  const last = full[full.length - 1];
  if (first === undefined || last === undefined || full.length < 2) return 'n/a (fewer than two windows)';
  const all = samples.map((s) => s.memory.rssKb);
  const mean = all.reduce((a, b) => a + b, 0) / all.length;
  const half = (Math.max(...all) - Math.min(...all)) / 2;
  const pct = (v: number, of: number): string => `${v >= 0 ? '+' : ''}${((100 * v) / of).toFixed(1)} %`;
  return `${full.map((v) => mb(v)).join(' / ')} MB; floor drift ${pct(last - first, first)}; ` +
    `all samples ${mb(mean)} MB ±${((100 * half) / mean).toFixed(1)} %`;
}

async function runSoak(put: ProxyUnderTest, opts: Options, base: Omit<ProxyContext, 'workDir' | 'uas' | 'maxSeconds'>, root: string): Promise<boolean> {
  const seconds = opts.soakSeconds ?? 300;
  const workDir = join(root, `${put.name}-soak`);
  mkdirSync(workDir, { recursive: true });
  const ctx: ProxyContext = {
    ...base,
    workDir,
    uas: { ip: '127.0.0.1', port: await freeUdpPort('127.0.0.1') },
    maxSeconds: seconds + opts.holdMs / 1000 + 240,
  };
  let started: Started | null = null;
  try {
    out(`\n== ${put.name}: soak ${seconds} s at ${opts.soakRate} calls/s, memory every ${opts.sampleSeconds} s (work dir ${workDir})`);
    started = await bringUp(put, ctx);
    const pid = started.proxy.pid;
    const t0 = Date.now();
    const samples: MemSample[] = [];
    const idle = memoryOfTree(pid);
    out(`   before load: RSS ${mb(idle.rssKb)} MB, PSS ${mb(idle.pssKb)} MB (${idle.processes} processes)`);
    const before = sampleTree(pid);
    const uac = await runUac(base.sippEnv, {
      target: put.sip,
      bindIp: put.uacIp,
      service: put.service,
      rate: opts.soakRate,
      calls: Math.round(opts.soakRate * seconds),
      holdMs: opts.holdMs,
      dir: join(workDir, 'soak'),
      timeoutSeconds: seconds + opts.holdMs / 1000 + 60,
      sampleMs: opts.sampleSeconds * 1000,
      onTick: () => {
        if (started?.proxy.child.exit() === null) {
          const m = memoryOfTree(pid);
          const t = (Date.now() - t0) / 1000;
          samples.push({ t, memory: m });
          out(`   t=${t.toFixed(0).padStart(5)} s  RSS ${mb(m.rssKb).padStart(7)} MB  PSS ${mb(m.pssKb).padStart(7)} MB`);
        }
      },
    });
    const cpu = cpuBetween(before, sampleTree(pid));
    const cpuSeconds = cpu.schedSeconds ?? cpu.statSeconds;
    out(`   calls: ${uac.successful} ok, ${uac.failed} failed, ${uac.retransmissions} retransmissions, ${f0(uac.achievedCps)}/s achieved; sipp exit ${uac.killed ? 'killed' : String(uac.exitCode)}`);
    out(`   cpu: ${uac.successful > 0 ? f1((cpuSeconds * 1e6) / uac.successful) : 'n/a'} us/call`);
    // drift is taken after the warm-up: heaps, pools and tables fill first
    let steady = samples.filter((s) => s.t >= opts.warmupSeconds);
    if (steady.length < 2) {
      steady = samples;
    }
    out(`   drift over t >= ${steady[0]?.t.toFixed(0) ?? 'n/a'} s (${steady.length} samples; --warmup ${opts.warmupSeconds} s):`);
    out(`   RSS (sum over processes): ${drift(steady.map((s) => s.memory.rssKb))}`);
    const pss = steady.map((s) => s.memory.pssKb);
    if (pss.every((v): v is number => v !== null)) {
      out(`   PSS (sum over processes): ${drift(pss)}`);
    }
    out(`   RSS floor (lowest sample per 60 s window): ${floors(steady, 60)}`);
    return uac.successful > 0;
  } catch (err) {
    out(`!! ${put.name}: ${err instanceof Error ? err.message : String(err)}`);
    return false;
  } finally {
    if (started !== null) {
      await base.registry.stop(started.uas);
      await base.registry.stop(started.proxy.child);
    }
    await base.registry.stopAll();
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const opts = parseOptions();
  const root = repoRoot();
  requireTool(opts.sipp, ['-v'], 'install Debian package sip-tester, or set BENCH_SIPP');
  if (opts.only.includes('kamailio')) {
    requireTool(opts.kamailio, ['-v'], 'install Debian package kamailio, or set BENCH_KAMAILIO');
  }
  const scratch = mkdtempSync(join(tmpdir(), 'dialplane-bench-'));
  const registry = new ChildRegistry();
  const sippEnv: SippEnv = { registry, sipp: opts.sipp, scenarioDir: join(root, 'test', 'e2e', 'scenarios') };
  const base = { registry, sippEnv, repoRoot: root };
  let ok = true;
  let anyFailedCalls = false;
  try {
    if (opts.soakSeconds !== null) {
      for (const name of opts.only) {
        ok = (await runSoak(await makeProxy(name, opts), opts, base, scratch)) && ok;
      }
    } else {
      out(`rates ${opts.rates.join(', ')} calls/s, ${opts.seconds} s per step, proxies: ${opts.only.join(', ')}`);
      const runs: ProxyRun[] = [];
      for (const name of opts.only) {
        runs.push(await runRates(await makeProxy(name, opts), opts, base, scratch));
      }
      printReport(runs, opts);
      ok = runs.every((r) => r.error === null);
      anyFailedCalls = runs.some((r) => r.steps.some((st) => st.uac.failed > 0 || st.uac.exitCode !== 0));
      if (opts.json !== null) {
        writeFileSync(opts.json, `${JSON.stringify({ options: opts, runs }, null, 2)}\n`);
        out(`\nJSON written to ${opts.json}`);
      }
    }
  } finally {
    await registry.stopAll();
    if (opts.only.includes('dialplane-redis-rr')) await cleanRedis(BENCH_REDIS_URL, BENCH_REDIS_PREFIX).catch(() => undefined);
    if (opts.keep || !ok || anyFailedCalls) {
      out(`\nfiles kept in ${scratch}`);
    } else {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
  return ok ? 0 : 2;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
