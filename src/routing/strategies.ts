/**
 * Orders the targets of a ring step. Every strategy is a pure function of
 * the targets, the round-robin counter value and the per-call seed, so the
 * same facts always give the same order (replayable, testable).
 *
 * - sequential: as configured;
 * - round-robin: as configured, rotated to start at (counter - 1) mod n.
 *   The counter is the value of an atomic INCR shared by every node, so
 *   consecutive calls start one member further regardless of which node
 *   took them;
 * - random: uniform shuffle (Fisher-Yates);
 * - weighted: weighted random order without replacement (Efraimidis &
 *   Spirakis 2006: sort by u^(1/w), largest first): the first target is
 *   chosen with probability weight/total, the next among the rest likewise;
 * - simultaneous: order does not matter; everything rings at once.
 */
import type { RingStrategy } from './model.js';

/** mulberry32: a small, fast 32-bit PRNG with a good enough spread for shuffling call targets. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Derives an independent seed for the n-th randomised step of one evaluation. */
export function stepSeed(seed: number, stepIndex: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(stepIndex + 1, 0x85ebca6b)) >>> 0;
}

/** Start position of a round-robin hunt for counter value `value` (INCR result, 1-based). */
export function roundRobinStart(value: number, n: number): number {
  if (n === 0) return 0;
  const v = Math.trunc(value) - 1;
  return ((v % n) + n) % n;
}

/** A new array in the order the strategy dictates; `weights` parallel to `items`. */
export function orderTargets<T>(
  items: readonly T[],
  strategy: RingStrategy,
  weights: readonly number[],
  counterValue: number,
  seed: number,
): T[] {
  const n = items.length;
  switch (strategy) {
    case 'sequential':
    case 'simultaneous':
      return items.slice();
    case 'round-robin': {
      const start = roundRobinStart(counterValue, n);
      return [...items.slice(start), ...items.slice(0, start)];
    }
    case 'random': {
      const out = items.slice();
      const rnd = prng(seed);
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        const tmp = out[i] as T;
        out[i] = out[j] as T;
        out[j] = tmp;
      }
      return out;
    }
    case 'weighted': {
      const rnd = prng(seed);
      // log(u)/w orders exactly like u^(1/w) and avoids underflow for large weights.
      const keyed = items.map((item, i) => {
        const u = rnd() || Number.MIN_VALUE;
        return { item, key: Math.log(u) / (weights[i] ?? 1), i };
      });
      keyed.sort((a, b) => b.key - a.key || a.i - b.i);
      return keyed.map((k) => k.item);
    }
  }
}
