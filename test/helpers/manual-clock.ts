/** A Clock that moves only when a test says so. */
import type { Clock, TimerHandle } from '../../src/sip/clock.js';

interface Pending { at: number; seq: number; fn: () => void; cancelled: boolean }

export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: Pending[] = [];

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const p: Pending = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(p);
    return { cancel: () => { p.cancelled = true; } };
  }

  /** Number of timers still armed. */
  get pending(): number {
    return this.timers.filter((p) => !p.cancelled).length;
  }

  /** Advances time by ms, firing due timers in time order (timers armed while firing also run if due). */
  advance(ms: number): void {
    const target = this.t + ms;
    for (;;) {
      this.timers = this.timers.filter((p) => !p.cancelled);
      let next: Pending | undefined;
      for (const p of this.timers) if (p.at <= target && (!next || p.at < next.at || (p.at === next.at && p.seq < next.seq))) next = p;
      if (!next) break;
      this.t = next.at;
      next.cancelled = true;
      next.fn();
    }
    this.t = target;
  }
}
