/**
 * Contracts between the transaction layer (RFC 3261 §17), the transport
 * layer below it (§18) and the transaction user above it (proxy core,
 * registrar).
 */
import type { SipRequest, SipResponse, TransportName } from '../message/message.js';

/** Where a request is sent (the result of RFC 3263 resolution, or a registered flow). */
export interface Destination {
  transport: TransportName;
  address: string;
  port: number;
  /** Reuse this connection (connection-oriented transports), e.g. a registered WS flow. */
  connectionId?: string;
}

export interface TransportError {
  /** Short machine code, e.g. 'ECONNREFUSED', 'NO_CONNECTION', 'EHOSTUNREACH'. */
  code: string;
  message: string;
}

/** What the transaction layer needs from the transport layer. */
export interface TransactionTransport {
  /** Sends a request; onError is called (asynchronously) if the transport fails (§18.1.1, §17.1.4). */
  sendRequest(req: SipRequest, dest: Destination, onError: (err: TransportError) => void): void;
  /**
   * Sends a response where §18.2.2 says (connection, received/rport, maddr,
   * sent-by); returns the bytes handed to the transport, or undefined when
   * the response could not be addressed (onError is called then too).
   */
  sendResponse(res: SipResponse, onError: (err: TransportError) => void): Buffer | undefined;
  /** Whether a transport is reliable (TCP, TLS, WS, WSS): no retransmissions, timers zeroed (§17). */
  isReliable(transport: TransportName): boolean;
}

/** Timer values, from the listener profile (§17.1.1.1, Table 4). */
export interface TimerConfig {
  /** RTT estimate, default 500 ms. */
  t1: number;
  /** Maximum retransmit interval for non-INVITE requests and INVITE responses, default 4 s. */
  t2: number;
  /** Maximum duration a message will remain in the network, default 5 s. */
  t4: number;
}

export const DEFAULT_TIMERS: TimerConfig = { t1: 500, t2: 4000, t4: 5000 };
