/**
 * The transaction layer (RFC 3261 §17): owns every client and server
 * transaction, matches what the transport delivers to them (§17.1.3,
 * §17.2.3), and hands everything else to the transaction user.
 *
 * Nothing received from the network throws out of this class: a message that
 * cannot be matched (no Via, no CSeq...) is logged and dropped. Every
 * transaction is forgotten the moment it is terminated, with its timers
 * cancelled, so `size` returns to zero once traffic stops.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { SipRequest, SipResponse } from '../message/message.js';
import type { Via } from '../message/via.js';
import { createResponse } from './create-response.js';
import { InviteClientTransaction } from './invite-client-transaction.js';
import { InviteServerTransaction } from './invite-server-transaction.js';
import { NonInviteClientTransaction } from './non-invite-client-transaction.js';
import { NonInviteServerTransaction } from './non-invite-server-transaction.js';
import { RFC2543_KEY_PREFIX, type TransactionBase, type TransactionContext } from './transaction-base.js';
import { TransactionError } from './transaction-error.js';
import type { ClientTransaction, ClientTransactionHandler, ServerTransaction, TransactionUser } from './transaction-user.js';
import type { Destination, TimerConfig, TransactionTransport } from './types.js';
import { WaitQueue } from './wait-queue.js';

/** The TU codes against the layer, its handles and callbacks: one import. */
export type { ClientTransaction, ClientTransactionHandler, ServerTransaction, TransactionUser } from './transaction-user.js';

export interface TransactionLayerOptions {
  transport: TransactionTransport;
  clock: Clock;
  timers: TimerConfig;
  log: Logger;
  tu: TransactionUser;
  /**
   * How long an INVITE server transaction waits for a provisional from the TU
   * before sending 100 Trying itself (§17.2.1: 200 ms). 0 sends it at once,
   * before the TU sees the INVITE (what a stateful proxy wants, §16.2).
   */
  trying100DelayMs?: number;
}

type ClientTx = InviteClientTransaction | NonInviteClientTransaction;
type ServerTx = InviteServerTransaction | NonInviteServerTransaction;

export const DEFAULT_TRYING_100_DELAY_MS = 200;

export class TransactionLayer {
  private readonly transport: TransactionTransport;
  private readonly log: Logger;
  private readonly tu: TransactionUser;
  private readonly trying100DelayMs: number;
  private readonly clientCtx: TransactionContext;
  private readonly serverCtx: TransactionContext;
  /** Client transactions by branch + method (§17.1.3). */
  private readonly clients = new Map<string, ClientTx>();
  /** Server transactions by their matching key (§17.2.3): RFC 3261 or RFC 2543 form. */
  private readonly servers = new Map<string, ServerTx>();
  /** RFC 2543 INVITE server transactions by the key an ACK for them carries (no To tag). */
  private readonly acks2543 = new Map<string, InviteServerTransaction>();
  private readonly ackKeyOf = new Map<InviteServerTransaction, string>();
  /** Wait-state timers (D, I, J, K, L, M) by duration: see WaitQueue. */
  private readonly waits = new Map<number, WaitQueue>();

  constructor(opts: TransactionLayerOptions) {
    this.transport = opts.transport;
    this.log = opts.log;
    this.tu = opts.tu;
    this.trying100DelayMs = opts.trying100DelayMs ?? DEFAULT_TRYING_100_DELAY_MS;
    const clock = opts.clock;
    const waits = this.waits;
    const waitQueue = (ms: number): WaitQueue => {
      let q = waits.get(ms);
      if (q === undefined) waits.set(ms, q = new WaitQueue(clock, ms));
      return q;
    };
    const base = { transport: opts.transport, clock, timers: opts.timers, log: opts.log, waitQueue };
    this.clientCtx = { ...base, forget: (tx) => this.forgetClient(tx) };
    this.serverCtx = { ...base, forget: (tx) => this.forgetServer(tx) };
  }

  /** Live transactions, for leak tests and metrics. */
  get size(): { client: number; server: number } {
    return { client: this.clients.size, server: this.servers.size };
  }

  // --- Client side ----------------------------------------------------------

  /**
   * Starts a client transaction for a request whose top Via already carries
   * its branch (see `buildVia`): INVITE client transaction for INVITE,
   * non-INVITE client transaction otherwise (CANCEL included). Throws a
   * `TransactionError` on misuse: an ACK (use `sendAck`), a missing or
   * pre-RFC 3261 branch, a CSeq method that is not the request's, or a
   * branch+method already in use.
   */
  sendRequest(req: SipRequest, dest: Destination, handler: ClientTransactionHandler): ClientTransaction {
    if (req.method === 'ACK') {
      throw new TransactionError('DP_SIP_TX_ACK_NOT_A_TRANSACTION', 'ACK is sent with sendAck, never through a client transaction');
    }
    // No Via at all: e.g. a CANCEL built from an INVITE transaction's skeleton
    // after its final response (§9.1: too late to cancel anything).
    const via = req.has('via') ? req.topVia : undefined;
    const branch = via?.branch;
    if (via === undefined || branch === undefined || !via.isRfc3261Branch) {
      throw new TransactionError('DP_SIP_TX_BAD_BRANCH', 'Top Via needs a branch starting with z9hG4bK');
    }
    if (req.cseq.method !== req.method) {
      throw new TransactionError('DP_SIP_TX_CSEQ_MISMATCH', 'CSeq method must equal the request method');
    }
    const id = clientKey(branch, req.method);
    if (this.clients.has(id)) throw new TransactionError('DP_SIP_TX_DUPLICATE', `Client transaction ${id} already exists`);
    const tx = req.method === 'INVITE'
      ? new InviteClientTransaction(this.clientCtx, id, req, dest, handler)
      : new NonInviteClientTransaction(this.clientCtx, id, req, dest, handler);
    // Registered before the first send: a transport error may come back at once.
    this.clients.set(id, tx);
    tx.start();
    return tx;
  }

  /**
   * Sends an ACK outside any transaction: the ACK for a 2xx (§13.2.2.4, "The
   * UAC core MUST generate an ACK request for each 2xx received from the
   * transaction layer") or one a proxy forwards (§16.10). Transport errors
   * are logged only.
   */
  sendAck(req: SipRequest, dest: Destination): void {
    if (req.method !== 'ACK') throw new TransactionError('DP_SIP_TX_NOT_ACK', `sendAck given a ${req.method}`);
    this.transport.sendRequest(req, dest, (err) => this.log.info({ code: err.code, msg: err.message }, 'ACK send failed'));
  }

  /** Sends a response outside any transaction (a proxy forwarding a stray response, §16.7, §16.11). */
  sendStatelessResponse(res: SipResponse): void {
    this.transport.sendResponse(res, (err) => this.log.info({ code: err.code, msg: err.message }, 'stateless response send failed'));
  }

  /** A response from the transport. */
  receiveResponse(res: SipResponse): void {
    try {
      if (!Number.isInteger(res.status) || res.status < 100 || res.status > 699) {
        this.log.debug({ status: res.status }, 'response with invalid status dropped');
        return;
      }
      // §17.1.3: "1. If the response has the same value of the branch
      // parameter in the top Via header field as the branch parameter in the
      // top Via header field of the request that created the transaction.
      // 2. If the method parameter in the CSeq header field matches the
      // method of the request that created the transaction. The method is
      // needed since a CANCEL request constitutes a different transaction,
      // but shares the same value of the branch parameter."
      const branch = res.topVia.branch;
      const tx = branch === undefined ? undefined : this.clients.get(clientKey(branch, res.cseq.method));
      if (tx && tx.receiveResponse(res)) return;
      this.callTu('onStrayResponse', () => this.tu.onStrayResponse(res));
    } catch (err) {
      this.log.warn({ err }, 'response dropped');
    }
  }

  // --- Server side ----------------------------------------------------------

  /** A request from the transport (`req.source` set). */
  receiveRequest(req: SipRequest): void {
    try {
      const tx = this.matchServer(req);
      if (tx) {
        if (!tx.receiveRequest(req) && req.method === 'ACK') this.deliverAck(req);
        return;
      }
      if (req.method === 'ACK') {
        // §17.2.3 leaves an ACK matching nothing to the TU: it acknowledges
        // a 2xx (new branch, §17.1.1.3), which a proxy forwards (§16.10).
        this.deliverAck(req);
        return;
      }
      this.createServer(req);
    } catch (err) {
      this.log.warn({ err, method: req.method }, 'request dropped');
    }
  }

  /**
   * The INVITE server transaction a CANCEL cancels, or undefined (then a
   * proxy answers the CANCEL 481, §16.2). §9.2: "The TU determines the
   * transaction to be cancelled by taking the CANCEL request, and then
   * assuming that the request method is anything but CANCEL or ACK and
   * applying the transaction matching procedures of Section 17.2.3. The
   * matching transaction is the one to be cancelled."
   */
  findInviteForCancel(cancel: SipRequest): ServerTransaction | undefined {
    try {
      const via = cancel.topVia;
      const tx = via.isRfc3261Branch
        ? this.servers.get(serverKey3261(via, 'INVITE'))
        : this.servers.get(serverKey2543(cancel, 'INVITE', true));
      return tx instanceof InviteServerTransaction && !tx.isTerminated ? tx : undefined;
    } catch (err) {
      this.log.debug({ err }, 'CANCEL without a usable Via/From/CSeq matches nothing');
      return undefined;
    }
  }

  /** §17.2.3: which server transaction a request belongs to, if any. */
  private matchServer(req: SipRequest): ServerTx | undefined {
    const via = req.topVia;
    if (via.isRfc3261Branch) {
      // "The request matches a transaction if the branch parameter in the
      // request is equal to the one in the top Via header field of the
      // request that created the transaction, the sent-by value in the top
      // Via of the request is equal to the one in the request that created
      // the transaction, and in the case of a CANCEL request, the method of
      // the request that created the transaction was also CANCEL." ... "the
      // ACK request ... matches the INVITE".
      return this.servers.get(serverKey3261(via, req.method === 'ACK' ? 'INVITE' : req.method));
    }
    // RFC 2543 compatibility (§17.2.3, second half).
    if (req.method === 'ACK') {
      // "The ACK request matches a transaction if the Request-URI, From tag,
      // Call-ID, CSeq number (not the method), and top Via header field
      // match those of the INVITE request which created the transaction, and
      // the To tag of the ACK matches the To tag of the response sent by the
      // server transaction."
      const tx = this.acks2543.get(serverKey2543(req, 'INVITE', false));
      const sent = tx?.lastResponse;
      if (tx && sent && sent.status >= 200 && sent.to.tag === req.to.tag) return tx;
      return undefined;
    }
    // "The INVITE request matches a transaction if the Request-URI, To tag,
    // From tag, Call-ID, CSeq, and top Via header field match those of the
    // INVITE request which created the transaction." ... "For all other
    // request methods, a request is matched to a transaction if the
    // Request-URI, To tag, From tag, Call-ID, CSeq (including the method),
    // and top Via header field match those of the request that created the
    // transaction."
    return this.servers.get(serverKey2543(req, req.method, true));
  }

  private createServer(req: SipRequest): void {
    const via = req.topVia;
    // §8.1.1: To, From, CSeq, Call-ID, Max-Forwards and Via are mandatory; the
    // parser guarantees the first four parse, this guards hand-built messages
    // (each getter throws, and the request is dropped, if one is missing).
    void req.callId;
    void req.cseq;
    void req.from;
    void req.to;
    const rfc3261 = via.isRfc3261Branch;
    // One flat string of its own (see clientKey()): the transaction keeps it for 64*T1.
    const id = rfc3261 ? serverKey3261(via, req.method) : serverKey2543(req, req.method, true);
    let tx: ServerTx;
    if (req.method === 'INVITE') {
      const ist = new InviteServerTransaction(this.serverCtx, id, req, this.trying100DelayMs);
      if (!rfc3261) {
        const ackKey = serverKey2543(req, 'INVITE', false);
        this.acks2543.set(ackKey, ist);
        this.ackKeyOf.set(ist, ackKey);
      }
      tx = ist;
    } else {
      tx = new NonInviteServerTransaction(this.serverCtx, id, req);
    }
    this.servers.set(id, tx);
    if (tx instanceof InviteServerTransaction) tx.start();
    try {
      this.tu.onRequest(tx, req);
    } catch (err) {
      // A TU that throws would leave the transaction waiting forever for a
      // final response: answer for it so the transaction can end.
      this.log.error({ err, method: req.method }, 'onRequest threw; answering 500');
      if (!tx.isTerminated && isAwaitingFinal(tx)) tx.respond(createResponse(req, 500, 'Server Internal Error'));
    }
  }

  private deliverAck(req: SipRequest): void {
    this.callTu('onAck', () => this.tu.onAck(req));
  }

  // --- Bookkeeping ------------------------------------------------------------

  private forgetClient(tx: TransactionBase<string>): void {
    if (this.clients.get(tx.id) === tx) this.clients.delete(tx.id);
  }

  private forgetServer(tx: TransactionBase<string>): void {
    if (this.servers.get(tx.id) === tx) this.servers.delete(tx.id);
    if (tx instanceof InviteServerTransaction) {
      const ackKey = this.ackKeyOf.get(tx);
      if (ackKey !== undefined) {
        if (this.acks2543.get(ackKey) === tx) this.acks2543.delete(ackKey);
        this.ackKeyOf.delete(tx);
      }
    }
  }

  private callTu(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err, callback: what }, 'transaction user callback threw');
    }
  }
}

/*
 * Matching keys are built with Array.prototype.join, which writes one flat
 * string: a template literal makes a cons string of slices of the received
 * message, and a transaction keeps its key (and the layer's map) for up to
 * 64*T1, so it would keep that message's text, or once flattened two
 * objects instead of one. branchOfKey() reads the branch back for logs.
 */

/** branch + method (§17.1.3). */
function clientKey(branch: string, method: string): string {
  return [branch, method].join(' ');
}

/** branch + sent-by + method (ACK and CANCEL callers pass the method they match). */
function serverKey3261(via: Via, method: string): string {
  return [via.branch ?? '', ' ', via.host.toLowerCase(), ':', via.port ?? '', ' ', method].join('');
}

/**
 * RFC 2543 matching key: Request-URI, To tag (unless matching an ACK, whose To
 * tag is the response's), From tag, Call-ID, CSeq number and method, top Via.
 * Fields are joined with LF, which no header value or URI can contain.
 */
function serverKey2543(req: SipRequest, method: string, withToTag: boolean): string {
  const topVia = req.getAll('via')[0] ?? '';
  return [
    RFC2543_KEY_PREFIX + req.uri.toString(),
    withToTag ? req.to.tag ?? '' : '*',
    req.from.tag ?? '',
    req.callId,
    String(req.cseq.seq),
    method,
    topVia.trim(),
  ].join('\n');
}

function isAwaitingFinal(tx: ServerTx): boolean {
  return tx.state === 'Trying' || tx.state === 'Proceeding';
}
