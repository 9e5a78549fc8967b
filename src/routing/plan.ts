/**
 * What the engine decides: a serialisable plan of steps the executor runs
 * from step 0. Ring and forward steps can fail; their `onFail` says which
 * step comes next for each failure kind, or `stop` (the caller gets the
 * failure). Every other step ends the plan (IVR, announcement + hang-up,
 * reject, voicemail) except an announcement with `then: <step>`.
 *
 * Ring steps are already in the proxy's shape (src/sip/proxy/fork-plan.ts):
 * serial `groups` of parallel targets with per-target and per-group
 * timeouts; the strategy has been applied (order resolved from the counter
 * value and the seed) and is kept only to explain the order.
 *
 * Plain JSON: no Maps, no functions, no class instances.
 */
import type { RingStrategy } from './model.js';

/**
 * The same words as BranchOutcomeKind in src/sip/proxy/fork-plan.ts, so the
 * executor looks up `step.onFail[classifyStatus(finalStatus)]` directly.
 */
export type FailureKind = 'busy' | 'no-answer' | 'unreachable' | 'rejected' | 'declined';
export const FAILURE_KINDS: readonly FailureKind[] = ['busy', 'no-answer', 'unreachable', 'rejected', 'declined'];

/** Index of the next step, or the end of the call. */
export type NextStep = number | 'stop';

/** One way out for an external number: a gateway, and the numbers written as that gateway wants them. */
export interface GatewayHop {
  gateway: string;
  host: string;
  port: number;
  transport: 'udp' | 'tcp' | 'tls';
  /** Request-URI user part for this gateway (format and technical prefix applied). */
  dial: string;
  /** Calling number to present through this gateway; absent = withheld. */
  callerId?: string;
}

export interface ExtensionTarget {
  kind: 'extension';
  extension: string;
  name?: string;
  timeoutMs: number;
}

export interface ExternalTarget {
  kind: 'external';
  /** E.164, or the national digits of a short service number. */
  number: string;
  timeoutMs: number;
  /** Tried in order on unreachable/5xx: failover between gateways, same target. */
  gateways: GatewayHop[];
  /** Set when the number is rung because an extension binds it (`alsoRing`). */
  forExtension?: string;
  /** Carrier of the number and where that came from, for the CDR. */
  carrier?: { id: string; source: 'ported' | 'segment' };
}

export type PlanTarget = ExtensionTarget | ExternalTarget;

export interface PlanRingGroup {
  /** Rung in parallel. */
  targets: PlanTarget[];
  /** The longest of the targets' timeouts: when the group as a whole gives up. */
  timeoutMs: number;
}

/** Where a step came from in the tenant document, for explanations and CDRs. */
export interface StepSource {
  route?: string;
  rule?: string;
  /** Index in the rule's actions; absent for built-in behaviour (direct extension dialling, outbound calls). */
  action?: number;
  /** A short description of built-in behaviour. */
  builtin?: string;
}

export interface RingStep {
  kind: 'ring';
  strategy: RingStrategy;
  groups: PlanRingGroup[];
  overallTimeoutMs?: number;
  /** Whether a 603 from any target ends the hunt at once (ForkPlan.stopOn) instead of moving on. */
  stopOnDecline: boolean;
  onFail: Record<FailureKind, NextStep>;
  /**
   * Round-robin only: the shared counter. Without `value` the groups are in
   * configured order and the executor must, on reaching this step, INCR `key`
   * once and apply the result with applyCounter(step, value).
   */
  counter?: { key: string; value?: number };
  source: StepSource;
}

export interface ForwardStep {
  kind: 'forward';
  /** Redirect the call to this external number (add Diversion/History-Info). */
  target: ExternalTarget;
  onFail: Record<FailureKind, NextStep>;
  source: StepSource;
}

export interface IvrStep {
  kind: 'ivr';
  menu: string;
  prompt: string;
  maxDigits: number;
  digitTimeoutMs: number;
  retries: number;
  source: StepSource;
}

export interface AnnounceStep {
  kind: 'announce';
  prompt: string;
  then: 'hangup' | number;
  source: StepSource;
}

export interface RejectStep {
  kind: 'reject';
  status: number;
  reason: string;
  source: StepSource;
}

export interface VoicemailStep {
  kind: 'voicemail';
  box: string;
  source: StepSource;
}

export type PlanStep = RingStep | ForwardStep | IvrStep | AnnounceStep | RejectStep | VoicemailStep;

/** Who the callee sees. */
export interface PresentedCaller {
  /** Caller identity for internal legs (extensions): a short code, an extension number, or the caller's national number; absent = anonymous. */
  number?: string;
  /** Display name (an extension's or a short-number member's name). */
  name?: string;
  /** Set when `number` is the caller's group short code. */
  shortCodePlan?: string;
}

export interface Plan {
  tenant: string;
  steps: PlanStep[];
  caller: PresentedCaller;
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 408: 'Request Timeout', 410: 'Gone',
  480: 'Temporarily Unavailable', 484: 'Address Incomplete', 486: 'Busy Here', 487: 'Request Terminated',
  488: 'Not Acceptable Here', 500: 'Server Internal Error', 502: 'Bad Gateway', 503: 'Service Unavailable',
  600: 'Busy Everywhere', 603: 'Decline', 604: 'Does Not Exist Anywhere', 606: 'Not Acceptable',
};

/** RFC 3261 §21 reason phrase, or a generic one for the class. */
export function reasonPhrase(status: number): string {
  return REASONS[status] ?? (status >= 600 ? 'Global Failure' : status >= 500 ? 'Server Error' : 'Request Failure');
}

/** Where the executor goes after a ring or forward step ended with `kind`. */
export function nextStepAfter(step: RingStep | ForwardStep, kind: FailureKind): NextStep {
  return step.onFail[kind];
}
