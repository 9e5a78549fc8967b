/**
 * Where digest authentication finds a user's secret. Stores keep HA1 hashes,
 * never clear-text passwords (HA1 = H(username ":" realm ":" password),
 * RFC 7616 §3.4.2), one per algorithm, because a realm-bound HA1 cannot be
 * converted between MD5 and SHA-256.
 */
export interface UserCredentials {
  username: string;
  realm: string;
  /** hex MD5(username:realm:password) */
  ha1Md5: string;
  /** hex SHA-256(username:realm:password) */
  ha1Sha256: string;
}

export interface CredentialSource {
  /** undefined when no such user exists in the realm. */
  lookup(username: string, realm: string): Promise<UserCredentials | undefined>;
}
