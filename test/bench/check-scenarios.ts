// Checks the SIPp scenarios of test/e2e/scenarios against each other:
// SIPp UAC against SIPp UAS directly, then the call scenarios through
// Kamailio (test/bench/kamailio.cfg), and the digest ones through Kamailio
// with -A WITH_AUTH (REGISTER from the UAS's port, then INVITE to it).
// Out-of-order deliveries are produced by the doubles in scenario-checks/.
//
//   npm run build && node dist/test/bench/check-scenarios.js [--keep] [--only NAME_SUBSTRING]
//   (or: npx tsx test/bench/check-scenarios.ts)
//
// Needs sipp (Debian sip-tester) and kamailio; uses 127.0.0.1/127.0.0.2 only.
// Every SIPp run is bounded by -m, -timeout and a kill timer.  Prints one
// line per check and "N passed, N failed"; exits 1 if any check failed.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { ChildRegistry, type RunningChild } from './child-registry.js';
import { kamailioProxy, type StartedProxy } from './proxies-under-test.js';
import { freeUdpPort } from './proc-usage.js';
import { runSipp, startSipp, type Endpoint, type SippEnv } from './sipp-runner.js';

type Via = 'direct' | 'kamailio' | 'kamailio-auth';

interface Check {
  readonly name: string;
  readonly via: Via;
  /** UAS scenario path and extra args; omitted for a UAC talking to the proxy alone. */
  readonly uas?: { readonly scenario: string; readonly args: readonly string[] };
  readonly uac: { readonly scenario: string; readonly args: readonly string[]; readonly bindPort?: 'uas' };
  /** 'pass': both SIPp exit 0.  'uac-fails': the UAC must report failure. */
  readonly expect: 'pass' | 'uac-fails';
}

const here = dirname(fileURLToPath(import.meta.url));
// from dist/test/bench or test/bench alike
const repoRoot = here.includes(`${join('dist', 'test', 'bench')}`) ? join(here, '..', '..', '..') : join(here, '..', '..');
const scenarios = join(repoRoot, 'test', 'e2e', 'scenarios');
const doubles = join(repoRoot, 'test', 'bench', 'scenario-checks');
const sc = (name: string): string => join(scenarios, `${name}.xml`);

/** uas-busy-486.xml with another status line: a UAS rejecting with `code`. */
function rejectingUas(dir: string, code: number, reason: string): string {
  const file = join(dir, `uas-reject-${code}.xml`);
  const text = readFileSync(sc('uas-busy-486'), 'latin1').replace('SIP/2.0 486 Busy Here', `SIP/2.0 ${code} ${reason}`);
  writeFileSync(file, text, 'latin1');
  return file;
}

function checks(work: string): Check[] {
  const r480 = rejectingUas(work, 480, 'Temporarily Unavailable');
  const r404 = rejectingUas(work, 404, 'Not Found');
  const calls = (n: number, rate = 20): string[] => ['-m', String(n), '-r', String(rate)];
  const list: Check[] = [];
  for (const via of ['direct', 'kamailio'] as const) {
    list.push(
      { name: 'answered call', via, uas: { scenario: sc('uas-answer-200'), args: ['-m', '5'] }, uac: { scenario: sc('uac-call-expect-200'), args: [...calls(5), '-d', '100'] }, expect: 'pass' },
      { name: 'rejected 480', via, uas: { scenario: r480, args: ['-m', '3'] }, uac: { scenario: sc('uac-call-expect-480'), args: calls(3) }, expect: 'pass' },
      { name: 'rejected 404', via, uas: { scenario: r404, args: ['-m', '3'] }, uac: { scenario: sc('uac-call-expect-404'), args: calls(3) }, expect: 'pass' },
      { name: 'busy 486 vs expect-480 fails', via, uas: { scenario: sc('uas-busy-486'), args: ['-m', '1'] }, uac: { scenario: sc('uac-call-expect-480'), args: calls(1) }, expect: 'uac-fails' },
      { name: 'busy 486 vs expect-200 fails', via, uas: { scenario: sc('uas-busy-486'), args: ['-m', '1'] }, uac: { scenario: sc('uac-call-expect-200'), args: calls(1) }, expect: 'uac-fails' },
      { name: 'cancelled while ringing', via, uas: { scenario: sc('uas-no-answer-487'), args: ['-m', '5'] }, uac: { scenario: sc('uac-cancel-expect-487'), args: calls(5) }, expect: 'pass' },
      { name: 'late 180 from another fork', via, uas: { scenario: join(doubles, 'uas-late-180-other-fork.xml'), args: ['-m', '5'] }, uac: { scenario: sc('uac-call-expect-200'), args: [...calls(5), '-d', '300'] }, expect: 'pass' },
      { name: 'BYE before ACK', via, uas: { scenario: sc('uas-answer-200'), args: ['-m', '50'] }, uac: { scenario: join(doubles, 'uac-bye-before-ack.xml'), args: calls(50, 100) }, expect: 'pass' },
    );
  }
  const pw = ['-set', 'password', 'secret'];
  list.push(
    { name: 'register (digest)', via: 'direct', uas: { scenario: sc('uas-register-digest-200'), args: [...pw, '-m', '1'] }, uac: { scenario: sc('uac-register-digest-expect-200'), args: ['-s', '1001', '-ap', 'secret', '-m', '1'] }, expect: 'pass' },
    { name: 'register + unregister', via: 'direct', uas: { scenario: sc('uas-register-digest-200'), args: [...pw, '-m', '1'] }, uac: { scenario: sc('uac-register-digest-expect-200'), args: ['-s', '1001', '-ap', 'secret', '-m', '1', '-set', 'unregister', '1'] }, expect: 'pass' },
    { name: 'register, wrong password fails', via: 'direct', uas: { scenario: sc('uas-register-digest-200'), args: [...pw, '-m', '1'] }, uac: { scenario: sc('uac-register-digest-expect-200'), args: ['-s', '1001', '-ap', 'wrong', '-m', '1'] }, expect: 'uac-fails' },
    { name: 'INVITE with 407 challenge', via: 'direct', uas: { scenario: sc('uas-invite-digest-407-answer-200'), args: ['-m', '2'] }, uac: { scenario: sc('uac-invite-digest-expect-200'), args: ['-s', '1002', '-au', '1001', '-ap', 'secret', ...calls(2)] }, expect: 'pass' },
    // through Kamailio WITH_AUTH: register the UAS's port as 1001, then call 1001
    { name: 'register UAS port as 1001', via: 'kamailio-auth', uac: { scenario: sc('uac-register-digest-expect-200'), args: ['-s', '1001', '-ap', 'secret', '-m', '1'], bindPort: 'uas' }, expect: 'pass' },
    { name: 'INVITE with 407 to registered 1001', via: 'kamailio-auth', uas: { scenario: sc('uas-answer-200'), args: ['-m', '3'] }, uac: { scenario: sc('uac-invite-digest-expect-200'), args: ['-s', '1001', '-au', '1001', '-ap', 'secret', ...calls(3)] }, expect: 'pass' },
    { name: 'INVITE with wrong password fails', via: 'kamailio-auth', uac: { scenario: sc('uac-invite-digest-expect-200'), args: ['-s', '1001', '-au', '1001', '-ap', 'wrong', '-m', '1', '-recv_timeout', '3000'] }, expect: 'uac-fails' },
    { name: 'unauthenticated INVITE fails', via: 'kamailio-auth', uac: { scenario: sc('uac-call-expect-200'), args: ['-s', '1001', '-m', '1'] }, expect: 'uac-fails' },
  );
  return list;
}

interface Env {
  readonly registry: ChildRegistry;
  readonly sippEnv: SippEnv;
  readonly work: string;
  readonly uas: Endpoint;
}

async function runCheck(env: Env, check: Check, target: Endpoint, index: number): Promise<string | null> {
  const dir = join(env.work, `${String(index).padStart(2, '0')}-${check.via}-${check.name.replace(/[^a-z0-9]+/gi, '-')}`);
  mkdirSync(dir, { recursive: true });
  let uas: RunningChild | null = null;
  try {
    if (check.uas !== undefined) {
      uas = await startSipp(env.sippEnv, {
        name: 'uas',
        args: ['-sf', check.uas.scenario, ...check.uas.args, '-timeout', '30s', '-trace_msg'],
        dir,
        at: env.uas,
      });
    }
    const bind = check.uac.bindPort === 'uas' ? ['-i', env.uas.ip, '-p', String(env.uas.port)] : ['-i', '127.0.0.2'];
    const uac = await runSipp(env.sippEnv, {
      name: 'uac',
      args: ['-sf', check.uac.scenario, ...check.uac.args, ...bind, `${target.ip}:${target.port}`, '-timeout', '25s', '-timeout_error', '-trace_msg'],
      dir,
      killAfterSeconds: 35,
    });
    const uasExit = uas === null ? null : await env.registry.waitOrKill(uas, check.expect === 'pass' ? 10_000 : 1000);
    if (check.expect === 'uac-fails') {
      return uac.code === 0 ? `UAC succeeded but should have failed; see ${dir}` : null;
    }
    if (uac.code !== 0) {
      return `UAC ${uac.killed ? 'killed' : `exit ${String(uac.code)}`}; see ${dir}`;
    }
    if (uasExit !== null && uasExit.code !== 0) {
      return `UAS ${uasExit.killed ? 'killed' : `exit ${String(uasExit.code)}`}; see ${dir}`;
    }
    return null;
  } finally {
    if (uas !== null) {
      await env.registry.stop(uas);
    }
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { keep: { type: 'boolean' }, only: { type: 'string' } } });
  const registry = new ChildRegistry();
  const sippEnv: SippEnv = { registry, sipp: process.env.BENCH_SIPP ?? 'sipp', scenarioDir: scenarios };
  const work = mkdtempSync(join(tmpdir(), 'dialplane-scenarios-'));
  const uas: Endpoint = { ip: '127.0.0.1', port: await freeUdpPort('127.0.0.1') };
  const env: Env = { registry, sippEnv, work, uas };
  const all = checks(work).filter((c) => values.only === undefined || c.name.includes(values.only) || c.via.includes(values.only));
  let passed = 0;
  let failed = 0;
  let proxy: StartedProxy | null = null;
  let proxyVia: Via | null = null;
  let proxySip: Endpoint = uas;
  try {
    for (const [i, check] of all.entries()) {
      let target: Endpoint = uas;
      if (check.via !== 'direct') {
        if (proxyVia !== check.via) {
          if (proxy !== null) {
            await registry.stop(proxy.child);
          }
          const sip: Endpoint = { ip: '127.0.0.1', port: await freeUdpPort('127.0.0.1') };
          const kam = kamailioProxy({
            binary: process.env.BENCH_KAMAILIO ?? 'kamailio',
            sip,
            uacIp: '127.0.0.2',
            service: '1001',
            sharedMemoryMb: 64,
            defines: check.via === 'kamailio-auth' ? ['WITH_AUTH', 'AUTH_PASSWORD="secret"'] : [],
          });
          const kamDir = join(work, check.via);
          mkdirSync(kamDir, { recursive: true });
          proxy = await kam.start({ registry, sippEnv, repoRoot, workDir: kamDir, uas, maxSeconds: 600 });
          proxyVia = check.via;
          proxySip = sip;
        }
        target = proxySip;
      }
      const problem = await runCheck(env, check, target, i);
      if (problem === null) {
        passed++;
        process.stdout.write(`ok     ${check.via.padEnd(13)} ${check.name}\n`);
      } else {
        failed++;
        process.stdout.write(`FAIL   ${check.via.padEnd(13)} ${check.name}: ${problem}\n`);
      }
    }
  } finally {
    await registry.stopAll();
  }
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  if (values.keep === true || failed > 0) {
    process.stdout.write(`files kept in ${work}\n`);
  } else {
    rmSync(work, { recursive: true, force: true });
  }
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`check-scenarios: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
