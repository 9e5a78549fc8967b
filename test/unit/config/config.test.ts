/** Start-up configuration: profiles validated once, env overrides, clear errors. */
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../../src/config/config.js';

function dir(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'dp-cfg-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text);
  return d;
}

t.test('the shipped default profile loads and env overrides apply', async (t) => {
  const cfg = loadConfig({ DIALPLANE_BIND: '127.0.0.1', DIALPLANE_SIP_PORT: '5090', DIALPLANE_WS_PORT: '5091', LOG_LEVEL: 'warn' }, [], join(process.cwd(), 'sip-profiles'));
  t.equal(cfg.profile.bind, '127.0.0.1');
  t.equal(cfg.profile.udpPort, 5090);
  t.equal(cfg.profile.tcpPort, 5090, 'DIALPLANE_SIP_PORT sets UDP and TCP');
  t.equal(cfg.profile.wsPort, 5091);
  t.equal(cfg.profile.advertise, '127.0.0.1', 'advertise defaults to a concrete bind address');
  t.equal(cfg.redisUrl, undefined, 'no REDIS_URL: embedded store');
  t.equal(cfg.demo, false);
  t.ok(Object.isFrozen(cfg) && Object.isFrozen(cfg.profile) && Object.isFrozen(cfg.profile.timers), 'frozen');
});

t.test('--demo provisions the demo tenant; its carrier is a trunk of the tenant, not a profile-trusted source', async (t) => {
  const cfg = loadConfig({}, ['--demo'], join(process.cwd(), 'sip-profiles'));
  t.equal(cfg.demo, true);
  t.notOk(cfg.profile.trustedSources.includes('127.0.0.2'));
});

t.test('store settings: the embedded store keeps a file beside the profiles by default, "memory" keeps none; the Redis prefix is checked', async (t) => {
  const profiles = join(process.cwd(), 'sip-profiles');
  t.equal(loadConfig({}, [], profiles).storeFile, join(process.cwd(), 'data', 'config.json'));
  t.equal(loadConfig({ DIALPLANE_STORE_FILE: 'memory' }, [], profiles).storeFile, undefined);
  t.equal(loadConfig({ DIALPLANE_STORE_FILE: '/tmp/x.json' }, [], profiles).storeFile, '/tmp/x.json');
  t.equal(loadConfig({}, [], profiles).redisPrefix, 'dp:');
  t.equal(loadConfig({ DIALPLANE_REDIS_PREFIX: 'site-a:' }, [], profiles).redisPrefix, 'site-a:');
  t.throws(() => loadConfig({ DIALPLANE_REDIS_PREFIX: 'a{b}' }, [], profiles), /DIALPLANE_REDIS_PREFIX/);
});

t.test('CDR retention: 30 days by default, whole days 1-3650 otherwise refused', async (t) => {
  const profiles = join(process.cwd(), 'sip-profiles');
  t.equal(loadConfig({}, [], profiles).cdrRetentionDays, 30);
  t.equal(loadConfig({ DIALPLANE_CDR_RETENTION_DAYS: '' }, [], profiles).cdrRetentionDays, 30);
  t.equal(loadConfig({ DIALPLANE_CDR_RETENTION_DAYS: '90' }, [], profiles).cdrRetentionDays, 90);
  for (const bad of ['0', '30d', '-1', '1.5', '3651', ' 7']) {
    t.throws(() => loadConfig({ DIALPLANE_CDR_RETENTION_DAYS: bad }, [], profiles), ConfigError, JSON.stringify(bad));
  }
});

t.test('webhook allow list: comma-separated CIDRs, addresses and names; empty by default; a bad entry stops start-up', async (t) => {
  const profiles = join(process.cwd(), 'sip-profiles');
  t.strictSame(loadConfig({}, [], profiles).webhookAllow, []);
  t.strictSame(loadConfig({ DIALPLANE_WEBHOOK_ALLOW: '127.0.0.0/8, crm.lan,::1' }, [], profiles).webhookAllow, ['127.0.0.0/8', 'crm.lan', '::1']);
  t.ok(Object.isFrozen(loadConfig({ DIALPLANE_WEBHOOK_ALLOW: '10.0.0.0/8' }, [], profiles).webhookAllow));
  t.throws(() => loadConfig({ DIALPLANE_WEBHOOK_ALLOW: '10.0.0.0/8,10.0.0.0/99' }, [], profiles), /DIALPLANE_WEBHOOK_ALLOW.*bad prefix length/);
});

t.test('a bad profile names the file and the field', async (t) => {
  const d = dir({ 'edge.json': JSON.stringify({ name: 'edge', udpPort: 70000, timers: { t1: 'fast' }, colour: 'red' }) });
  try {
    loadConfig({ DIALPLANE_PROFILES_DIR: d }, [], '/nonexistent');
    t.fail('should throw');
  } catch (e) {
    t.ok(e instanceof ConfigError);
    const msg = (e as Error).message;
    t.match(msg, /edge\.json/, 'names the file');
    t.match(msg, /\/udpPort/, 'names udpPort');
    t.match(msg, /\/timers\/t1/, 'names timers.t1');
    t.match(msg, /colour/, 'names the unknown field');
  }
});

t.test('invalid JSON and bad CIDRs are reported with the file', async (t) => {
  t.throws(() => loadConfig({ DIALPLANE_PROFILES_DIR: dir({ 'a.json': '{ nope' }) }, [], '/x'), /a\.json: not valid JSON/);
  t.throws(() => loadConfig({ DIALPLANE_PROFILES_DIR: dir({ 'b.json': JSON.stringify({ name: 'b', trustedSources: ['10.0.0.0/99'] }) }) }, [], '/x'), /b\.json: \/trustedSources\/0/);
});

t.test('bad environment values are refused by name', async (t) => {
  const base = join(process.cwd(), 'sip-profiles');
  t.throws(() => loadConfig({ DIALPLANE_SIP_PORT: 'abc' }, [], base), /DIALPLANE_SIP_PORT/);
  t.throws(() => loadConfig({ LOG_LEVEL: 'loud' }, [], base), /LOG_LEVEL/);
  t.throws(() => loadConfig({ DIALPLANE_PROFILE: 'missing' }, [], base), /no SIP profile named missing/);
});
