/**
 * LocationService: where the registrar keeps bindings (RFC 3261 §10.3) and
 * where the proxy finds them (§16.5 "location service").
 *
 * The SIP layer owns the REGISTER semantics (Call-ID/CSeq ordering, expiry,
 * `*` removal) as a pure function; a store only has to offer an atomic
 * compare-and-set of one AOR's record. That keeps RFC logic testable without
 * Redis and keeps every store implementation small:
 *
 *   "binding updates MUST be committed (that is, made visible to the proxy or
 *    redirect server) if and only if all binding updates and additions
 *    succeed." (RFC 3261 §10.3 step 8)
 *
 * so the registrar reads a record, computes the new binding list, and writes
 * it back with `put(aor, record.version, ...)`; on a lost race it re-reads.
 */

/** How the REGISTER reached us: needed to reach a NATed or WS/TCP client again. */
export interface BindingFlow {
  /** 'udp' | 'tcp' | 'ws' | 'wss' | 'tls' */
  transport: string;
  /** Source IP address the REGISTER came from. */
  address: string;
  /** Source port the REGISTER came from. */
  port: number;
  /** Connection id for connection-oriented transports; meaningful only on `node`. */
  connectionId?: string;
  /** Id of the server node holding that connection. */
  node?: string;
}

export interface Binding {
  /** Address of record, canonical form `sip:user@domain` (no params). */
  aor: string;
  /** The Contact URI exactly as registered (without the header's contact-params). */
  contact: string;
  /** Absolute expiry, milliseconds since the epoch. */
  expiresAt: number;
  /** q-value 0..1 (default 1, RFC 3261 §10.2.1.2). */
  q: number;
  callId: string;
  cseq: number;
  /** Path header values from the REGISTER (RFC 3327), in order. */
  path: string[];
  flow: BindingFlow;
  /** +sip.instance (RFC 5626), if the UA sent one. */
  instanceId?: string;
  userAgent?: string;
  /** When this binding was first created, ms since the epoch. */
  registeredAt: number;
}

export interface AorRecord {
  /** Monotonic per-AOR version, 0 for an AOR that has never been written. */
  version: number;
  /** Bindings that are not yet expired at the `now` passed to `get`. */
  bindings: Binding[];
}

export interface LocationService {
  /** Current bindings of `aor` that expire after `now` (ms since epoch). Read-only: may be frozen. */
  get(aor: string, now: number): Promise<AorRecord>;
  /**
   * Atomically replace the bindings of `aor` if its version is still
   * `expectedVersion`; returns false (and changes nothing) otherwise.
   * An empty list removes the AOR. The store may forget the record once every
   * binding has expired.
   */
  put(aor: string, expectedVersion: number, bindings: Binding[]): Promise<boolean>;
  /** Every AOR that currently has at least one unexpired binding (admin listing, tests). */
  list(now: number): Promise<string[]>;
}
