/**
 * What a record-routing proxy must remember of a dialog it set up so that it
 * can end the call itself (an administrator hanging a call up, 强拆): the
 * two parties' identities with their tags, their remote targets, the route
 * set beyond us towards each, where each one sits, and the highest CSeq each
 * has used. It is built once, from the INVITE and the 2xx that answered it,
 * and kept current from the in-dialog requests the proxy forwards.
 *
 * Only what is asked for: a plain object of a few strings per answered call,
 * created only when the router asks for it (ForkDecision.onAnswered).
 */
import { SipRequest, type HeaderField, type SipResponse } from '../message/message.js';
import { parseNameAddr } from '../message/name-addr.js';
import { parseUri, type SipUri } from '../message/uri.js';
import type { Destination } from '../transaction/types.js';

export interface DialogParty {
  /**
   * The party's own header value as it sent it: the INVITE's From for the
   * caller, the 2xx's To for the callee (name-addr with its tag). A request
   * we send on the other party's behalf carries it as From.
   */
  identity: string;
  /** Its remote target (§12.1.1, §12.1.2: the Contact it sent): the Request-URI of a request to it. */
  target: string;
  /** Route values beyond this proxy towards the party, nearest first. */
  route: string[];
  /**
   * Where the party sits when no route lies beyond us: the flow or source
   * address the dialog was set up over (a phone behind NAT is reached where
   * its packets came from, not at the private address of its Contact).
   */
  dest?: Destination;
  /** Highest CSeq number the party has sent in this dialog (0: none seen). */
  cseq: number;
}

export interface ProxiedDialog {
  callId: string;
  /** The From tag of the INVITE. */
  callerTag: string;
  /** The To tag of the 2xx. */
  calleeTag: string;
  caller: DialogParty;
  callee: DialogParty;
}

/**
 * The dialog a 2xx to an initial INVITE creates, seen from the proxy.
 *
 * `invite` is the request as received (our own Route values already popped),
 * `res` the 2xx as received from downstream, `branchDest` where the branch
 * was sent when the router gave it a flow (a registered contact), and
 * `isLocal` tells our own Record-Route values.
 *
 * §12.1.2: the UAC's route set is "the list of URIs in the Record-Route
 * header field from the response, taking them in reverse order"; the UAS's
 * (§12.1.1) is the Record-Route list "in order". We sit in the middle of
 * that list: the values above ours (inserted by proxies after us, nearer the
 * callee) lead to the callee, nearest to us last in the list; the values
 * below ours lead to the caller, nearest first.
 *
 * Returns undefined when the dialog cannot be addressed (no Record-Route of
 * ours, a missing tag or Contact): the call is then simply not endable here.
 */
export function dialogFromAnswer(invite: SipRequest, res: SipResponse, branchDest: Destination | undefined, isLocal: (uri: SipUri) => boolean): ProxiedDialog | undefined {
  const callerTag = invite.from.tag;
  const calleeTag = res.to.tag;
  const callerContact = contactUri(invite);
  const calleeContact = contactUri(res);
  if (callerTag === undefined || calleeTag === undefined || callerContact === undefined || calleeContact === undefined) return undefined;
  const rr = res.getList('record-route');
  let first = -1;
  let last = -1;
  for (let i = 0; i < rr.length; i++) {
    let uri: SipUri;
    try {
      uri = parseNameAddr(rr[i] ?? '', 'Record-Route').uri;
    } catch {
      return undefined;
    }
    if (isLocal(uri)) {
      if (first < 0) first = i;
      last = i;
    }
  }
  if (first < 0) return undefined;
  const towardsCallee = rr.slice(0, first).reverse();
  const towardsCaller = rr.slice(last + 1);
  const src = invite.source;
  const caller: DialogParty = { identity: flat(invite.get('from') ?? ''), target: callerContact, route: towardsCaller.map(flat), cseq: invite.cseq.seq };
  if (towardsCaller.length === 0 && src) {
    caller.dest = src.connectionId !== undefined
      ? { transport: src.transport, address: src.address, port: src.port, connectionId: src.connectionId }
      : { transport: src.transport, address: src.address, port: src.port };
  }
  const callee: DialogParty = { identity: flat(res.get('to') ?? ''), target: calleeContact, route: towardsCallee.map(flat), cseq: 0 };
  if (towardsCallee.length === 0 && branchDest) callee.dest = { ...branchDest };
  return { callId: flat(invite.callId), callerTag: flat(callerTag), calleeTag: flat(calleeTag), caller, callee };
}

/**
 * Keeps the dialog current from an in-dialog request the proxy forwards:
 * the sender's highest CSeq (§12.2.1.1: a request's CSeq "MUST be
 * incremented by one" over the last; ours must be higher still), and a
 * target refresh (§12.2: a re-INVITE or UPDATE "can modify the remote
 * target" through its Contact).
 */
export function observeInDialog(d: ProxiedDialog, req: SipRequest): void {
  const fromTag = req.from.tag;
  const party = fromTag === d.callerTag ? d.caller : fromTag === d.calleeTag ? d.callee : undefined;
  if (!party) return;
  const seq = req.cseq.seq;
  if (seq > party.cseq) party.cseq = seq;
  if (req.method === 'INVITE' || req.method === 'UPDATE') {
    const c = contactUri(req);
    if (c !== undefined) party.target = c;
  }
}

/** Text of the Reason header (RFC 3326) on a BYE the proxy sends. */
export interface ByeReason {
  cause: number;
  text: string;
}

/**
 * The BYE this proxy sends to `to` on behalf of the other party (§15.1.1:
 * "the BYE is constructed as would any other request within a dialog, as
 * described in Section 12"): Request-URI the remote target, Route the route
 * set beyond us, From/To the two identities with their tags, the Call-ID of
 * the dialog, and a CSeq above any the other party used (§12.2.1.1). The
 * Via is added by the sender. Calling it consumes a CSeq number.
 */
export function byeTowards(d: ProxiedDialog, to: 'caller' | 'callee', reason: ByeReason | undefined): { bye: SipRequest; hop: SipUri; dest: Destination | undefined } {
  const target = to === 'caller' ? d.caller : d.callee;
  const sender = to === 'caller' ? d.callee : d.caller;
  sender.cseq += 1;
  const headers: HeaderField[] = [];
  for (const r of target.route) headers.push({ name: 'route', value: r });
  headers.push({ name: 'max-forwards', value: '70' });
  headers.push({ name: 'from', value: sender.identity });
  headers.push({ name: 'to', value: target.identity });
  headers.push({ name: 'call-id', value: d.callId });
  headers.push({ name: 'cseq', value: `${sender.cseq} BYE` });
  if (reason) headers.push({ name: 'reason', value: `SIP;cause=${reason.cause};text="${reason.text.replace(/["\\\r\n]/g, '')}"` });
  headers.push({ name: 'content-length', value: '0' });
  const uri = parseUri(target.target);
  // §12.2.1.1 / §8.1.2: with a (loose-routing) first Route the request goes
  // there, else to the Request-URI; with neither beyond us, to the party's flow.
  const top = target.route[0];
  return { bye: new SipRequest('BYE', uri, headers), hop: top !== undefined ? parseNameAddr(top, 'Route').uri : uri, dest: top === undefined ? target.dest : undefined };
}

/** The first Contact's URI (a dialog-creating message carries exactly one, §12.1.1 / §8.1.1.8). */
function contactUri(m: SipRequest | SipResponse): string | undefined {
  const first = m.getList('contact')[0];
  if (first === undefined || first === '*') return undefined;
  try {
    return flat(parseNameAddr(first, 'Contact').uri.toString());
  } catch {
    return undefined;
  }
}

/**
 * A standalone copy: values cut from a received message may be slices of its
 * whole text, which would keep every datagram of an answered call alive for
 * the call's lifetime (hours).
 */
function flat(s: string): string {
  return (' ' + s).slice(1);
}
