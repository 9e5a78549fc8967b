/**
 * Non-INVITE client transaction: RFC 3261 §17.1.2, Figure 6. Also carries
 * CANCEL (§9.1), which shares its INVITE's branch but is its own transaction.
 *
 *        Trying --1xx--> Proceeding
 *          |                 |
 *          +---200-699-------+--> Completed --Timer K--> Terminated
 *          (Timer F or transport error from Trying/Proceeding --> Terminated)
 */
import { SipResponse, type SipRequest } from '../message/message.js';
import { branchOfKey, TransactionBase, type TransactionContext } from './transaction-base.js';
import type { ClientTransaction, ClientTransactionHandler, NonInviteClientState } from './transaction-user.js';
import type { Destination, TransportError } from './types.js';

type State = Exclude<NonInviteClientState, 'Terminated'>;

export class NonInviteClientTransaction extends TransactionBase<State> implements ClientTransaction {
  readonly isInvite = false;
  /** The branch of the request's top Via, read back from the key. */
  get branch(): string {
    return branchOfKey(this.id) ?? '';
  }
  request: SipRequest;
  readonly destination: Destination;
  lastResponse: SipResponse | undefined;
  private handler: ClientTransactionHandler;
  private readonly unreliable: boolean;
  private timerEInterval: number;

  constructor(ctx: TransactionContext, id: string, request: SipRequest, destination: Destination, handler: ClientTransactionHandler) {
    super(ctx, id, 'Trying', 'nict', request);
    this.request = request;
    this.destination = destination;
    this.handler = handler;
    this.unreliable = !this.reliable(destination.transport);
    this.timerEInterval = ctx.timers.t1;
  }

  start(): void {
    const { t1 } = this.ctx.timers;
    // "The "Trying" state is entered when the TU initiates a new client
    // transaction with a request. When entering this state, the client
    // transaction SHOULD set timer F to fire in 64*T1 seconds. The request
    // MUST be passed to the transport layer for transmission. If an
    // unreliable transport is in use, the client transaction MUST set timer
    // E to fire in T1 seconds."
    this.startTimer('F', 64 * t1, () => this.timerF());
    if (this.unreliable) this.startTimer('E', this.timerEInterval, () => this.timerE());
    this.sendRequest(this.request, this.destination);
  }

  override terminate(): void {
    super.terminate('terminated by TU');
  }

  setHandler(handler: ClientTransactionHandler): void {
    this.handler = handler;
  }

  /** A response that matched this transaction (§17.1.3); always taken. */
  receiveResponse(res: SipResponse): boolean {
    switch (this.state) {
      case 'Trying': this.trying(res); break;
      case 'Proceeding': this.proceeding(res); break;
      case 'Completed': this.completed(res); break;
      case 'Terminated': return false;
    }
    return true;
  }

  private trying(res: SipResponse): void {
    if (res.status < 200) {
      // "If a provisional response is received while in the "Trying" state,
      // the response MUST be passed to the TU, and then the client
      // transaction SHOULD move to the "Proceeding" state."
      this.passUp(res);
      if (!this.isTerminated) this.transition('Proceeding');
      return;
    }
    this.finalResponse(res);
  }

  private proceeding(res: SipResponse): void {
    if (res.status < 200) {
      this.passUp(res);
      return;
    }
    this.finalResponse(res);
  }

  private finalResponse(res: SipResponse): void {
    // "If a final response (status codes 200-699) is received while in the
    // "Trying" state, the response MUST be passed to the TU, and the client
    // transaction MUST transition to the "Completed" state." (Likewise from
    // "Proceeding".)
    this.stopTimer('E');
    this.stopTimer('F');
    this.transition('Completed');
    this.passUp(res);
    if (this.isTerminated) return;
    // "Once the client transaction enters the "Completed" state, it MUST set
    // Timer K to fire in T4 seconds for unreliable transports, and zero
    // seconds for reliable transports. The "Completed" state exists to buffer
    // any additional response retransmissions that may be received (which is
    // why the client transaction remains there only for unreliable transports)."
    // "If Timer K fires while in this state, the client transaction MUST
    // transition to the "Terminated" state."
    if (this.unreliable) this.waitThenTerminate('K', this.ctx.timers.t4);
    else super.terminate('Timer K (0 s, reliable transport)');
  }

  private completed(_res: SipResponse): void {
    // Retransmissions of the final response are absorbed.
  }

  private timerE(): void {
    // "If timer E fires while still in this state, the timer is reset, but
    // this time with a value of MIN(2*T1, T2). When the timer fires again, it
    // is reset to a MIN(4*T1, T2). This process continues so that
    // retransmissions occur with an exponentially increasing interval that
    // caps at T2." ... "If Timer E fires while in the "Proceeding" state, the
    // request MUST be passed to the transport layer for retransmission, and
    // Timer E MUST be reset with a value of T2 seconds."
    const { t2 } = this.ctx.timers;
    if (this.state === 'Trying') this.timerEInterval = Math.min(2 * this.timerEInterval, t2);
    else if (this.state === 'Proceeding') this.timerEInterval = t2;
    else return;
    this.sendRequest(this.request, this.destination);
    this.startTimer('E', this.timerEInterval, () => this.timerE());
  }

  private timerF(): void {
    // "If Timer F fires while the client transaction is still in the
    // "Trying" state, the client transaction SHOULD inform the TU about the
    // timeout, and then it SHOULD enter the "Terminated" state." ... "If
    // timer F fires while in the "Proceeding" state, the TU MUST be informed
    // of a timeout, and the client transaction MUST transition to the
    // terminated state."
    if (this.state !== 'Trying' && this.state !== 'Proceeding') return;
    this.tellTu('onTimeout', () => this.handler.onTimeout(this));
    super.terminate('Timer F');
  }

  protected handleTransportError(err: TransportError): void {
    // Figure 6 has transport errors leave "Trying" and "Proceeding" only: in
    // "Completed" nothing is sent, and the TU already has its final response.
    if (this.state === 'Completed') return;
    // §17.1.4: "the client transaction SHOULD inform the TU that a transport
    // failure has occurred, and the client transaction SHOULD transition
    // directly to the "Terminated" state."
    this.tellTu('onTransportError', () => this.handler.onTransportError(this, err));
    super.terminate('transport error');
  }

  protected notifyTerminated(): void {
    this.handler.onTerminated?.(this);
  }

  /** "Completed" only absorbs response retransmissions (Timer K): it keeps no message of its own. */
  protected compactForWait(): void {
    this.request = this.release(this.request);
    // The final response that caused the transition is passed up (and released) next.
    this.lastResponse = undefined;
  }

  private passUp(res: SipResponse): void {
    this.lastResponse = res.status >= 200 ? SipResponse.released(res.status) : res;
    this.tellTu('onResponse', () => this.handler.onResponse(res, this));
  }
}
