/**
 * Coded errors of the admin API: one list (DESIGN.md §3, fastify's
 * lib/errors.js), each code with its HTTP status and a default message.
 * Every error body has the same shape:
 *
 *   { "error": { "code": "DP_ADMIN_...", "message": "...", "issues"?: [...] } }
 *
 * `issues` name the field (`path`: JSON Pointer; `in`: body, query, params
 * or document, the latter for a whole-tenant pointer) and the reason.
 * test/unit/admin/errors.test.ts keeps codes, statuses and the README in step.
 */

export const ADMIN_ERROR_CODES = {
  /** The request body, query or path does not match its schema (unknown field, wrong type, bad pattern). */
  DP_ADMIN_VALIDATION: { status: 400, message: 'request does not match its schema' },
  /** The body is not JSON, or has a content type the API does not read. */
  DP_ADMIN_BAD_BODY: { status: 400, message: 'request body cannot be read' },
  /** An uploaded prompt is not a WAV file a call can play (the message says what is wrong with it). */
  DP_ADMIN_BAD_AUDIO: { status: 400, message: 'the audio file is not a usable prompt' },
  /** The key in the URL and the key in the body differ. */
  DP_ADMIN_KEY_MISMATCH: { status: 400, message: 'the object key in the body differs from the one in the URL' },
  /** No credentials, or credentials that are not valid. */
  DP_ADMIN_UNAUTHORIZED: { status: 401, message: 'missing or invalid credentials' },
  /** Valid credentials that may not do this (read-only key writing, tenant key managing tenants). */
  DP_ADMIN_FORBIDDEN: { status: 403, message: 'these credentials may not do this' },
  /** No such tenant or object; also what a key of another tenant sees. */
  DP_ADMIN_NOT_FOUND: { status: 404, message: 'not found' },
  /** The change conflicts with the current state in a way a retry cannot fix (realm change with extensions, deleting a prompt in use). */
  DP_ADMIN_CONFLICT: { status: 409, message: 'the change conflicts with the current configuration' },
  /** If-Match did not match the current version, or If-None-Match: * and the object exists. */
  DP_ADMIN_PRECONDITION: { status: 412, message: 'version precondition failed' },
  /** Body larger than the route accepts. */
  DP_ADMIN_TOO_LARGE: { status: 413, message: 'request body too large' },
  /** Content type other than application/json (audio/wav for a prompt upload). */
  DP_ADMIN_MEDIA_TYPE: { status: 415, message: 'only application/json is accepted' },
  /** The resulting tenant document breaks a reference (a rule ringing a missing extension...). */
  DP_ADMIN_REFERENCE: { status: 422, message: 'the change breaks a reference of the tenant document' },
  /** The tenant cannot be simulated as asked (no inbound trunk, unknown extension as origin...). */
  DP_ADMIN_UNPROCESSABLE: { status: 422, message: 'request cannot be processed for this tenant' },
  /** Too many requests from one credential. */
  DP_ADMIN_RATE_LIMITED: { status: 429, message: 'too many requests' },
  /** Concurrent writers kept winning the compare-and-set; nothing was written. */
  DP_ADMIN_CONTENTION: { status: 503, message: 'too many concurrent changes to this tenant, retry' },
  /** The store cannot be reached. */
  DP_ADMIN_UNAVAILABLE: { status: 503, message: 'configuration store unavailable' },
  /** A bug. Logged with its stack; the body says nothing more. */
  DP_ADMIN_INTERNAL: { status: 500, message: 'internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type AdminErrorCode = keyof typeof ADMIN_ERROR_CODES;

/** One problem of a request or of the document it would produce. */
export interface AdminIssue {
  /** Where the pointer points: the request's body/query/params, or the whole tenant document. */
  in: 'body' | 'query' | 'params' | 'headers' | 'document';
  /** JSON Pointer, `` for the root. */
  path: string;
  message: string;
  /** For document issues: the API path of the object the pointer is in (`routes/hotline`). */
  object?: string;
}

export class AdminError extends Error {
  override name = 'AdminError';
  readonly code: AdminErrorCode;
  readonly status: number;
  readonly issues: readonly AdminIssue[];
  /** Extra fields of the error body (e.g. `currentVersion` on 412). */
  readonly extra: Readonly<Record<string, unknown>>;

  constructor(code: AdminErrorCode, message?: string, options: { issues?: readonly AdminIssue[]; extra?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message ?? ADMIN_ERROR_CODES[code].message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.code = code;
    this.status = ADMIN_ERROR_CODES[code].status;
    this.issues = options.issues ?? [];
    this.extra = options.extra ?? {};
  }

  toBody(): { error: Record<string, unknown> } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.issues.length > 0 ? { issues: this.issues } : {}),
        ...this.extra,
      },
    };
  }
}

/** The 404 of a tenant or an object: the same words whether it does not exist or belongs to someone else. */
export function notFound(what: string): AdminError {
  return new AdminError('DP_ADMIN_NOT_FOUND', `${what} not found`);
}
