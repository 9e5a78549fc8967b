/**
 * The contract between the transaction layer (RFC 3261 §17) and the
 * transaction user above it (proxy core, registrar): what the layer hands
 * up, and the handles it gives back.
 */
import type { SipRequest, SipResponse } from '../message/message.js';
import type { Destination, TransportError } from './types.js';

/** Figure 5, updated by RFC 6026 §7.2 (the "Accepted" state). */
export type InviteClientState = 'Calling' | 'Proceeding' | 'Accepted' | 'Completed' | 'Terminated';
/** Figure 6. */
export type NonInviteClientState = 'Trying' | 'Proceeding' | 'Completed' | 'Terminated';
/** Figure 7, updated by RFC 6026 §7.1 (the "Accepted" state). */
export type InviteServerState = 'Proceeding' | 'Accepted' | 'Completed' | 'Confirmed' | 'Terminated';
/** Figure 8. */
export type NonInviteServerState = 'Trying' | 'Proceeding' | 'Completed' | 'Terminated';

export type ClientTransactionState = InviteClientState | NonInviteClientState;
export type ServerTransactionState = InviteServerState | NonInviteServerState;

/** Receives what the layer cannot give to a transaction. */
export interface TransactionUser {
  /**
   * A request that created a new server transaction: never an ACK, never a
   * retransmission. A CANCEL arrives here as its own non-INVITE server
   * transaction; find what it cancels with `TransactionLayer.findInviteForCancel`.
   */
  onRequest(tx: ServerTransaction, req: SipRequest): void;
  /**
   * An ACK that is not part of an INVITE transaction: it matched no server
   * transaction (the ACK for a 2xx carries a new branch, §17.1.1.3) or it
   * matched one in the RFC 6026 "Accepted" state. A proxy forwards it (§16.10).
   */
  onAck(req: SipRequest): void;
  /**
   * A response that matched no client transaction (§17.1.3), e.g. a 2xx
   * retransmission after Timer M: a proxy forwards it statelessly (§16.7, §16.11).
   */
  onStrayResponse(res: SipResponse): void;
}

/** Per client transaction callbacks, given to `TransactionLayer.sendRequest`. */
export interface ClientTransactionHandler {
  /** Every response the state machine passes up (provisional, final, and 2xx retransmissions in "Accepted"). */
  onResponse(res: SipResponse, tx: ClientTransaction): void;
  /** Timer B (INVITE, only in "Calling") or Timer F (non-INVITE) fired: treat as 408 (§8.1.3.1, §16.7 step 2). */
  onTimeout(tx: ClientTransaction): void;
  /** §17.1.4: the transport failed; the transaction is terminated. */
  onTransportError(tx: ClientTransaction, err: TransportError): void;
  /** Called once, when the transaction reaches "Terminated" and the layer has forgotten it. */
  onTerminated?(tx: ClientTransaction): void;
}

export interface ClientTransaction {
  /** Matching key: branch + CSeq method (§17.1.3). */
  readonly id: string;
  readonly branch: string;
  /**
   * The request; once a final response arrived, the shared
   * SipRequest.released() of its method (no header rows), from which no
   * CANCEL can be built (§9.1: after a final response there is nothing left
   * to cancel).
   */
  readonly request: SipRequest;
  readonly destination: Destination;
  readonly isInvite: boolean;
  readonly state: ClientTransactionState;
  /** The last response passed to the TU, if any; a final one as the shared SipResponse.released() of its status. */
  readonly lastResponse: SipResponse | undefined;
  /**
   * Destroys the transaction now (timers cancelled, forgotten by the layer).
   * For the TU's own give-up rules, e.g. §9.1: "If no final response has been
   * received after 64*T1 seconds, the client SHOULD then consider the original
   * transaction cancelled and SHOULD destroy the client transaction handling
   * the original request." An INVITE client transaction in "Proceeding" has
   * no timer of its own (Timer B only runs in "Calling"); the proxy's Timer C
   * (§16.8) ends it through CANCEL and this method.
   */
  terminate(): void;
  /**
   * Replaces the handler. A TU done with a transaction's events but for a
   * few (a proxy whose response context has sent its final response only
   * forwards late 2xx) hands over a handler holding none of its state: an
   * INVITE client transaction waits 64*T1 in "Accepted" (RFC 6026), and
   * through its handler it kept the proxy's whole call context alive.
   */
  setHandler(handler: ClientTransactionHandler): void;
}

export interface ServerTransaction {
  /** Matching key (§17.2.3). */
  readonly id: string;
  /**
   * The TU's own state for this transaction (a proxy's response context),
   * which the TU sets and clears: the transaction never reads it. A field on
   * the transaction rather than a Map in the TU: a Map whose entries come
   * and go with every call keeps replacing its hash table, and once a table
   * has lived through two scavenges V8 allocates every later one in the old
   * generation, where the tables it dropped keep the entries they held (the
   * calls in progress at that moment, with all they reference) alive until
   * the next full collection. That was some 3 KB promoted per call.
   */
  tuState: unknown;
  /** The request; once a final response is sent, the shared SipRequest.released() of its method (no header rows). */
  readonly request: SipRequest;
  readonly isInvite: boolean;
  readonly state: ServerTransactionState;
  /**
   * The last response the TU passed to the transaction (or the automatic 100
   * Trying); in a state that resends nothing, the shared
   * SipResponse.released() of its status (a skeleton with the To row when an
   * RFC 2543 ACK is matched by its tag).
   */
  readonly lastResponse: SipResponse | undefined;
  /**
   * Passes a response from the TU to the state machine. Responses the current
   * state does not allow (a second non-2xx final, a provisional after a final)
   * are logged and discarded, never thrown.
   */
  respond(res: SipResponse): void;
  /** Called once when the transaction reaches "Terminated". */
  onTerminated?: (tx: ServerTransaction) => void;
  /** §17.2.4 (as updated by RFC 6026 §8.8): "the server transaction SHOULD inform the TU that a failure has occurred, and MUST remain in the current state". */
  onTransportError?: (tx: ServerTransaction, err: TransportError) => void;
  /** Timer H fired: "the ACK was never received ... MUST indicate to the TU that a transaction failure has occurred" (§17.2.1). */
  onTimeout?: (tx: ServerTransaction) => void;
}
