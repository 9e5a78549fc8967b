/**
 * Everything the engine needs to know about one call, gathered by the
 * executor (src/call) before evaluation. The engine reads no clock, no
 * store and no randomness of its own (DESIGN.md §1 rule 2): time, region,
 * round-robin counters and the random seed are all here, so an evaluation
 * can be replayed exactly (dry-run API, tests, incident analysis).
 */

/** Who sent the call. */
export type CallOrigin =
  /** A carrier trunk of the tenant; the executor matched the source address to the trunk's `sources`. */
  | { kind: 'trunk'; trunk: string }
  /** An extension of the tenant, proven by digest authentication. */
  | { kind: 'extension'; extension: string };

export interface RoutingFacts {
  /** Tenant id; must equal the compiled tenant's (nothing crosses tenants). */
  tenant: string;
  origin: CallOrigin;
  /** The dialled number as received (Request-URI user part), any usual form. */
  called: string;
  /** Calling number as received (P-Asserted-Identity / From user); absent when withheld. Ignored for extension origins. */
  caller?: string;
  /** Epoch milliseconds of the call setup. */
  time: number;
  /** 来电归属地 from the region lookup component; the tenant's region overrides win over it. */
  callerRegion?: { province?: string; city?: string };
  /** Set when re-evaluating after an IVR menu collected digits (`` = no input). */
  ivr?: { menu: string; digits: string };
  /**
   * Round-robin counters by key, each the value an atomic Redis INCR of that
   * key returned (1 on first use). Evaluate without them first: a plan that
   * needs one comes back as `needs-counters` naming the keys.
   */
  counters?: Readonly<Record<string, number>>;
  /** Per-call random seed (uint32) for the random and weighted strategies. */
  seed: number;
}
