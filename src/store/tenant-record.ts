/**
 * What both TenantStore implementations share: checks of the ids and keys a
 * caller hands in, the JSON encoding of documents, and the change
 * announcement format (Redis pub/sub carries it between nodes).
 *
 * Documents are kept as the exact JSON text `JSON.stringify` produced at
 * `put` and parsed afresh on every read, so a reader always gets its own
 * copy and strings come back exactly as written (JSON.stringify escapes a
 * lone surrogate as `\udXXX` and JSON.parse restores it, so even those
 * survive). The store never judges content (validation is src/routing's);
 * it only needs an object with a string `id`.
 */
import { StoreError, StoredDocumentCorrupt } from './store-error.js';
import type { ConfigChange } from './tenant-store.js';
import { isWellFormedUnicode } from './unicode.js';

/** Longest tenant id or counter key accepted: far above the schema's 64, far below anything that hurts. */
const MAX_NAME_LENGTH = 1024;

/**
 * A tenant id names a key (Redis) or a file entry, so it must be a
 * non-empty string UTF-8 can carry: a lone surrogate would become U+FFFD on
 * the wire and two ids could share one key. The schema's `Id` pattern is
 * stricter; that check is the caller's (a store never judges content).
 */
export function assertTenantId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_NAME_LENGTH || !isWellFormedUnicode(id)) {
    throw new StoreError('DP_STORE_BAD_TENANT_ID', `tenant id ${describe(id)} cannot name a stored document (non-empty, valid Unicode, at most ${MAX_NAME_LENGTH} characters)`);
  }
}

export function assertCounterKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_NAME_LENGTH || !isWellFormedUnicode(key)) {
    throw new StoreError('DP_STORE_BAD_COUNTER_KEY', `counter key ${describe(key)} is not usable (non-empty, valid Unicode, at most ${MAX_NAME_LENGTH} characters)`);
  }
}

/** The document as JSON text; throws DP_STORE_BAD_DOCUMENT for anything that is not a JSON object. */
export function encodeDocument(what: string, doc: unknown): string {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new StoreError('DP_STORE_BAD_DOCUMENT', `${what}: a document must be a JSON object`);
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(doc);
  } catch (err) {
    // BigInt values, cycles, a throwing toJSON.
    throw new StoreError('DP_STORE_BAD_DOCUMENT', `${what}: not representable as JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  // A toJSON returning undefined or a primitive.
  if (json === undefined || !json.startsWith('{')) {
    throw new StoreError('DP_STORE_BAD_DOCUMENT', `${what}: does not serialise to a JSON object`);
  }
  return json;
}

/**
 * Parses stored JSON text back into a document. `expectedId` (tenants) must
 * match the document's `id`: stores file a document under its id, so a
 * mismatch means the backend was written around the store.
 */
export function decodeDocument(what: string, version: number, json: string, expectedId?: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new StoredDocumentCorrupt(what, version, `not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new StoredDocumentCorrupt(what, version, 'not a JSON object');
  }
  const doc = value as Record<string, unknown>;
  if (expectedId !== undefined && doc.id !== expectedId) {
    throw new StoredDocumentCorrupt(what, version, `its id is ${describe(doc.id)}, not ${JSON.stringify(expectedId)}`);
  }
  return doc;
}

/** A version as stores hand them out: a positive safe integer. */
export function isVersion(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0;
}

/** Longest announcement accepted: a real one is under 1.2 KB (the id is at most 1024 characters). */
const MAX_CHANGE_LENGTH = 8192;

/**
 * Parses an announcement defensively: anything else on the channel (another
 * program, an older or newer format, garbage) yields undefined, never an
 * exception. Unknown extra fields are ignored so a later version may add some.
 */
export function parseConfigChange(raw: unknown): ConfigChange | undefined {
  if (typeof raw !== 'string' || raw.length > MAX_CHANGE_LENGTH) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (!isVersion(v.version)) return undefined;
  if (v.kind === 'global') return { kind: 'global', version: v.version };
  if (v.kind !== 'tenant' || typeof v.tenant !== 'string' || v.tenant.length === 0) return undefined;
  if (v.deleted !== undefined && typeof v.deleted !== 'boolean') return undefined;
  return v.deleted === true
    ? { kind: 'tenant', tenant: v.tenant, version: v.version, deleted: true }
    : { kind: 'tenant', tenant: v.tenant, version: v.version };
}

/** ASCII-safe, bounded rendering of a bad value for error messages. */
function describe(value: unknown): string {
  if (typeof value !== 'string') return typeof value;
  const shown = JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
  return shown.replace(/[^\x20-\x7e]/gu, (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`);
}
