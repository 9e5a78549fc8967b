// The proxies the benchmark compares, each a small descriptor: how to start
// it, where it takes SIP, which R-URI user the UAC dials, which source
// address the UAC must use, and what must happen before load (e.g. register
// the UAS's contact).  Adding a proxy = adding a descriptor here.
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { NODE_FLAGS } from '../../src/node-flags.js';
import type { ChildRegistry, RunningChild } from './child-registry.js';
import { firstChildOf, udpPortBound } from './proc-usage.js';
import { registerContact, type Endpoint, type SippEnv } from './sipp-runner.js';

export interface ProxyContext {
  readonly registry: ChildRegistry;
  readonly sippEnv: SippEnv;
  readonly repoRoot: string;
  /** Private scratch directory of this proxy's run. */
  readonly workDir: string;
  /** Where the SIPp UAS will listen (not yet started when setup() runs). */
  readonly uas: Endpoint;
  /** The proxy is killed after this long whatever happens (coreutils timeout). */
  readonly maxSeconds: number;
}

export interface StartedProxy {
  /** The `timeout` wrapper: stop this one. */
  readonly child: RunningChild;
  /** The proxy's own (root) process: measure this one and its descendants. */
  readonly pid: number;
}

export interface ProxyUnderTest {
  readonly name: string;
  /** SIP address the UAC sends to. */
  readonly sip: Endpoint;
  /** R-URI / To user of the UAC's INVITEs (SIPp -s). */
  readonly service: string;
  /** Source address of the UAC (SIPp -i). */
  readonly uacIp: string;
  /** Starts the proxy and resolves once it is ready for SIP; throws otherwise. */
  start(ctx: ProxyContext): Promise<StartedProxy>;
  /** Runs after start() and before the UAS starts (its port is still free). */
  setup?(ctx: ProxyContext): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function tail(file: string, lines = 15): string {
  try {
    const text = readFileSync(file, 'utf8').trimEnd();
    return text === '' ? '(no output)' : text.split('\n').slice(-lines).join('\n');
  } catch {
    return '(no output)';
  }
}

/**
 * Polls until `ready()` or the child exits / time runs out; then returns the
 * wrapped process's pid.  On failure the child is stopped and an Error
 * carrying the end of its output is thrown.
 */
async function waitReady(
  ctx: ProxyContext,
  child: RunningChild,
  what: string,
  logFile: string,
  timeoutMs: number,
  ready: () => boolean,
): Promise<StartedProxy> {
  const deadline = Date.now() + timeoutMs;
  let failure: string;
  for (;;) {
    const exit = child.exit();
    if (exit !== null) {
      // `timeout` passes on the command's status (124 when it timed out)
      const how = exit.signal !== null ? `signal ${exit.signal}` : `exit code ${String(exit.code)}`;
      failure = `${what} stopped during start-up (${how})`;
      break;
    }
    const pid = firstChildOf(child.pid);
    if (pid !== null && ready()) {
      return { child, pid };
    }
    if (Date.now() >= deadline) {
      failure = `${what} not ready after ${timeoutMs / 1000} s`;
      break;
    }
    await sleep(100);
  }
  await ctx.registry.stop(child);
  throw new Error(`${failure}. Last output (${logFile}):\n${tail(logFile)}`);
}

export interface KamailioOptions {
  readonly binary: string;
  readonly sip: Endpoint;
  readonly uacIp: string;
  readonly service: string;
  readonly sharedMemoryMb: number;
  /** Extra config defines (-A), e.g. WITH_AUTH. */
  readonly defines?: readonly string[];
}

/**
 * test/bench/kamailio.cfg: stateful, record-routing, round-robin dispatcher
 * to the UAS.  The config is copied into the work dir with dispatcher.list
 * beside it.  Started with -DD (main process stays our child) and -x tlsf.
 */
export function kamailioProxy(opts: KamailioOptions): ProxyUnderTest {
  return {
    name: 'kamailio',
    sip: opts.sip,
    service: opts.service,
    uacIp: opts.uacIp,
    async start(ctx) {
      const cfg = join(ctx.workDir, 'kamailio.cfg');
      const list = join(ctx.workDir, 'dispatcher.list');
      copyFileSync(join(ctx.repoRoot, 'test', 'bench', 'kamailio.cfg'), cfg);
      writeFileSync(list, `# set destination\n1 sip:${ctx.uas.ip}:${ctx.uas.port}\n`);
      const logFile = join(ctx.workDir, 'kamailio.log');
      const child = await ctx.registry.spawn({
        name: 'kamailio',
        command: opts.binary,
        args: [
          '-f', cfg, '-DD', '-E', '-x', 'tlsf',
          '-m', String(opts.sharedMemoryMb), '-M', '16',
          '-Y', ctx.workDir,
          '-A', `LISTEN=udp:${opts.sip.ip}:${opts.sip.port}`,
          '-A', `DISPATCHER_LIST="${list}"`,
          ...(opts.defines ?? []).flatMap((d) => ['-A', d]),
        ],
        cwd: ctx.workDir,
        logFile,
        maxSeconds: ctx.maxSeconds,
      });
      const started = await waitReady(ctx, child, 'kamailio', logFile, 10_000, () => udpPortBound(opts.sip.ip, opts.sip.port));
      await sleep(300); // workers finish their child_init after the bind
      return started;
    },
  };
}

export interface DialplaneOptions {
  /** Name in the report (default `dialplane`). */
  readonly name?: string;
  /** Another checkout to run the built server of (its dist/src/main.js), for a same-run A/B; default this one. */
  readonly repoRoot?: string;
  readonly node: string;
  /** Node options after the shipped ones, e.g. --cpu-prof for a profile of the run (BENCH_NODE_ARGS). */
  readonly nodeArgs?: readonly string[];
  readonly sip: Endpoint;
  readonly wsPort: number;
  readonly httpPort: number;
  readonly uacIp: string;
  readonly service: string;
  readonly user: string;
  readonly password: string;
  /**
   * Rules in Redis instead of the embedded demo: the tenant document is
   * written under `prefix` before start, the server runs with REDIS_URL and
   * without the demo, and every user of `users` is registered at the UAS.
   */
  readonly redis?: { readonly url: string; readonly prefix: string; readonly provision: () => Promise<void>; readonly users: readonly string[] };
}

/**
 * Our server, in demo mode: extension 1001 (digest auth) and the 400 number
 * 4008123456 ringing 1001's and 1002's contacts; calls from 127.0.0.2 count
 * as the trusted carrier trunk, so the UAC binds there and needs no auth.
 * Before load the UAS's address is registered as 1001.
 */
export function dialplaneProxy(opts: DialplaneOptions): ProxyUnderTest {
  return {
    name: opts.name ?? 'dialplane',
    sip: opts.sip,
    service: opts.service,
    uacIp: opts.uacIp,
    async start(ctx) {
      const root = opts.repoRoot ?? ctx.repoRoot;
      const main = join(root, 'dist', 'src', 'main.js');
      if (!existsSync(main)) {
        throw new Error(`${main} does not exist (run "npm run build"; is src/main.ts written yet?)`);
      }
      const logFile = join(ctx.workDir, 'dialplane.log');
      if (opts.redis) await opts.redis.provision();
      const child = await ctx.registry.spawn({
        name: 'dialplane',
        command: opts.node,
        // Same V8 flags as `npm start` and the Docker image.
        args: [...NODE_FLAGS, ...(opts.nodeArgs ?? []), main],
        cwd: root,
        env: {
          ...process.env,
          DIALPLANE_BIND: opts.sip.ip,
          DIALPLANE_SIP_PORT: String(opts.sip.port),
          DIALPLANE_WS_PORT: String(opts.wsPort),
          DIALPLANE_HTTP_PORT: String(opts.httpPort),
          DIALPLANE_DEMO: opts.redis ? '0' : '1',
          DIALPLANE_DEMO_PASSWORD: opts.password,
          DIALPLANE_STORE_FILE: 'memory',
          ...(opts.redis ? { REDIS_URL: opts.redis.url, DIALPLANE_REDIS_PREFIX: opts.redis.prefix } : {}),
          LOG_LEVEL: 'warn',
          NODE_ENV: 'production',
        },
        logFile,
        maxSeconds: ctx.maxSeconds,
      });
      const started = await waitReady(ctx, child, 'dialplane', logFile, 20_000, () => udpPortBound(opts.sip.ip, opts.sip.port));
      await sleep(300);
      return started;
    },
    async setup(ctx) {
      for (const user of opts.redis?.users ?? [opts.user]) {
        await registerContact(ctx.sippEnv, {
          from: ctx.uas,
          registrar: opts.sip,
          user,
          password: opts.password,
          dir: join(ctx.workDir, `register-${user}`),
        });
      }
    },
  };
}
