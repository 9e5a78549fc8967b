/**
 * Responses in the OpenAPI document (/docs): each route's success body and
 * the errors it can answer, added when the document is generated
 * (@fastify/swagger's `transform`), not to the routes themselves. A
 * response schema on a Fastify route also drives its serializer, which
 * drops every property the schema does not list: documentation must never
 * change what a client receives.
 *
 * Errors all have one shape (errors.ts): `{ error: { code, message,
 * issues?, ... } }`; which statuses a route can answer follows from what it
 * takes (params, query, body) and who may call it (its `access`).
 */
import { COLLECTIONS } from './resources.js';
import { putBody, sharedId } from './schemas.js';

type Schema = Record<string, unknown>;

export const ERROR_SCHEMA_ID = sharedId('error');

/** The error body of every failed request (see AdminError.toBody). */
export const ERROR_SCHEMA: Schema = {
  $id: ERROR_SCHEMA_ID,
  type: 'object', required: ['error'],
  properties: {
    error: {
      type: 'object', required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'Stable machine code, e.g. DP_ADMIN_VALIDATION, DP_ADMIN_PRECONDITION' },
        message: { type: 'string' },
        issues: {
          type: 'array',
          description: 'One entry per problem, each naming its field (JSON Pointer)',
          items: {
            type: 'object', required: ['in', 'path', 'message'],
            properties: {
              in: { type: 'string', enum: ['body', 'query', 'params', 'headers', 'document'] },
              path: { type: 'string', description: 'JSON Pointer of the field in `in`' },
              message: { type: 'string' },
              object: { type: 'string', description: 'API path of the object a document issue lies in (routes/hotline)' },
            },
          },
        },
        currentVersion: { type: 'string', description: '412: the version the object is at' },
      },
      additionalProperties: true,
    },
  },
};

const ERROR_TEXT: Record<number, string> = {
  400: 'The request does not match its schema; `issues` name each field',
  401: 'Missing or invalid credentials',
  403: 'These credentials may not do this (read-only key, operator-only route)',
  404: 'Not found; also what a key of another tenant gets',
  409: 'Conflicts with the current state',
  412: 'If-Match / If-None-Match precondition failed (stale version)',
  413: 'Request body too large',
  415: 'Unsupported content type',
  422: 'The change breaks a reference of the tenant document; `issues` name each one',
  429: 'Rate limit of this key exceeded',
  503: 'Configuration store unavailable',
};

const LIST_PAGE = (item: Schema): Schema => ({
  type: 'object', required: ['items'],
  properties: { items: { type: 'array', items: item }, nextCursor: { type: 'string', description: 'Pass as `cursor` for the next page' } },
});

/** An object as GET shows it: the stored form (passwords never, `hasPassword` for extensions) with its version. */
function shown(def: string): Schema {
  if (def === 'extension') {
    const input = putBody('extensionInput');
    const { password: _write, ...properties } = input.properties as Schema;
    return { ...input, properties: { ...properties, version: { type: 'string' } } };
  }
  const s = putBody(def as Parameters<typeof putBody>[0]);
  return { ...s, properties: { ...(s.properties as Schema), version: { type: 'string', description: 'Content hash; send back as If-Match' } } };
}

/** What each collection route returns, by its URL. */
function collectionSuccess(url: string, method: string): Schema | undefined {
  for (const c of COLLECTIONS) {
    const list = `/v1/tenants/:tenant/${c.path}`;
    const one = `${list}/:${c.param}`;
    if (url === list && method === 'GET') return LIST_PAGE(shown(c.def));
    if (url === one && method !== 'DELETE') return shown(c.def);
  }
  return undefined;
}

interface RouteView {
  method: string | string[];
  url: string;
  config?: unknown;
}

/** Adds `response` to a route schema for the OpenAPI document; a schema that already has one is kept as is. */
export function documentResponses(schema: Schema | undefined, route: RouteView): Schema | undefined {
  if (!schema || schema.hide === true || schema.response !== undefined) return schema;
  const method = (Array.isArray(route.method) ? route.method[0] : route.method) ?? 'GET';
  const url = route.url;
  const access = (route.config as { access?: string } | undefined)?.access ?? 'public';
  const response: Schema = {};

  const success = collectionSuccess(url, method);
  if (method === 'DELETE' && success === undefined && !url.includes('/calls/')) {
    response[204] = { description: 'Removed', type: 'null' };
  } else {
    const created = method === 'PUT' && success !== undefined;
    response[200] = { description: created ? 'Replaced' : 'OK', ...(success ?? { type: 'object', additionalProperties: true }) };
    if (created) response[201] = { description: 'Created', ...success };
  }

  const errors = new Set<number>();
  const hasBody = schema.body !== undefined;
  if (hasBody || schema.querystring !== undefined || schema.params !== undefined) errors.add(400);
  if (access !== 'public') {
    errors.add(401);
    errors.add(429);
    errors.add(503);
  }
  if (access === 'tenant-write' || access === 'operator' || access === 'tenant-read') errors.add(403);
  if (url.includes(':')) errors.add(404);
  if (hasBody) {
    errors.add(413);
    errors.add(415);
  }
  const tenantWrite = url.startsWith('/v1/tenants/:tenant') && (method === 'PUT' || method === 'PATCH' || method === 'DELETE' || method === 'POST');
  if (tenantWrite && method !== 'POST') errors.add(412);
  if (tenantWrite && !url.includes('/api-keys') && !url.includes('/webhooks') && !url.includes('/calls/') && !url.endsWith('/simulate')) errors.add(422);
  if (url.includes('/calls/')) errors.add(409);
  for (const status of [...errors].sort((a, b) => a - b)) response[status] = { description: ERROR_TEXT[status], $ref: `${ERROR_SCHEMA_ID}#` };
  return { ...schema, response };
}
