/**
 * Registrar (RFC 3261 §10.3) with digest authentication, Path (RFC 3327)
 * and RFC 5626 instance ids. The binding update itself is the pure function
 * `applyRegister`; storage is a LocationService compare-and-set.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import { SipError } from '../message/errors.js';
import type { SipRequest } from '../message/message.js';
import type { NameAddr } from '../message/name-addr.js';
import { parseContacts } from '../message/parser.js';
import { escapeUser, unescapeUri } from '../message/uri.js';
import { unquote } from '../message/grammar.js';
import { createResponse, generateTag } from '../transaction/create-response.js';
import type { ServerTransaction } from '../transaction/transaction-layer.js';
import type { CredentialSource } from './credentials.js';
import type { DigestAuthenticator } from './digest.js';
import type { Binding, BindingFlow, LocationService } from './location-service.js';

export interface RegistrarPolicy {
  /** Default expiry when the request names none (§10.2.1.1: "3600 seconds"). */
  defaultExpires: number;
  /** Shorter non-zero requests get 423 with Min-Expires (§10.3 step 7). */
  minExpires: number;
  /** Longer requests are shortened to this. */
  maxExpires: number;
  /** Bindings one AOR may hold. */
  maxContacts: number;
}

export const DEFAULT_POLICY: RegistrarPolicy = { defaultExpires: 3600, minExpires: 60, maxExpires: 7200, maxContacts: 10 };

export interface RegisterInput {
  aor: string;
  callId: string;
  cseq: number;
  /** '*' or the Contact values of the request. */
  contacts: NameAddr[] | '*';
  /** Expires header value, if any. */
  expiresHeader: number | undefined;
  path: string[];
  flow: BindingFlow;
  userAgent?: string;
}

export type RegisterResult =
  | { ok: true; bindings: Binding[] }
  | { ok: false; status: number; reason: string; headers?: Array<[string, string]> };

/**
 * §10.3 steps 6-8 on one AOR's current bindings. Pure: same input, same output.
 */
export function applyRegister(existing: readonly Binding[], input: RegisterInput, policy: RegistrarPolicy, now: number): RegisterResult {
  const live = existing.filter((b) => b.expiresAt > now);
  // Step 6: "If the request has additional Contact fields or an expiration time
  // other than zero, the request is invalid, and the server MUST return a 400
  // (Invalid Request)" — for the "*" form.
  if (input.contacts === '*') {
    if (input.expiresHeader !== 0) return { ok: false, status: 400, reason: 'Contact * requires Expires: 0' };
    for (const b of live) {
      if (b.callId === input.callId && input.cseq <= b.cseq) return { ok: false, status: 500, reason: 'Out-of-order REGISTER (CSeq not higher)' };
    }
    return { ok: true, bindings: [] };
  }
  let next = live.slice();
  for (const c of input.contacts) {
    if (!c.uri.isSip) return { ok: false, status: 400, reason: 'Contact must be a SIP or SIPS URI' };
    const expParam = c.params.get('expires');
    let expires: number;
    if (expParam !== undefined && expParam !== null) {
      // §10.2.1.1: a malformed expires param is treated as absent ("3600").
      expires = /^[0-9]{1,10}$/.test(expParam) ? Number(expParam) : input.expiresHeader ?? policy.defaultExpires;
    } else {
      expires = input.expiresHeader ?? policy.defaultExpires;
    }
    // Step 7: "If and only if the requested expiration interval is greater than zero AND
    // smaller than one hour AND less than a registrar-configured minimum, the registrar
    // MAY reject the registration with a response of 423 (Interval Too Brief)."
    if (expires > 0 && expires < policy.minExpires) {
      return { ok: false, status: 423, reason: 'Interval Too Brief', headers: [['Min-Expires', String(policy.minExpires)]] };
    }
    expires = Math.min(expires, policy.maxExpires);
    const qRaw = c.params.get('q');
    let q = 1;
    if (qRaw !== undefined && qRaw !== null) {
      if (!/^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$/.test(qRaw)) return { ok: false, status: 400, reason: 'Invalid q-value in Contact' };
      q = Number(qRaw);
    }
    const instanceRaw = c.params.get('+sip.instance');
    const instanceId = instanceRaw ? unquote(instanceRaw) : undefined;
    const contact = c.uri.toString();
    // RFC 5626 §6: with an instance id, the binding is the instance's, whatever its Contact now says.
    const idx = next.findIndex((b) => (instanceId !== undefined && b.instanceId === instanceId) || b.contact === contact);
    const found = idx >= 0 ? next[idx] : undefined;
    // Step 7: "If the Call-ID value in the existing binding differs from the Call-ID value in
    // the request, the binding MUST be removed if the expiration time is zero and updated
    // otherwise. If they are the same, the registrar compares the CSeq value. If the value
    // is higher than that of the existing binding, it MUST update or remove the binding as
    // above. If not, the update MUST be aborted and the request fails."
    if (found && found.callId === input.callId && input.cseq <= found.cseq) {
      return { ok: false, status: 500, reason: 'Out-of-order REGISTER (CSeq not higher)' };
    }
    if (expires === 0) {
      if (idx >= 0) next.splice(idx, 1);
      continue;
    }
    const binding: Binding = {
      aor: input.aor,
      contact,
      expiresAt: now + expires * 1000,
      q,
      callId: input.callId,
      cseq: input.cseq,
      path: input.path,
      flow: input.flow,
      registeredAt: found?.registeredAt ?? now,
      ...(instanceId !== undefined ? { instanceId } : {}),
      ...(input.userAgent !== undefined ? { userAgent: input.userAgent } : {}),
    };
    if (idx >= 0) next[idx] = binding;
    else next.push(binding);
  }
  if (next.length > policy.maxContacts) {
    // Keep the newest ones? No: refusing keeps the user's view consistent with what is stored.
    return { ok: false, status: 403, reason: `Too many contacts (max ${policy.maxContacts})` };
  }
  // Highest q first, newest first among equals: the order the proxy tries them in.
  next = next.sort((a, b) => b.q - a.q || b.registeredAt - a.registeredAt);
  return { ok: true, bindings: next };
}

export interface RegistrarOptions {
  location: LocationService;
  credentials: CredentialSource;
  /** Authenticator for the realm this registrar serves; undefined = no authentication. */
  digest?: DigestAuthenticator;
  realm: string;
  clock: Clock;
  log: Logger;
  policy?: RegistrarPolicy;
  /** Id of this node, stored with connection-oriented flows. */
  node: string;
}

/** The AOR a user registers: one per user within the realm, whatever host the phone put in To. */
export function aorFor(user: string, realm: string): string {
  return `sip:${escapeUser(user)}@${realm.toLowerCase()}`;
}

export class Registrar {
  private readonly policy: RegistrarPolicy;

  constructor(private readonly o: RegistrarOptions) {
    this.policy = o.policy ?? DEFAULT_POLICY;
  }

  /** REGISTER handler for the proxy core. Never throws; always answers. */
  handle = (tx: ServerTransaction, req: SipRequest): void => {
    this.process(req).then(
      (r) => {
        const res = createResponse(req, r.status, r.reason, { toTag: generateTag() });
        for (const [n, v] of r.headers ?? []) res.append(n, v);
        tx.respond(res);
      },
      (err: unknown) => {
        this.o.log.error({ err, callId: req.get('call-id') }, 'registrar failed');
        const res = createResponse(req, 500, 'Server Internal Error', { toTag: generateTag() });
        res.append('Retry-After', '5');
        tx.respond(res);
      },
    );
  };

  private async process(req: SipRequest): Promise<{ status: number; reason: string; headers?: Array<[string, string]> }> {
    // §10.3 step 2: "the registrar MUST process ... Require"; we know 'path' (RFC 3327).
    const unsupported = req.getList('require').filter((t) => t.toLowerCase() !== 'path');
    if (unsupported.length > 0) return { status: 420, reason: 'Bad Extension', headers: [['Unsupported', unsupported.join(', ')]] };

    const to = req.to;
    // §10.3 step 5: the AOR is the To URI, which must be a SIP or SIPS URI (RFC 4475 unksm2).
    if (!to.uri.isSip || to.uri.user === undefined) return { status: 400, reason: 'To must be a SIP URI with a user part' };
    const user = unescapeUri(to.uri.user);

    let contacts: NameAddr[] | '*';
    try {
      contacts = parseContacts(req.getAll('contact'));
    } catch (e) {
      if (e instanceof SipError) return { status: 400, reason: e.reason };
      throw e;
    }
    let expiresHeader: number | undefined;
    const exp = req.get('expires');
    if (exp !== undefined) {
      // §20.19: a malformed Expires is treated as absent; huge values are capped below.
      expiresHeader = /^\s*[0-9]{1,10}\s*$/.test(exp) ? Number(exp) : undefined;
    }

    // Step 3: "A registrar SHOULD authenticate the UAC."
    if (this.o.digest) {
      const verdict = await this.o.digest.verify({ method: 'REGISTER', requestUri: req.uri.toString(), authorization: req.getAll('authorization') }, this.o.credentials);
      switch (verdict.kind) {
        case 'ok':
          // Step 4: "the registrar ... MUST ... determine if the authorized user is
          // authorized to modify registrations for this address-of-record".
          if (verdict.username !== user) return { status: 403, reason: 'Forbidden' };
          break;
        case 'malformed':
          return { status: 400, reason: verdict.reason };
        case 'stale':
          return { status: 401, reason: 'Unauthorized', headers: this.o.digest.challenge({ stale: true }).map((v) => ['WWW-Authenticate', v]) };
        default:
          // 'missing' and 'failed' alike: the same fresh challenge whether or not the user exists.
          if (verdict.kind === 'failed') this.o.log.info({ user: verdict.username, why: verdict.internalReason, from: req.source?.address }, 'REGISTER authentication failed');
          return { status: 401, reason: 'Unauthorized', headers: this.o.digest.challenge().map((v) => ['WWW-Authenticate', v]) };
      }
    }

    const aor = aorFor(user, this.o.realm);
    const src = req.source;
    const flow: BindingFlow = {
      transport: src?.transport ?? 'udp',
      address: src?.address ?? '',
      port: src?.port ?? 0,
      ...(src?.connectionId !== undefined ? { connectionId: src.connectionId, node: this.o.node } : {}),
    };
    const input: RegisterInput = {
      aor,
      callId: req.callId,
      cseq: req.cseq.seq,
      contacts,
      expiresHeader,
      path: req.getList('path'),
      flow,
      ...(req.get('user-agent') !== undefined ? { userAgent: req.get('user-agent') } : {}),
    };
    const now = this.o.clock.now();
    // Step 8: atomic per AOR; retry the compare-and-set on a lost race.
    for (let attempt = 0; attempt < 5; attempt++) {
      const rec = await this.o.location.get(aor, now);
      const result = applyRegister(rec.bindings, input, this.policy, now);
      if (!result.ok) return { status: result.status, reason: result.reason, headers: result.headers };
      if (contacts !== '*' && contacts.length === 0) return this.ok(result.bindings, req, now); // a query (§10.2.3)
      if (await this.o.location.put(aor, rec.version, result.bindings)) {
        this.o.log.debug({ aor, bindings: result.bindings.length }, 'registration updated');
        return this.ok(result.bindings, req, now);
      }
    }
    return { status: 500, reason: 'Registration contention, retry', headers: [['Retry-After', '1']] };
  }

  /**
   * Step 8: "The registrar returns a 200 (OK) response. The response MUST
   * contain Contact header field values enumerating all current bindings.
   * Each Contact value MUST feature an "expires" parameter indicating its
   * expiration interval". RFC 3327 §5.3: the Path values are echoed.
   */
  private ok(bindings: Binding[], req: SipRequest, now: number): { status: number; reason: string; headers: Array<[string, string]> } {
    const headers: Array<[string, string]> = bindings.map((b) => ['Contact', `<${b.contact}>;expires=${Math.max(0, Math.round((b.expiresAt - now) / 1000))}${b.q !== 1 ? `;q=${b.q}` : ''}`]);
    for (const p of req.getList('path')) headers.push(['Path', p]);
    headers.push(['Date', new Date(now).toUTCString()]);
    return { status: 200, reason: 'OK', headers };
  }
}

