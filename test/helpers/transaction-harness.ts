/** A TransactionLayer wired to a fake transport, a manual clock and a recording TU. */
import type { SipRequest, SipResponse } from '../../src/sip/message/message.js';
import { TransactionLayer } from '../../src/sip/transaction/transaction-layer.js';
import type { ClientTransaction, ClientTransactionHandler, ServerTransaction, TransactionUser } from '../../src/sip/transaction/transaction-user.js';
import { DEFAULT_TIMERS, type TimerConfig, type TransportError } from '../../src/sip/transaction/types.js';
import { FakeTransactionTransport } from './fake-transaction-transport.js';
import { ManualClock } from './manual-clock.js';
import { RecordingLogger } from './recording-logger.js';

export interface HarnessOptions {
  trying100DelayMs?: number;
  timers?: TimerConfig;
  /** Called after the request is recorded, e.g. to answer at once. */
  onRequest?: (tx: ServerTransaction, req: SipRequest) => void;
}

export function makeHarness(opts: HarnessOptions = {}) {
  const clock = new ManualClock();
  const transport = new FakeTransactionTransport(clock);
  const log = new RecordingLogger();
  const requests: Array<{ tx: ServerTransaction; req: SipRequest }> = [];
  const acks: SipRequest[] = [];
  const strays: SipResponse[] = [];
  const tu: TransactionUser = {
    onRequest(tx, req) {
      requests.push({ tx, req });
      opts.onRequest?.(tx, req);
    },
    onAck(req) { acks.push(req); },
    onStrayResponse(res) { strays.push(res); },
  };
  const layer = new TransactionLayer({
    transport, clock, timers: opts.timers ?? DEFAULT_TIMERS, log, tu,
    ...(opts.trying100DelayMs === undefined ? {} : { trying100DelayMs: opts.trying100DelayMs }),
  });
  return { clock, transport, log, layer, requests, acks, strays };
}

export interface RecordingHandler extends ClientTransactionHandler {
  responses: SipResponse[];
  timeouts: number;
  errors: TransportError[];
  terminated: number;
}

export function recordingHandler(): RecordingHandler {
  const h: RecordingHandler = {
    responses: [], timeouts: 0, errors: [], terminated: 0,
    onResponse(res: SipResponse) { h.responses.push(res); },
    onTimeout() { h.timeouts++; },
    onTransportError(_tx: ClientTransaction, err: TransportError) { h.errors.push(err); },
    onTerminated() { h.terminated++; },
  };
  return h;
}

export const UDP_DEST = { transport: 'udp', address: '198.51.100.7', port: 5060 } as const;
export const TCP_DEST = { transport: 'tcp', address: '198.51.100.7', port: 5060 } as const;
