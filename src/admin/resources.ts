/**
 * The sub-resources of a tenant: which slice of the tenant document each
 * URL names, how an object's key is read, and how objects are shown and
 * versioned.
 *
 * Object versions are content hashes (first 16 hex digits of SHA-256 of the
 * canonical JSON of what GET shows), not counters: the document has no room
 * for per-object counters, and a hash needs none. Two consequences, both
 * wanted: an unchanged object keeps its version when something else in the
 * tenant changes (so editing extension 1001 does not make another admin's
 * copy of 1002 stale), and writing identical content back yields the same
 * version. Extension HA1s are left out of the version: any deterministic
 * function of an HA1 handed to a reader would let it test password guesses
 * offline.
 */
import { createHash } from 'node:crypto';
import type { DocumentType, Extension, NumberEntry, TenantDocument } from '../routing/index.js';

type Obj = Record<string, unknown>;
/** Array-valued fields of the tenant document that the API exposes as collections. */
type CollectionField = 'numbers' | 'extensions' | 'groups' | 'shortNumberPlans' | 'routes' | 'schedules' | 'inboundTrunks' | 'outboundGateways' | 'ivrMenus';

export interface CollectionResource {
  /** URL segment under /v1/tenants/{tenant}/. */
  path: string;
  /** Name of the path parameter. */
  param: string;
  field: CollectionField;
  /** The TENANT_SCHEMA $defs entry of an item. */
  def: DocumentType;
  /** Singular, for messages: `extension 1001 not found`. */
  noun: string;
  /** Fields `?field=value` filters on (exact match). */
  filters: readonly string[];
  keyOf(obj: Obj): string;
  /** The body with its key fields taken from the URL key when it has none (PUT /numbers/4008123456 {route}), key first. */
  fillKey(body: Obj, key: string): Obj;
}

const byId = (o: Obj): string => String(o.id);
const fillId = (b: Obj, key: string): Obj => (b.id === undefined ? { id: key, ...b } : b);

/**
 * A number entry's key is the form it takes: the number itself, the prefix
 * followed by `*`, or `from-to` for a range. Written as the entry writes
 * them, so the key and the body say the same thing.
 */
export function numberKeyOf(e: Partial<NumberEntry>): string {
  if (e.number !== undefined) return e.number;
  if (e.prefix !== undefined) return `${e.prefix}*`;
  if (e.range !== undefined) return `${e.range.from}-${e.range.to}`;
  return '';
}

function fillNumberKey(b: Obj, key: string): Obj {
  if (b.number !== undefined || b.prefix !== undefined || b.range !== undefined) return b;
  const range = /^(\+?[0-9]+)-(\+?[0-9]+)$/.exec(key);
  if (key.endsWith('*')) return { prefix: key.slice(0, -1), ...b };
  if (range) return { range: { from: range[1], to: range[2] }, ...b };
  return { number: key, ...b };
}

export const COLLECTIONS: readonly CollectionResource[] = [
  { path: 'numbers', param: 'number', field: 'numbers', def: 'numberEntry', noun: 'number', filters: ['route'], keyOf: (o) => numberKeyOf(o as Partial<NumberEntry>), fillKey: fillNumberKey },
  {
    path: 'extensions', param: 'ext', field: 'extensions', def: 'extension', noun: 'extension', filters: ['route'],
    keyOf: (o) => String(o.number), fillKey: (b, key) => (b.number === undefined ? { number: key, ...b } : b),
  },
  { path: 'groups', param: 'id', field: 'groups', def: 'group', noun: 'group', filters: ['strategy'], keyOf: byId, fillKey: fillId },
  { path: 'short-numbers', param: 'plan', field: 'shortNumberPlans', def: 'shortNumberPlan', noun: 'short-number plan', filters: [], keyOf: byId, fillKey: fillId },
  { path: 'routes', param: 'id', field: 'routes', def: 'route', noun: 'route', filters: [], keyOf: byId, fillKey: fillId },
  { path: 'schedules', param: 'id', field: 'schedules', def: 'schedule', noun: 'schedule', filters: ['timeZone'], keyOf: byId, fillKey: fillId },
  { path: 'trunks', param: 'id', field: 'inboundTrunks', def: 'inboundTrunk', noun: 'inbound trunk', filters: [], keyOf: byId, fillKey: fillId },
  { path: 'gateways', param: 'id', field: 'outboundGateways', def: 'outboundGateway', noun: 'outbound gateway', filters: ['transport'], keyOf: byId, fillKey: fillId },
  { path: 'ivr-menus', param: 'id', field: 'ivrMenus', def: 'ivrMenu', noun: 'IVR menu', filters: ['route'], keyOf: byId, fillKey: fillId },
];

/** JSON with object keys sorted, so equal content hashes equally whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function contentVersion(shown: unknown): string {
  return createHash('sha256').update(canonicalJson(shown)).digest('hex').slice(0, 16);
}

/** An extension as the API shows it: no HA1s, `hasPassword` instead. */
export function showExtension(e: Extension): Obj {
  const { sip, ...rest } = e;
  const out: Obj = { ...rest, hasPassword: sip.ha1Md5 !== undefined && sip.ha1Sha256 !== undefined };
  if (sip.username !== undefined) out.sip = { username: sip.username };
  return out;
}

/** The object as GET shows it (without `version`). */
export function showObject(r: CollectionResource, obj: Obj): Obj {
  return r.field === 'extensions' ? showExtension(obj as unknown as Extension) : obj;
}

export function objectVersion(r: CollectionResource, obj: Obj): string {
  return contentVersion(showObject(r, obj));
}

export function collectionOf(doc: TenantDocument, r: CollectionResource): Obj[] {
  return (doc[r.field] ?? []) as unknown as Obj[];
}

/** Strong ETag of a version (RFC 9110 §8.8.3). */
export function etag(version: string | number): string {
  return `"${version}"`;
}
