/**
 * A private redis-server child for tests that kill and restart Redis (the
 * shared one on 6379 must never be stopped). Every child is killed if the
 * test process exits before its teardown runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** Starts redis-server on 127.0.0.1:port without persistence; resolves once it accepts connections. */
export async function startRedisServer(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`redis-server not ready after 10 s:\n${output}`)), 10_000);
    function fail(err: Error): void {
      clearTimeout(timer);
      reject(err);
    }
    child.once('error', fail); // e.g. ENOENT: redis-server not installed
    child.once('exit', (code, signal) => fail(new Error(`redis-server exited (${code ?? signal}):\n${output}`)));
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    };
    // Read both pipes to their end so neither keeps the test process alive.
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
  });
  return child;
}

export async function stopRedisServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** Polls `condition` every 10 ms; rejects after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
