/**
 * The admin API's JSON Schemas, all derived from the routing layer's
 * TENANT_SCHEMA (DESIGN.md §1 rule 4: one schema source for the API, the
 * store and routing-rules/). Nothing here restates a field's type or
 * pattern; it only reshapes:
 *
 *   - each `$defs` entry becomes a shared Fastify schema `dp.<name>` (so the
 *     OpenAPI document lists them once under components and routes refer to
 *     them);
 *   - PUT bodies are the document type plus `version` (an alternative to
 *     If-Match, so a client can PUT back what it GOT);
 *   - PATCH bodies (JSON merge patch, RFC 7396) are the same properties, each
 *     also accepting null (= remove), none required;
 *   - extensions take a write-only `password` instead of the stored digest
 *     HA1s (`sip.ha1Md5` / `sip.ha1Sha256`), which the API computes.
 *
 * `additionalProperties: false` is inherited everywhere, so an unknown
 * field is a 400 naming it.
 */
import { TENANT_SCHEMA } from '../routing/index.js';

type Schema = Record<string, unknown>;
type DefName = keyof typeof TENANT_SCHEMA.$defs;

const LOCAL_REF = '#/$defs/';

/** The shared-schema id of a $defs entry. */
export function sharedId(name: string): string {
  return `dp.${name}`;
}

export function refTo(name: DefName | 'importExtension' | 'tenantSettings'): Schema {
  return { $ref: `${sharedId(name)}#` };
}

/** Deep copy with `#/$defs/x` refs pointing at the shared schemas instead. */
function rewrite(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewrite);
  if (typeof value !== 'object' || value === null) return value;
  const out: Schema = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = k === '$ref' && typeof v === 'string' && v.startsWith(LOCAL_REF) ? `${sharedId(v.slice(LOCAL_REF.length))}#` : rewrite(v);
  }
  return out;
}

function def(name: DefName): Schema {
  return rewrite(TENANT_SCHEMA.$defs[name]) as Schema;
}

/** `version` as bodies may carry it (the value GET returned). */
const VERSION_PROPERTY = { type: 'string', minLength: 1, maxLength: 64, description: 'Version the client read (alternative to If-Match)' };

/** What a PUT of an extension takes: the stored form without HA1s, plus the password. */
function extensionInput(): Schema {
  const base = def('extension');
  const properties = { ...(base.properties as Schema) };
  properties.sip = {
    type: 'object', additionalProperties: false,
    properties: { username: (TENANT_SCHEMA.$defs.extension.properties.sip.properties.username) },
  };
  properties.password = {
    type: 'string', minLength: 8, maxLength: 128, pattern: '^[\\x20-\\x7e]+$', writeOnly: true,
    description: 'SIP digest password (printable ASCII, 8-128 characters). Write-only: stored as HA1 hashes for the tenant realm, never returned',
  };
  // Returned by GET; accepted and ignored so a GET body can be PUT back.
  properties.hasPassword = { type: 'boolean', readOnly: true };
  return { type: 'object', additionalProperties: false, required: ['number'], properties };
}

/** An extension in an imported document: stored HA1s (from an export with secrets or a rules file), a password, or neither (keep the current one). */
function importExtension(): Schema {
  const input = extensionInput();
  const properties = { ...(input.properties as Schema) };
  // Both hashes or neither: checked by the import handler, which names the extension.
  const { required: _required, ...sip } = rewrite(TENANT_SCHEMA.$defs.extension.properties.sip) as Schema;
  properties.sip = sip;
  return { ...input, properties };
}

const SETTINGS_FIELDS = ['id', 'name', 'domain', 'timeZone', 'areaCode', 'outboundCallerId', 'defaults', 'limits', 'regionOverrides'] as const;
export type SettingsField = (typeof SETTINGS_FIELDS)[number];
export const TENANT_SETTINGS_FIELDS: readonly SettingsField[] = SETTINGS_FIELDS;

function tenantSettings(): Schema {
  const all = rewrite(TENANT_SCHEMA.properties) as Schema;
  const properties: Schema = {};
  for (const f of SETTINGS_FIELDS) properties[f] = all[f];
  return { type: 'object', additionalProperties: false, properties };
}

/** Shared schemas to register with `app.addSchema`, in dependency-free order (ajv resolves refs lazily). */
export function sharedSchemas(): Schema[] {
  const out: Schema[] = Object.keys(TENANT_SCHEMA.$defs).map((name) => ({ $id: sharedId(name), ...def(name as DefName) }));
  out.push({ $id: sharedId('extensionInput'), ...extensionInput() });
  out.push({ $id: sharedId('importExtension'), ...importExtension() });
  out.push({ $id: sharedId('tenantSettings'), ...tenantSettings() });
  return out;
}

function withVersion(schema: Schema): Schema {
  return { ...schema, properties: { ...(schema.properties as Schema), version: VERSION_PROPERTY } };
}

/** PUT body of a document type (or of the extension input form). */
export function putBody(name: DefName | 'extensionInput' | 'tenantSettings'): Schema {
  const base = name === 'extensionInput' ? extensionInput() : name === 'tenantSettings' ? tenantSettings() : def(name);
  return withVersion(base);
}

/**
 * PATCH body (merge patch): every property optional and nullable, no
 * `required`, and none of the object-level combinators (oneOf "exactly one
 * of number/prefix/range"): those hold for the merged result, which is
 * validated whole afterwards.
 */
export function patchBody(name: DefName | 'extensionInput' | 'tenantSettings'): Schema {
  const base = name === 'extensionInput' ? extensionInput() : name === 'tenantSettings' ? tenantSettings() : def(name);
  const properties: Schema = {};
  for (const [k, v] of Object.entries(base.properties as Schema)) properties[k] = { anyOf: [v, { type: 'null' }] };
  properties.version = VERSION_PROPERTY;
  return { type: 'object', additionalProperties: false, minProperties: 1, properties };
}

/** The import body: the tenant document, extensions in their import form, `id` optional (the URL names the tenant). */
export function importBody(): Schema {
  const properties = { ...(rewrite(TENANT_SCHEMA.properties) as Schema) };
  properties.extensions = { type: 'array', maxItems: TENANT_SCHEMA.properties.extensions.maxItems, items: refTo('importExtension') };
  return { type: 'object', additionalProperties: false, properties };
}

/** Pagination and filters of list routes. Query values are strings (no type coercion anywhere). */
export function listQuery(filters: readonly string[]): Schema {
  const properties: Schema = {
    limit: { type: 'string', pattern: '^[1-9][0-9]{0,2}$', description: 'Page size, 1-500 (default 100)' },
    cursor: { type: 'string', maxLength: 256, description: 'nextCursor of the previous page' },
    q: { type: 'string', minLength: 1, maxLength: 64, description: 'Case-insensitive substring of the key, name or label' },
  };
  for (const f of filters) properties[f] = { type: 'string', minLength: 1, maxLength: 64, description: `Only objects whose ${f} equals this` };
  return { type: 'object', additionalProperties: false, properties };
}

export const SIMULATE_BODY: Schema = {
  type: 'object', additionalProperties: false, required: ['called'],
  properties: {
    called: { type: 'string', minLength: 1, maxLength: 64, description: 'Dialled number as a carrier (or an extension) would send it' },
    caller: { type: 'string', minLength: 1, maxLength: 64, description: 'Calling number; absent = withheld' },
    time: {
      anyOf: [{ type: 'string', maxLength: 40, description: 'ISO 8601 date-time' }, { type: 'integer', minimum: 0, maximum: 8640000000000000, description: 'epoch ms' }],
      description: 'When the call happens (default: now)',
    },
    digit: { type: 'string', pattern: '^[0-9*#]{0,8}$', description: 'Digits the caller enters at the first IVR menu of the plan' },
    trunk: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$', description: 'Inbound trunk the call arrives on (default: the first that may deliver the number)' },
    fromExtension: { type: 'string', pattern: '^[1-9][0-9]{1,5}$', description: 'Simulate a call placed by this extension instead of one from a carrier' },
    callerRegion: {
      type: 'object', additionalProperties: false,
      properties: { province: { type: 'string', minLength: 1, maxLength: 32 }, city: { type: 'string', minLength: 1, maxLength: 32 } },
      description: 'Caller region (default: looked up from the caller number)',
    },
    seed: { type: 'integer', minimum: 0, maximum: 4294967295, description: 'Seed of the random and weighted strategies (default 0, so repeated runs agree)' },
  },
};

export const API_KEY_BODY: Schema = {
  type: 'object', additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 128 },
    readOnly: { type: 'boolean' },
  },
};
