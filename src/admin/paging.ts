/**
 * Merge patch (RFC 7396) and cursor pagination, shared by the list and
 * PATCH routes.
 */
import { AdminError } from './errors.js';

type Obj = Record<string, unknown>;

const isPlainObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 7396 §2: null removes, objects merge recursively, everything else (arrays included) replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const out: Obj = isPlainObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export interface Page<T> {
  items: T[];
  /** Absent on the last page. */
  nextCursor?: string;
}

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 500;

export function pageSize(limit: string | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE_SIZE;
  const n = Number(limit);
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_PAGE_SIZE) {
    throw new AdminError('DP_ADMIN_VALIDATION', undefined, { issues: [{ in: 'query', path: '/limit', message: `must be 1-${MAX_PAGE_SIZE}` }] });
  }
  return n;
}

/**
 * Keyset pagination: items ordered by key, the cursor is the last key of
 * the page (base64url, opaque to clients). Stable under concurrent edits:
 * an insert or delete never repeats or skips another item.
 */
export function paginate<T>(items: readonly T[], keyOf: (t: T) => string, limit: number, cursor: string | undefined): Page<T> {
  let after: string | undefined;
  if (cursor !== undefined) {
    after = Buffer.from(cursor, 'base64url').toString('utf8');
    if (Buffer.from(after, 'utf8').toString('base64url') !== cursor) {
      throw new AdminError('DP_ADMIN_VALIDATION', undefined, { issues: [{ in: 'query', path: '/cursor', message: 'is not a cursor this API returned' }] });
    }
  }
  const sorted = [...items].sort((a, b) => compare(keyOf(a), keyOf(b)));
  const rest = after === undefined ? sorted : sorted.filter((t) => compare(keyOf(t), after) > 0);
  const page = rest.slice(0, limit);
  const last = page[page.length - 1];
  return rest.length > limit && last !== undefined
    ? { items: page, nextCursor: Buffer.from(keyOf(last), 'utf8').toString('base64url') }
    : { items: page };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Case-insensitive substring search in the given fields. */
export function matchesQuery(obj: Obj, q: string | undefined, key: string): boolean {
  if (q === undefined) return true;
  const needle = q.toLowerCase();
  return [key, obj.name, obj.label, obj.description].some((v) => typeof v === 'string' && v.toLowerCase().includes(needle));
}
