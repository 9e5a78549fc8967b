/**
 * Non-INVITE server transaction: RFC 3261 §17.2.2, Figure 8. A received
 * CANCEL is one of these too (§9.2).
 *
 *   Trying --1xx from TU--> Proceeding
 *     |                        |
 *     +--200-699 from TU-------+--> Completed --Timer J--> Terminated
 */
import type { SipRequest, SipResponse } from '../message/message.js';
import { RESENT_RESPONSE_ROWS, TransactionBase, type TransactionContext } from './transaction-base.js';
import type { NonInviteServerState, ServerTransaction } from './transaction-user.js';
import type { TransportError } from './types.js';

type State = Exclude<NonInviteServerState, 'Terminated'>;

export class NonInviteServerTransaction extends TransactionBase<State> implements ServerTransaction {
  readonly isInvite = false;
  request: SipRequest;
  lastResponse: SipResponse | undefined;
  tuState: unknown = undefined;
  onTerminated?: (tx: ServerTransaction) => void;
  onTransportError?: (tx: ServerTransaction, err: TransportError) => void;
  onTimeout?: (tx: ServerTransaction) => void;
  private readonly unreliable: boolean;

  constructor(ctx: TransactionContext, id: string, request: SipRequest) {
    // "The state machine is initialized in the "Trying" state and is passed a
    // request other than INVITE or ACK when initialized. This request is
    // passed up to the TU."
    super(ctx, id, 'Trying', 'nist', request);
    this.request = request;
    this.unreliable = !this.reliable(request.source?.transport ?? 'udp');
  }

  /** "Completed" resends the final response (its bytes, kept in respond()); it keeps no request of its own. */
  protected compactForWait(): void {
    this.request = this.release(this.request);
  }

  /** A retransmission of the request (§17.2.3). Always absorbed. */
  receiveRequest(_req: SipRequest): boolean {
    switch (this.state) {
      case 'Trying':
        // "Once in the "Trying" state, any further request retransmissions are discarded."
        break;
      case 'Proceeding':
      case 'Completed':
        // "If a retransmission of the request is received while in the
        // "Proceeding" state, the most recently sent provisional response
        // MUST be passed to the transport layer for retransmission." ...
        // "While in the "Completed" state, the server transaction MUST pass
        // the final response to the transport layer for retransmission
        // whenever a retransmission of the request is received."
        if (this.lastResponse) this.sendResponse(this.lastResponse);
        break;
      case 'Terminated':
        break;
    }
    return true;
  }

  respond(res: SipResponse): void {
    try {
      if (!Number.isInteger(res.status) || res.status < 100 || res.status > 699) {
        this.log.warn({ status: res.status }, 'response with invalid status discarded');
        return;
      }
      if (this.state === 'Completed' || this.state === 'Terminated') {
        // "Any other final responses passed by the TU to the server
        // transaction MUST be discarded while in the "Completed" state."
        this.log.debug({ status: res.status, state: this.state }, 'response after final response discarded');
        return;
      }
      this.lastResponse = res;
      if (res.status < 200) {
        // "While in the "Trying" state, if the TU passes a provisional
        // response to the server transaction, the server transaction MUST
        // enter the "Proceeding" state. The response MUST be passed to the
        // transport layer for transmission. Any further provisional responses
        // that are received from the TU while in the "Proceeding" state MUST
        // be passed to the transport layer for transmission."
        this.transition('Proceeding');
        this.sendResponse(res);
        return;
      }
      // "If the TU passes a final response (status codes 200-699) to the
      // server while in the "Proceeding" state, the transaction MUST enter
      // the "Completed" state, and the response MUST be passed to the
      // transport layer for transmission." (Likewise from "Trying".)
      this.transition('Completed');
      const sent = this.sendResponse(res);
      // The 64*T1 wait keeps what a retransmission needs: the bytes sent and the top Via.
      if (sent !== undefined) this.lastResponse = res.retransmittable(RESENT_RESPONSE_ROWS, sent);
      else res.compact();
      if (this.isTerminated) return;
      // "When the server transaction enters the "Completed" state, it MUST
      // set Timer J to fire in 64*T1 seconds for unreliable transports, and
      // zero seconds for reliable transports."
      // "The server transaction remains in this state until Timer J fires, at
      // which point it MUST transition to the "Terminated" state."
      if (this.unreliable) this.waitThenTerminate('J', 64 * this.ctx.timers.t1);
      else this.terminate('Timer J (0 s, reliable transport)');
    } catch (err) {
      this.log.error({ err, status: res.status }, 'respond failed');
    }
  }

  protected handleTransportError(err: TransportError): void {
    // §17.2.4 as updated by RFC 6026 §8.8: inform the TU and "MUST remain in
    // the current state"; the TU's final response and Timer J end it.
    this.tellTu('onTransportError', () => this.onTransportError?.(this, err));
  }

  protected notifyTerminated(): void {
    this.onTerminated?.(this);
  }
}
