/**
 * The Redis client of a call server.
 *
 * A SIP request that needs Redis (a REGISTER's CAS, an INVITE's location
 * lookup) has a caller waiting on the other end, and the UA retransmits on
 * its own timers (RFC 3261 §17: T1 = 500 ms doubling up to T2 = 4 s). If
 * Redis is unreachable, the useful answer is an immediate error the SIP
 * layer turns into a 5xx, not a request parked in a client-side queue that
 * the UA has long given up on. Hence: fail fast per command, reconnect
 * forever in the background, and log the outage once, not once per command
 * or reconnect attempt (at thousands of requests per second that would bury
 * every other log line).
 */
import type { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';

export interface RedisConnectionLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** First reconnect delay; doubles per failed attempt. */
const RECONNECT_BASE_MS = 50;
/**
 * Longest wait between reconnect attempts: once Redis is back, calls succeed
 * again within about this long, and a few thousand call servers polling a
 * restarting Redis every 2 s is no load at all.
 */
const RECONNECT_CAP_MS = 2_000;

/**
 * Delay before reconnect attempt `attempt` (1-based): exponential from 50 ms,
 * capped at 2 s, with "equal jitter" (a random half of the delay added to the
 * other half) so the nodes of a cluster do not reconnect in lockstep after a
 * Redis restart. Never gives up: a call server without Redis is degraded, not
 * finished, and must heal by itself.
 */
export function reconnectDelayMs(attempt: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempt, 1) - 1, 16);
  const ceiling = Math.min(RECONNECT_CAP_MS, RECONNECT_BASE_MS * 2 ** exponent);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * Creates the client. Connection starts at once; await `waitForRedisReady`
 * before taking traffic, since commands issued before the first connection
 * is ready are rejected (see `enableOfflineQueue`).
 */
export function createRedisClient(url: string, log: RedisConnectionLog): Redis {
  const client = new Redis(url, {
    retryStrategy: (attempt) => reconnectDelayMs(attempt),
    // Commands already sent when the connection dropped are resent if the
    // first reconnect attempt (25-50 ms later) succeeds, which rides out a
    // failover or restart blip; if it fails they are rejected with
    // MaxRetriesPerRequestError instead of waiting for Redis. A CAS resent
    // after it had in fact committed sees the new version and returns "lost
    // the race", and the registrar re-reads: no double write.
    maxRetriesPerRequest: 1,
    // No offline queue: while there is no ready connection, commands fail
    // at once ("Stream isn't writeable ...") rather than queueing. A queue
    // would hold every request of an outage (memory grows with the call
    // rate) and then answer them late, after the UAs retransmitted or gave
    // up. The price: nothing may be issued before the first `ready`, which
    // `waitForRedisReady` covers at startup.
    enableOfflineQueue: false,
    // A Redis that is slow to accept is as bad as one that refuses.
    connectTimeout: 2_000,
    // Per-command deadline on a connection that looks healthy: a single-key
    // command here takes well under a millisecond, so one second means Redis
    // is stalled, and the SIP layer should answer 5xx rather than wait.
    commandTimeout: 1_000,
    // A half-open connection (peer vanished without a FIN/RST) is otherwise
    // only noticed by TCP keep-alive after minutes: if replies are pending
    // and nothing arrives for 5 s, drop the socket and reconnect. No blocking
    // commands (BLPOP...) may use this client.
    socketTimeout: 5_000,
    // Commands issued in the same event-loop turn (a call's INCR and its
    // targets' binding lookups, many calls' lookups under load) leave in one
    // socket write: fewer syscalls and wake-ups on both sides.
    enableAutoPipelining: true,
    connectionName: 'dialplane',
  });
  watchRedisConnection(client, log, redactRedisUrl(url));
  return client;
}

/**
 * Logs connection-state transitions of an ioredis client: one warning when
 * it loses (or cannot first make) its connection, one info when it has a
 * ready connection again. Reconnect attempts in between log nothing.
 * Exported for tests; `createRedisClient` wires it.
 *
 * ioredis events used: `reconnecting` (a reconnect was scheduled, so not on
 * a deliberate `quit`/`disconnect`), `ready` (connected and ready-checked),
 * `error` (every failed attempt; a listener must exist anyway or ioredis
 * prints each one to stderr) and `end` (no more reconnects).
 */
export function watchRedisConnection(
  client: EventEmitter,
  log: RedisConnectionLog,
  target: string,
  clock: () => number = Date.now,
): void {
  let state: 'starting' | 'up' | 'down' | 'ended' = 'starting';
  let downSince = 0;
  let lastError: string | undefined;

  client.on('error', (err: unknown) => {
    lastError = err instanceof Error ? err.message : String(err);
  });
  client.on('reconnecting', (delayMs: unknown) => {
    if (state === 'down' || state === 'ended') return;
    const msg = state === 'starting'
      ? 'Redis unreachable; Redis-backed requests fail until it is back'
      : 'Redis connection lost; Redis-backed requests fail until it is back';
    state = 'down';
    downSince = clock();
    log.warn({ redis: target, err: lastError, retryInMs: delayMs }, msg);
  });
  client.on('ready', () => {
    if (state === 'down') {
      log.info({ redis: target, downForMs: clock() - downSince }, 'Redis connection restored');
    }
    state = 'up';
    lastError = undefined;
  });
  client.on('end', () => {
    state = 'ended';
  });
}

/** Resolves once `client` is ready; rejects after `timeoutMs`, naming the last connection error. */
export function waitForRedisReady(client: Redis, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    let lastError: string | undefined;
    const onError = (err: unknown): void => {
      lastError = err instanceof Error ? err.message : String(err);
    };
    const onReady = (): void => {
      cleanup();
      resolve();
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error('Redis client closed before it became ready'));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not ready after ${timeoutMs} ms${lastError === undefined ? '' : `: ${lastError}`}`));
    }, timeoutMs);
    function cleanup(): void {
      clearTimeout(timer);
      client.off('error', onError);
      client.off('ready', onReady);
      client.off('end', onEnd);
    }
    client.on('error', onError);
    client.on('ready', onReady);
    client.on('end', onEnd);
  });
}

/** The URL without credentials, fit for logs. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparsable Redis URL>';
  }
}
