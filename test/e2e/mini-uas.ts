/**
 * A minimal UDP user agent server for end-to-end tests that must count or
 * inspect the calls each phone receives (SIPp's UAS stops after -m calls and
 * reports no per-call detail). It answers by plain text manipulation, not
 * with Dialplane's parser, so a parser bug cannot hide behind it.
 *
 * Modes: `answer` (180 then 200 with SDP), `busy` (486), `silent` (180 and
 * never answers; a CANCEL gets 200 and the INVITE 487), `decline` (603),
 * `unavailable` (503, a carrier gateway that is down).
 * In-dialog BYE gets 200; ACK is absorbed.
 */
import { createSocket, type Socket } from 'node:dgram';

export type UasMode = 'answer' | 'busy' | 'silent' | 'decline' | 'unavailable';

export interface ReceivedInvite {
  at: number;
  text: string;
  callId: string;
  /** Value of a header (first occurrence, case-insensitive name; compact forms not handled). */
  header(name: string): string | undefined;
}

export interface MiniUas {
  port: number;
  invites: ReceivedInvite[];
  byes: number;
  /** The BYEs received, as text. */
  byeTexts: string[];
  cancels: number;
  close(): Promise<void>;
}

function headerLines(text: string): string[] {
  const head = text.split('\r\n\r\n')[0] ?? '';
  return head.split('\r\n');
}

function headerOf(text: string, name: string): string | undefined {
  const n = name.toLowerCase();
  for (const line of headerLines(text).slice(1)) {
    const i = line.indexOf(':');
    if (i > 0 && line.slice(0, i).trim().toLowerCase() === n) return line.slice(i + 1).trim();
  }
  return undefined;
}

function allHeaders(text: string, name: string): string[] {
  const n = name.toLowerCase();
  const out: string[] = [];
  for (const line of headerLines(text).slice(1)) {
    const i = line.indexOf(':');
    if (i > 0 && line.slice(0, i).trim().toLowerCase() === n) out.push(line);
  }
  return out;
}

export async function startMiniUas(port: number, mode: UasMode): Promise<MiniUas> {
  const sock: Socket = createSocket('udp4');
  const state: MiniUas = { port, invites: [], byes: 0, byeTexts: [], cancels: 0, close: () => new Promise((r) => sock.close(() => r())) };
  const toTag = `uas${port}`;
  /** Pending (unanswered) INVITEs by Call-ID, for CANCEL → 487. */
  const pending = new Map<string, { text: string; addr: string; port: number }>();

  const respond = (req: string, status: number, reason: string, to: { address: string; port: number }, withBody = false): void => {
    const lines = [`SIP/2.0 ${status} ${reason}`];
    lines.push(...allHeaders(req, 'via'));
    if (status > 100 && status < 300) lines.push(...allHeaders(req, 'record-route'));
    lines.push(`From: ${headerOf(req, 'from') ?? ''}`);
    const toHdr = headerOf(req, 'to') ?? '';
    lines.push(`To: ${/;\s*tag=/i.test(toHdr) || status === 100 ? toHdr : `${toHdr};tag=${toTag}`}`);
    lines.push(`Call-ID: ${headerOf(req, 'call-id') ?? ''}`);
    lines.push(`CSeq: ${headerOf(req, 'cseq') ?? ''}`);
    if (status > 100 && status < 300) lines.push(`Contact: <sip:uas@127.0.0.1:${port}>`);
    const body = withBody ? `v=0\r\no=uas 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port + 1} RTP/AVP 0\r\n` : '';
    if (body) lines.push('Content-Type: application/sdp');
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    sock.send(Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`), to.port, to.address);
  };

  sock.on('message', (buf, rinfo) => {
    const text = buf.toString('utf8');
    const method = text.slice(0, text.indexOf(' '));
    const callId = headerOf(text, 'call-id') ?? '';
    const to = { address: rinfo.address, port: rinfo.port };
    switch (method) {
      case 'INVITE': {
        if (!pending.has(callId) && !state.invites.some((i) => i.callId === callId)) {
          state.invites.push({ at: Date.now(), text, callId, header: (n) => headerOf(text, n) });
        }
        if (mode === 'busy') return respond(text, 486, 'Busy Here', to);
        if (mode === 'decline') return respond(text, 603, 'Decline', to);
        if (mode === 'unavailable') return respond(text, 503, 'Service Unavailable', to);
        respond(text, 180, 'Ringing', to);
        if (mode === 'answer') return respond(text, 200, 'OK', to, true);
        pending.set(callId, { text, addr: rinfo.address, port: rinfo.port });
        return;
      }
      case 'CANCEL': {
        state.cancels++;
        respond(text, 200, 'OK', to);
        const inv = pending.get(callId);
        if (inv) {
          pending.delete(callId);
          respond(inv.text, 487, 'Request Terminated', { address: inv.addr, port: inv.port });
        }
        return;
      }
      case 'BYE':
        state.byes++;
        state.byeTexts.push(text);
        return respond(text, 200, 'OK', to);
      case 'ACK':
        return;
      case 'SIP/2.0':
        return; // responses to nothing we sent
      default:
        return respond(text, 405, 'Method Not Allowed', to);
    }
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, '127.0.0.1', () => resolve());
  });
  return state;
}
