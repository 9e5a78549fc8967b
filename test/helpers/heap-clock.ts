/**
 * A manual Clock backed by a binary heap, for soak tests with hundreds of
 * thousands of live timers (ManualClock scans every timer on each firing).
 * Same semantics: time moves only in advance(), timers fire in (time, order).
 */
import type { Clock, TimerHandle } from '../../src/sip/clock.js';

interface Entry { at: number; seq: number; fn: () => void; cancelled: boolean }

export class HeapClock implements Clock {
  private t: number;
  private seq = 0;
  private heap: Entry[] = [];
  private live = 0;

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const e: Entry = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.push(e);
    this.live++;
    return {
      cancel: () => {
        if (!e.cancelled) {
          e.cancelled = true;
          this.live--;
        }
      },
    };
  }

  /** Timers armed and not cancelled. */
  get pending(): number {
    return this.live;
  }

  advance(ms: number): void {
    const target = this.t + ms;
    for (;;) {
      const top = this.heap[0];
      if (!top || top.at > target) break;
      this.pop();
      if (top.cancelled) continue;
      top.cancelled = true;
      this.live--;
      this.t = top.at;
      top.fn();
    }
    this.t = target;
  }

  private less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p]!;
      if (!this.less(e, parent)) break;
      h[i] = parent;
      i = p;
    }
    h[i] = e;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop();
    if (!last || h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && this.less(h[r]!, h[l]!) ? r : l;
      if (!this.less(h[c]!, last)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
}
