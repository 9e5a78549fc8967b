/**
 * Coded errors of the routing layer. One list, so the admin API, logs and
 * tests speak the same codes (DESIGN.md §3: fastify's lib/errors.js).
 *
 * Two families:
 * - thrown errors: configuration that cannot be compiled, numbers that cannot
 *   be normalised where the caller asked for a throw, facts that break the
 *   engine's contract (a programming error in the executor);
 * - issue codes carried by `ValidationIssue`s and by explanations, which are
 *   data, not exceptions.
 */

export const ROUTING_ERROR_CODES = {
  /** A phone number or prefix that the numbering plan cannot read. */
  DP_ROUTE_BAD_NUMBER: 'not a valid phone number',
  /** A tenant document that fails its JSON Schema. */
  DP_ROUTE_SCHEMA: 'tenant document does not match its schema',
  /** A tenant document that references something it does not define, or defines it twice. */
  DP_ROUTE_REFERENCE: 'tenant document has a broken or duplicate reference',
  /** compileTenant() was given a document with schema or reference issues. */
  DP_ROUTE_INVALID_TENANT: 'tenant document is invalid',
  /** compileGlobal() was given an invalid global document. */
  DP_ROUTE_INVALID_GLOBAL: 'global routing document is invalid',
  /** evaluate() got facts that break its contract (wrong tenant, time not a number...). */
  DP_ROUTE_BAD_FACTS: 'routing facts are invalid',
  // Outcomes of an evaluation that did not reach the tenant's rules (Explanation.code):
  /** The called number is not one of the tenant's, or a short code dialled from outside. */
  DP_ROUTE_NOT_FOUND: 'called number not found',
  /** The called number cannot be read. */
  DP_ROUTE_BAD_CALLED: 'called number unreadable',
  /** Refused by policy: unknown trunk or extension, number not on the trunk, not a member of the short-number plan, no outbound caller ID or gateway. */
  DP_ROUTE_REFUSED: 'call refused by policy',
  /** The caller is blacklisted and no rule handles blacklisted callers. */
  DP_ROUTE_BLACKLISTED: 'caller blacklisted',
  /** No rule of the route matched. */
  DP_ROUTE_NO_MATCH: 'no rule matched',
  /** The configuration changed under a running call (IVR menu gone) or forwarding nested too deep. */
  DP_ROUTE_STALE: 'configuration does not fit the call any more',
} as const;

export type RoutingErrorCode = keyof typeof ROUTING_ERROR_CODES;

/** Where a problem is in a document (JSON Pointer) and what it is. */
export interface ValidationIssue {
  /** JSON Pointer into the document, e.g. `/routes/0/rules/2/actions/0/targets/1/extension`; `` for the root. */
  path: string;
  message: string;
  code: 'DP_ROUTE_SCHEMA' | 'DP_ROUTE_REFERENCE';
}

export class RoutingError extends Error {
  override name = 'RoutingError';
  readonly code: RoutingErrorCode;
  /** Every problem found, for configuration errors (validation reports all of them, not the first). */
  readonly issues: readonly ValidationIssue[];

  constructor(code: RoutingErrorCode, message: string, issues: readonly ValidationIssue[] = []) {
    super(`${code}: ${message}`);
    this.code = code;
    this.issues = issues;
  }
}

/** One line per issue, `path: message`, for logs and CLI output. */
export function formatIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((i) => `${i.path === '' ? '/' : i.path}: ${i.message}`).join('\n');
}
