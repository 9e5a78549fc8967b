// CPU time and memory of a process tree, read from /proc (Linux only).
//
// CPU, two sources per process:
//  * /proc/PID/stat utime+stime, in clock ticks (usually 10 ms): what the
//    brief asks for, but a delta over a 10 s step carries up to one tick of
//    truncation error per process;
//  * the sum over /proc/PID/task/*/sched of se.sum_exec_runtime (ms with ns
//    precision), when the kernel exposes it (CONFIG_SCHED_DEBUG).
// Memory: VmRSS of each process (/proc/PID/status) and Pss from
// /proc/PID/smaps_rollup.  Summing RSS over Kamailio's processes counts its
// shared memory once per process; the Pss sum does not.
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcCpu {
  readonly ticks: number;
  /** Nanoseconds, or null when /proc/PID/task/TID/sched is not readable. */
  readonly schedNs: number | null;
}

export interface TreeSample {
  readonly at: bigint;
  readonly cpu: ReadonlyMap<number, ProcCpu>;
}

export interface CpuDelta {
  /** CPU seconds from utime+stime. */
  readonly statSeconds: number;
  /** CPU seconds from sched runtime, null if unavailable for any process. */
  readonly schedSeconds: number | null;
  readonly wallSeconds: number;
  readonly processes: number;
}

export interface Memory {
  /** Sum of VmRSS over the tree, kB. */
  readonly rssKb: number;
  /** Sum of Pss over the tree, kB (null if smaps_rollup is unreadable). */
  readonly pssKb: number | null;
  /** VmRSS of the root process alone, kB. */
  readonly rootRssKb: number;
  readonly processes: number;
}

let clockTicks: number | null = null;

export function clockTicksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number.parseInt(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim(), 10);
    } catch {
      clockTicks = 100;
    }
    if (!Number.isFinite(clockTicks) || clockTicks <= 0) {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

interface StatFields {
  readonly ppid: number;
  readonly ticks: number;
}

function readStat(pid: number): StatFields | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm (field 2) may contain spaces and parentheses: split after the last ')'
  const close = text.lastIndexOf(')');
  if (close < 0) {
    return null;
  }
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15
  const ppid = Number(rest[1]);
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(ppid) || !Number.isFinite(utime) || !Number.isFinite(stime)) {
    return null;
  }
  return { ppid, ticks: utime + stime };
}

function readSchedNs(pid: number): number | null {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  let total = 0;
  for (const tid of tids) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/sched`, 'utf8');
    } catch {
      return null;
    }
    const m = /se\.sum_exec_runtime\s*:\s*([0-9.]+)/.exec(text);
    if (m?.[1] === undefined) {
      return null;
    }
    total += Math.round(Number(m[1]) * 1e6);
  }
  return total;
}

/** The root and all its descendants alive now (found through ppid). */
export function processTree(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    const pid = Number(entry);
    const stat = readStat(pid);
    if (stat === null) {
      continue;
    }
    const list = children.get(stat.ppid);
    if (list === undefined) {
      children.set(stat.ppid, [pid]);
    } else {
      list.push(pid);
    }
  }
  if (readStat(rootPid) === null) {
    return [];
  }
  const out: number[] = [];
  const queue = [rootPid];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** The first child of `pid` (e.g. the command run by `timeout`), or null. */
export function firstChildOf(pid: number): number | null {
  const tree = processTree(pid);
  return tree.length > 1 ? (tree[1] ?? null) : null;
}

export function sampleTree(rootPid: number): TreeSample {
  const cpu = new Map<number, ProcCpu>();
  for (const pid of processTree(rootPid)) {
    const stat = readStat(pid);
    if (stat !== null) {
      cpu.set(pid, { ticks: stat.ticks, schedNs: readSchedNs(pid) });
    }
  }
  return { at: process.hrtime.bigint(), cpu };
}

/** CPU used between two samples, by processes seen in the later one. */
export function cpuBetween(before: TreeSample, after: TreeSample): CpuDelta {
  let ticks = 0;
  let ns = 0;
  let schedOk = true;
  for (const [pid, now] of after.cpu) {
    const then = before.cpu.get(pid);
    ticks += now.ticks - (then?.ticks ?? 0);
    if (now.schedNs === null || (then !== undefined && then.schedNs === null)) {
      schedOk = false;
    } else {
      ns += now.schedNs - (then?.schedNs ?? 0);
    }
  }
  return {
    statSeconds: ticks / clockTicksPerSecond(),
    schedSeconds: schedOk ? ns / 1e9 : null,
    wallSeconds: Number(after.at - before.at) / 1e9,
    processes: after.cpu.size,
  };
}

function statusKb(pid: number, field: string): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s*(\\d+) kB`, 'm').exec(text);
    return m?.[1] === undefined ? null : Number(m[1]);
  } catch {
    return null;
  }
}

function pssKb(pid: number): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const m = /^Pss:\s*(\d+) kB/m.exec(text);
    return m?.[1] === undefined ? null : Number(m[1]);
  } catch {
    return null;
  }
}

export function memoryOfTree(rootPid: number): Memory {
  const pids = processTree(rootPid);
  let rss = 0;
  let pss = 0;
  let pssOk = true;
  for (const pid of pids) {
    rss += statusKb(pid, 'VmRSS') ?? 0;
    const p = pssKb(pid);
    if (p === null) {
      pssOk = false;
    } else {
      pss += p;
    }
  }
  return {
    rssKb: rss,
    pssKb: pssOk && pids.length > 0 ? pss : null,
    rootRssKb: statusKb(rootPid, 'VmRSS') ?? 0,
    processes: pids.length,
  };
}

/** True when some socket is bound to 127.x.y.z:port over UDP (/proc/net/udp). */
export function udpPortBound(ip: string, port: number): boolean {
  const octets = ip.split('.').map(Number);
  if (octets.length !== 4) {
    return false;
  }
  // /proc/net/udp shows the IPv4 address as a little-endian hex word
  const hexIp = octets
    .slice()
    .reverse()
    .map((o) => o.toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
  const want = `${hexIp}:${port.toString(16).padStart(4, '0').toUpperCase()}`;
  const wildcard = `00000000:${port.toString(16).padStart(4, '0').toUpperCase()}`;
  try {
    const lines = readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1);
    return lines.some((line) => {
      const local = line.trim().split(/\s+/)[1];
      return local === want || local === wildcard;
    });
  } catch {
    return false;
  }
}

/** A UDP port the kernel just handed out on `ip` (free at the time of asking). */
export async function freeUdpPort(ip: string): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, ip, () => resolve());
  });
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}
