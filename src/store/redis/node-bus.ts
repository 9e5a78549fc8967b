/**
 * Asking every node of the cluster at once, over Redis pub/sub: the admin
 * API of any node lists the calls all nodes carry and hangs up a call
 * wherever it is, while each call's state lives only in the node whose
 * proxy holds it (and must: it is per-packet state).
 *
 *   ask:    PUBLISH <prefix>nodes:ask  {id, from, op, args}
 *   answer: PUBLISH <prefix>nodes:reply:<from>  {id, node, ok, value | error}
 *
 * PUBLISH answers how many subscribers received the question, so the asker
 * knows how many answers to wait for (itself excluded: a node asks only
 * the others, after looking at home). It waits `timeoutMs` at most: a node
 * that is gone or stuck costs that much, once, and its calls are missing
 * from the answer, which says so (`missing`).
 *
 * Generic on purpose: this layer does not know what a call is (the
 * composition root gives the handler); values are JSON.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

export interface NodeBusLog {
  warn(obj: object, msg?: string): void;
}

export interface NodeBusOptions {
  redis: Redis;
  prefix: string;
  /** This node's id (DIALPLANE_NODE_ID): where its answers are addressed. */
  nodeId: string;
  /** Answers a question from another node; what it returns must be JSON. */
  handler: (op: string, args: unknown) => Promise<unknown> | unknown;
  /** Longest wait for the other nodes' answers (default 1000 ms). */
  timeoutMs?: number;
  log: NodeBusLog;
}

export interface NodeAnswers {
  /** Values of the nodes that answered (errors left out). */
  values: unknown[];
  /** Nodes that received the question but did not answer in time. */
  missing: number;
}

interface Pending {
  values: unknown[];
  expected: number;
  got: number;
  done: (a: NodeAnswers) => void;
  timer: NodeJS.Timeout | undefined;
}

export class RedisNodeBus {
  readonly #o: NodeBusOptions;
  readonly #askChannel: string;
  readonly #replyChannel: string;
  readonly #pending = new Map<string, Pending>();
  #subscriber: Redis | undefined;

  constructor(o: NodeBusOptions) {
    this.#o = o;
    this.#askChannel = `${o.prefix}nodes:ask`;
    this.#replyChannel = `${o.prefix}nodes:reply:${o.nodeId}`;
  }

  /** Subscribes (a connection of its own: a subscribed connection runs nothing else). */
  async start(): Promise<void> {
    if (this.#subscriber) return;
    const sub = this.#o.redis.duplicate({ connectionName: 'dialplane-node-bus', enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined });
    this.#subscriber = sub;
    // Errors during an outage are logged by the command connection (connect.ts).
    sub.on('error', () => undefined);
    sub.on('message', (channel: string, message: string) => {
      if (channel === this.#askChannel) void this.#answer(message);
      else if (channel === this.#replyChannel) this.#collect(message);
    });
    await sub.subscribe(this.#askChannel, this.#replyChannel);
  }

  async stop(): Promise<void> {
    for (const p of this.#pending.values()) this.#finish(p);
    this.#pending.clear();
    const sub = this.#subscriber;
    this.#subscriber = undefined;
    sub?.disconnect();
  }

  /** Asks every other node; resolves with their answers once all came or the timeout passed. */
  async ask(op: string, args: unknown): Promise<NodeAnswers> {
    const id = randomUUID();
    let done!: (a: NodeAnswers) => void;
    const result = new Promise<NodeAnswers>((resolve) => { done = resolve; });
    // Registered before publishing: an answer may come back before PUBLISH's reply.
    const pending: Pending = { values: [], expected: Number.POSITIVE_INFINITY, got: 0, done, timer: undefined };
    this.#pending.set(id, pending);
    pending.timer = setTimeout(() => this.#finish(pending, id), this.#o.timeoutMs ?? 1000);
    pending.timer.unref?.();
    let receivers: number;
    try {
      receivers = await this.#o.redis.publish(this.#askChannel, JSON.stringify({ id, from: this.#o.nodeId, op, args }));
    } catch (err) {
      this.#o.log.warn({ err, op }, 'cannot ask the other nodes (Redis unavailable): answering from this node only');
      this.#finish(pending, id);
      return result;
    }
    // Our own subscription received it too and does not answer.
    pending.expected = Math.max(0, receivers - 1);
    if (pending.got >= pending.expected) this.#finish(pending, id);
    return result;
  }

  #finish(p: Pending, id?: string): void {
    if (p.timer) clearTimeout(p.timer);
    p.timer = undefined;
    if (id !== undefined) this.#pending.delete(id);
    const expected = Number.isFinite(p.expected) ? p.expected : p.got;
    p.done({ values: p.values, missing: Math.max(0, expected - p.got) });
  }

  async #answer(message: string): Promise<void> {
    let q: { id?: unknown; from?: unknown; op?: unknown; args?: unknown };
    try {
      q = JSON.parse(message) as typeof q;
    } catch {
      return;
    }
    if (typeof q.id !== 'string' || typeof q.from !== 'string' || typeof q.op !== 'string' || q.from === this.#o.nodeId) return;
    let reply: object;
    try {
      reply = { id: q.id, node: this.#o.nodeId, ok: true, value: await this.#o.handler(q.op, q.args) };
    } catch (err) {
      reply = { id: q.id, node: this.#o.nodeId, ok: false, error: err instanceof Error ? err.message : String(err) };
    }
    try {
      await this.#o.redis.publish(`${this.#o.prefix}nodes:reply:${q.from}`, JSON.stringify(reply));
    } catch (err) {
      this.#o.log.warn({ err, op: q.op }, 'cannot answer another node (Redis unavailable)');
    }
  }

  #collect(message: string): void {
    let a: { id?: unknown; ok?: unknown; value?: unknown };
    try {
      a = JSON.parse(message) as typeof a;
    } catch {
      return;
    }
    if (typeof a.id !== 'string') return;
    const p = this.#pending.get(a.id);
    if (!p) return; // late: the asker has given up on it
    p.got++;
    if (a.ok === true) p.values.push(a.value);
    if (p.got >= p.expected) this.#finish(p, a.id);
  }
}
