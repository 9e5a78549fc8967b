/**
 * Unpredictable base36 tokens for branches and tags, cheaply: random bytes
 * come from the CSPRNG in 4 KiB batches, so one system call serves about a
 * thousand identifiers.
 */
import { randomFillSync } from 'node:crypto';

const POOL = new Uint32Array(1024);
let next = POOL.length;

/** A uniformly random 32-bit unsigned integer from the CSPRNG pool. */
export function randomUint32(): number {
  if (next >= POOL.length) {
    randomFillSync(POOL);
    next = 0;
  }
  return POOL[next++] ?? 0;
}

/** `words` random 32-bit words as fixed-width base36 (7 characters each, ≈ 31 bits of entropy per 6 characters). */
export function randomToken(words: number): string {
  let s = '';
  for (let i = 0; i < words; i++) s += randomUint32().toString(36).padStart(7, '0');
  return s;
}
