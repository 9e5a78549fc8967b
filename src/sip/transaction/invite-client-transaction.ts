/**
 * INVITE client transaction: RFC 3261 §17.1.1, Figure 5, with the "Accepted"
 * state of RFC 6026 §7.2 / §8.4, which a proxy needs: every 2xx (the first,
 * its retransmissions, and 2xx from other downstream forks) is passed to the
 * TU for 64*T1 (Timer M) instead of arriving as a stray response.
 *
 *                      Calling --1xx--> Proceeding
 *                        |  \              |    \
 *                    2xx |   300-699   2xx |    300-699 (ACK sent)
 *                        v       \         v       \
 *                     Accepted    +----> Completed <+
 *                        | Timer M          | Timer D
 *                        +--> Terminated <--+          (also Timer B in Calling, transport error)
 */
import { SipRequest, SipResponse, type HeaderField } from '../message/message.js';
import { TIMER_D_UNRELIABLE_MS, branchOfKey, TransactionBase, type TransactionContext } from './transaction-base.js';
import type { ClientTransaction, ClientTransactionHandler, InviteClientState } from './transaction-user.js';
import type { Destination, TransportError } from './types.js';

type State = Exclude<InviteClientState, 'Terminated'>;

export class InviteClientTransaction extends TransactionBase<State> implements ClientTransaction {
  readonly isInvite = true;
  /** The branch of the request's top Via, read back from the key. */
  get branch(): string {
    return branchOfKey(this.id) ?? '';
  }
  request: SipRequest;
  readonly destination: Destination;
  lastResponse: SipResponse | undefined;
  private handler: ClientTransactionHandler;
  private readonly unreliable: boolean;
  private timerAInterval: number;
  /** The ACK for the non-2xx final response, re-sent for each retransmission of it. */
  private ack: SipRequest | undefined;

  constructor(ctx: TransactionContext, id: string, request: SipRequest, destination: Destination, handler: ClientTransactionHandler) {
    super(ctx, id, 'Calling', 'ict', request);
    this.request = request;
    this.destination = destination;
    this.handler = handler;
    this.unreliable = !this.reliable(destination.transport);
    this.timerAInterval = ctx.timers.t1;
  }

  /** Enters "Calling": "The initial state, "calling", MUST be entered when the TU initiates a new client transaction with an INVITE request." */
  start(): void {
    const { t1 } = this.ctx.timers;
    // "For any transport, the client transaction MUST start timer B with a
    // value of 64*T1 seconds (Timer B controls transaction timeouts)."
    this.startTimer('B', 64 * t1, () => this.timerB());
    // "If an unreliable transport is being used, the client transaction MUST
    // start timer A with a value of T1. If a reliable transport is being used,
    // the client transaction SHOULD NOT start timer A"
    if (this.unreliable) this.startTimer('A', this.timerAInterval, () => this.timerA());
    // "The client transaction MUST pass the request to the transport layer for transmission"
    this.sendRequest(this.request, this.destination);
  }

  override terminate(): void {
    super.terminate('terminated by TU');
  }

  setHandler(handler: ClientTransactionHandler): void {
    this.handler = handler;
  }

  /**
   * A response that matched this transaction (§17.1.3). Returns false when the
   * state machine does not take it (e.g. a 2xx after a non-2xx final), so the
   * layer can treat it as stray rather than lose a 2xx.
   */
  receiveResponse(res: SipResponse): boolean {
    switch (this.state) {
      case 'Calling': return this.calling(res);
      case 'Proceeding': return this.proceeding(res);
      case 'Accepted': return this.accepted(res);
      case 'Completed': return this.completed(res);
      case 'Terminated': return false;
    }
  }

  private calling(res: SipResponse): boolean {
    if (res.status < 200) {
      // "If the client transaction receives a provisional response while in
      // the "Calling" state, it transitions to the "Proceeding" state. In the
      // "Proceeding" state, the client transaction SHOULD NOT retransmit the
      // request any longer. Furthermore, the provisional response MUST be
      // passed to the TU."
      this.stopTimer('A');
      // Timer B guards "Calling" only (Figure 5): in "Proceeding" the TU's
      // Timer C (§16.6 step 11) bounds the wait.
      this.stopTimer('B');
      this.transition('Proceeding');
      this.passUp(res);
      return true;
    }
    return this.finalResponse(res);
  }

  private proceeding(res: SipResponse): boolean {
    if (res.status < 200) {
      // "Any further provisional responses MUST be passed up to the TU while in the "Proceeding" state."
      this.passUp(res);
      return true;
    }
    return this.finalResponse(res);
  }

  /** A final response in "Calling" or "Proceeding". */
  private finalResponse(res: SipResponse): boolean {
    this.stopTimer('A');
    this.stopTimer('B');
    const { t1 } = this.ctx.timers;
    if (res.status < 300) {
      // RFC 6026 §8.4: "When a 2xx response is received while in either the
      // "Calling" or "Proceeding" states, the client transaction MUST
      // transition to the "Accepted" state, and Timer M MUST be started with
      // a value of 64*T1. The 2xx response MUST be passed up to the TU. The
      // client transaction MUST NOT generate an ACK to the 2xx response --
      // its handling is delegated to the TU."
      this.transition('Accepted');
      // "If timer M fires while the client transaction is in the "Accepted"
      // state, the client transaction MUST move to the "Terminated" state."
      this.waitThenTerminate('M', 64 * t1);
      this.passUp(res);
      return true;
    }
    // "When in either the "Calling" or "Proceeding" states, reception of a
    // response with status code from 300-699 MUST cause the client
    // transaction to transition to "Completed". The client transaction MUST
    // pass the received response up to the TU, and the client transaction
    // MUST generate an ACK request, even if the transport is reliable ...
    // and then pass the ACK to the transport layer for transmission. The ACK
    // MUST be sent to the same address, port, and transport to which the
    // original request was sent."
    // The ACK is built first: entering "Completed" keeps only a skeleton of the INVITE.
    this.ack = createNon2xxAck(this.request, res);
    this.transition('Completed');
    this.sendRequest(this.ack, this.destination);
    this.passUp(res);
    if (this.isTerminated) return true;
    // "The client transaction SHOULD start timer D when it enters the
    // "Completed" state, with a value of at least 32 seconds for unreliable
    // transports, and a value of zero seconds for reliable transports."
    // "If timer D fires while the client transaction is in the "Completed"
    // state, the client transaction MUST move to the terminated state."
    if (this.unreliable) this.waitThenTerminate('D', TIMER_D_UNRELIABLE_MS);
    else super.terminate('Timer D (0 s, reliable transport)');
    return true;
  }

  private accepted(res: SipResponse): boolean {
    // RFC 6026 §8.4: "Any 2xx responses that match this client transaction
    // and that are received while in the "Accepted" state MUST be passed up
    // to the TU. The client transaction MUST NOT generate an ACK to the 2xx
    // response. The client transaction takes no further action."
    if (res.status >= 200 && res.status < 300) {
      this.passUp(res);
      return true;
    }
    this.log.debug({ status: res.status }, 'non-2xx response in Accepted discarded');
    return true;
  }

  private completed(res: SipResponse): boolean {
    // "Any retransmissions of the final response that are received while in
    // the "Completed" state MUST cause the ACK to be re-passed to the
    // transport layer for retransmission, but the newly received response
    // MUST NOT be passed up to the TU."
    if (res.status >= 300) {
      if (this.ack) this.sendRequest(this.ack, this.destination);
      return true;
    }
    if (res.status >= 200) {
      // Not in Figure 5 nor RFC 6026; a 2xx must never be lost by a proxy
      // (§16.7 step 5), so the layer hands it to the TU as a stray response.
      return false;
    }
    return true;
  }

  private timerA(): void {
    if (this.state !== 'Calling') return;
    // "When timer A fires, the client transaction MUST retransmit the request
    // by passing it to the transport layer, and MUST reset the timer with a
    // value of 2*T1. ... This process MUST continue so that the request is
    // retransmitted with intervals that double after each transmission."
    this.sendRequest(this.request, this.destination);
    this.timerAInterval *= 2;
    this.startTimer('A', this.timerAInterval, () => this.timerA());
  }

  private timerB(): void {
    if (this.state !== 'Calling') return;
    // "If the client transaction is still in the "Calling" state when timer B
    // fires, the client transaction SHOULD inform the TU that a timeout has
    // occurred. The client transaction MUST NOT generate an ACK."
    this.log.debug({}, 'Timer B fired');
    this.tellTu('onTimeout', () => this.handler.onTimeout(this));
    super.terminate('Timer B');
  }

  protected handleTransportError(err: TransportError): void {
    // RFC 6026 gives "Accepted" no transport error transition: this
    // transaction sends nothing in it (the TU sends the ACK for the 2xx).
    if (this.state === 'Accepted') return;
    // §17.1.4: "the client transaction SHOULD inform the TU that a transport
    // failure has occurred, and the client transaction SHOULD transition
    // directly to the "Terminated" state."
    this.tellTu('onTransportError', () => this.handler.onTransportError(this, err));
    super.terminate('transport error');
  }

  protected notifyTerminated(): void {
    this.handler.onTerminated?.(this);
  }

  /** "Accepted" and "Completed" keep no request of their own (the ACK of a non-2xx is built by then). */
  protected compactForWait(): void {
    this.request = this.release(this.request);
    // The final response that caused the transition is passed up (and released) next.
    this.lastResponse = undefined;
  }

  private passUp(res: SipResponse): void {
    // Of a final response only the status is read once it is passed up.
    this.lastResponse = res.status >= 200 ? SipResponse.released(res.status) : res;
    this.tellTu('onResponse', () => this.handler.onResponse(res, this));
  }
}

/**
 * The ACK a client transaction generates for a 300-699 response (§17.1.1.3).
 * "The ACK request constructed by the client transaction MUST contain values
 * for the Call-ID, From, and Request-URI that are equal to the values of those
 * header fields in the request passed to the transport by the client
 * transaction (call this the "original request"). The To header field in the
 * ACK MUST equal the To header field in the response being acknowledged ...
 * The ACK MUST contain a single Via header field, and this MUST be equal to
 * the top Via header field of the original request. The CSeq header field in
 * the ACK MUST contain the same value for the sequence number as was present
 * in the original request, but the method parameter MUST be equal to "ACK"."
 * "If the INVITE request whose response is being acknowledged had Route
 * header fields, those header fields MUST appear in the ACK."
 */
export function createNon2xxAck(invite: SipRequest, res: SipResponse): SipRequest {
  const headers: HeaderField[] = [];
  const via = invite.getAll('via')[0];
  if (via !== undefined) headers.push({ name: 'via', value: via });
  for (const h of invite.headers) if (h.name === 'route') headers.push({ name: 'route', value: h.value });
  headers.push({ name: 'max-forwards', value: String(invite.maxForwards ?? 70) });
  const from = invite.get('from');
  if (from !== undefined) headers.push({ name: 'from', value: from });
  const to = res.get('to') ?? invite.get('to');
  if (to !== undefined) headers.push({ name: 'to', value: to });
  headers.push({ name: 'call-id', value: invite.callId });
  headers.push({ name: 'cseq', value: `${invite.cseq.seq} ACK` });
  return new SipRequest('ACK', invite.uri, headers);
}
