/**
 * Tenant API keys: what the admin API needs from storage (DESIGN.md §1
 * rule 3: the layer that needs storage declares the interface; src/store
 * implements it for the embedded store and Redis; main.ts wires one in).
 * Both implementations pass test/unit/store/api-key-contract.ts.
 *
 * A key is shown once, at creation, as `dpk_<id>_<secret>`:
 *   - `id`: 16 hex digits, public, names the record (listing, revoking, logs);
 *   - `secret`: 32 random bytes, base64url. Only its SHA-256 is stored. A
 *     plain hash (no salt, no stretching) is enough because the secret is
 *     256 random bits, not a human password: nothing to guess.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface ApiKeyRecord {
  /** 16 lowercase hex digits. */
  id: string;
  tenant: string;
  readOnly: boolean;
  /** hex SHA-256 of the secret part. */
  secretHash: string;
  /** Free text to tell keys apart ("billing export", "CRM sync"). */
  name?: string;
  /** Epoch ms. */
  createdAt: number;
}

export interface ApiKeyStore {
  get(id: string): Promise<ApiKeyRecord | undefined>;
  /** Stores a new record; false (nothing written) when the id is taken. */
  create(record: ApiKeyRecord): Promise<boolean>;
  /** Every key of a tenant, oldest first. */
  list(tenant: string): Promise<ApiKeyRecord[]>;
  /** false when there was no such key. */
  delete(id: string): Promise<boolean>;
  /** Revokes every key of a tenant (the tenant was deleted); returns how many. */
  deleteTenant(tenant: string): Promise<number>;
  close(): Promise<void>;
}

const KEY_PATTERN = /^dpk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
export const API_KEY_ID_PATTERN = /^[0-9a-f]{16}$/;

export interface NewApiKey {
  /** The full key, handed to the caller once. */
  key: string;
  id: string;
  secretHash: string;
}

export function generateApiKey(): NewApiKey {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { key: `dpk_${id}_${secret}`, id, secretHash: hashSecret(secret) };
}

/** Splits a presented key; undefined when it is not in the key format at all. */
export function parseApiKey(key: string): { id: string; secret: string } | undefined {
  const m = KEY_PATTERN.exec(key);
  return m ? { id: m[1] as string, secret: m[2] as string } : undefined;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Constant-time comparison of a presented secret with a stored hash. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Checks a decoded record (stores read them from files or Redis, which
 * someone may have edited); undefined when it is not a usable record.
 */
export function asApiKeyRecord(value: unknown): ApiKeyRecord | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.id !== 'string' || !API_KEY_ID_PATTERN.test(v.id)) return undefined;
  if (typeof v.tenant !== 'string' || v.tenant.length === 0) return undefined;
  if (typeof v.readOnly !== 'boolean') return undefined;
  if (typeof v.secretHash !== 'string' || !/^[0-9a-f]{64}$/.test(v.secretHash)) return undefined;
  if (typeof v.createdAt !== 'number' || !Number.isFinite(v.createdAt)) return undefined;
  if (v.name !== undefined && typeof v.name !== 'string') return undefined;
  const rec: ApiKeyRecord = { id: v.id, tenant: v.tenant, readOnly: v.readOnly, secretHash: v.secretHash, createdAt: v.createdAt };
  if (typeof v.name === 'string') rec.name = v.name;
  return rec;
}
