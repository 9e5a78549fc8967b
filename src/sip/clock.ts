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

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const h = setTimeout(fn, ms);
    // Pending SIP timers must not keep a stopping process alive.
    h.unref?.();
    return { cancel: () => clearTimeout(h) };
  },
};
