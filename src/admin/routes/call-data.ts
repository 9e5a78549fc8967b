/**
 * What calls leave behind, per tenant, and the node's metrics.
 *
 *   GET /v1/tenants/{tenant}/cdrs               话单, newest first: from, to, number, disposition, limit, cursor
 *   GET /v1/tenants/{tenant}/cdrs.csv           the same selection as CSV (streamed, at most MAX_CSV_ROWS rows)
 *   GET /v1/tenants/{tenant}/reports/{report}   来电分析 over the selection (src/cdr/cdr-reports.ts)
 *   GET /v1/tenants/{tenant}/calls              calls in progress (with Redis: on every node)
 *   DELETE /v1/tenants/{tenant}/calls/{callId}  hang one up (强拆): BYE to both parties, or stop it ringing, wherever it is
 *   GET /metrics                                Prometheus text (operator token)
 *
 * `from` and `to` are epoch milliseconds or an ISO 8601 date-time with a
 * zone; the range is on the end time (the CDR store's position), `from`
 * inclusive, `to` exclusive. CSV timestamps and report periods are in the
 * tenant's `timeZone` (default Asia/Shanghai). Record times in JSON are
 * epoch milliseconds, as stored.
 *
 * Each group of routes exists only when main.ts hands its dependency in.
 * With Redis, main.ts asks the other nodes too (src/store/redis/node-bus.ts):
 * a call lives in the node whose proxy carries it.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { exportCdrCsv } from '../../cdr/cdr-csv.js';
import { CdrError } from '../../cdr/cdr-error.js';
import { collectCdrs, type CdrSelection } from '../../cdr/cdr-pages.js';
import { answeredVsMissed, busiestTargets, callsByProvince, callsPerNumber, waitToAnswer } from '../../cdr/cdr-reports.js';
import { DEFAULT_TIME_ZONE } from '../../cdr/time-zone.js';
import { DISPOSITIONS, MAX_QUERY_LIMIT, checkQuery, type CdrDisposition, type CdrStore } from '../../store/cdr-store.js';
import { StoreError } from '../../store/store-error.js';
import type { AdminContext } from '../context.js';
import { AdminError, notFound, type AdminIssue } from '../errors.js';
import { paramsSchema } from './collections.js';

type Obj = Record<string, unknown>;

/** Rows of one CSV export; a larger selection is cut (narrow it with from/to). */
export const MAX_CSV_ROWS = 100_000;
/** Records one report reads at most; `truncated` says when the selection had more. */
export const MAX_REPORT_ROWS = 100_000;
export const DEFAULT_CDR_PAGE = 100;

export const REPORTS = ['calls-per-number', 'answered-vs-missed', 'wait-to-answer', 'by-province', 'busiest-targets'] as const;
type Report = (typeof REPORTS)[number];

const TIME = { type: 'string', minLength: 1, maxLength: 40, description: 'Epoch ms or ISO 8601 date-time with a zone (on the end time)' };
const SELECTION_PROPS: Obj = {
  from: { ...TIME, description: 'Inclusive lower bound on the end time: epoch ms or ISO 8601 date-time with a zone' },
  to: { ...TIME, description: 'Exclusive upper bound on the end time: epoch ms or ISO 8601 date-time with a zone' },
  number: { type: 'string', minLength: 1, maxLength: 64, description: 'Called or calling number (+86 / 0086 and separators ignored)' },
  disposition: { type: 'string', enum: [...DISPOSITIONS] },
};

function cdrQuery(withPage: boolean): Obj {
  const properties: Obj = { ...SELECTION_PROPS };
  if (withPage) {
    properties.limit = { type: 'string', pattern: '^[1-9][0-9]{0,3}$', description: `Page size, 1-${MAX_QUERY_LIMIT} (default ${DEFAULT_CDR_PAGE})` };
    properties.cursor = { type: 'string', minLength: 1, maxLength: 64, description: 'nextCursor of the previous page' };
  } else {
    properties.bom = { type: 'string', enum: ['true', 'false'], description: 'Prepend a UTF-8 BOM (Excel on Windows)' };
  }
  return { type: 'object', additionalProperties: false, properties };
}

const REPORT_QUERY: Obj = {
  type: 'object', additionalProperties: false,
  properties: {
    ...SELECTION_PROPS,
    bucket: { type: 'string', enum: ['hour', 'day'], description: 'calls-per-number only (default day)' },
    top: { type: 'string', pattern: '^[1-9][0-9]{0,3}$', description: 'busiest-targets only (default 10)' },
  },
};

function badQuery(path: string, message: string): AdminError {
  return new AdminError('DP_ADMIN_VALIDATION', 'query does not match its schema', { issues: [{ in: 'query', path, message }] });
}

/** Epoch ms or ISO 8601 with a zone → epoch ms. */
export function parseTime(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (/^[0-9]{1,15}$/.test(v)) return Number(v);
  const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/.test(v) ? Date.parse(v) : NaN;
  if (!Number.isFinite(iso) || iso < 0) throw badQuery(`/${name}`, 'must be epoch milliseconds or an ISO 8601 date-time with a zone (2025-03-03T10:00:00+08:00)');
  return iso;
}

function selectionOf(tenant: string, q: Record<string, string | undefined>): CdrSelection {
  const from = parseTime('from', q.from);
  const to = parseTime('to', q.to);
  if (from !== undefined && to !== undefined && to < from) throw badQuery('/to', 'must not be before from');
  return {
    tenant,
    ...(from !== undefined ? { from } : {}),
    ...(to !== undefined ? { to } : {}),
    ...(q.number !== undefined ? { number: q.number } : {}),
    ...(q.disposition !== undefined ? { disposition: q.disposition as CdrDisposition } : {}),
  };
}

/** A CDR store call: the caller's mistakes are 400s naming the field, the rest as ctx.store (503). */
async function cdrCall<T>(ctx: AdminContext, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    // The selection was checked before (checkSelection): what is left is the cursor.
    if (err instanceof StoreError && err.code === 'DP_STORE_BAD_CURSOR') throw badQuery('/cursor', 'is not a cursor this API returned');
    if (err instanceof StoreError && err.code === 'DP_STORE_BAD_QUERY') throw badQuery('', err.message);
    if (err instanceof CdrError) throw new AdminError('DP_ADMIN_VALIDATION', err.message, { issues: [{ in: 'query', path: '', message: err.message }] });
    return ctx.store(() => Promise.reject(err));
  }
}

/** Checks the selection as the store will, before anything is sent (a streamed reply cannot become a 400). */
function checkSelection(sel: CdrSelection): void {
  try {
    checkQuery({ ...sel, limit: 1 });
  } catch (err) {
    if (err instanceof StoreError) {
      const path = /^(from|to)\b/.exec(err.message)?.[0] ?? (err.message.startsWith('unknown disposition') ? 'disposition' : 'number');
      throw badQuery(`/${path}`, err.message);
    }
    throw err;
  }
}

function runReport(report: Report, records: Parameters<typeof answeredVsMissed>[0], q: Record<string, string | undefined>, timeZone: string): unknown {
  switch (report) {
    case 'calls-per-number': return callsPerNumber(records, { bucket: (q.bucket ?? 'day') as 'hour' | 'day', timeZone });
    case 'answered-vs-missed': return answeredVsMissed(records);
    case 'wait-to-answer': return waitToAnswer(records);
    case 'by-province': return callsByProvince(records);
    case 'busiest-targets': return busiestTargets(records, { top: q.top === undefined ? 10 : Number(q.top) });
  }
}

export function registerCallDataRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { cdrs, calls, metrics } = ctx.deps;
  if (cdrs) registerCdrRoutes(app, ctx, cdrs);

  if (calls) {
    app.get('/v1/tenants/:tenant/calls', {
      config: { access: 'tenant-read' },
      schema: { tags: ['calls'], summary: 'Calls of the tenant in progress, on every node when the nodes share a Redis (times in epoch ms)', params: paramsSchema() },
    }, async (req) => {
      const tenant = (req.params as { tenant: string }).tenant;
      await ctx.readTenant(tenant);
      const items = (await calls.list()).filter((c) => c.tenant === tenant).sort((a, b) => a.startedAt - b.startedAt || (a.callId < b.callId ? -1 : 1));
      return { items };
    });

    const hangUp = calls.hangUp?.bind(calls);
    if (hangUp) {
      const params = { type: 'object', additionalProperties: false, required: ['tenant', 'callId'], properties: { ...(paramsSchema() as { properties: Obj }).properties, callId: { type: 'string', minLength: 1, maxLength: 256 } } };
      app.delete('/v1/tenants/:tenant/calls/:callId', {
        config: { access: 'tenant-write' },
        schema: {
          tags: ['calls'], params,
          summary: 'Hang up a call in progress (强拆), on whichever node carries it: an answered call gets a BYE to both parties (Reason: SIP;cause=200), a ringing one is stopped (the caller gets 487). Its CDR says endedBy admin.',
        },
      }, async (req) => {
        const { tenant, callId } = req.params as { tenant: string; callId: string };
        await ctx.readTenant(tenant);
        const r = await hangUp(tenant, callId);
        switch (r.state) {
          case 'unknown': throw notFound(`call ${callId}`);
          case 'not-addressable':
            throw new AdminError('DP_ADMIN_CONFLICT', 'the call cannot be ended from here now: it is still being routed, or its dialog gave no Contact or Record-Route to address it', { extra: { callId } });
          case 'ringing': return { callId, ended: true, state: 'ringing' };
          case 'answered': return { callId, ended: true, state: 'answered', byeResponses: { caller: r.caller, callee: r.callee } };
        }
      });
    }
  }

  if (metrics) {
    app.get('/metrics', {
      config: { access: 'operator' },
      schema: { tags: ['health'], summary: 'Prometheus metrics of this node (operator token)' },
    }, async (_req, reply) => reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(await metrics.render()));
  }
}

function registerCdrRoutes(app: FastifyInstance, ctx: AdminContext, cdrs: CdrStore): void {
  const tags = ['cdrs'];

  app.get('/v1/tenants/:tenant/cdrs', {
    config: { access: 'tenant-read' },
    schema: { tags, summary: 'CDRs (话单), newest first, by end time', params: paramsSchema(), querystring: cdrQuery(true) },
  }, async (req) => {
    const tenant = (req.params as { tenant: string }).tenant;
    const q = req.query as Record<string, string | undefined>;
    const sel = selectionOf(tenant, q);
    const limit = q.limit === undefined ? DEFAULT_CDR_PAGE : Number(q.limit);
    if (limit > MAX_QUERY_LIMIT) throw badQuery('/limit', `must be 1-${MAX_QUERY_LIMIT}`);
    checkSelection(sel);
    await ctx.readTenant(tenant);
    const page = await cdrCall(ctx, () => cdrs.query({ ...sel, limit, ...(q.cursor !== undefined ? { cursor: q.cursor } : {}) }));
    return page.nextCursor !== undefined ? { items: page.items, nextCursor: page.nextCursor } : { items: page.items };
  });

  app.get('/v1/tenants/:tenant/cdrs.csv', {
    config: { access: 'tenant-read' },
    schema: { tags, summary: `CDRs as CSV (RFC 4180, UTF-8, tenant time zone), newest first, at most ${MAX_CSV_ROWS} rows`, params: paramsSchema(), querystring: cdrQuery(false) },
  }, async (req, reply) => {
    const tenant = (req.params as { tenant: string }).tenant;
    const q = req.query as Record<string, string | undefined>;
    const sel = selectionOf(tenant, q);
    checkSelection(sel);
    const doc = (await ctx.readTenant(tenant)).doc;
    const csv = exportCdrCsv(cdrs, sel, { timeZone: doc.timeZone ?? DEFAULT_TIME_ZONE, bom: q.bom === 'true', maxRows: MAX_CSV_ROWS });
    // The first chunk (header and first page) is read before answering, so a store that is down is still a 503.
    const first = await cdrCall(ctx, () => csv.next());
    async function* rest(): AsyncGenerator<string> {
      if (first.done !== true) yield first.value;
      yield* csv;
    }
    return reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="cdrs-${tenant}.csv"`)
      .header('cache-control', 'no-store')
      .send(Readable.from(rest(), { objectMode: false }));
  });

  const reportParams = { type: 'object', additionalProperties: false, required: ['tenant', 'report'], properties: { ...(paramsSchema() as { properties: Obj }).properties, report: { type: 'string', enum: [...REPORTS] } } };
  app.get('/v1/tenants/:tenant/reports/:report', {
    config: { access: 'tenant-read' },
    schema: { tags, summary: '来电分析 over the CDRs of a period (calls placed by start time, in the tenant time zone)', params: reportParams, querystring: REPORT_QUERY },
  }, async (req) => {
    const { tenant, report } = req.params as { tenant: string; report: Report };
    const q = req.query as Record<string, string | undefined>;
    const misplaced: AdminIssue[] = [];
    if (q.bucket !== undefined && report !== 'calls-per-number') misplaced.push({ in: 'query', path: '/bucket', message: 'applies to calls-per-number only' });
    if (q.top !== undefined && report !== 'busiest-targets') misplaced.push({ in: 'query', path: '/top', message: 'applies to busiest-targets only' });
    if (misplaced.length > 0) throw new AdminError('DP_ADMIN_VALIDATION', 'query does not match its schema', { issues: misplaced });
    const sel = selectionOf(tenant, q);
    checkSelection(sel);
    const doc = (await ctx.readTenant(tenant)).doc;
    const timeZone = doc.timeZone ?? DEFAULT_TIME_ZONE;
    const { records, truncated } = await cdrCall(ctx, () => collectCdrs(cdrs, sel, MAX_REPORT_ROWS));
    return { report, timeZone, records: records.length, truncated, result: runReport(report, records, q, timeZone) };
  });
}
