/**
 * In-process credential source: HA1 hashes per user and realm, never the
 * password (the demo tenant and single-box deployments; the admin API issue
 * moves extensions into the shared store).
 */
import type { CredentialSource, UserCredentials } from '../../sip/registrar/credentials.js';
import { computeHa1 } from '../../sip/registrar/digest.js';

export class EmbeddedCredentialStore implements CredentialSource {
  private readonly users = new Map<string, UserCredentials>();

  /** Stores the HA1 hashes for a user; the password itself is not kept. */
  setPassword(username: string, realm: string, password: string): void {
    this.users.set(`${realm}\u0000${username}`, {
      username,
      realm,
      ha1Md5: computeHa1('MD5', username, realm, password),
      ha1Sha256: computeHa1('SHA-256', username, realm, password),
    });
  }

  has(username: string, realm: string): boolean {
    return this.users.has(`${realm}\u0000${username}`);
  }

  async lookup(username: string, realm: string): Promise<UserCredentials | undefined> {
    return this.users.get(`${realm}\u0000${username}`);
  }
}
