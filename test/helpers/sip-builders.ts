/** Builds SIP messages from text through the real parser, as the transport would deliver them. */
import { parseMessage } from '../../src/sip/message/parser.js';
import type { MessageSource, SipRequest, SipResponse, TransportName } from '../../src/sip/message/message.js';
import { createResponse } from '../../src/sip/transaction/create-response.js';

export interface RequestOptions {
  /** Top Via branch; null for none (RFC 2543). Default z9hG4bK-test-1. */
  branch?: string | null;
  sentBy?: string;
  viaTransport?: string;
  /** Further Via rows below the top one. */
  lowerVias?: string[];
  uri?: string;
  callId?: string;
  cseq?: number;
  /** CSeq method when it should differ from the request method. */
  cseqMethod?: string;
  fromTag?: string;
  toTag?: string;
  routes?: string[];
  maxForwards?: number;
  headers?: string[];
  body?: string;
  /** Transport the request arrived on (sets `source`); null leaves `source` unset. */
  transport?: TransportName | null;
}

export function parseRequest(text: string): SipRequest {
  const out = parseMessage(Buffer.from(text), { stream: false });
  if (out.kind !== 'request') throw new Error(`not a request: ${out.kind === 'error' ? out.error.message : out.kind}`);
  return out.message;
}

export function parseResponse(text: string | Buffer): SipResponse {
  const out = parseMessage(Buffer.isBuffer(text) ? text : Buffer.from(text), { stream: false });
  if (out.kind !== 'response') throw new Error(`not a response: ${out.kind === 'error' ? out.error.message : out.kind}`);
  return out.message;
}

export function sourceFor(transport: TransportName): MessageSource {
  return { transport, address: '192.0.2.10', port: 5060, localAddress: '192.0.2.1', localPort: 5060 };
}

export function makeRequest(method: string, o: RequestOptions = {}): SipRequest {
  const branch = o.branch === undefined ? 'z9hG4bK-test-1' : o.branch;
  const lines = [
    `${method} ${o.uri ?? 'sip:bob@example.com'} SIP/2.0`,
    `Via: SIP/2.0/${o.viaTransport ?? 'UDP'} ${o.sentBy ?? '192.0.2.10:5060'}${branch === null ? '' : `;branch=${branch}`}`,
    ...(o.lowerVias ?? []).map((v) => `Via: ${v}`),
    ...(o.routes ?? []).map((r) => `Route: ${r}`),
    `Max-Forwards: ${o.maxForwards ?? 70}`,
    `From: "Alice" <sip:alice@example.com>;tag=${o.fromTag ?? 'from-tag-1'}`,
    `To: <sip:bob@example.com>${o.toTag ? `;tag=${o.toTag}` : ''}`,
    `Call-ID: ${o.callId ?? 'call-1@example.com'}`,
    `CSeq: ${o.cseq ?? 1} ${o.cseqMethod ?? method}`,
    ...(o.headers ?? []),
    `Content-Length: ${Buffer.byteLength(o.body ?? '')}`,
    '',
    o.body ?? '',
  ];
  const req = parseRequest(lines.join('\r\n'));
  const transport = o.transport === undefined ? 'udp' : o.transport;
  if (transport !== null) req.source = sourceFor(transport);
  return req;
}

/** A response to `req` as it would come back over the network (serialised and re-parsed); toTag null adds none to a 100. */
export function makeResponse(req: SipRequest, status: number, reason: string, toTag: string | null = 'to-tag-1'): SipResponse {
  const res = parseResponse(createResponse(req, status, reason, toTag === null ? {} : { toTag }).toBuffer());
  res.source = req.source ?? sourceFor('udp');
  return res;
}

/** Re-parses a message (a retransmission is a new object with the same bytes). */
export function again<T extends SipRequest | SipResponse>(msg: T): T {
  const out = parseMessage(msg.toBuffer(), { stream: false });
  if (out.kind === 'error') throw out.error;
  const copy = out.message as T;
  copy.source = msg.source;
  return copy;
}
