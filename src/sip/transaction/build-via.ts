/**
 * Builds the Via a client transaction's request carries on top (RFC 3261
 * §8.1.1.7, §18.1.1): the TU adds it once it knows the transport, and the
 * transaction layer finds its transaction by the branch in it.
 */
import type { TransportName } from '../message/message.js';
import { generateBranch } from './branch.js';

export interface ViaOptions {
  transport: TransportName;
  /** sent-by host: where responses should come back (an IPv6 address may be given without brackets). */
  host: string;
  port?: number;
  /** Defaults to a fresh `generateBranch()`. */
  branch?: string;
  /** Add an empty rport parameter (RFC 3581 §3). */
  rport?: boolean;
}

/** Returns the Via header value, e.g. `SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK...;rport`. */
export function buildVia(opts: ViaOptions): string {
  const host = opts.host.includes(':') && !opts.host.startsWith('[') ? `[${opts.host}]` : opts.host;
  let s = `SIP/2.0/${opts.transport.toUpperCase()} ${host}`;
  if (opts.port !== undefined) s += `:${opts.port}`;
  s += `;branch=${opts.branch ?? generateBranch()}`;
  if (opts.rport) s += ';rport';
  return s;
}
