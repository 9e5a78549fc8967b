/**
 * Configuration: listener profiles from sip-profiles/, overridden by the
 * environment, validated once and frozen. Only main.ts calls this with
 * process.env; everything else receives typed, frozen values.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { networkInterfaces } from 'node:os';
import { Ajv } from 'ajv';
import { PROFILE_SCHEMA, type SipProfile } from './profile-schema.js';
import { parseCidr } from '../call/cidr.js';
import { parseAllowList } from '../webhooks/url-guard.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface Config {
  profile: SipProfile;
  httpPort: number;
  redisUrl: string | undefined;
  /** Key prefix of everything this installation keeps in Redis (default `dp:`). */
  redisPrefix: string;
  /** Embedded store: the file tenant configuration is kept in; undefined = memory only. */
  storeFile: string | undefined;
  adminToken: string | undefined;
  logLevel: string;
  demo: boolean;
  demoPassword: string | undefined;
  /** Secret for digest nonces; random per process when unset (nonces then die with the process). */
  secret: string | undefined;
  node: string;
  /** Days CDRs are kept (DIALPLANE_CDR_RETENTION_DAYS, default 30). */
  cdrRetentionDays: number;
  /** CIDRs, addresses and host names webhooks may reach although private (DIALPLANE_WEBHOOK_ALLOW). */
  webhookAllow: readonly string[];
}

const DEFAULTS: Omit<SipProfile, 'name'> = {
  bind: '0.0.0.0',
  advertise: '',
  udpPort: 5060,
  tcpPort: 5060,
  wsPort: 5066,
  realm: 'dialplane',
  maxMessageSize: 65535,
  tcpIdleTimeoutMs: 600_000,
  timers: { t1: 500, t2: 4000, t4: 5000, timerC: 181_000 },
  digestAlgorithms: ['MD5'],
  trustedSources: [],
  registrar: { defaultExpires: 3600, minExpires: 60, maxExpires: 7200, maxContacts: 10 },
};

const ajv = new Ajv({ allErrors: true, strict: true });
const validateProfile = ajv.compile(PROFILE_SCHEMA);

/** Reads and validates every *.json profile in dir; the one named `name` (or the first) is used. */
export function loadProfile(dir: string, name: string | undefined): SipProfile {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  } catch (e) {
    throw new ConfigError(`cannot read SIP profiles directory ${dir}: ${(e as Error).message}`);
  }
  const profiles: SipProfile[] = [];
  for (const f of files) {
    const path = join(dir, f);
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new ConfigError(`${path}: not valid JSON: ${(e as Error).message}`);
    }
    if (!validateProfile(doc)) {
      const msgs = (validateProfile.errors ?? []).map((er) => {
        const field = er.instancePath || '/';
        const extra = er.keyword === 'additionalProperties' ? ` (${String((er.params as { additionalProperty?: string }).additionalProperty)})` : '';
        return `${field}: ${er.message ?? 'invalid'}${extra}`;
      });
      throw new ConfigError(`${path}: invalid SIP profile: ${msgs.join('; ')}`);
    }
    const p = doc as Partial<SipProfile> & { name: string };
    for (const [i, c] of (p.trustedSources ?? []).entries()) {
      try {
        parseCidr(c);
      } catch (e) {
        throw new ConfigError(`${path}: /trustedSources/${i}: ${(e as Error).message}`);
      }
    }
    profiles.push({ ...DEFAULTS, ...p, timers: { ...DEFAULTS.timers, ...p.timers }, registrar: { ...DEFAULTS.registrar, ...p.registrar } });
  }
  if (profiles.length === 0) return { ...DEFAULTS, name: 'default' };
  const chosen = name === undefined ? profiles[0] : profiles.find((p) => p.name === name);
  if (!chosen) throw new ConfigError(`no SIP profile named ${name} in ${dir}`);
  return chosen;
}

function port(env: Record<string, string | undefined>, key: string, fallback: number): number {
  const v = env[key];
  if (v === undefined || v === '') return fallback;
  if (!/^[0-9]{1,5}$/.test(v) || Number(v) > 65535) throw new ConfigError(`${key}: not a port number: ${v}`);
  return Number(v);
}

function firstLanAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

function redisPrefix(v: string | undefined): string {
  if (v === undefined) return 'dp:';
  // Key names carry {hash-tags}; a prefix with braces or glob characters would break them or SCANs.
  if (!/^[A-Za-z0-9_.:-]{0,64}$/.test(v)) throw new ConfigError('DIALPLANE_REDIS_PREFIX: letters, digits and _ . : - only (at most 64)');
  return v;
}

/** Whole days, 1 to 3650: a typo like `30d` or `0` must stop start-up, not keep CDRs forever or not at all. */
function cdrRetentionDays(v: string | undefined): number {
  if (v === undefined || v === '') return 30;
  if (!/^[0-9]{1,4}$/.test(v) || Number(v) < 1 || Number(v) > 3650) throw new ConfigError(`DIALPLANE_CDR_RETENTION_DAYS: whole days from 1 to 3650, got ${v}`);
  return Number(v);
}

/** Comma-separated; one bad entry stops start-up (a typo must not silently leave a receiver blocked, or open a range). */
function webhookAllow(v: string | undefined): string[] {
  try {
    return parseAllowList(v);
  } catch (e) {
    throw new ConfigError(`DIALPLANE_WEBHOOK_ALLOW: ${(e as Error).message}`);
  }
}

/**
 * `dataDir`: where the embedded store keeps its file unless
 * DIALPLANE_STORE_FILE says otherwise (the repository's `data/` for `npm start`).
 */
export function loadConfig(env: Record<string, string | undefined>, argv: string[], profilesDir: string, dataDir = join(profilesDir, '..', 'data')): Readonly<Config> {
  const base = loadProfile(env.DIALPLANE_PROFILES_DIR ?? profilesDir, env.DIALPLANE_PROFILE);
  const bind = env.DIALPLANE_BIND ?? base.bind;
  const sipPort = port(env, 'DIALPLANE_SIP_PORT', base.udpPort);
  const profile: SipProfile = {
    ...base,
    bind,
    udpPort: sipPort,
    tcpPort: env.DIALPLANE_SIP_PORT !== undefined ? sipPort : base.tcpPort,
    wsPort: port(env, 'DIALPLANE_WS_PORT', base.wsPort),
    advertise: env.DIALPLANE_ADVERTISE ?? (base.advertise || (bind === '0.0.0.0' || bind === '::' ? firstLanAddress() : bind)),
    realm: env.DIALPLANE_REALM ?? base.realm,
  };
  const demo = argv.includes('--demo') || env.DIALPLANE_DEMO === '1' || env.DIALPLANE_DEMO === 'true';
  const level = env.LOG_LEVEL ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(level)) throw new ConfigError(`LOG_LEVEL: unknown level ${level}`);
  const cfg: Config = {
    profile: deepFreeze(profile),
    httpPort: port(env, 'DIALPLANE_HTTP_PORT', 8080),
    redisUrl: env.REDIS_URL || undefined,
    redisPrefix: redisPrefix(env.DIALPLANE_REDIS_PREFIX),
    // 'memory' (or an empty value) keeps nothing across restarts: tests, throw-away demos.
    storeFile: env.DIALPLANE_STORE_FILE === undefined ? join(dataDir, 'config.json')
      : env.DIALPLANE_STORE_FILE === '' || env.DIALPLANE_STORE_FILE === 'memory' ? undefined : env.DIALPLANE_STORE_FILE,
    adminToken: env.DIALPLANE_ADMIN_TOKEN || undefined,
    logLevel: level,
    demo,
    demoPassword: env.DIALPLANE_DEMO_PASSWORD || undefined,
    secret: env.DIALPLANE_SECRET || undefined,
    node: env.DIALPLANE_NODE_ID ?? `node-${process.pid}`,
    cdrRetentionDays: cdrRetentionDays(env.DIALPLANE_CDR_RETENTION_DAYS),
    webhookAllow: Object.freeze(webhookAllow(env.DIALPLANE_WEBHOOK_ALLOW)),
  };
  return Object.freeze(cfg);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
