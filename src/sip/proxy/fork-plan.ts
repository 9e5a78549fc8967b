/**
 * What the routing layer hands the proxy: who to ring, in which order, for
 * how long. Serial groups of parallel targets cover sequential hunting
 * (groups of one), ring-all (one group of all) and mixes of the two.
 * Plain data: serialisable, testable, no SIP objects but the target URI.
 */
import type { SipUri } from '../message/uri.js';
import type { Destination } from '../transaction/types.js';

export interface ForkTarget {
  /** The new Request-URI (§16.6 step 2). */
  uri: SipUri;
  /** Where to send it, when known (a registered flow); otherwise resolved from Route / Request-URI. */
  dest?: Destination;
  /** Path values from the registration, pushed as Route headers (RFC 3327 §5.3). */
  path?: string[];
  /** No-answer timeout for this branch (ms); defaults to the group's. */
  timeoutMs?: number;
  /** Free text for logs and branch events (extension, number...). */
  label?: string;
  /**
   * Header fields this branch's request gets, each replacing every field of
   * that name (e.g. P-Asserted-Identity presenting the caller's short code,
   * RFC 3325 §9.1; Diversion for a forwarded call, RFC 5806). Names the
   * proxy itself manages (Via, Route, Record-Route, Max-Forwards, CSeq,
   * Call-ID, From, To, Content-Length) are refused by the proxy.
   */
  headers?: ReadonlyArray<readonly [string, string]>;
}

export interface ForkGroup {
  targets: ForkTarget[];
  /** No-answer timeout applied to every branch of the group (ms). */
  timeoutMs?: number;
}

export interface ForkPlan {
  /** Tried in order; each group's targets ring in parallel. */
  groups: ForkGroup[];
  /**
   * Final statuses that end the hunt instead of moving to the next group.
   * 2xx always ends it; by default 6xx does too (§16.7: after a 6xx the proxy
   * "MUST NOT create any new branches in this context").
   */
  stopOn?: (status: number) => boolean;
  /**
   * Whether a 6xx from one target ends the hunt (default true, §16.7 step 5:
   * the proxy "MUST NOT create any new branches in this context"). A PBX
   * hunt group may be configured to treat one phone's Decline as that
   * phone's refusal only and ring the next one: set false (a documented
   * deviation the tenant chooses; the 6xx still wins as best response if
   * nothing better comes).
   */
  globalFailureEndsHunt?: boolean;
  /** Response to send when every branch ended without a response of its own (timeouts, transport errors). */
  exhausted?: { status: number; reason: string };
  /** Cap on the whole hunt (ms). */
  overallTimeoutMs?: number;
}

export type BranchOutcomeKind = 'answered' | 'busy' | 'declined' | 'no-answer' | 'unreachable' | 'rejected' | 'cancelled';

export interface BranchOutcome {
  target: ForkTarget;
  kind: BranchOutcomeKind;
  status: number;
  /** ms from branch start to its outcome */
  elapsedMs: number;
}

/** Maps a branch's final status to what a PBX user means by it. */
export function classifyStatus(status: number): BranchOutcomeKind {
  if (status >= 200 && status < 300) return 'answered';
  if (status === 486 || status === 600) return 'busy';
  if (status === 603) return 'declined';
  if (status === 408) return 'no-answer';
  if (status === 487) return 'cancelled';
  if (status === 480 || status === 404 || status >= 500) return 'unreachable';
  return 'rejected';
}
