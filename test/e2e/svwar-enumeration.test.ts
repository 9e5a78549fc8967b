/**
 * A SIP scanner must not be able to enumerate extensions (issue 2, §7):
 * SIPVicious svwar compares how the server answers existing and missing
 * users with REGISTER, INVITE and OPTIONS. Every probe must look alike.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { allocPort, startDialplane } from './harness.js';

t.test('svwar finds no extensions with REGISTER, INVITE or OPTIONS', async (t) => {
  const dp = await startDialplane();
  t.teardown(() => dp.stop());
  for (const method of ['REGISTER', 'INVITE', 'OPTIONS']) {
    const r = spawnSync('svwar', ['-e995-1010', '-b', '127.0.0.1', '-P', String(allocPort()), '-p', String(dp.sipPort), '-m', method, '127.0.0.1'], { encoding: 'utf8', timeout: 60_000 });
    const out = `${r.stdout}${r.stderr}`;
    t.equal(r.error, undefined, `svwar ran (${method})`);
    t.notMatch(out, /\|\s*100[12]\s*\|/, `${method}: extensions 1001/1002 are not listed`);
    t.match(out, /found nothing/, `${method}: svwar found nothing`);
  }
});
