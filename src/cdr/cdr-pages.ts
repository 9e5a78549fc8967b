/**
 * Every record of a query, page after page, for exports and reports that
 * need more than one page. Bounded by `maxRows` so one request cannot walk
 * a tenant's whole month on a busy system by accident.
 */
import type { CdrQuery, CdrRecord, CdrStore } from '../store/cdr-store.js';
import { CdrError } from './cdr-error.js';

export type CdrSelection = Omit<CdrQuery, 'limit' | 'cursor'>;

export const DEFAULT_MAX_ROWS = 100_000;
const PAGE = 1000;

export interface PagesResult {
  /** True when `maxRows` stopped the walk before the end of the selection. */
  truncated: boolean;
}

/** Yields records newest first; `result.truncated` is final once the generator is done. */
export async function* iterateCdrs(store: CdrStore, selection: CdrSelection, maxRows = DEFAULT_MAX_ROWS, result: PagesResult = { truncated: false }): AsyncGenerator<CdrRecord[]> {
  if (!Number.isSafeInteger(maxRows) || maxRows < 1) throw new CdrError('DP_CDR_BAD_OPTION', `maxRows must be a positive integer, got ${String(maxRows)}`);
  let cursor: string | undefined;
  let rows = 0;
  result.truncated = false;
  do {
    const page = await store.query({ ...selection, limit: Math.min(PAGE, maxRows - rows), ...(cursor !== undefined ? { cursor } : {}) });
    rows += page.items.length;
    if (page.items.length > 0) yield page.items;
    cursor = page.nextCursor;
    if (rows >= maxRows && cursor !== undefined) {
      result.truncated = true;
      return;
    }
  } while (cursor !== undefined);
}

/** All records of a selection (at most `maxRows`), newest first. */
export async function collectCdrs(store: CdrStore, selection: CdrSelection, maxRows = DEFAULT_MAX_ROWS): Promise<{ records: CdrRecord[]; truncated: boolean }> {
  const result: PagesResult = { truncated: false };
  const records: CdrRecord[] = [];
  for await (const page of iterateCdrs(store, selection, maxRows, result)) records.push(...page);
  return { records, truncated: result.truncated };
}
