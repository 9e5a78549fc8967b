/**
 * Turns an initial SIP request into a routing decision: who is calling
 * (a trusted carrier trunk, or an extension proven by digest), what was
 * dialled, and which registered contacts ring.
 *
 * This is the SIP-core-stage router (demo tenant: extensions and numbers
 * that ring every contact of a set of extensions). The routing-engine issue
 * replaces `Directory` with compiled tenant rules.
 */
import type { Clock } from '../sip/clock.js';
import type { Logger } from '../sip/logger.js';
import type { SipRequest } from '../sip/message/message.js';
import { parseUri, unescapeUri, type SipUri } from '../sip/message/uri.js';
import type { ForkTarget } from '../sip/proxy/fork-plan.js';
import type { InitialRequestRouter, RoutingDecision } from '../sip/proxy/proxy-core.js';
import type { CredentialSource } from '../sip/registrar/credentials.js';
import type { DigestAuthenticator } from '../sip/registrar/digest.js';
import type { Binding, LocationService } from '../sip/registrar/location-service.js';
import { aorFor } from '../sip/registrar/registrar.js';
import type { Destination } from '../sip/transaction/types.js';
import { cidrContains, type Cidr } from './cidr.js';

export interface Directory {
  /** Whether `user` is an extension (has SIP credentials). */
  isExtension(user: string): boolean;
  /** Extensions rung together when `number` is dialled, or undefined if the number is not ours. */
  numberTargets(number: string): readonly string[] | undefined;
}

export interface CallRouterOptions {
  realm: string;
  directory: Directory;
  location: LocationService;
  credentials: CredentialSource;
  digest: DigestAuthenticator;
  /** Carrier trunks: requests from these sources are not challenged. */
  trusted: readonly Cidr[];
  /** Whether a URI designates this server. */
  isLocalUri: (uri: SipUri) => boolean;
  /** Whether a connection-oriented flow is still open on this node. */
  flowAlive: (connectionId: string) => boolean;
  node: string;
  clock: Clock;
  log: Logger;
  /** How long each ring-all group rings before the caller hears 480. */
  ringTimeoutMs: number;
}

const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE, PRACK, MESSAGE, NOTIFY, SUBSCRIBE, REFER';

function pong(): RoutingDecision {
  return { action: 'respond', status: 200, reason: 'OK', headers: [['Allow', ALLOW], ['Accept', 'application/sdp']] };
}

export function createCallRouter(o: CallRouterOptions): InitialRequestRouter {
  // Source address → trusted? Cached: CIDR matching parses the address each time.
  const trustedCache = new Map<string, boolean>();
  const isTrusted = (address: string): boolean => {
    let v = trustedCache.get(address);
    if (v === undefined) {
      v = o.trusted.some((c) => cidrContains(c, address));
      if (trustedCache.size >= 10_000) trustedCache.clear();
      trustedCache.set(address, v);
    }
    return v;
  };
  return async (req: SipRequest): Promise<RoutingDecision> => {
    const src = req.source;
    const fromCarrier = src !== undefined && isTrusted(src.address);
    const calledUser = req.uri.isSip && req.uri.user !== undefined ? unescapeUri(req.uri.user) : req.uri.scheme === 'tel' ? req.uri.user : undefined;

    // Out-of-dialog OPTIONS to the server itself: the keep-alive ping carriers and phones send.
    // Only carriers get it without credentials: answering 200 to anyone for unknown users
    // and 407 for real ones would let a scanner (SIPVicious svwar -m OPTIONS) list extensions.
    const isPing = (): boolean => req.method === 'OPTIONS'
      && (calledUser === undefined || (!o.directory.isExtension(calledUser) && !o.directory.numberTargets(calledUser)));
    if (fromCarrier && isPing()) return pong();

    if (!fromCarrier) {
      // RFC 3261 §22.3: a proxy challenges with 407 and Proxy-Authenticate.
      const verdict = await o.digest.verify({
        method: req.method,
        requestUri: req.uri.toString(),
        authorization: req.getAll('proxy-authorization'),
        alsoAccept: (u) => uriIsLocal(u, o.isLocalUri),
      }, o.credentials);
      if (verdict.kind === 'malformed') return { action: 'respond', status: 400, reason: verdict.reason };
      if (verdict.kind !== 'ok') {
        if (verdict.kind === 'failed') o.log.info({ user: verdict.username, why: verdict.internalReason, from: src?.address }, `${req.method} authentication failed`);
        const challenge = o.digest.challenge({ stale: verdict.kind === 'stale' });
        return { action: 'respond', status: 407, reason: 'Proxy Authentication Required', headers: challenge.map((v) => ['Proxy-Authenticate', v]) };
      }
      // We consumed these credentials; the next hop must not see them.
      req.remove('proxy-authorization');
      if (isPing()) return pong();
    }

    if (calledUser === undefined) return { action: 'respond', status: 404, reason: 'Not Found' };
    const extensions = o.directory.isExtension(calledUser) ? [calledUser] : o.directory.numberTargets(calledUser);
    if (!extensions) return { action: 'respond', status: 404, reason: 'Not Found' };

    const now = o.clock.now();
    const targets: ForkTarget[] = [];
    for (const ext of extensions) {
      const rec = await o.location.get(aorFor(ext, o.realm), now);
      for (const b of rec.bindings) {
        const t = toTarget(b, ext, o);
        if (t) targets.push(t);
      }
    }
    if (targets.length === 0) return { action: 'respond', status: 480, reason: 'Temporarily Unavailable' };
    return {
      action: 'fork',
      plan: {
        groups: [{ targets, timeoutMs: o.ringTimeoutMs }],
        exhausted: { status: 480, reason: 'Temporarily Unavailable' },
      },
    };
  };
}

function uriIsLocal(text: string, isLocal: (u: SipUri) => boolean): boolean {
  try {
    return isLocal(parseUri(text));
  } catch {
    return false;
  }
}

/**
 * Where to reach a binding: through its Path if any (RFC 3327), else over
 * the flow the REGISTER came in on — the NATed source address, or the
 * WebSocket/TCP connection (RFC 5626 §5.3 reuses the flow).
 */
function toTarget(b: Binding, label: string, o: CallRouterOptions): ForkTarget | undefined {
  let uri;
  try {
    uri = parseUri(b.contact);
  } catch {
    return undefined;
  }
  if (b.path.length > 0) return { uri, path: b.path, label };
  const f = b.flow;
  let dest: Destination | undefined;
  if (f.transport === 'udp') dest = { transport: 'udp', address: f.address, port: f.port };
  else if (f.connectionId !== undefined) {
    if (f.node !== o.node || !o.flowAlive(f.connectionId)) {
      // A TCP flow can be re-opened towards the contact; a WebSocket one cannot.
      if (f.transport === 'ws' || f.transport === 'wss') return undefined;
      dest = { transport: 'tcp', address: f.address, port: f.port };
    } else {
      dest = { transport: f.transport === 'wss' ? 'ws' : (f.transport as Destination['transport']), address: f.address, port: f.port, connectionId: f.connectionId };
    }
  }
  return dest ? { uri, dest, label } : { uri, label };
}
