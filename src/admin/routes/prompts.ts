/**
 * Audio prompts of a tenant (IVR menu greetings, announcements).
 *
 *   GET    /v1/tenants/{tenant}/prompts               descriptions (limit, cursor), no audio
 *   GET    /v1/tenants/{tenant}/prompts/{id}          description, ETag; with `Accept: audio/wav` the file
 *   GET    /v1/tenants/{tenant}/prompts/{id}/audio    the file as uploaded (audio/wav, ETag, If-None-Match → 304)
 *   PUT    /v1/tenants/{tenant}/prompts/{id}          upload: the raw WAV bytes as the body; create (201) or replace (200)
 *   DELETE /v1/tenants/{tenant}/prompts/{id}          204; 409 while an IVR menu or announce action names it
 *
 * The upload's body is the file itself, not JSON or multipart, with
 * Content-Type audio/wav (also audio/x-wav, audio/wave, audio/vnd.wave or
 * application/octet-stream); anything else is a 415 before the body is
 * read, a body over the limit (10 MiB) a 413. `name` and `description`
 * come in the query string (percent-encoded UTF-8 carries 中文 names,
 * which HTTP headers cannot reliably). The file is checked by
 * src/media/wav.ts (8 kHz mono G.711 μ-law/A-law, or 16-bit PCM at 8 or
 * 16 kHz; at most 10 minutes); a refusal is a 400 naming the problem.
 * The file is stored as uploaded.
 *
 * Versions are content hashes (the store's), ETag / If-Match / If-None-Match: *
 * as for every other object. These routes live in their own Fastify scope
 * so the audio content-type parser and its larger body limit apply to the
 * upload only: every other route still answers a non-JSON body with 415.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MAX_PROMPT_BYTES, parseWav } from '../../media/wav.js';
import { PROMPT_ID_PATTERN, PromptConflict, type PromptMeta, type PromptStore } from '../../store/prompt-store.js';
import { StoreError } from '../../store/store-error.js';
import { checkPreconditions, type AdminContext } from '../context.js';
import { AdminError, notFound } from '../errors.js';
import { pageSize } from '../paging.js';
import { promptReferences } from '../prompt-references.js';
import { etag } from '../resources.js';
import { paramsSchema } from './collections.js';

type Obj = Record<string, unknown>;

export const PROMPT_CONTENT_TYPES = ['audio/wav', 'audio/x-wav', 'audio/wave', 'audio/vnd.wave', 'application/octet-stream'] as const;

/** The description as the API shows it. */
export function showPrompt(m: PromptMeta): Obj {
  return {
    id: m.id,
    ...(m.name !== undefined ? { name: m.name } : {}),
    ...(m.description !== undefined ? { description: m.description } : {}),
    codec: m.codec, sampleRate: m.sampleRate, channels: 1, durationMs: m.durationMs, bytes: m.bytes, sha256: m.sha256,
    version: m.version, updatedAt: m.updatedAt,
  };
}

function mediaType(req: FastifyRequest): string | undefined {
  const v = req.headers['content-type'];
  return typeof v === 'string' ? (v.split(';')[0] as string).trim().toLowerCase() : undefined;
}

function wantsAudio(req: FastifyRequest): boolean {
  const accept = req.headers.accept;
  return typeof accept === 'string' && /(^|[,\s])audio\/(wav|x-wav|wave|vnd\.wave|\*)\s*(;|,|$)/i.test(accept);
}

function hasPrecondition(req: FastifyRequest): boolean {
  return req.headers['if-match'] !== undefined || req.headers['if-none-match'] !== undefined;
}

function staleFrom(err: PromptConflict): AdminError {
  return err.actual === undefined
    ? new AdminError('DP_ADMIN_PRECONDITION', 'the object does not exist')
    : new AdminError('DP_ADMIN_PRECONDITION', `current version is ${err.actual}`, { extra: { currentVersion: err.actual } });
}

/** Cursors as the other lists make them: the last id of the page, base64url. */
function afterOf(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const after = Buffer.from(cursor, 'base64url').toString('utf8');
  if (Buffer.from(after, 'utf8').toString('base64url') !== cursor || !PROMPT_ID_PATTERN.test(after)) {
    throw new AdminError('DP_ADMIN_VALIDATION', undefined, { issues: [{ in: 'query', path: '/cursor', message: 'is not a cursor this API returned' }] });
  }
  return after;
}

export function registerPromptRoutes(app: FastifyInstance, ctx: AdminContext, prompts: PromptStore): PromiseLike<unknown> {
  const limit = ctx.deps.promptBodyLimit ?? MAX_PROMPT_BYTES;
  return app.register(async (scope) => {
    scope.addContentTypeParser([...PROMPT_CONTENT_TYPES], { parseAs: 'buffer', bodyLimit: limit }, (_req, body, done) => done(null, body));
    registerRoutes(scope, ctx, prompts, limit);
  });
}

function registerRoutes(app: FastifyInstance, ctx: AdminContext, prompts: PromptStore, limit: number): void {
  const tags = ['prompts'];
  const idParams = {
    type: 'object', additionalProperties: false, required: ['tenant', 'id'],
    properties: { ...(paramsSchema() as { properties: Obj }).properties, id: { type: 'string', pattern: PROMPT_ID_PATTERN.source } },
  };
  const base = '/v1/tenants/:tenant/prompts';

  app.get(base, {
    config: { access: 'tenant-read' },
    schema: {
      tags, summary: 'The tenant\'s prompts (descriptions, no audio), by id', params: paramsSchema(),
      querystring: {
        type: 'object', additionalProperties: false,
        properties: {
          limit: { type: 'string', pattern: '^[1-9][0-9]{0,2}$', description: 'Page size, 1-500 (default 100)' },
          cursor: { type: 'string', maxLength: 256, description: 'nextCursor of the previous page' },
        },
      },
    },
  }, async (req) => {
    const { tenant } = req.params as { tenant: string };
    const q = req.query as { limit?: string; cursor?: string };
    const size = pageSize(q.limit);
    const after = afterOf(q.cursor);
    await ctx.readTenant(tenant);
    const page = await ctx.store(() => prompts.list(tenant, { limit: size, ...(after !== undefined ? { after } : {}) }));
    return {
      items: page.items.map(showPrompt),
      ...(page.nextAfter !== undefined ? { nextCursor: Buffer.from(page.nextAfter, 'utf8').toString('base64url') } : {}),
    };
  });

  const sendAudio = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const { tenant, id } = req.params as { tenant: string; id: string };
    await ctx.readTenant(tenant);
    const found = await ctx.store(() => prompts.getAudio(tenant, id));
    if (!found) throw notFound(`prompt ${id}`);
    const tag = etag(found.meta.version);
    reply.header('etag', tag).header('cache-control', 'private, no-cache').header('vary', 'Accept');
    // Players re-fetch often; an unchanged prompt costs a 304, not 10 MB.
    const inm = req.headers['if-none-match'];
    if (typeof inm === 'string' && inm.split(',').map((s) => s.trim()).includes(tag)) return reply.code(304).send();
    return reply.type('audio/wav').header('content-disposition', `inline; filename="${id}.wav"`).send(found.audio);
  };

  app.get(`${base}/:id`, {
    config: { access: 'tenant-read' },
    schema: { tags, summary: 'One prompt\'s description; with Accept: audio/wav the file itself', params: idParams },
  }, async (req, reply) => {
    if (wantsAudio(req)) return sendAudio(req, reply);
    const { tenant, id } = req.params as { tenant: string; id: string };
    await ctx.readTenant(tenant);
    const meta = await ctx.store(() => prompts.getMeta(tenant, id));
    if (!meta) throw notFound(`prompt ${id}`);
    return reply.header('etag', etag(meta.version)).header('vary', 'Accept').send(showPrompt(meta));
  });

  app.get(`${base}/:id/audio`, {
    config: { access: 'tenant-read' },
    schema: { tags, summary: 'The prompt file as uploaded (audio/wav)', params: idParams },
  }, sendAudio);

  app.put(`${base}/:id`, {
    config: { access: 'tenant-write' },
    bodyLimit: limit,
    // Before the body is read: a wrong type or a declared size over the limit costs the client nothing to learn.
    preParsing: async (req, _reply, payload) => {
      const type = mediaType(req);
      if (type === undefined || !(PROMPT_CONTENT_TYPES as readonly string[]).includes(type)) {
        throw new AdminError('DP_ADMIN_MEDIA_TYPE', `a prompt is uploaded as the WAV file's bytes with Content-Type audio/wav (or ${PROMPT_CONTENT_TYPES.slice(1).join(', ')}), not ${type ?? 'no content type'}`);
      }
      const declared = Number(req.headers['content-length']);
      if (Number.isFinite(declared) && declared > limit) throw new AdminError('DP_ADMIN_TOO_LARGE', `a prompt file is at most ${limit} bytes, this one is ${declared}`);
      return payload;
    },
    schema: {
      tags, params: idParams,
      summary: 'Upload a prompt: the body is the WAV file (8 kHz mono μ-law/A-law, or 16-bit PCM at 8/16 kHz; ≤ 10 MiB, ≤ 10 min)',
      consumes: [...PROMPT_CONTENT_TYPES],
      // Accepts anything (the parser hands over a Buffer; parseWav judges it); there for the OpenAPI document's requestBody.
      body: { description: 'The WAV file\'s bytes, as the file is on disk' },
      querystring: {
        type: 'object', additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 200, description: 'Display name' },
          description: { type: 'string', maxLength: 1000, description: 'Free text (what the prompt says)' },
        },
      },
    },
  }, async (req, reply) => {
    const { tenant, id } = req.params as { tenant: string; id: string };
    const q = req.query as { name?: string; description?: string };
    const body = req.body;
    if (!Buffer.isBuffer(body) || body.length === 0) throw badAudio('the body is empty: send the WAV file\'s bytes');
    const checked = parseWav(body);
    if (!checked.ok) throw badAudio(checked.reason);
    await ctx.readTenant(tenant);
    const meta = {
      ...(q.name !== undefined ? { name: q.name } : {}),
      ...(q.description !== undefined ? { description: q.description } : {}),
      codec: checked.info.codec, sampleRate: checked.info.sampleRate, durationMs: checked.info.durationMs,
    };
    let written: { meta: PromptMeta; created: boolean };
    if (hasPrecondition(req)) {
      // Check the headers against what is there, then write only if it is still that.
      const current = await ctx.store(() => prompts.getMeta(tenant, id));
      checkPreconditions(req, current?.version);
      written = await guarded(ctx, () => prompts.put(tenant, id, { audio: body, meta }, current ? { ifVersion: current.version } : { ifAbsent: true }));
    } else {
      written = await guarded(ctx, () => prompts.put(tenant, id, { audio: body, meta }));
    }
    return reply.code(written.created ? 201 : 200).header('etag', etag(written.meta.version)).send(showPrompt(written.meta));
  });

  app.delete(`${base}/:id`, {
    config: { access: 'tenant-write' },
    schema: { tags, summary: 'Delete a prompt; refused (409) while an IVR menu or announce action names it', params: idParams },
  }, async (req, reply) => {
    const { tenant, id } = req.params as { tenant: string; id: string };
    const cur = await ctx.readTenant(tenant);
    const current = await ctx.store(() => prompts.getMeta(tenant, id));
    if (!current) throw notFound(`prompt ${id}`);
    checkPreconditions(req, current.version);
    const users = promptReferences(cur.doc).filter((r) => r.prompt === id);
    if (users.length > 0) {
      throw new AdminError('DP_ADMIN_CONFLICT', `prompt ${id} is used by ${users.map((u) => u.where).join('; ')}: change ${users.length === 1 ? 'it' : 'them'} first`, {
        issues: users.map((u) => ({ in: 'document' as const, path: u.path, object: u.object, message: `${u.where} plays prompt "${id}"` })),
      });
    }
    const deleted = await guarded(ctx, () => prompts.delete(tenant, id, hasPrecondition(req) ? { ifVersion: current.version } : {}));
    if (!deleted) throw notFound(`prompt ${id}`);
    return reply.code(204).send();
  });
}

/** A prompt store write: its refusals as API errors, anything else as the store being unavailable (503). */
async function guarded<T>(ctx: AdminContext, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof PromptConflict) throw staleFrom(err);
    if (err instanceof StoreError && err.code === 'DP_STORE_PROMPT_QUOTA') throw new AdminError('DP_ADMIN_CONFLICT', `${err.message}; delete prompts first`);
    if (err instanceof StoreError && err.code === 'DP_STORE_BAD_PROMPT') throw new AdminError('DP_ADMIN_VALIDATION', err.message, { issues: [{ in: 'query', path: '', message: err.message }] });
    return ctx.store(() => Promise.reject(err));
  }
}

function badAudio(reason: string): AdminError {
  return new AdminError('DP_ADMIN_BAD_AUDIO', reason, { issues: [{ in: 'body', path: '', message: reason }] });
}
