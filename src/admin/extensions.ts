/**
 * Extension credentials. The API takes a password, write-only; the tenant
 * document keeps digest HA1s for the tenant's realm, one per algorithm
 * (RFC 7616 §3.4.2), exactly what the registrar verifies against. The
 * password itself is never stored nor returned.
 *
 * An HA1 binds user name, realm and password, so it stays valid only while
 * the user name and the realm do: without a new password, an edit keeps the
 * current HA1s only when neither changed.
 */
import type { Extension, SipCredentials, TenantDocument } from '../routing/index.js';
import { computeHa1 } from '../sip/registrar/digest.js';
import { AdminError } from './errors.js';

/** The digest realm of a tenant's extensions, as the registrar challenges with it (src/call/tenant-index.ts). */
export function realmOf(doc: Pick<TenantDocument, 'domain'>, defaultRealm: string): string {
  return doc.domain !== undefined ? doc.domain.toLowerCase() : defaultRealm;
}

export function usernameOf(e: Pick<Extension, 'number'> & { sip?: { username?: string } }): string {
  return e.sip?.username ?? e.number;
}

export function credentialsFor(username: string | undefined, user: string, realm: string, password: string): SipCredentials {
  return {
    ...(username !== undefined ? { username } : {}),
    ha1Md5: computeHa1('MD5', user, realm, password),
    ha1Sha256: computeHa1('SHA-256', user, realm, password),
  };
}

/**
 * The stored extension for an input (the API form: no HA1s, maybe a
 * password). `current`/`currentRealm`: the extension as stored before and
 * the realm its HA1s were made for. `path`: where the password belongs in
 * the request, for the error.
 */
export function storedExtension(
  input: Record<string, unknown>, password: string | undefined,
  current: Extension | undefined, currentRealm: string | undefined, realm: string, path = '/password',
): Extension {
  const { sip: sipIn, ...rest } = input as { sip?: { username?: string } } & Record<string, unknown>;
  const username = sipIn?.username;
  const ext = rest as unknown as Extension;
  const user = usernameOf({ number: ext.number, ...(sipIn ? { sip: sipIn } : {}) });
  let sip: SipCredentials;
  if (password !== undefined) {
    sip = credentialsFor(username, user, realm, password);
  } else if (current !== undefined && usernameOf(current) === user && currentRealm === realm) {
    sip = { ...(username !== undefined ? { username } : {}), ha1Md5: current.sip.ha1Md5, ha1Sha256: current.sip.ha1Sha256 };
  } else {
    const why = current === undefined ? 'is required to create an extension'
      : currentRealm !== realm ? `is required: the realm changes to "${realm}", which invalidates the stored digest hashes`
        : 'is required when the SIP user name changes (the digest hashes contain it)';
    throw new AdminError('DP_ADMIN_VALIDATION', `extension ${ext.number}: password ${why}`, { issues: [{ in: 'body', path, message: why }] });
  }
  return { ...ext, sip };
}
