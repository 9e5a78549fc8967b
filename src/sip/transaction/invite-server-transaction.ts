/**
 * INVITE server transaction: RFC 3261 §17.2.1, Figure 7, with the "Accepted"
 * state of RFC 6026 §7.1 / §8.5-8.7, which a proxy needs: after the first 2xx
 * the transaction stays for 64*T1 (Timer L) to absorb retransmitted INVITEs
 * and to carry further 2xx the TU forwards (retransmissions, other forks).
 *
 *   Proceeding --2xx from TU--> Accepted --Timer L--> Terminated
 *        |                         (INVITE absorbed; 2xx from TU sent; ACK to TU)
 *        +--300-699 from TU--> Completed --ACK--> Confirmed --Timer I--> Terminated
 *                                 | (Timer G resends, INVITE resends)
 *                                 +--Timer H (TU told)--> Terminated
 */
import { SipResponse, type SipRequest } from '../message/message.js';
import { createResponse } from './create-response.js';
import { RESENT_RESPONSE_ROWS, RESENT_RESPONSE_ROWS_2543, RESPONSE_SKELETON, TransactionBase, type TransactionContext } from './transaction-base.js';
import type { InviteServerState, ServerTransaction } from './transaction-user.js';
import type { TransportError } from './types.js';

type State = Exclude<InviteServerState, 'Terminated'>;

export class InviteServerTransaction extends TransactionBase<State> implements ServerTransaction {
  readonly isInvite = true;
  request: SipRequest;
  lastResponse: SipResponse | undefined;
  tuState: unknown = undefined;
  onTerminated?: (tx: ServerTransaction) => void;
  onTransportError?: (tx: ServerTransaction, err: TransportError) => void;
  onTimeout?: (tx: ServerTransaction) => void;
  private lastProvisional: SipResponse | undefined;
  private readonly unreliable: boolean;
  private readonly trying100DelayMs: number;
  private timerGInterval: number;
  /**
   * Created by an RFC 2543 request (no magic cookie in its branch): its ACK
   * is matched by the To tag of the response sent (§17.2.3), so that much of
   * a final response is kept.
   */
  private readonly ackMatchedByTag: boolean;

  constructor(ctx: TransactionContext, id: string, request: SipRequest, trying100DelayMs: number) {
    // "When a server transaction is constructed for a request, it enters the "Proceeding" state."
    super(ctx, id, 'Proceeding', 'ist', request);
    this.request = request;
    this.unreliable = !this.reliable(request.source?.transport ?? 'udp');
    this.trying100DelayMs = trying100DelayMs;
    this.timerGInterval = ctx.timers.t1;
    this.ackMatchedByTag = !request.topVia.isRfc3261Branch;
  }

  protected compactForWait(): void {
    // Only Proceeding re-sends the last provisional.
    this.lastProvisional = undefined;
    this.request = this.release(this.request);
    // "Completed" resends the final response (Timer G, retransmitted
    // INVITEs); "Accepted" (the TU sends 2xx itself) and "Confirmed" resend
    // nothing: the status is all that is read, and the To tag for an RFC
    // 2543 ACK.
    if (this.lastResponse && this.state !== 'Completed') this.lastResponse = this.keptFinal(this.lastResponse);
    else this.lastResponse?.compact();
  }

  /** What "Accepted" and "Confirmed" keep of a final response (see compactForWait()). */
  private keptFinal(res: SipResponse): SipResponse {
    return this.ackMatchedByTag ? res.skeleton(RESPONSE_SKELETON) : SipResponse.released(res.status);
  }

  start(): void {
    // "The server transaction MUST generate a 100 (Trying) response unless it
    // knows that the TU will generate a provisional or final response within
    // 200 ms, in which case it MAY generate a 100 (Trying) response."
    if (this.trying100DelayMs <= 0) this.send100();
    else this.startTimer('100', this.trying100DelayMs, () => this.send100());
  }

  private send100(): void {
    if (this.state !== 'Proceeding' || this.lastResponse) return;
    const trying = createResponse(this.request, 100, 'Trying');
    this.lastProvisional = trying;
    this.lastResponse = trying;
    this.sendResponse(trying);
  }

  /**
   * A request from the network that matched this transaction (§17.2.3): a
   * retransmitted INVITE or an ACK. Returns false for an ACK the state
   * machine does not absorb (RFC 6026 "Accepted": the ACK goes to the TU).
   */
  receiveRequest(req: SipRequest): boolean {
    switch (this.state) {
      case 'Proceeding': return this.proceedingRequest(req);
      case 'Accepted': return this.acceptedRequest(req);
      case 'Completed': return this.completedRequest(req);
      case 'Confirmed': return this.confirmedRequest(req);
      case 'Terminated': return req.method !== 'ACK';
    }
  }

  respond(res: SipResponse): void {
    try {
      if (!Number.isInteger(res.status) || res.status < 100 || res.status > 699) {
        this.log.warn({ status: res.status }, 'response with invalid status discarded');
        return;
      }
      switch (this.state) {
        case 'Proceeding': this.proceedingResponse(res); break;
        case 'Accepted': this.acceptedResponse(res); break;
        case 'Completed':
        case 'Confirmed':
        case 'Terminated': this.lateResponse(res); break;
      }
    } catch (err) {
      this.log.error({ err, status: res.status }, 'respond failed');
    }
  }

  // --- Proceeding ---------------------------------------------------------

  private proceedingRequest(req: SipRequest): boolean {
    if (req.method === 'INVITE') {
      // "If a request retransmission is received while in the "Proceeding"
      // state, the most recent provisional response that was received from
      // the TU MUST be passed to the transport layer for retransmission."
      if (this.lastProvisional) this.sendResponse(this.lastProvisional);
      return true;
    }
    this.log.debug({ method: req.method }, 'request in Proceeding absorbed');
    return true;
  }

  private proceedingResponse(res: SipResponse): void {
    this.stopTimer('100');
    this.lastResponse = res;
    if (res.status < 200) {
      // "The TU passes any number of provisional responses to the server
      // transaction. So long as the server transaction is in the
      // "Proceeding" state, each of these MUST be passed to the transport
      // layer for transmission. They are not sent reliably by the
      // transaction layer (they are not retransmitted by it) and do not cause
      // a change in the state of the server transaction."
      this.lastProvisional = res;
      this.sendResponse(res);
      return;
    }
    const { t1 } = this.ctx.timers;
    if (res.status < 300) {
      // RFC 6026 §8.5: "If, while in the "Proceeding" state, the TU passes a
      // 2xx response to the server transaction, the server transaction MUST
      // pass this response to the transport layer for transmission. It is
      // not retransmitted by the server transaction; retransmissions of 2xx
      // responses are handled by the TU. The server transaction MUST then
      // transition to the "Accepted" state." Timer L = 64*T1 (RFC 6026 §8.7).
      this.transition('Accepted');
      // RFC 6026 §8.7: "If Timer L fires while the INVITE server transaction
      // is in the "Accepted" state, the transaction MUST transition to the
      // "Terminated" state."
      this.waitThenTerminate('L', 64 * t1);
      this.sendResponse(res);
      return;
    }
    // "While in the "Proceeding" state, if the TU passes a response with
    // status code from 300 to 699 to the server transaction, the response
    // MUST be passed to the transport layer for transmission, and the state
    // machine MUST enter the "Completed" state. For unreliable transports,
    // timer G is set to fire in T1 seconds, and is not set to fire for
    // reliable transports."
    this.transition('Completed');
    if (this.unreliable) this.startTimer('G', this.timerGInterval, () => this.timerG());
    // "When the "Completed" state is entered, timer H MUST be set to fire in
    // 64*T1 seconds for all transports."
    this.startTimer('H', 64 * t1, () => this.timerH());
    // Until the ACK, Timer G and retransmitted INVITEs resend the bytes sent now.
    const sent = this.sendResponse(res);
    if (sent !== undefined && this.state === 'Completed') this.lastResponse = res.retransmittable(this.ackMatchedByTag ? RESENT_RESPONSE_ROWS_2543 : RESENT_RESPONSE_ROWS, sent);
  }

  // --- Accepted (RFC 6026) ------------------------------------------------

  private acceptedRequest(req: SipRequest): boolean {
    // RFC 6026 §8.7: "The purpose of the "Accepted" state is to absorb
    // retransmissions of an accepted INVITE request. Any such retransmissions
    // are absorbed entirely within the server transaction. They are not
    // passed up to the TU since any downstream UAS cores that accepted the
    // request have taken responsibility for reliability and will already
    // retransmit their 2xx responses if necessary."
    if (req.method === 'INVITE') return true;
    // An ACK matching in "Accepted" acknowledges a 2xx: RFC 6026's figure
    // passes it to the TU (a proxy forwards it, §16.10).
    return false;
  }

  private acceptedResponse(res: SipResponse): void {
    // RFC 6026 §8.7: "While in the "Accepted" state, if the TU passes a 2xx
    // response, the server transaction MUST pass the response to the
    // transport layer for transmission."
    if (res.status >= 200 && res.status < 300) {
      this.lastResponse = this.keptFinal(res);
      this.sendResponse(res);
      return;
    }
    this.log.debug({ status: res.status }, 'non-2xx response from TU in Accepted discarded');
  }

  // --- Completed / Confirmed ----------------------------------------------

  private completedRequest(req: SipRequest): boolean {
    if (req.method === 'INVITE') {
      // "Furthermore, while in the "Completed" state, if a request
      // retransmission is received, the server SHOULD pass the response to
      // the transport for retransmission."
      if (this.lastResponse) this.sendResponse(this.lastResponse);
      return true;
    }
    if (req.method === 'ACK') {
      // "If an ACK is received while the server transaction is in the
      // "Completed" state, the server transaction MUST transition to the
      // "Confirmed" state. As Timer G is ignored in this state, any
      // retransmissions of the response will cease."
      this.stopTimer('G');
      this.stopTimer('H');
      this.transition('Confirmed');
      // "When this state is entered, timer I is set to fire in T4 seconds for
      // unreliable transports, and zero seconds for reliable transports."
      // "Once timer I fires, the server MUST transition to the "Terminated" state."
      if (this.unreliable) this.waitThenTerminate('I', this.ctx.timers.t4);
      else this.terminate('Timer I (0 s, reliable transport)');
      return true;
    }
    return true;
  }

  private confirmedRequest(_req: SipRequest): boolean {
    // "The purpose of the "Confirmed" state is to absorb any additional ACK
    // messages that arrive, triggered from retransmissions of the final response."
    return true;
  }

  private timerG(): void {
    if (this.state !== 'Completed' || !this.lastResponse) return;
    // "If timer G fires, the response is passed to the transport layer once
    // more for retransmission, and timer G is set to fire in MIN(2*T1, T2)
    // seconds. From then on, when timer G fires, the response is passed to
    // the transport again for transmission, and timer G is reset with a
    // value that doubles, unless that value exceeds T2, in which case it is
    // reset with the value of T2."
    this.sendResponse(this.lastResponse);
    this.timerGInterval = Math.min(2 * this.timerGInterval, this.ctx.timers.t2);
    this.startTimer('G', this.timerGInterval, () => this.timerG());
  }

  private timerH(): void {
    // "If timer H fires while in the "Completed" state, it implies that the
    // ACK was never received. In this case, the server transaction MUST
    // transition to the "Terminated" state, and MUST indicate to the TU that
    // a transaction failure has occurred."
    this.tellTu('onTimeout', () => this.onTimeout?.(this));
    this.terminate('Timer H');
  }

  /**
   * A response from the TU after a non-2xx final. Only a 2xx may still need
   * to go out: §16.7 step 5 "After a final response has been sent on the
   * server transaction, the following responses MUST be forwarded
   * immediately: - Any 2xx response to an INVITE request", and "If the
   * server transaction is no longer available to handle the transmission,
   * the element MUST forward the response statelessly by sending it to the
   * server transport." Figure 7 has no such transition, so it is sent
   * without a state change.
   */
  private lateResponse(res: SipResponse): void {
    if (res.status >= 200 && res.status < 300) {
      this.log.debug({ status: res.status, state: this.state }, '2xx after final response sent statelessly');
      // Same connection as the INVITE (§18.2.2), as in sendResponse().
      if (this.requestSource?.connectionId !== undefined) res.source = this.requestSource;
      this.ctx.transport.sendResponse(res, (err) => this.log.info({ code: err.code }, 'stateless 2xx send failed'));
      return;
    }
    this.log.debug({ status: res.status, state: this.state }, 'response after final response discarded');
  }

  protected handleTransportError(err: TransportError): void {
    // §17.2.4 as updated by RFC 6026 §8.8: "the server transaction SHOULD
    // inform the TU that a failure has occurred, and MUST remain in the
    // current state." Timers H and L still bound its life.
    this.tellTu('onTransportError', () => this.onTransportError?.(this, err));
  }

  protected notifyTerminated(): void {
    this.onTerminated?.(this);
  }
}
