/**
 * An administrator hangs up a call in progress (强拆) through the admin API,
 * against the built server: a carrier (SIPp) calls the demo hotline, 1001
 * (a mini UAS) answers, then DELETE /v1/tenants/demo/calls/{callId} makes
 * the proxy send a BYE to each party. SIPp's scenario requires the BYE (with
 * its RFC 3326 Reason) and answers it; the phone gets its BYE through the
 * route set; the CDR says the call was answered and ended by the admin.
 * With two nodes on one Redis, the node that does not carry the call lists
 * it and hangs it up through the other (src/store/redis/node-bus.ts).
 */
import t from 'tap';
import type { CdrRecord } from '../../src/store/cdr-store.js';
import { nullLogger } from '../../src/sip/logger.js';
import { createRedisClient } from '../../src/store/redis/connect.js';
import { deleteKeysWithPrefix, redisUrl, runPrefix } from '../helpers/redis-prefix.js';
import { allocPort, registerContact, sipp, startDialplane, summary, waitAdminReady } from './harness.js';
import { startMiniUas } from './mini-uas.js';

const CARRIER = '127.0.0.2';
const TOKEN = 'e2e-admin-token-0123456789';

/** Polls a GET …/calls (10 s at most) for the first answered call, as an operator watching the live calls would. */
async function answeredCall(list: () => Promise<Response>): Promise<string | undefined> {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    const items = ((await (await list()).json()) as { items: Array<{ callId: string; answeredAt?: number }> }).items;
    const callId = items.find((c) => c.answeredAt !== undefined)?.callId;
    if (callId !== undefined) return callId;
    await new Promise((res) => setTimeout(res, 50));
  }
  return undefined;
}

t.test('DELETE …/calls/{id}: both parties get a BYE from the proxy, the CDR says endedBy admin', async (t) => {
  const httpPort = allocPort();
  const dp = await startDialplane({ env: { DIALPLANE_ADMIN_TOKEN: TOKEN, DIALPLANE_HTTP_PORT: String(httpPort) } });
  t.teardown(() => dp.stop());
  const base = `http://127.0.0.1:${httpPort}`;
  const api = (method: string, path: string): Promise<Response> => fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });
  await waitAdminReady(httpPort);

  const port = allocPort();
  const reg = await registerContact(dp, '1001', port);
  t.equal(reg.code, 0, `1001 registered: ${summary(reg)}`);
  const phone = await startMiniUas(port, 'answer');
  t.teardown(() => phone.close());

  const caller = sipp('uac-call-expect-bye-from-proxy.xml', [
    `127.0.0.1:${dp.sipPort}`, '-i', CARRIER, '-p', String(allocPort()), '-s', '4008123456', '-m', '1',
  ], 20);

  const callId = await answeredCall(() => api('GET', '/v1/tenants/demo/calls'));
  if (callId === undefined) {
    caller.kill();
    t.fail(`the call was never answered: ${(await caller.done).output.slice(-3000)}`);
    return;
  }
  t.equal((await api('DELETE', `/v1/tenants/demo/calls/${encodeURIComponent('no-such-call')}`)).status, 404, 'an unknown call is 404');
  const del = await api('DELETE', `/v1/tenants/demo/calls/${encodeURIComponent(callId)}`);
  t.equal(del.status, 200);
  t.same(await del.json(), { callId, ended: true, state: 'answered', byeResponses: { caller: 200, callee: 200 } }, 'both parties answered their BYE');
  const result = await caller.done;
  t.equal(result.code, 0, `the caller got the BYE with its Reason and answered it: ${summary(result)}`);
  t.equal(phone.byes, 1, 'the phone got one BYE');
  t.match(phone.byeTexts[0] ?? '', /\r\nReason: SIP;cause=200;text="Call terminated by the administrator"\r\n/i);
  t.same(await (await api('GET', '/v1/tenants/demo/calls')).json(), { items: [] }, 'no call left in progress');

  let cdr: CdrRecord | undefined;
  const cdrUntil = Date.now() + 5000;
  while (Date.now() < cdrUntil && cdr === undefined) {
    const items = ((await (await api('GET', '/v1/tenants/demo/cdrs')).json()) as { items: CdrRecord[] }).items;
    cdr = items.find((c) => c.callId === callId);
    if (cdr === undefined) await new Promise((res) => setTimeout(res, 100));
  }
  t.match(cdr, { disposition: 'answered', endedBy: 'admin', finalStatus: 200 }, 'the CDR says who ended it');
});

t.test('two nodes on one Redis: the call runs through node A, node B lists it and hangs it up', async (t) => {
  const prefix = runPrefix('hangup');
  const redis = createRedisClient(redisUrl, nullLogger);
  t.teardown(async () => { await deleteKeysWithPrefix(redis, prefix); redis.disconnect(); });
  const env = (httpPort: number): Record<string, string> => ({ DIALPLANE_ADMIN_TOKEN: TOKEN, DIALPLANE_HTTP_PORT: String(httpPort), REDIS_URL: redisUrl, DIALPLANE_REDIS_PREFIX: prefix });
  const httpA = allocPort();
  const httpB = allocPort();
  const a = await startDialplane({ env: env(httpA) });
  t.teardown(() => a.stop());
  const b = await startDialplane({ env: env(httpB) });
  t.teardown(() => b.stop());
  const api = (port: number, method: string, path: string): Promise<Response> => fetch(`http://127.0.0.1:${port}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });
  for (const port of [httpA, httpB]) await waitAdminReady(port);

  const port = allocPort();
  const reg = await registerContact(a, '1001', port);
  t.equal(reg.code, 0, `1001 registered at node A: ${summary(reg)}`);
  const phone = await startMiniUas(port, 'answer');
  t.teardown(() => phone.close());
  const caller = sipp('uac-call-expect-bye-from-proxy.xml', [
    `127.0.0.1:${a.sipPort}`, '-i', CARRIER, '-p', String(allocPort()), '-s', '4008123456', '-m', '1',
  ], 20);

  const callId = await answeredCall(() => api(httpB, 'GET', '/v1/tenants/demo/calls'));
  if (callId === undefined) {
    caller.kill();
    t.fail(`node B never listed the answered call: ${(await caller.done).output.slice(-2000)}`);
    return;
  }
  t.pass('node B lists the call node A carries');
  const del = await api(httpB, 'DELETE', `/v1/tenants/demo/calls/${encodeURIComponent(callId)}`);
  t.equal(del.status, 200);
  t.same(await del.json(), { callId, ended: true, state: 'answered', byeResponses: { caller: 200, callee: 200 } }, 'node A sent the BYEs');
  const result = await caller.done;
  t.equal(result.code, 0, `the caller got the BYE: ${summary(result)}`);
  t.equal(phone.byes, 1, 'the phone got one BYE');
  t.same(await (await api(httpA, 'GET', '/v1/tenants/demo/calls')).json(), { items: [] }, 'node A has no call left');
  t.equal((await api(httpB, 'DELETE', `/v1/tenants/demo/calls/${encodeURIComponent(callId)}`)).status, 404, 'gone on every node');
});
