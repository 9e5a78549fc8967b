/**
 * The client from connect.ts through a real Redis outage: a private
 * redis-server on port 16399 is started, killed and restarted. While it is
 * down, commands must fail fast; the outage must be logged exactly once and
 * the recovery exactly once, however many reconnect attempts happen between.
 */
import type { ChildProcess } from 'node:child_process';
import t from 'tap';
import { createRedisClient, waitForRedisReady } from '../../src/store/redis/connect.js';
import { startRedisServer, stopRedisServer, until } from '../helpers/redis-server.js';

const PORT = 16399;

/** This file's redis-server children: the teardown stops whatever is left. */
const children = new Set<ChildProcess>();

async function startRedis(): Promise<ChildProcess> {
  const child = await startRedisServer(PORT);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

const stopRedis = stopRedisServer;

t.test('an outage is logged once, recovery once, and commands fail fast meanwhile', async (t) => {
  const warnings: { obj: object; msg: string }[] = [];
  const infos: { obj: object; msg: string }[] = [];
  const log = {
    warn: (obj: object, msg: string) => { warnings.push({ obj, msg }); },
    info: (obj: object, msg: string) => { infos.push({ obj, msg }); },
  };

  let server = await startRedis();
  t.teardown(async () => {
    for (const child of [...children]) await stopRedis(child);
  });

  const client = createRedisClient(`redis://127.0.0.1:${PORT}`, log);
  t.teardown(() => {
    // After quit() the socket is gone; a second disconnect() would arm a 2 s
    // ioredis timer waiting for a 'close' that already happened.
    if (client.status !== 'end') client.disconnect();
  });
  let reconnectAttempts = 0;
  client.on('reconnecting', () => { reconnectAttempts += 1; });

  await waitForRedisReady(client, 5_000);
  t.equal(await client.set('dp:outage-test', 'before'), 'OK');
  t.strictSame([warnings, infos], [[], []], 'nothing logged for a healthy start');

  // A command Redis has received but not answered when it dies (a script
  // spinning forever) must be rejected after the first failed reconnect
  // attempt (maxRetriesPerRequest: 1), long before its 1 s command timeout.
  const inFlight = client.eval('while true do end', 0).then(
    () => new Error('the busy script cannot succeed'),
    (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
  );
  // Not events.once(): it rejects on 'error', and a killed server may well
  // reset the connection (ECONNRESET) rather than close it.
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  await stopRedis(server);
  await closed;
  const closedAt = performance.now();
  const inFlightError = await inFlight;
  const inFlightMs = performance.now() - closedAt;
  t.match(inFlightError.message, /max retries per request/i, 'in-flight command fails with MaxRetriesPerRequestError');
  t.ok(inFlightMs < 800, `within ${inFlightMs.toFixed(0)} ms of the connection dropping`);

  const started = performance.now();
  const attempts = await Promise.allSettled([
    client.get('dp:outage-test'),
    client.set('dp:outage-test', 'during'),
    client.ping(),
    client.zadd('dp:outage-index', 1, 'x'),
  ]);
  const elapsed = performance.now() - started;
  t.ok(attempts.every((a) => a.status === 'rejected'), 'every command during the outage rejects');
  t.ok(elapsed < 250, `and rejects at once, not after a queue or timeout (${elapsed.toFixed(1)} ms)`);

  // Let several reconnect attempts fail before Redis comes back: each must
  // stay silent.
  await until(() => reconnectAttempts >= 4, 10_000, 'four reconnect attempts');
  t.equal(warnings.length, 1, 'exactly one warning for the outage');
  t.match(warnings[0], { obj: { redis: `redis://127.0.0.1:${PORT}` }, msg: /lost/ });
  t.equal(infos.length, 0, 'no recovery yet');

  server = await startRedis();
  await waitForRedisReady(client, 10_000);
  t.equal(await client.ping(), 'PONG', 'commands work again after recovery');

  t.equal(warnings.length, 1, 'still exactly one warning');
  t.equal(infos.length, 1, 'exactly one recovery info');
  t.match(infos[0], { obj: { downForMs: Number }, msg: /restored/ });
  t.ok(reconnectAttempts >= 4, `${reconnectAttempts} reconnect attempts, logged as one outage`);

  t.equal(await client.quit(), 'OK');
  await stopRedis(server);
  t.equal(warnings.length + infos.length, 2, 'a deliberate quit logs nothing');
});
