/**
 * Transport layer (RFC 3261 §18, RFC 3581, RFC 7118): UDP, TCP and
 * WebSocket listeners, connection reuse, and the response routing rules of
 * §18.2.2. It parses what arrives, answers requests it cannot parse with a
 * 400 naming the problem, and hands good messages to the transaction layer.
 */
import { createSocket, type Socket as UdpSocket, type RemoteInfo } from 'node:dgram';
import { createServer, connect, isIPv6, type Server, type Socket } from 'node:net';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../logger.js';
import { parseMessage } from '../message/parser.js';
import { StreamFramer } from '../message/stream-framer.js';
import { errorResponseFromHeaders } from '../message/error-response.js';
import type { MessageSource, SipRequest, SipResponse, TransportName } from '../message/message.js';
import { Via } from '../message/via.js';
import type { Destination, TransactionTransport, TransportError } from '../transaction/types.js';

export interface TransportOptions {
  bind: string;
  /** Address we put in Via sent-by and Record-Route (never 0.0.0.0). */
  advertise: string;
  udpPort?: number;
  tcpPort?: number;
  wsPort?: number;
  /** Largest message accepted (bytes); larger requests get 513. */
  maxMessageSize: number;
  /** Close stream connections idle for this long (ms). */
  idleTimeoutMs: number;
  log: Logger;
}

export interface TransportHandlers {
  onRequest(req: SipRequest): void;
  onResponse(res: SipResponse): void;
}

interface StreamConnection {
  id: string;
  transport: 'tcp' | 'ws';
  remoteAddress: string;
  remotePort: number;
  localPort: number;
  send(data: Buffer): void;
  close(): void;
  lastActivity: number;
}

let connectionSeq = 0;

/** How many UDP peers' sources are shared (see TransportLayer.udpSource()): a linear scan, so few. */
const UDP_SOURCES = 16;

export class TransportLayer implements TransactionTransport {
  private udp: UdpSocket | undefined;
  private tcp: Server | undefined;
  private http: HttpServer | undefined;
  private wss: WebSocketServer | undefined;
  private readonly connections = new Map<string, StreamConnection>();
  /** remote "transport|address|port" → connection id, for reuse (§18.1.1, §18.2.2). */
  private readonly byRemote = new Map<string, string>();
  /** Recent UDP peers' sources: see udpSource(). */
  private readonly udpSources: MessageSource[] = [];
  private udpSourceNext = 0;
  private handlers: TransportHandlers | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  readonly ports: { udp?: number; tcp?: number; ws?: number } = {};

  constructor(private readonly opts: TransportOptions) {
    this.log = opts.log;
  }

  setHandlers(h: TransportHandlers): void {
    this.handlers = h;
  }

  async start(): Promise<void> {
    const o = this.opts;
    if (o.udpPort !== undefined) {
      const sock = createSocket({
        type: isIPv6(o.bind) ? 'udp6' : 'udp4',
        reuseAddr: false,
        // Destinations are IP literals by the time they reach the transport
        // (resolve.ts did any DNS): answer the socket's lookup synchronously
        // instead of dns.lookup's process.nextTick round per datagram.
        lookup: (host, _opts, cb) => cb(null, host, isIPv6(host) ? 6 : 4),
      });
      this.udp = sock;
      sock.on('message', (buf, rinfo) => this.onDatagram(buf, rinfo));
      sock.on('error', (err) => this.log.error({ err }, 'UDP socket error'));
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.bind(o.udpPort, o.bind, () => { sock.off('error', reject); resolve(); });
      });
      // Bigger kernel buffers absorb bursts at thousands of calls per second.
      try {
        sock.setRecvBufferSize(8 * 1024 * 1024);
        sock.setSendBufferSize(8 * 1024 * 1024);
      } catch {
        // not fatal: the kernel caps it
      }
      this.ports.udp = sock.address().port;
    }
    if (o.tcpPort !== undefined) {
      const srv = createServer((s) => this.adoptTcp(s));
      this.tcp = srv;
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(o.tcpPort, o.bind, () => { srv.off('error', reject); resolve(); });
      });
      const a = srv.address();
      if (a && typeof a === 'object') this.ports.tcp = a.port;
    }
    if (o.wsPort !== undefined) {
      const http = createHttpServer((_req, res) => { res.writeHead(426, { 'Content-Type': 'text/plain' }); res.end('SIP over WebSocket only (RFC 7118)\n'); });
      this.http = http;
      // RFC 7118 §4.1: "the client MUST include the value 'sip' in the Sec-WebSocket-Protocol header".
      this.wss = new WebSocketServer({
        server: http,
        maxPayload: o.maxMessageSize,
        handleProtocols: (protocols) => (protocols.has('sip') ? 'sip' : false),
      });
      this.wss.on('connection', (ws, req) => this.adoptWs(ws, req.socket.remoteAddress ?? '', req.socket.remotePort ?? 0));
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(o.wsPort, o.bind, () => { http.off('error', reject); resolve(); });
      });
      const a = http.address();
      if (a && typeof a === 'object') this.ports.ws = a.port;
    }
    this.idleTimer = setInterval(() => this.sweepIdle(), Math.min(30_000, Math.max(1000, this.opts.idleTimeoutMs / 4)));
    this.idleTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.idleTimer) clearInterval(this.idleTimer);
    for (const c of this.connections.values()) c.close();
    this.connections.clear();
    this.byRemote.clear();
    await Promise.all([
      this.udp ? new Promise<void>((r) => this.udp?.close(() => r())) : undefined,
      this.tcp ? new Promise<void>((r) => this.tcp?.close(() => r())) : undefined,
      this.wss ? new Promise<void>((r) => this.wss?.close(() => r())) : undefined,
      this.http ? new Promise<void>((r) => { this.http?.closeAllConnections(); this.http?.close(() => r()); }) : undefined,
    ]);
  }

  isReliable(transport: TransportName): boolean {
    return transport !== 'udp';
  }

  /** Via sent-by we insert for a transport, and what we accept as ours in responses (§18.1.2). */
  viaFor(transport: TransportName): { transport: string; host: string; port: number } {
    const port = transport === 'udp' ? this.ports.udp : transport === 'tcp' ? this.ports.tcp : this.ports.ws;
    return { transport: transport.toUpperCase(), host: this.opts.advertise, port: port ?? 5060 };
  }

  /** Whether a connection is still open (registered flows over TCP/WS). */
  hasConnection(id: string): boolean {
    return this.connections.has(id);
  }

  /** Where an open connection leads (RFC 5626 flow), or undefined once it has closed. */
  connectionDestination(id: string): Destination | undefined {
    const c = this.connections.get(id);
    return c ? { transport: c.transport, address: c.remoteAddress, port: c.remotePort, connectionId: c.id } : undefined;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  // ---- inbound ---------------------------------------------------------

  private onDatagram(buf: Buffer, rinfo: RemoteInfo): void {
    // RFC 5626 §4.4.1 keep-alives and stray CRLFs: nothing to do.
    if (buf.length <= 4 && buf.every((b) => b === 0x0d || b === 0x0a)) return;
    const source = this.udpSource(rinfo);
    if (buf.length > this.opts.maxMessageSize) {
      this.rejectUnparsed(buf.subarray(0, Math.min(buf.length, 8192)), source, 513, 'Message Too Large');
      return;
    }
    this.dispatch(buf, source, false);
  }

  /**
   * The source of a datagram, shared by every datagram from that address
   * and port among the last UDP_SOURCES peers seen (a carrier trunk, a
   * phone): server transactions keep their request's source for up to
   * 64*T1, two per call, and it is never changed (MessageSource is
   * read-only), so one object per peer will do instead of one per datagram.
   */
  private udpSource(rinfo: RemoteInfo): MessageSource {
    const cache = this.udpSources;
    for (let i = 0; i < cache.length; i++) {
      const s = cache[i] as MessageSource;
      if (s.port === rinfo.port && s.address === rinfo.address) return s;
    }
    const s: MessageSource = { transport: 'udp', address: rinfo.address, port: rinfo.port, localAddress: this.opts.advertise, localPort: this.ports.udp ?? 0 };
    if (cache.length < UDP_SOURCES) cache.push(s);
    else cache[this.udpSourceNext++ % UDP_SOURCES] = s;
    return s;
  }

  private dispatch(buf: Buffer, source: MessageSource, stream: boolean): void {
    const r = parseMessage(buf, { stream });
    if (r.kind === 'error') {
      this.log.debug({ err: r.error.reason, from: `${source.address}:${source.port}` }, 'unparseable SIP message');
      // Responses are never answered (§18.1.2, RFC 4475 scalarlg/bigcode); a request needs a Via to be answered.
      if (r.isRequest && r.headers.some((h) => h.name === 'via')) {
        const res = errorResponseFromHeaders(r.headers, r.error.status, r.error.reason);
        this.sendRaw(res.toBuffer(), { transport: source.transport, address: source.address, port: source.port, connectionId: source.connectionId }, () => undefined);
      }
      return;
    }
    const msg = r.message;
    msg.source = source;
    try {
      if (r.kind === 'request') {
        this.stampReceived(r.message, source);
        this.handlers?.onRequest(r.message);
      } else {
        // §18.1.2: "If the value of the "sent-by" parameter in that header field
        // value does not correspond to a value that the client transport is
        // configured to insert into requests, the response MUST be silently discarded."
        if (!this.isOurVia(r.message.topVia)) return;
        this.handlers?.onResponse(r.message);
      }
    } catch (err) {
      // A bug above must not take the listener down.
      this.log.error({ err, callId: msg.get('call-id') }, 'error while handling SIP message');
    }
  }

  private rejectUnparsed(buf: Buffer, source: MessageSource, status: number, reason: string): void {
    const r = parseMessage(buf, { stream: false });
    const headers = r.kind === 'error' ? r.headers : r.message.headers;
    const isRequest = r.kind === 'error' ? r.isRequest : r.kind === 'request';
    if (!isRequest || !headers.some((h) => h.name === 'via')) return;
    const res = errorResponseFromHeaders(headers, status, reason);
    this.sendRaw(res.toBuffer(), { transport: source.transport, address: source.address, port: source.port, connectionId: source.connectionId }, () => undefined);
  }

  /**
   * §18.2.1: "If the host portion of the "sent-by" parameter contains a domain
   * name, or if it contains an IP address that differs from the packet source
   * address, the server MUST add a "received" parameter to that Via header
   * field value." RFC 3581 §4: with an empty rport, "the server MUST ... set
   * the value of the "rport" parameter to the source port of the request"
   * (and then always add received).
   */
  private stampReceived(req: SipRequest, source: MessageSource): void {
    const via = req.topVia;
    const rport = via.rport;
    const hostIsSource = via.hostAddressEquals(source.address);
    if (hostIsSource && rport !== null) return;
    let params = via.params;
    if (!hostIsSource || rport === null) params = params.with('received', source.address.includes(':') ? `[${source.address}]` : source.address);
    if (rport === null) params = params.with('rport', String(source.port));
    req.replaceTopVia(new Via(via.transport, via.host, via.port, params));
  }

  private isOurVia(via: Via): boolean {
    const ours = this.viaFor(via.transport.toLowerCase() as TransportName);
    return via.host.toLowerCase() === ours.host.toLowerCase() && (via.port ?? 5060) === ours.port;
  }

  private adoptTcp(sock: Socket, dialled?: { address: string; port: number }): StreamConnection {
    sock.setNoDelay(true);
    const conn: StreamConnection = {
      id: `tcp-${++connectionSeq}`,
      transport: 'tcp',
      remoteAddress: dialled?.address ?? normalizeAddress(sock.remoteAddress ?? ''),
      remotePort: dialled?.port ?? sock.remotePort ?? 0,
      localPort: sock.localPort ?? 0,
      send: (d) => { sock.write(d); },
      close: () => sock.destroy(),
      lastActivity: Date.now(),
    };
    this.register(conn);
    const framer = new StreamFramer(this.opts.maxMessageSize);
    sock.on('data', (chunk: Buffer) => {
      conn.lastActivity = Date.now();
      for (const ev of framer.push(chunk)) {
        if (ev.kind === 'ping') sock.write('\r\n'); // RFC 5626 §3.5.1 pong
        else if (ev.kind === 'message') this.dispatch(ev.data, this.sourceOf(conn), true);
        else {
          // RFC 4475 ncl/mcl01: over a stream a framing error is unrecoverable.
          this.log.debug({ err: ev.error.reason, conn: conn.id }, 'stream framing error, closing');
          sock.destroy();
        }
      }
    });
    sock.on('error', (err) => this.log.debug({ err: err.message, conn: conn.id }, 'TCP connection error'));
    sock.on('close', () => this.unregister(conn));
    return conn;
  }

  private adoptWs(ws: WebSocket, remoteAddress: string, remotePort: number): void {
    const conn: StreamConnection = {
      id: `ws-${++connectionSeq}`,
      transport: 'ws',
      remoteAddress: normalizeAddress(remoteAddress),
      remotePort,
      localPort: this.ports.ws ?? 0,
      // RFC 7118 §5.2: a SIP message is carried in one WebSocket message; text frames for UTF-8 content.
      send: (d) => ws.send(d.toString('utf8')),
      close: () => ws.terminate(),
      lastActivity: Date.now(),
    };
    this.register(conn);
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
      conn.lastActivity = Date.now();
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (buf.length <= 4 && buf.every((b) => b === 0x0d || b === 0x0a)) return;
      // RFC 7118 §5.1: WebSocket frames the message; Content-Length is optional.
      this.dispatch(buf, this.sourceOf(conn), false);
    });
    ws.on('error', (err) => this.log.debug({ err: err.message, conn: conn.id }, 'WebSocket error'));
    ws.on('close', () => this.unregister(conn));
  }

  private sourceOf(c: StreamConnection): MessageSource {
    return { transport: c.transport, address: c.remoteAddress, port: c.remotePort, localAddress: this.opts.advertise, localPort: c.localPort, connectionId: c.id };
  }

  private register(c: StreamConnection): void {
    this.connections.set(c.id, c);
    this.byRemote.set(remoteKey(c.transport, c.remoteAddress, c.remotePort), c.id);
  }

  private unregister(c: StreamConnection): void {
    this.connections.delete(c.id);
    const k = remoteKey(c.transport, c.remoteAddress, c.remotePort);
    if (this.byRemote.get(k) === c.id) this.byRemote.delete(k);
  }

  private sweepIdle(): void {
    const limit = Date.now() - this.opts.idleTimeoutMs;
    for (const c of this.connections.values()) if (c.lastActivity < limit) c.close();
  }

  // ---- outbound --------------------------------------------------------

  sendRequest(req: SipRequest, dest: Destination, onError: (err: TransportError) => void): void {
    this.sendRaw(req.toBuffer(), dest, onError);
  }

  /**
   * §18.2.2 Sending Responses: "If the "sent-protocol" is a reliable transport
   * protocol such as TCP or SCTP, or TLS over those, the response MUST be sent
   * using the existing connection to the source of the original request that
   * created the transaction, if that connection is still open." Otherwise, with
   * "received": "the response MUST be sent to the address in the "received"
   * parameter, using the port indicated in the "sent-by" value, or using port
   * 5060 if none is present" — or the rport value (RFC 3581 §4).
   */
  sendResponse(res: SipResponse, onError: (err: TransportError) => void): Buffer | undefined {
    let via: Via;
    try {
      via = res.topVia;
    } catch {
      onError({ code: 'NO_VIA', message: 'response has no Via' });
      return undefined;
    }
    const transport = via.transport.toLowerCase();
    const rport = via.rport;
    const address = stripBrackets(via.received ?? via.host);
    const port = rport ? Number(rport) : via.port ?? 5060;
    const data = res.toBuffer();
    if (transport === 'udp') {
      this.sendRaw(data, { transport: 'udp', address, port }, onError);
      return data;
    }
    const t: TransportName = transport === 'ws' || transport === 'wss' ? 'ws' : 'tcp';
    const src = res.source;
    const connId = src?.connectionId ?? this.byRemote.get(remoteKey(t, normalizeAddress(address), port));
    this.sendRaw(data, { transport: t, address, port, connectionId: connId }, onError);
    return data;
  }

  /** Writes bytes to a destination, reusing or opening a connection for TCP. */
  sendRaw(data: Buffer, dest: Destination, onError: (err: TransportError) => void): void {
    if (dest.transport === 'udp') {
      if (!this.udp) return queueError(onError, 'NO_TRANSPORT', 'UDP not enabled');
      this.udp.send(data, dest.port, dest.address, (err) => {
        if (err) onError({ code: (err as NodeJS.ErrnoException).code ?? 'EUDP', message: err.message });
      });
      return;
    }
    const t = dest.transport === 'wss' ? 'ws' : dest.transport === 'tls' ? 'tcp' : dest.transport;
    let conn = dest.connectionId ? this.connections.get(dest.connectionId) : undefined;
    if (!conn) {
      const id = this.byRemote.get(remoteKey(t, normalizeAddress(dest.address), dest.port));
      conn = id ? this.connections.get(id) : undefined;
    }
    if (conn) {
      conn.lastActivity = Date.now();
      conn.send(data);
      return;
    }
    if (t === 'ws') return queueError(onError, 'NO_CONNECTION', 'no WebSocket connection to the destination');
    // §18.1.1: open a new connection to the destination.
    const sock = connect({ host: dest.address, port: dest.port });
    // Not connected yet: index the connection under the address we dialled.
    const c = this.adoptTcp(sock, { address: normalizeAddress(dest.address), port: dest.port });
    sock.once('error', (err) => onError({ code: (err as NodeJS.ErrnoException).code ?? 'ETCP', message: err.message }));
    c.send(data);
  }
}

function queueError(onError: (err: TransportError) => void, code: string, message: string): void {
  queueMicrotask(() => onError({ code, message }));
}

function remoteKey(t: string, address: string, port: number): string {
  return `${t}|${address}|${port}`;
}

function stripBrackets(h: string): string {
  return h.startsWith('[') ? h.slice(1, -1) : h;
}

/** "::ffff:127.0.0.1" → "127.0.0.1", so IPv4 peers on dual-stack sockets compare equal. */
function normalizeAddress(a: string): string {
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

