/**
 * Request validation of a proxy, RFC 3261 §16.3 steps 1–3 and 5 (loop
 * detection, step 4, needs the proxy's own Via and lives in the core;
 * step 6, Proxy-Authorization, is the authenticator's).
 */
import type { SipRequest } from '../message/message.js';

export interface Rejection {
  status: number;
  reason: string;
  /** Extra headers for the error response (e.g. Unsupported for 420). */
  headers?: Array<[string, string]>;
}

export interface ValidationOptions {
  /** URI schemes this proxy can route (lower-case). */
  schemes: ReadonlySet<string>;
  /** Option tags this proxy supports in Proxy-Require (lower-case). */
  proxyRequire: ReadonlySet<string>;
}

export const DEFAULT_VALIDATION: ValidationOptions = {
  schemes: new Set(['sip', 'sips', 'tel']),
  proxyRequire: new Set(),
};

export function validateProxyRequest(req: SipRequest, opts: ValidationOptions = DEFAULT_VALIDATION): Rejection | undefined {
  // Step 2: "If the Request-URI has a URI whose scheme is not understood by
  // the proxy, the proxy SHOULD reject the request with a 416 (Unsupported
  // URI Scheme) response."
  if (!opts.schemes.has(req.uri.scheme)) return { status: 416, reason: 'Unsupported URI Scheme' };
  // §19.1.1 Table 1: the headers component is not allowed in a Request-URI
  // (RFC 4475 §3.1.2.11 "escruri": reject with 400, never turn them into headers).
  if (req.uri.headers !== undefined) return { status: 400, reason: 'Request-URI must not contain headers' };
  // Step 3: "If the request contains a Max-Forwards header field with a field
  // value of zero (0), the element MUST NOT forward the request. ... the
  // element MUST return a 483 (Too many hops) response."
  if (req.maxForwards === 0) return { status: 483, reason: 'Too Many Hops' };
  // Step 5: "If the request contains a Proxy-Require header field with one or
  // more option-tags this element does not understand, the element MUST
  // return a 420 (Bad Extension) response. The response MUST include an
  // Unsupported header field listing those option-tags".
  const unsupported = req.getList('proxy-require').filter((t) => !opts.proxyRequire.has(t.toLowerCase()));
  if (unsupported.length > 0) return { status: 420, reason: 'Bad Extension', headers: [['Unsupported', unsupported.join(', ')]] };
  return undefined;
}
