import { EventEmitter } from 'node:events';
import t from 'tap';
import { reconnectDelayMs, redactRedisUrl, watchRedisConnection } from '../../../src/store/redis/connect.js';

interface Logged { level: 'warn' | 'info'; obj: object; msg: string }

function recorder(): { log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void }; lines: Logged[] } {
  const lines: Logged[] = [];
  return {
    lines,
    log: {
      warn: (obj, msg) => { lines.push({ level: 'warn', obj, msg }); },
      info: (obj, msg) => { lines.push({ level: 'info', obj, msg }); },
    },
  };
}

t.test('reconnect delay grows exponentially, is capped at 2 s, and never gives up', async (t) => {
  t.equal(reconnectDelayMs(1, () => 1), 50);
  t.equal(reconnectDelayMs(1, () => 0), 25, 'jitter takes at most half the delay off');
  t.equal(reconnectDelayMs(2, () => 1), 100);
  t.equal(reconnectDelayMs(3, () => 1), 200);
  t.equal(reconnectDelayMs(6, () => 1), 1600);
  t.equal(reconnectDelayMs(7, () => 1), 2000, 'capped');
  t.equal(reconnectDelayMs(1_000_000, () => 1), 2000, 'still a number after a very long outage');
  t.equal(reconnectDelayMs(1_000_000, () => 0), 1000);
  t.equal(reconnectDelayMs(0, () => 1), 50, 'attempt numbers below 1 are treated as the first');
});

t.test('one warning per outage and one info per recovery, whatever happens in between', async (t) => {
  const client = new EventEmitter();
  const { log, lines } = recorder();
  let now = 1000;
  watchRedisConnection(client, log, 'redis://cache:6379', () => now);

  client.emit('ready');
  t.strictSame(lines, [], 'the first connection is not an event worth logging');

  client.emit('close');
  client.emit('reconnecting', 50);
  for (let i = 0; i < 20; i++) {
    client.emit('error', new Error('connect ECONNREFUSED 10.0.0.1:6379'));
    client.emit('close');
    client.emit('reconnecting', 2000);
  }
  now = 31_000;
  client.emit('ready');
  t.equal(lines.length, 2);
  t.match(lines[0], { level: 'warn', obj: { redis: 'redis://cache:6379', retryInMs: 50 }, msg: /lost/ });
  t.match(lines[1], { level: 'info', obj: { redis: 'redis://cache:6379', downForMs: 30_000 }, msg: /restored/ });

  client.emit('error', new Error('read ECONNRESET'));
  client.emit('reconnecting', 50);
  client.emit('error', new Error('connect ECONNREFUSED 10.0.0.1:6379'));
  client.emit('reconnecting', 100);
  client.emit('ready');
  t.equal(lines.length, 4, 'a second outage is logged again, once');
  t.match(lines[2], { level: 'warn', obj: { err: 'read ECONNRESET' } }, 'the warning names the error that caused it');
});

t.test('an unreachable Redis at startup is one warning; a deliberate quit logs nothing', async (t) => {
  const client = new EventEmitter();
  const { log, lines } = recorder();
  watchRedisConnection(client, log, 'redis://cache:6379');
  client.emit('error', new Error('connect ECONNREFUSED'));
  client.emit('reconnecting', 50);
  client.emit('error', new Error('connect ECONNREFUSED'));
  client.emit('reconnecting', 100);
  t.equal(lines.length, 1);
  t.match(lines[0], { level: 'warn', msg: /unreachable/, obj: { err: 'connect ECONNREFUSED' } });
  client.emit('ready');
  t.equal(lines.length, 2);
  t.match(lines[1], { level: 'info', msg: /restored/ });

  // quit(): ioredis emits close and end, never reconnecting.
  client.emit('close');
  client.emit('end');
  t.equal(lines.length, 2);
});

t.test('logged URLs carry no password', async (t) => {
  t.equal(redactRedisUrl('redis://:s3cret@cache:6379/2'), 'redis://:***@cache:6379/2');
  t.equal(redactRedisUrl('rediss://app:s3cret@cache:6380'), 'rediss://app:***@cache:6380');
  t.equal(redactRedisUrl('redis://cache:6379'), 'redis://cache:6379');
  t.notMatch(redactRedisUrl('not a url s3cret'), /s3cret/);
});
