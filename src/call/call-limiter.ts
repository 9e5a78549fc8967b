/**
 * Concurrent calls per tenant on this node (TenantLimits.maxConcurrentCalls).
 * A call holds a slot from the moment the executor forks it until its final
 * failure response, or — when answered — until a BYE of its dialog passes
 * through the proxy. A call whose BYE never passes (a phone that vanished,
 * a BYE sent around the proxy) gives its slot back after `maxCallMs`, so a
 * leak cannot lock a tenant out for good.
 */
import type { Clock, TimerHandle } from '../sip/clock.js';

interface Slot {
  tenant: string;
  answered: boolean;
  timer: TimerHandle | undefined;
}

export interface CallLimiterOptions {
  clock: Clock;
  /** Longest an answered call keeps its slot without a BYE seen (default 4 h). */
  maxCallMs?: number;
}

export class CallLimiter {
  private readonly active = new Map<string, number>();
  /** By Call-ID: the proxy reports BYEs by Call-ID. */
  private readonly calls = new Map<string, Slot>();
  private readonly maxCallMs: number;

  constructor(private readonly o: CallLimiterOptions) {
    this.maxCallMs = o.maxCallMs ?? 4 * 3600_000;
  }

  /** Calls of a tenant holding a slot now. */
  count(tenant: string): number {
    return this.active.get(tenant) ?? 0;
  }

  /** Takes a slot for a new call unless the tenant is at `limit`; false = refuse it. */
  acquire(tenant: string, callId: string, limit: number | undefined): boolean {
    if (this.calls.has(callId)) return true; // the same call routed again (a spiral): one slot
    const n = this.count(tenant);
    if (limit !== undefined && n >= limit) return false;
    this.active.set(tenant, n + 1);
    this.calls.set(callId, { tenant, answered: false, timer: undefined });
    return true;
  }

  /** The final response the caller got: a failure frees the slot, an answer holds it until the BYE. */
  final(callId: string, status: number): void {
    const slot = this.calls.get(callId);
    if (!slot) return;
    if (status >= 200 && status < 300) {
      if (slot.answered) return;
      slot.answered = true;
      slot.timer = this.o.clock.setTimer(this.maxCallMs, () => this.release(callId));
      return;
    }
    if (!slot.answered) this.release(callId);
  }

  /** A BYE of the call's dialog went through the proxy. */
  bye(callId: string): void {
    if (this.calls.get(callId)?.answered) this.release(callId);
  }

  private release(callId: string): void {
    const slot = this.calls.get(callId);
    if (!slot) return;
    this.calls.delete(callId);
    slot.timer?.cancel();
    const n = this.count(slot.tenant) - 1;
    if (n > 0) this.active.set(slot.tenant, n);
    else this.active.delete(slot.tenant);
  }
}
