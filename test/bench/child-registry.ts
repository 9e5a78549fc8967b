// Every process the benchmark starts goes through here, so that all of them
// (sipp, kamailio and its workers, our server) are stopped on normal exit,
// on error and on SIGINT/SIGTERM.  Each child leads its own process group
// (detached), and is stopped by signalling that group: Kamailio's workers and
// anything our server forks go with it.  Only groups we created are signalled.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

export interface SpawnSpec {
  /** Short label for messages. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** stdout and stderr go to this file (appended). */
  readonly logFile: string;
  /**
   * Hard lifetime: the command runs under coreutils `timeout`, so it stops
   * by itself even if this harness is killed with SIGKILL.  The RunningChild
   * is then `timeout`; the command is its only child (see workloadPid).
   */
  readonly maxSeconds?: number;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface RunningChild {
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcess;
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<Exit>;
  /** Null while running. */
  exit(): Exit | null;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class ChildRegistry {
  readonly #children = new Set<RunningChild>();
  #handlersInstalled = false;

  /** Starts a process; throws if it cannot be spawned at all. */
  async spawn(spec: SpawnSpec): Promise<RunningChild> {
    this.#installHandlers();
    const fd = openSync(spec.logFile, 'a');
    const [command, args] =
      spec.maxSeconds === undefined
        ? [spec.command, [...spec.args]]
        : ['timeout', ['--signal=TERM', '--kill-after=5', String(Math.ceil(spec.maxSeconds)), spec.command, ...spec.args]];
    let child: ChildProcess;
    try {
      child = spawn(command, args, {
        cwd: spec.cwd,
        env: spec.env ?? process.env,
        stdio: ['ignore', fd, fd],
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    const spawned = await new Promise<Error | null>((resolve) => {
      child.once('spawn', () => resolve(null));
      child.once('error', (err) => resolve(err));
    });
    if (spawned !== null || child.pid === undefined) {
      throw new Error(`${spec.name}: cannot start ${command}: ${spawned?.message ?? 'no pid'}`);
    }
    let exitInfo: Exit | null = null;
    const exited = new Promise<Exit>((resolve) => {
      child.once('exit', (code, signal) => {
        exitInfo = { code, signal };
        resolve(exitInfo);
      });
    });
    const running: RunningChild = {
      name: spec.name,
      pid: child.pid,
      process: child,
      exited,
      exit: () => exitInfo,
    };
    this.#children.add(running);
    void exited.then(() => this.#children.delete(running));
    return running;
  }

  /** SIGTERM to the child's group, SIGKILL after graceMs if still alive. */
  async stop(child: RunningChild, graceMs = 3000): Promise<Exit> {
    if (child.exit() === null) {
      signalGroup(child.pid, 'SIGTERM');
      const timedOut = await Promise.race([child.exited.then(() => false), sleep(graceMs).then(() => true)]);
      if (timedOut) {
        signalGroup(child.pid, 'SIGKILL');
      }
    }
    // the leader may be gone while workers linger: sweep the group anyway
    signalGroup(child.pid, 'SIGKILL');
    return child.exited;
  }

  /** Waits for exit; kills the child when it outlives timeoutMs. */
  async waitOrKill(child: RunningChild, timeoutMs: number): Promise<Exit & { readonly killed: boolean }> {
    const timedOut = await Promise.race([child.exited.then(() => false), sleep(timeoutMs).then(() => true)]);
    if (timedOut) {
      const exit = await this.stop(child, 1000);
      return { ...exit, killed: true };
    }
    return { ...(await child.exited), killed: false };
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.#children].map((c) => this.stop(c)));
  }

  /** Last resort for process 'exit': synchronous, no waiting. */
  killAllNow(): void {
    for (const c of this.#children) {
      signalGroup(c.pid, 'SIGKILL');
    }
  }

  #installHandlers(): void {
    if (this.#handlersInstalled) {
      return;
    }
    this.#handlersInstalled = true;
    process.once('exit', () => this.killAllNow());
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(signal, () => {
        process.stderr.write(`\nbench: ${signal}: stopping children\n`);
        void this.stopAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
      });
    }
    process.once('uncaughtException', (err) => {
      process.stderr.write(`bench: uncaught exception: ${err.stack ?? String(err)}\n`);
      this.killAllNow();
      process.exit(1);
    });
    process.once('unhandledRejection', (reason) => {
      process.stderr.write(`bench: unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}\n`);
      this.killAllNow();
      process.exit(1);
    });
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // group already gone
  }
}
