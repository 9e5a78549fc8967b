/**
 * A TransactionTransport that records what the transaction layer sends, for
 * transport-free transaction tests (sipgo style). It can pretend a transport
 * is reliable and report transport errors, now or later.
 */
import type { Clock } from '../../src/sip/clock.js';
import type { SipRequest, SipResponse, TransportName } from '../../src/sip/message/message.js';
import { parseMessage } from '../../src/sip/message/parser.js';
import type { Destination, TransactionTransport, TransportError } from '../../src/sip/transaction/types.js';

export type Sent =
  | { kind: 'request'; message: SipRequest; dest: Destination; at: number; fail: (err?: TransportError) => void }
  | { kind: 'response'; message: SipResponse; at: number; fail: (err?: TransportError) => void };

export const CONNECTION_REFUSED: TransportError = { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' };

export class FakeTransactionTransport implements TransactionTransport {
  readonly sent: Sent[] = [];
  readonly reliable = new Set<TransportName>(['tcp', 'tls', 'ws', 'wss']);
  /** When set, every send reports this error synchronously. */
  failWith: TransportError | undefined;

  constructor(private readonly clock: Clock) {}

  sendRequest(req: SipRequest, dest: Destination, onError: (err: TransportError) => void): void {
    this.sent.push({ kind: 'request', message: req, dest, at: this.clock.now(), fail: (err = CONNECTION_REFUSED) => onError(err) });
    if (this.failWith) onError(this.failWith);
  }

  sendResponse(res: SipResponse, onError: (err: TransportError) => void): Buffer | undefined {
    const bytes = res.toBuffer();
    // A server transaction resends what it kept: the bytes and the Via row
    // alone. What went on the wire is those bytes, so they are recorded
    // parsed, as the peer would read them.
    const message = res.get('cseq') === undefined ? wireResponse(bytes) : res;
    this.sent.push({ kind: 'response', message, at: this.clock.now(), fail: (err = CONNECTION_REFUSED) => onError(err) });
    if (this.failWith) onError(this.failWith);
    return bytes;
  }

  isReliable(transport: TransportName): boolean {
    return this.reliable.has(transport);
  }

  /** Requests sent, optionally only one method. */
  requests(method?: string): Array<{ message: SipRequest; dest: Destination; at: number }> {
    const out: Array<{ message: SipRequest; dest: Destination; at: number }> = [];
    for (const s of this.sent) if (s.kind === 'request' && (method === undefined || s.message.method === method)) out.push(s);
    return out;
  }

  /** Responses sent, optionally only one status. */
  responses(status?: number): Array<{ message: SipResponse; at: number }> {
    const out: Array<{ message: SipResponse; at: number }> = [];
    for (const s of this.sent) if (s.kind === 'response' && (status === undefined || s.message.status === status)) out.push(s);
    return out;
  }

  last(): Sent | undefined {
    return this.sent[this.sent.length - 1];
  }
}

/** `bytes` parsed as the response they hold (the fake's own sends are always well formed). */
function wireResponse(bytes: Buffer): SipResponse {
  const r = parseMessage(bytes, { stream: false });
  if (r.kind !== 'response') throw new Error(`not a response on the wire: ${r.kind === 'error' ? r.error.message : r.kind}`);
  return r.message;
}
