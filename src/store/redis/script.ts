/**
 * Lua scripts the Redis stores run, wrapped as typed functions (DESIGN.md
 * §3: ioredis `defineCommand`, but no untyped generated command methods
 * spread through app code).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

export type SingleKeyScript = (key: string, ...args: string[]) => Promise<unknown>;

/**
 * Registers a single-key Lua script with `defineCommand` (EVALSHA, falling
 * back to EVAL on NOSCRIPT) and returns it as a typed function, so no
 * untyped generated method is used anywhere else. The command name carries
 * the script's hash: two stores on one client share it only if the Lua is
 * identical.
 */
export function defineSingleKeyScript(redis: Redis, baseName: string, lua: string): SingleKeyScript {
  const name = `${baseName}_${createHash('sha1').update(lua).digest('hex').slice(0, 12)}`;
  if (typeof Reflect.get(redis, name) !== 'function') redis.defineCommand(name, { lua, numberOfKeys: 1 });
  const command: unknown = Reflect.get(redis, name);
  if (typeof command !== 'function') throw new Error(`ioredis did not define the script command ${name}`);
  return (key, ...args) => {
    const reply: unknown = Reflect.apply(command, redis, [key, ...args]);
    return Promise.resolve(reply);
  };
}

export function isWrongTypeError(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('WRONGTYPE');
}

/** Arguments may be bytes (audio): ioredis sends a Buffer as is. */
export type MultiKeyScript = (keys: readonly string[], ...args: Array<string | Buffer>) => Promise<unknown>;

/**
 * Like defineSingleKeyScript, for a script over `numberOfKeys` keys. On a
 * Redis Cluster the keys must share a hash tag; the caller builds them so.
 */
export function defineMultiKeyScript(redis: Redis, baseName: string, lua: string, numberOfKeys: number): MultiKeyScript {
  const name = `${baseName}_${createHash('sha1').update(lua).digest('hex').slice(0, 12)}`;
  if (typeof Reflect.get(redis, name) !== 'function') redis.defineCommand(name, { lua, numberOfKeys });
  const command: unknown = Reflect.get(redis, name);
  if (typeof command !== 'function') throw new Error(`ioredis did not define the script command ${name}`);
  return (keys, ...args) => {
    if (keys.length !== numberOfKeys) return Promise.reject(new Error(`${baseName} takes ${numberOfKeys} keys, got ${keys.length}`));
    const reply: unknown = Reflect.apply(command, redis, [...keys, ...args]);
    return Promise.resolve(reply);
  };
}
