/**
 * Binding validation shared by both location stores, and the stored form of
 * one AOR's record in Redis with its defensive decoder.
 *
 * A Redis value is the JSON text `{"version":<n>,"bindings":[...]}` with exactly
 * that key order and no whitespace before the bindings: the compare-and-set
 * script reads the version with a fixed pattern instead of a JSON decoder
 * (see `VERSION_PREFIX`), and this module reads it with the same pattern, so
 * the version `get` reports is always the one `put` compares against. If the
 * two disagreed on some corrupt value, every CAS on that AOR would fail and
 * no REGISTER for it could ever succeed again.
 *
 * Values may be corrupt or written by an older release. Decoding never
 * throws: an unreadable version counts as 0 (the next successful `put`
 * overwrites the value), bindings that are not a well-formed array count as
 * none, and a single malformed binding is dropped while its siblings are
 * kept, so one bad contact does not make a user's other phones unreachable.
 */
import type { AorRecord, Binding, BindingFlow } from '../sip/registrar/location-service.js';
import { StoreError } from './store-error.js';

/**
 * Matches the start of every value this store writes. Lua has the mirror
 * image in the CAS script: `^{"version":(%d+),"bindings":`, capped at 16
 * digits and Number.MAX_SAFE_INTEGER on both sides.
 */
const VERSION_PREFIX = /^\{"version":(\d{1,16}),"bindings":/;

/** Reads the version the CAS script would compare against; 0 if unreadable. */
export function storedVersion(raw: string): number {
  const digits = VERSION_PREFIX.exec(raw)?.[1];
  if (digits === undefined) return 0;
  const version = Number(digits);
  return Number.isSafeInteger(version) ? version : 0;
}

/** Decodes a stored value (all bindings, expired or not). Never throws. */
export function decodeAorRecord(raw: string): AorRecord {
  const version = storedVersion(raw);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { version, bindings: [] };
  }
  if (!isObject(parsed) || !Array.isArray(parsed.bindings)) return { version, bindings: [] };
  const bindings: Binding[] = [];
  for (const item of parsed.bindings as unknown[]) {
    const binding = toBinding(item);
    if (binding !== undefined) bindings.push(binding);
  }
  return { version, bindings };
}

/**
 * Both stores check bindings on `put` with the same rules the Redis decoder
 * applies on read, so a store never accepts a binding it would later drop
 * as corrupt. A malformed binding there is a bug in the caller, not a data
 * condition, hence a throw rather than `false` (which means "lost the race").
 */
export function validBindings(aor: string, bindings: readonly Binding[]): Binding[] {
  return bindings.map((b, i) => {
    const checked = toBinding(b);
    if (checked === undefined) {
      throw new StoreError('DP_STORE_BAD_BINDING', `binding ${i} of ${aor} is malformed: ${JSON.stringify(b)}`);
    }
    return checked;
  });
}

/** Latest `expiresAt` of a non-empty list: when the whole AOR may be forgotten. */
export function latestExpiry(bindings: readonly Binding[]): number {
  return bindings.reduce((max, b) => (b.expiresAt > max ? b.expiresAt : max), -Infinity);
}

/**
 * Rebuilds a Binding field by field, so the result carries exactly the
 * interface's fields with the right types whatever else the JSON contained.
 * Returns undefined for anything that is not a well-formed binding.
 */
export function toBinding(value: unknown): Binding | undefined {
  if (!isObject(value)) return undefined;
  const { aor, contact, expiresAt, q, callId, cseq, path, registeredAt, instanceId, userAgent } = value;
  if (typeof aor !== 'string' || typeof contact !== 'string' || typeof callId !== 'string') return undefined;
  if (!isFiniteNumber(expiresAt) || !isFiniteNumber(registeredAt)) return undefined;
  // §10.2.1.2: q is a qvalue, 0 to 1; CSeq numbers are 32-bit unsigned (§8.1.1.5).
  if (!isFiniteNumber(q) || q < 0 || q > 1) return undefined;
  if (typeof cseq !== 'number' || !Number.isInteger(cseq) || cseq < 0 || cseq > 0xffff_ffff) return undefined;
  if (!Array.isArray(path) || !path.every((p): p is string => typeof p === 'string')) return undefined;
  if (!isOptionalString(instanceId) || !isOptionalString(userAgent)) return undefined;
  const flow = toFlow(value.flow);
  if (flow === undefined) return undefined;
  const binding: Binding = { aor, contact, expiresAt, q, callId, cseq, path: [...path], flow, registeredAt };
  if (instanceId !== undefined) binding.instanceId = instanceId;
  if (userAgent !== undefined) binding.userAgent = userAgent;
  return binding;
}

function toFlow(value: unknown): BindingFlow | undefined {
  if (!isObject(value)) return undefined;
  const { transport, address, port, connectionId, node } = value;
  if (typeof transport !== 'string' || typeof address !== 'string') return undefined;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65_535) return undefined;
  if (!isOptionalString(connectionId) || !isOptionalString(node)) return undefined;
  const flow: BindingFlow = { transport, address, port };
  if (connectionId !== undefined) flow.connectionId = connectionId;
  if (node !== undefined) flow.node = node;
  return flow;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function isOptionalString(value: unknown): value is string | undefined {
  return value === undefined || typeof value === 'string';
}
