/**
 * Time as a dependency: every SIP timer goes through a Clock so that tests
 * drive time without sleeping (DEVELOPERS.md: "inject a clock, do not sleep").
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs fn once after ms milliseconds unless cancelled. */
  setTimer(ms: number, fn: () => void): TimerHandle;
}

/**
 * A handle as a small class instance rather than an object literal with a
 * `cancel` closure: a call arms about ten SIP timers, many of them kept for
 * 32 s (Timers L, M, J), and the closure and its context were two more
 * objects per timer for the garbage collector to copy and promote.
 */
class NodeTimer implements TimerHandle {
  constructor(private readonly timeout: NodeJS.Timeout) {}

  cancel(): void {
    clearTimeout(this.timeout);
  }
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const h = setTimeout(fn, ms);
    // Pending SIP timers must not keep a stopping process alive.
    h.unref?.();
    return new NodeTimer(h);
  },
};
