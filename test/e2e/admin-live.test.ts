/**
 * The admin API against live traffic, through the built server: while a
 * carrier (SIPp) calls the demo hotline 4008123456 at 20 calls/s for 6 s,
 * the `hunt` route is changed through the API so that 1002 rings first
 * instead of 1001. No call fails; calls before the change reach 1001,
 * calls after it (allowing 1 s to propagate) reach 1002; the CDRs read
 * back through GET /cdrs are exactly the calls made, all answered.
 */
import t from 'tap';
import type { CdrRecord } from '../../src/store/cdr-store.js';
import { allocPort, registerContact, sipp, startDialplane, summary, waitAdminReady } from './harness.js';
import { startMiniUas, type MiniUas } from './mini-uas.js';

const CARRIER = '127.0.0.2';
const TOKEN = 'e2e-admin-token-0123456789';
const CALLS = 120;
const RATE = 20;
const PROPAGATION_MS = 1000;

const huntRoute = (first: string, second: string): unknown => ({
  id: 'hunt',
  rules: [{ id: 'hunt-order', actions: [{ kind: 'ring', strategy: 'sequential', targets: [{ extension: first }, { extension: second }], targetTimeoutMs: 8000 }] }],
});

t.test('a route change through the admin API during a 20 calls/s run: no failed call, the new order within 1 s, every call in the CDRs', async (t) => {
  const httpPort = allocPort();
  const dp = await startDialplane({ env: { DIALPLANE_ADMIN_TOKEN: TOKEN, DIALPLANE_HTTP_PORT: String(httpPort) } });
  t.teardown(() => dp.stop());
  const base = `http://127.0.0.1:${httpPort}`;
  const api = (method: string, path: string, body?: unknown): Promise<Response> => fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  await waitAdminReady(httpPort);

  const phones: Record<string, MiniUas> = {};
  for (const user of ['1001', '1002']) {
    const port = allocPort();
    const reg = await registerContact(dp, user, port);
    t.equal(reg.code, 0, `${user} registered: ${summary(reg)}`);
    const uas = await startMiniUas(port, 'answer');
    t.teardown(() => uas.close());
    phones[user] = uas;
  }
  const p1001 = phones['1001'] as MiniUas;
  const p1002 = phones['1002'] as MiniUas;

  const run = sipp('uac-call-expect-200.xml', [
    `127.0.0.1:${dp.sipPort}`, '-i', CARRIER, '-p', String(allocPort()), '-s', '4008123456',
    '-m', String(CALLS), '-r', String(RATE), '-l', '40', '-d', '0',
  ], 60);
  await new Promise((r) => setTimeout(r, 3000));
  const changeSent = Date.now();
  const put = await api('PUT', '/v1/tenants/demo/routes/hunt', huntRoute('1002', '1001'));
  const changed = Date.now();
  t.equal(put.status, 200, `route replaced: ${await put.text()}`);
  const result = await run.done;
  t.equal(result.code, 0, `no failed call: ${summary(result)}`);

  const at1001 = p1001.invites.map((i) => i.at);
  const at1002 = p1002.invites.map((i) => i.at);
  t.equal(at1001.length + at1002.length, CALLS, `every call rang exactly one phone (${at1001.length} / ${at1002.length})`);
  t.ok(at1001.length >= RATE, `calls before the change reached 1001 (${at1001.length})`);
  t.ok(at1002.length >= RATE, `calls after the change reached 1002 (${at1002.length})`);
  t.ok(at1002.every((at) => at >= changeSent), 'no call reached 1002 before the change was sent');
  const late = at1001.filter((at) => at > changed + PROPAGATION_MS);
  t.same(late, [], `no call reached 1001 more than ${PROPAGATION_MS} ms after the change (last at +${Math.max(...at1001) - changed} ms)`);
  t.equal(p1001.byes + p1002.byes, CALLS, 'every call hung up through the proxy');

  // CDRs are written off the call path: give the writer a moment.
  let items: CdrRecord[] = [];
  const until = Date.now() + 5000;
  do {
    const r = await api('GET', '/v1/tenants/demo/cdrs?number=4008123456&limit=1000');
    if (r.status !== 200) { t.fail(`GET /cdrs: ${r.status} ${await r.text()}`); break; }
    items = ((await r.json()) as { items: CdrRecord[] }).items;
    if (items.length >= CALLS) break;
    await new Promise((res) => setTimeout(res, 200));
  } while (Date.now() < until);
  t.equal(items.length, CALLS, 'one CDR per call');
  t.ok(items.every((c) => c.disposition === 'answered'), 'all answered');
  const answeredBy = (ext: string): number => items.filter((c) => c.attempts.some((a) => a.target === ext && a.outcome === 'answered')).length;
  t.same([answeredBy('1001'), answeredBy('1002')], [at1001.length, at1002.length], 'the CDRs name the phone that answered');

  // The rest of main.ts's wiring: CSV, active calls (none left), metrics.
  const csv = await api('GET', '/v1/tenants/demo/cdrs.csv');
  t.equal(csv.headers.get('content-type'), 'text/csv; charset=utf-8');
  t.equal((await csv.text()).split('\r\n').length, CALLS + 2, 'CSV: header, one row per call, final CRLF');
  t.same(await (await api('GET', '/v1/tenants/demo/calls')).json(), { items: [] }, 'no call in progress');
  const metrics = await api('GET', '/metrics');
  t.match(await metrics.text(), new RegExp(`dialplane_calls_total\\{disposition="answered"\\} ${CALLS}\\b`), 'metrics count the calls');
  t.equal((await fetch(`${base}/metrics`)).status, 401, 'metrics need the operator token');
});
