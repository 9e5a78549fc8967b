/**
 * The tenant document: everything one enterprise configures, in one JSON
 * document validated by `TENANT_SCHEMA` (schema.ts) and cross-checked by
 * `checkTenantReferences` (references.ts). Nothing in a tenant document can
 * point into another tenant: every id below is local to the document.
 *
 * Numbers may be written in any form `parseNumber` reads (`+8613812345678`,
 * `13812345678`, `0571-88888888`, `4008123456`...); the compiler keys them
 * by E.164. Prefixes must be unambiguous (see `normalizePrefix`).
 *
 * These types mirror the schema by hand; test/unit/routing/schema.test.ts
 * keeps the two in step by validating typed documents.
 */

/** Local identifier: letters, digits, `_ . -`, 1-64 characters. */
export type Id = string;
export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';
/** `HH:MM`, 00:00-24:00 (24:00 only as the end of a window). */
export type ClockTime = string;
/** `YYYY-MM-DD`, a calendar date in the schedule's time zone. */
export type CalendarDate = string;

export type RingStrategy = 'sequential' | 'round-robin' | 'random' | 'weighted' | 'simultaneous';

/**
 * Where a failed step goes: the next action of the chain, the end of the
 * call (the caller gets the failure), or a later action by its index in the
 * rule's `actions` (forward jumps only, so a chain always terminates).
 */
export type NextOnFail = 'next' | 'stop' | number;

export interface TenantDocument {
  $schema?: string;
  id: Id;
  name?: string;
  /** SIP domain and digest realm of this tenant's extensions. */
  domain?: string;
  /** IANA zone of schedules that name none (default Asia/Shanghai). */
  timeZone?: string;
  /** Area code (without 0) completing 7-8 digit local numbers, e.g. `571`. */
  areaCode?: string;
  /** Number presented on calls extensions place to the outside (one of `numbers`, not a 400/800 number). */
  outboundCallerId?: string;
  defaults?: TenantDefaults;
  limits?: TenantLimits;
  numbers?: NumberEntry[];
  extensions?: Extension[];
  groups?: RingGroup[];
  shortNumberPlans?: ShortNumberPlan[];
  schedules?: Schedule[];
  blacklist?: TenantBlacklist;
  regionOverrides?: RegionOverride[];
  inboundTrunks?: InboundTrunk[];
  outboundGateways?: OutboundGateway[];
  ivrMenus?: IvrMenu[];
  routes?: Route[];
  /**
   * Ported mobile numbers (携号转网) this tenant knows of (its staff's and
   * customers' numbers), consulted before the operator's table of the
   * global document: which carrier's gateway an outbound call prefers.
   */
  ported?: Array<{ number: string; carrier: string }>;
}

export interface TenantDefaults {
  /** How long one target rings when neither the target nor the action says (default 20 s). */
  targetTimeoutMs?: number;
  /** Cap on a whole ring step when the action does not say (default none). */
  overallTimeoutMs?: number;
}

export interface TenantLimits {
  /**
   * Calls of this tenant in progress at once on one node, from the INVITE
   * until the final failure or the BYE; the next call gets 503 with
   * Retry-After. Counted per node (a cluster of N nodes admits up to N×).
   */
  maxConcurrentCalls?: number;
}

/**
 * A public number the tenant rents, pointing at a route. Exactly one of
 * `number` (exact), `prefix` (every number starting with it) or `range`
 * (from..to, same length, both inclusive). An exact number beats any
 * block; among blocks the longest prefix wins (a range is cut into aligned
 * prefix blocks, so a narrower range nested in a wider one wins).
 */
export interface NumberEntry {
  number?: string;
  prefix?: string;
  range?: { from: string; to: string };
  route: Id;
  label?: string;
}

export interface Extension {
  /** The extension number (2-6 digits), also its SIP user name unless `sip.username` says otherwise. */
  number: string;
  name?: string;
  sip: SipCredentials;
  /** How long this extension rings before it counts as no-answer. */
  ringTimeoutMs?: number;
  /** External numbers (a mobile) rung with the extension's registered devices, or after them. */
  alsoRing?: { numbers: string[]; mode: 'together' | 'after' };
  /** Overrides the tenant's `outboundCallerId` for calls this extension places. */
  outboundCallerId?: string;
  /** Voicemail box that takes the call when the extension does not answer (default behaviour only). */
  voicemail?: string;
  /** Route evaluated when the extension is dialled directly (call forwarding rules); default: ring it, then voicemail. */
  route?: Id;
}

/** Digest secrets as the registrar stores them: HA1 per algorithm, never a password (RFC 7616 §3.4.2). */
export interface SipCredentials {
  username?: string;
  /** hex MD5(username:realm:password) */
  ha1Md5: string;
  /** hex SHA-256(username:realm:password) */
  ha1Sha256: string;
}

/** An extension or an external number to ring. Exactly one of the two. */
export interface RingTargetRef {
  extension?: string;
  number?: string;
  /** Overrides the action's per-target timeout for this target. */
  timeoutMs?: number;
  /** Relative weight for the `weighted` strategy (default 1). */
  weight?: number;
}

export interface RingGroup {
  id: Id;
  name?: string;
  strategy: RingStrategy;
  members: RingTargetRef[];
  memberTimeoutMs?: number;
  overallTimeoutMs?: number;
  onDecline?: 'stop' | 'continue';
}

/** 集团短号 / VPMN: members dial each other by code; the callee sees the caller's code. */
export interface ShortNumberPlan {
  id: Id;
  name?: string;
  members: ShortNumberMember[];
}

/** A code mapping to an extension or to a full number (a member's mobile). Exactly one of the two. */
export interface ShortNumberMember {
  code: string;
  extension?: string;
  number?: string;
  name?: string;
}

export interface Schedule {
  id: Id;
  /** IANA zone; default the tenant's, then Asia/Shanghai. */
  timeZone?: string;
  /** Open windows. `to` ≤ `from` crosses midnight into the next day; `to` may be 24:00. */
  weekly: WeeklyWindow[];
  /** Closed all day (the calendar days `date`..`to`), whatever the weekday. */
  holidays?: Holiday[];
  /** 调休: a day off (usually a weekend day) that is worked, using the windows of the weekday `as` (default mon). */
  makeupWorkdays?: MakeupWorkday[];
}

export interface WeeklyWindow {
  days: Weekday[];
  from: ClockTime;
  to: ClockTime;
}

export interface Holiday {
  date: CalendarDate;
  /** Last day of a multi-day holiday, inclusive. */
  to?: CalendarDate;
  name?: string;
}

export interface MakeupWorkday {
  date: CalendarDate;
  as?: Weekday;
  name?: string;
}

/** Callers the tenant refuses: exact numbers, prefixes, and optionally callers with no usable number. */
export interface TenantBlacklist {
  numbers?: string[];
  prefixes?: string[];
  /** Treat callers without a usable number (withheld, anonymous, garbage) as blacklisted. */
  anonymous?: boolean;
  /** Status a blacklisted caller gets when no rule handles blacklisted callers (default 603 Decline). */
  status?: number;
}

/** Caller region (province/city) for callers whose number starts with `prefix`, overriding the region fact. */
export interface RegionOverride {
  prefix: string;
  province: string;
  city?: string;
}

/** A carrier trunk calls arrive on. The executor matches `sources` (IP/CIDR) and passes the trunk id as a fact. */
export interface InboundTrunk {
  id: Id;
  name?: string;
  sources: string[];
  /** Numbers (prefixes, or exact short service numbers) this trunk may deliver; default every tenant number. */
  numbers?: string[];
  /** Area code of local numbers this trunk delivers without one (default the tenant's). */
  areaCode?: string;
}

/** A gateway calls leave through. Lower `priority` is tried first; failover walks the list. */
export interface OutboundGateway {
  id: Id;
  host: string;
  port?: number;
  transport?: 'udp' | 'tcp' | 'tls';
  priority?: number;
  /** Destinations this gateway reaches (E.164/national prefixes); default all. */
  prefixes?: string[];
  /** Carriers (ids of the global carrier data) this gateway is preferred for: on-net mobile calls are cheaper. */
  carriers?: string[];
  /** How the called and calling numbers are written towards this gateway (default `national`). */
  numberFormat?: 'e164' | 'national' | 'digits';
  /** Technical prefix some carriers want before the called number. */
  dialPrefix?: string;
}

export interface IvrMenu {
  id: Id;
  prompt: Id;
  maxDigits?: number;
  digitTimeoutMs?: number;
  retries?: number;
  /** Whether digits equal to an extension number ring that extension (总机 "dial the extension"). */
  extensionDialling?: boolean;
  /** Route evaluated with the collected digits as the `ivrDigits` fact. */
  route: Id;
}

export interface Route {
  id: Id;
  name?: string;
  /** Tried in order; the first rule whose conditions all hold decides. */
  rules: Rule[];
}

export interface Rule {
  id: Id;
  description?: string;
  /** All must hold; absent = always. */
  when?: Conditions;
  /** A failover chain: the first action runs, failures move along `onFail`. */
  actions: Action[];
}

export interface RegionRef {
  province: string;
  city?: string;
}

export interface Conditions {
  schedule?: { id: Id; inside: boolean };
  callerRegion?: { in: RegionRef[]; not?: boolean };
  /** Patterns on the caller's national form: digits, `X` any digit, `*` at the end any rest; a leading `+` matches E.164. */
  callerNumber?: { patterns: string[]; not?: boolean };
  calledNumber?: { patterns: string[]; not?: boolean };
  /**
   * true: only blacklisted callers match. false (and the default for rules
   * that do not mention it): only callers that are not blacklisted match.
   * So a blacklisted caller reaches only rules written for them.
   */
  callerBlacklisted?: boolean;
  /** Digits collected by the IVR menu that led here (`` = no input). */
  ivrDigits?: string[];
}

export interface OnFail {
  busy?: NextOnFail;
  noAnswer?: NextOnFail;
  unreachable?: NextOnFail;
  rejected?: NextOnFail;
  /** Where a step that ended with 603 goes; default follows `onDecline`. */
  declined?: NextOnFail;
}

export interface RingAction {
  kind: 'ring';
  targets: RingTargetRef[];
  strategy?: RingStrategy;
  targetTimeoutMs?: number;
  overallTimeoutMs?: number;
  onFail?: OnFail;
  /** stop: a 603 ends the call; continue: a 603 counts as busy and the hunt goes on (default stop). */
  onDecline?: 'stop' | 'continue';
}

export interface RingGroupAction {
  kind: 'ringGroup';
  group: Id;
  overallTimeoutMs?: number;
  onFail?: OnFail;
  onDecline?: 'stop' | 'continue';
}

export interface IvrAction {
  kind: 'ivr';
  menu: Id;
}

export interface AnnounceAction {
  kind: 'announce';
  prompt: Id;
  /** Hang up after the prompt (default), or go on with the next action. */
  then?: 'hangup' | 'next';
}

export interface RejectAction {
  kind: 'reject';
  status: number;
  reason?: string;
}

/** Forward to an external number (exactly one of number/route) or hand the call to another route. */
export interface ForwardAction {
  kind: 'forward';
  number?: string;
  route?: Id;
  timeoutMs?: number;
  onFail?: OnFail;
}

export interface VoicemailAction {
  kind: 'voicemail';
  box: string;
}

export type Action = RingAction | RingGroupAction | IvrAction | AnnounceAction | RejectAction | ForwardAction | VoicemailAction;

/** Data shared by all tenants, kept in its own document. */
export interface GlobalDocument {
  $schema?: string;
  /** Callers refused for every tenant (fraud, spam ranges). */
  blacklist?: { numbers?: string[]; prefixes?: string[] };
  carriers?: CarrierData;
}

/**
 * Which carrier serves a mobile number: its segment (号段, the original
 * allocation) unless it was ported (携号转网), in which case `ported` says
 * where it is now.
 */
export interface CarrierData {
  segments?: Array<{ prefix: string; carrier: string }>;
  ported?: Array<{ number: string; carrier: string }>;
}
