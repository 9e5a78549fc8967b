/**
 * Audio prompts of a tenant (IVR menu greetings, announcements): the bytes
 * as uploaded plus what the admin API shows about them. The admin layer
 * checks the audio (src/media/wav.ts) and hands its format in; the store
 * keeps bytes and description together and never interprets the audio.
 *
 * Both implementations (embedded: memory or files; Redis) pass
 * test/unit/store/prompt-contract.ts.
 *
 * Versions are content hashes (16 hex digits of SHA-256 over the audio's
 * hash and the descriptive fields), like the admin API's object versions:
 * uploading the same file with the same name again gives the same
 * version, and every node computes it alike. Timestamps are left out of it
 * for that reason.
 *
 * Per-tenant limits (count and total bytes) keep one tenant from filling
 * the store: prompts are the only large values it holds.
 */
import { createHash } from 'node:crypto';
import { MAX_PROMPT_BYTES, type PromptCodec } from '../media/wav.js';
import { StoreError } from './store-error.js';
import { isWellFormedUnicode } from './unicode.js';

export const PROMPT_CODECS: readonly PromptCodec[] = ['pcm16', 'pcmu', 'pcma'];
export const MAX_PROMPTS_PER_TENANT = 200;
/** 100 MiB: ten maximal prompts, or hours of ordinary greetings. */
export const MAX_PROMPT_BYTES_PER_TENANT = 100 * 1024 * 1024;
export { MAX_PROMPT_BYTES };

/** Per-tenant limits; stores take other values only in tests (filling 100 MiB to test the limit is slow). */
export interface PromptLimits {
  prompts: number;
  bytes: number;
}

export const DEFAULT_PROMPT_LIMITS: PromptLimits = { prompts: MAX_PROMPTS_PER_TENANT, bytes: MAX_PROMPT_BYTES_PER_TENANT };

/** The tenant document's `Id` pattern: prompts are named by IVR menus and announce actions with it. */
export const PROMPT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const MAX_NAME = 200;
const MAX_DESCRIPTION = 1000;

/** What the caller says about an upload. */
export interface PromptDescription {
  name?: string;
  description?: string;
  codec: PromptCodec;
  sampleRate: number;
  durationMs: number;
}

export interface PromptMeta extends PromptDescription {
  id: string;
  /** Size of the audio file. */
  bytes: number;
  /** hex SHA-256 of the audio file. */
  sha256: string;
  version: string;
  /** Epoch ms of the last put. */
  updatedAt: number;
}

export interface PromptPutOptions {
  /** Write only if the current version is this one (If-Match). */
  ifVersion?: string;
  /** Write only if there is no such prompt (If-None-Match: *). */
  ifAbsent?: boolean;
}

export interface PromptPage {
  items: PromptMeta[];
  /** Hand back as `after` for the next page; absent on the last page. */
  nextAfter?: string;
}

export interface PromptStore {
  /** Creates or replaces; PromptConflict when a precondition fails, DP_STORE_PROMPT_QUOTA beyond the tenant's limits. */
  put(tenant: string, id: string, prompt: { audio: Uint8Array; meta: PromptDescription }, opts?: PromptPutOptions): Promise<{ meta: PromptMeta; created: boolean }>;
  getMeta(tenant: string, id: string): Promise<PromptMeta | undefined>;
  /** The bytes and the description they go with (read together: the version names these bytes). */
  getAudio(tenant: string, id: string): Promise<{ meta: PromptMeta; audio: Buffer } | undefined>;
  /** By id (code-unit order), `limit` at most, those after `after`. */
  list(tenant: string, opts: { limit: number; after?: string }): Promise<PromptPage>;
  /** false when there was none; PromptConflict when `ifVersion` is not the current version. */
  delete(tenant: string, id: string, opts?: { ifVersion?: string }): Promise<boolean>;
  /** Every prompt of a tenant (the tenant was deleted); returns how many. */
  deleteTenant(tenant: string): Promise<number>;
  close(): Promise<void>;
}

/** A conditional put or delete found another state than expected; `actual` undefined = no such prompt. */
export class PromptConflict extends Error {
  readonly code = 'DP_STORE_CONFLICT';

  constructor(readonly id: string, readonly actual: string | undefined) {
    super(actual === undefined ? `prompt ${id} does not exist` : `prompt ${id} is at version ${actual}`);
    this.name = 'PromptConflict';
  }
}

export function assertPromptTenant(tenant: unknown): asserts tenant is string {
  // Stricter than tenant documents' ids: a prompt's tenant names a directory (embedded store) as well as a key.
  if (typeof tenant !== 'string' || tenant.length === 0 || tenant.length > 256 || !isWellFormedUnicode(tenant)) {
    throw new StoreError('DP_STORE_BAD_TENANT_ID', `tenant id ${JSON.stringify(String(tenant).slice(0, 80))} cannot own prompts (non-empty, valid Unicode, at most 256 characters)`);
  }
}

export function assertPromptId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || !PROMPT_ID_PATTERN.test(id)) {
    throw new StoreError('DP_STORE_BAD_PROMPT', `not a prompt id: ${JSON.stringify(String(id).slice(0, 80))} (letters, digits, _ . -, 1-64, starting with a letter or digit)`);
  }
}

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function isText(v: unknown, max: number): v is string {
  return typeof v === 'string' && v.length <= max && isWellFormedUnicode(v);
}

/**
 * Checks a put and builds the stored description (fixed field order, only
 * known fields). Throws DP_STORE_BAD_PROMPT naming the problem.
 */
export function preparePut(tenant: string, id: string, prompt: { audio: Uint8Array; meta: PromptDescription }, now: number): PromptMeta {
  assertPromptTenant(tenant);
  assertPromptId(id);
  const bad = (why: string): never => { throw new StoreError('DP_STORE_BAD_PROMPT', `prompt ${id}: ${why}`); };
  const { audio, meta } = prompt ?? {};
  if (!(audio instanceof Uint8Array)) return bad('audio must be bytes');
  if (audio.length === 0) return bad('audio is empty');
  if (audio.length > MAX_PROMPT_BYTES) return bad(`audio is ${audio.length} bytes, at most ${MAX_PROMPT_BYTES}`);
  if (typeof meta !== 'object' || meta === null) return bad('no description');
  if (meta.name !== undefined && !isText(meta.name, MAX_NAME)) bad(`name must be text of at most ${MAX_NAME} characters`);
  if (meta.description !== undefined && !isText(meta.description, MAX_DESCRIPTION)) bad(`description must be text of at most ${MAX_DESCRIPTION} characters`);
  if (!PROMPT_CODECS.includes(meta.codec)) bad(`codec must be one of ${PROMPT_CODECS.join(', ')}`);
  if (!isCount(meta.sampleRate) || meta.sampleRate === 0) bad('sampleRate must be a positive integer');
  if (!isCount(meta.durationMs)) bad('durationMs must be a non-negative integer');
  const sha256 = createHash('sha256').update(audio).digest('hex');
  const described: PromptDescription = {
    ...(meta.name !== undefined ? { name: meta.name } : {}),
    ...(meta.description !== undefined ? { description: meta.description } : {}),
    codec: meta.codec, sampleRate: meta.sampleRate, durationMs: meta.durationMs,
  };
  return { id, ...described, bytes: audio.length, sha256, version: promptVersion(sha256, described), updatedAt: now };
}

export function promptVersion(sha256: string, d: PromptDescription): string {
  // Length-prefixed fields: no two different descriptions hash the same text.
  const fields = [sha256, d.name ?? '\u0000', d.description ?? '\u0000', d.codec, String(d.sampleRate), String(d.durationMs)];
  return createHash('sha256').update(fields.map((f) => `${f.length}:${f}`).join('|')).digest('hex').slice(0, 16);
}

/** A stored description read back (from a file or a Redis hash someone may have edited); undefined when not usable. */
export function asPromptMeta(v: unknown, id: string): PromptMeta | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const num = (x: unknown): number | undefined => {
    const n = typeof x === 'string' && /^[0-9]{1,15}$/.test(x) ? Number(x) : x;
    return isCount(n) ? n : undefined;
  };
  const bytes = num(o.bytes);
  const sampleRate = num(o.sampleRate);
  const durationMs = num(o.durationMs);
  const updatedAt = num(o.updatedAt);
  if (o.id !== id || bytes === undefined || sampleRate === undefined || durationMs === undefined || updatedAt === undefined) return undefined;
  if (!PROMPT_CODECS.includes(o.codec as PromptCodec) || typeof o.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(o.sha256)) return undefined;
  if (typeof o.version !== 'string' || !/^[0-9a-f]{16}$/.test(o.version)) return undefined;
  if ((o.name !== undefined && typeof o.name !== 'string') || (o.description !== undefined && typeof o.description !== 'string')) return undefined;
  return {
    id,
    ...(typeof o.name === 'string' ? { name: o.name } : {}),
    ...(typeof o.description === 'string' ? { description: o.description } : {}),
    codec: o.codec as PromptCodec, sampleRate, durationMs, bytes, sha256: o.sha256, version: o.version, updatedAt,
  };
}

/** The quota check both stores make (the Redis one inside its write script). */
export function quotaProblem(limits: PromptLimits, existingCount: number, existingBytes: number, replacing: number | undefined, newBytes: number): string | undefined {
  if (replacing === undefined && existingCount >= limits.prompts) return countQuotaMessage(limits);
  const total = existingBytes - (replacing ?? 0) + newBytes;
  if (total > limits.bytes) return bytesQuotaMessage(limits, total);
  return undefined;
}

export function countQuotaMessage(limits: PromptLimits): string {
  return `a tenant has at most ${limits.prompts} prompts`;
}

export function bytesQuotaMessage(limits: PromptLimits, total: number): string {
  return `a tenant's prompts total at most ${limits.bytes} bytes (this one would make ${total})`;
}

export function checkListOptions(opts: { limit: number; after?: string }): void {
  if (!Number.isSafeInteger(opts.limit) || opts.limit < 1 || opts.limit > 1000) throw new StoreError('DP_STORE_BAD_QUERY', 'limit must be 1-1000');
  if (opts.after !== undefined && typeof opts.after !== 'string') throw new StoreError('DP_STORE_BAD_QUERY', 'after must be a prompt id');
}

export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
