/**
 * Transactions waiting out a wait state, one first-in first-out queue per
 * duration, each with a single clock timer for its head.
 *
 * Why: a transaction that has sent or received its final response lingers
 * only to absorb retransmissions: Timers D, I, J, K, L and M (RFC 3261
 * §17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2; RFC 6026 §7) hold an INVITE's
 * three or four transactions for up to 64*T1 = 32 s, some 32 000 per
 * thousand calls a second. A Node timer each (Timeout, handle, callback
 * closure and its scope) cost some 300 bytes per transaction, more than the
 * skeleton it guarded, and all of it was copied into the old generation.
 * Every entry of a queue has the same duration, so arrival order is expiry
 * order: an entry is two array slots, and expiry is exact (the head's timer
 * fires when it is due, and pops every entry due by then).
 *
 * The wait states end only in "Terminated": a transaction terminated
 * before its time (by its TU, or a transport error) cancels its entry.
 */
import type { Clock, TimerHandle } from '../clock.js';

export interface Waiter {
  /** Called once, when the wait the transaction entered is over. Must not throw. */
  waitExpired(): void;
}

/** Consumed slots are dropped in one splice once this many, and half the queue, have been popped. */
const COMPACT_AFTER = 1024;

export class WaitQueue {
  private readonly due: number[] = [];
  private readonly waiters: Array<Waiter | undefined> = [];
  /** Index of the first entry not yet expired or cancelled. */
  private head = 0;
  /** Slots handed out before due[0]: a slot number stays valid across compactions. */
  private base = 0;
  private timer: TimerHandle | undefined;

  constructor(private readonly clock: Clock, readonly ms: number) {}

  /** Entries waiting (those cancelled behind the head included). */
  get size(): number {
    return this.due.length - this.head;
  }

  /** Queues a waiter for `ms` from now; returns its slot, for cancel(). */
  add(waiter: Waiter): number {
    const at = this.clock.now() + this.ms;
    this.due.push(at);
    this.waiters.push(waiter);
    if (this.timer === undefined) this.arm(at);
    return this.base + this.due.length - 1;
  }

  /**
   * Forgets a waiter that ended early (its transaction was terminated by its
   * TU or a transport error), so the queue does not keep it for the rest of
   * its wait, nor the timer run for nothing.
   */
  cancel(slot: number): void {
    const i = slot - this.base;
    if (i < this.head || i >= this.waiters.length) return;
    this.waiters[i] = undefined;
    while (this.head < this.waiters.length && this.waiters[this.head] === undefined) this.head++;
    this.tidy();
  }

  private arm(at: number): void {
    this.timer = this.clock.setTimer(Math.max(0, at - this.clock.now()), () => this.expire());
  }

  private expire(): void {
    this.timer = undefined;
    const now = this.clock.now();
    const due = this.due;
    const waiters = this.waiters;
    while (this.head < due.length && (due[this.head] as number) <= now) {
      const w = waiters[this.head];
      waiters[this.head] = undefined;
      this.head++;
      w?.waitExpired();
    }
    this.tidy();
  }

  /** Drops consumed slots and keeps exactly one timer, for the head, while anything waits. */
  private tidy(): void {
    const due = this.due;
    if (this.head === due.length) {
      this.base += due.length;
      due.length = 0;
      this.waiters.length = 0;
      this.head = 0;
      this.timer?.cancel();
      this.timer = undefined;
      return;
    }
    if (this.head >= COMPACT_AFTER && this.head * 2 >= due.length) {
      this.base += this.head;
      due.splice(0, this.head);
      this.waiters.splice(0, this.head);
      this.head = 0;
    }
    if (this.timer === undefined) this.arm(due[this.head] as number);
  }
}
