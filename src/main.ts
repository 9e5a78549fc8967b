/**
 * Composition root: reads the environment and profiles once, builds the
 * store, the SIP stack and the call router, and wires them together.
 * Nothing else in the code base reads process.env.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, ConfigError, type Config } from './config/config.js';
import { createLogger } from './log.js';
import { systemClock } from './sip/clock.js';
import { TransportLayer } from './sip/transport/transport-layer.js';
import { TransactionLayer } from './sip/transaction/transaction-layer.js';
import { ProxyCore } from './sip/proxy/proxy-core.js';
import { Registrar } from './sip/registrar/registrar.js';
import { DigestAuthenticator } from './sip/registrar/digest.js';
import type { LocationService } from './sip/registrar/location-service.js';
import { EmbeddedLocationStore } from './store/embedded/location-store.js';
import { EmbeddedTenantStore } from './store/embedded/tenant-store.js';
import { RedisLocationStore } from './store/redis/location-store.js';
import { RedisTenantStore } from './store/redis/tenant-store.js';
import { createRedisClient, waitForRedisReady } from './store/redis/connect.js';
import { RedisNodeBus } from './store/redis/node-bus.js';
import { adminRateLimitBackend } from './store/redis/admin-rate-limit.js';
import { TenantCache } from './store/tenant-cache.js';
import type { TenantStore } from './store/tenant-store.js';
import { createCallExecutor } from './call/call-executor.js';
import { CallTracker, type CallRecord, type HangUpResult } from './call/call-tracker.js';
import { loadRegionIndex } from './call/region-index.js';
import { DEMO_TENANT_ID, demoTenant } from './call/demo-tenant.js';
import { TenantIndex } from './call/tenant-index.js';
import { parseCidr } from './call/cidr.js';
import type { SipUri } from './sip/message/uri.js';
import type { ServerTransaction } from './sip/transaction/transaction-layer.js';
import type { SipRequest } from './sip/message/message.js';
import type { CdrStore } from './store/cdr-store.js';
import type { WebhookStore } from './store/webhook-store.js';
import { EmbeddedCdrStore } from './store/embedded/cdr-store.js';
import { EmbeddedWebhookStore } from './store/embedded/webhook-store.js';
import { RedisCdrStore } from './store/redis/cdr-store.js';
import { RedisWebhookStore } from './store/redis/webhook-store.js';
import { CdrWriter } from './cdr/cdr-writer.js';
import { WebhookDispatcher } from './webhooks/webhook-dispatcher.js';
import { WebhookUrlGuard } from './webhooks/url-guard.js';
import { DialplaneMetrics } from './metrics/metrics.js';
import type { Logger as PinoLogger } from 'pino';
import { buildAdminApp } from './admin/app.js';
import type { ApiKeyStore } from './store/api-key-store.js';
import { EmbeddedApiKeyStore } from './store/embedded/api-key-store.js';
import { RedisApiKeyStore } from './store/redis/api-key-store.js';
import type { PromptStore } from './store/prompt-store.js';
import { EmbeddedPromptStore } from './store/embedded/prompt-store.js';
import { RedisPromptStore } from './store/redis/prompt-store.js';

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root, whether running from src/ (tsx) or dist/src/. */
const root = here.includes(`${join('dist', 'src')}`) ? join(here, '..', '..') : join(here, '..');

export interface RunningServer {
  config: Readonly<Config>;
  transport: TransportLayer;
  /** For the admin API: CDR queries/exports/reports, webhook configs (call `dispatcher.invalidate(tenant)` after a change), GET /metrics. */
  callData: { cdrs: CdrStore; webhooks: WebhookStore; dispatcher: WebhookDispatcher; metrics: DialplaneMetrics };
  stop(): Promise<void>;
}

export async function startServer(config: Readonly<Config>, log: PinoLogger): Promise<RunningServer> {
  const p = config.profile;
  const clock = systemClock;
  const closers: Array<() => Promise<void>> = [];

  // Store: Redis when REDIS_URL is set, else in-process (tenant configuration in a file).
  let location: LocationService;
  let tenants: TenantStore;
  let redisClient: ReturnType<typeof createRedisClient> | undefined;
  let apiKeys: ApiKeyStore;
  let prompts: PromptStore;
  if (config.redisUrl) {
    const redis = createRedisClient(config.redisUrl, log.child({ component: 'redis' }));
    redisClient = redis;
    // No offline queue: wait for the first connection before taking REGISTERs.
    await waitForRedisReady(redis, 10_000);
    location = new RedisLocationStore({ redis, prefix: config.redisPrefix });
    tenants = new RedisTenantStore({ redis, prefix: config.redisPrefix, onListenerError: (err) => log.error({ err }, 'tenant change listener failed') });
    apiKeys = new RedisApiKeyStore({ redis, prefix: config.redisPrefix });
    prompts = new RedisPromptStore({ redis, prefix: config.redisPrefix });
    closers.push(async () => { await redis.quit().catch(() => undefined); });
  } else {
    const embedded = new EmbeddedLocationStore({});
    location = embedded;
    // The default file lives in data/, which a fresh checkout does not have.
    if (config.storeFile !== undefined) mkdirSync(dirname(config.storeFile), { recursive: true });
    tenants = await EmbeddedTenantStore.open(config.storeFile !== undefined ? { file: config.storeFile } : {});
    // Admin API keys beside the tenant file: data/config.json → data/config.api-keys.json.
    apiKeys = await EmbeddedApiKeyStore.open(config.storeFile !== undefined ? { file: config.storeFile.replace(/(\.json)?$/, '.api-keys.json') } : {});
    // Prompt audio beside the tenant file: data/config.json → data/prompts/<tenant>/<id>.wav (memory when the store file is `memory`).
    prompts = await EmbeddedPromptStore.open(config.storeFile !== undefined ? { dir: join(dirname(config.storeFile), 'prompts') } : {});
    closers.push(async () => { embedded.close(); });
  }
  closers.push(() => tenants.close());

  if (config.demo) {
    const password = config.demoPassword ?? randomBytes(9).toString('base64url');
    // Rewritten at every start: the password (hence the HA1s) may be new.
    await tenants.putTenant(demoTenant(p.realm, password));
    log.info({ tenant: DEMO_TENANT_ID, extensions: ['1001', '1002'], realm: p.realm, numbers: ['4008123456', '4008123457'], shortNumbers: ['6001', '6002'], carrier: '127.0.0.2' }, 'demo tenant provisioned');
    if (!config.demoPassword) {
      // Printed once so a newcomer can register two softphones at once.
      process.stdout.write(`\nDemo tenant: extensions 1001 and 1002, realm "${p.realm}", password: ${password}\n\n`);
    }
  }
  // Compiled rules for the call path, kept current through the store's change
  // announcements and a periodic version check.
  const cache = new TenantCache({ store: tenants, log: log.child({ component: 'tenant-cache' }), verifyIntervalMs: 2000 });
  await cache.start();
  closers.unshift(() => cache.stop());
  const index = new TenantIndex({ source: cache, defaultRealm: p.realm, log: log.child({ component: 'tenants' }) });
  closers.unshift(async () => { index.close(); });

  const secret = config.secret ? Buffer.from(config.secret, 'utf8') : randomBytes(32);
  const nonceKey = secret.length >= 16 ? secret : Buffer.concat([secret, Buffer.alloc(16)]);
  // One authenticator per realm (a tenant's SIP domain): nonce counts live in it.
  const digests = new Map<string, DigestAuthenticator>();
  const digestFor = (realm: string): DigestAuthenticator => {
    let d = digests.get(realm);
    if (!d) {
      d = new DigestAuthenticator({ realm, secret: nonceKey, now: () => clock.now(), algorithms: [...p.digestAlgorithms] });
      digests.set(realm, d);
    }
    return d;
  };

  const transport = new TransportLayer({
    bind: p.bind,
    advertise: p.advertise,
    udpPort: p.udpPort,
    tcpPort: p.tcpPort,
    wsPort: p.wsPort,
    maxMessageSize: p.maxMessageSize,
    idleTimeoutMs: p.tcpIdleTimeoutMs,
    log: log.child({ component: 'transport' }),
  });

  // Names this server answers to: the advertised address, the realm, and the
  // bound address — every local interface address when bound to a wildcard.
  const ourHosts = new Set([p.advertise.toLowerCase(), p.realm.toLowerCase()]);
  if (p.bind === '0.0.0.0' || p.bind === '::') {
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) ourHosts.add(a.address.toLowerCase());
  } else {
    ourHosts.add(p.bind.toLowerCase());
  }
  const isLocalUri = (uri: SipUri): boolean => {
    if (!uri.isSip) return false;
    const host = uri.hostAddress.toLowerCase();
    const ports = [transport.ports.udp, transport.ports.tcp, transport.ports.ws];
    // A tenant's SIP domain (its realm) designates us, as a domain name without a port.
    if (!ourHosts.has(host)) return uri.port === undefined && index.tenantForRealm(host) !== undefined;
    // No port: the default 5060, or the realm used as a domain name.
    return uri.port === undefined ? host === p.realm.toLowerCase() || ports.includes(5060) : ports.includes(uri.port);
  };

  // REGISTER: the registrar of the realm the To domain names (§10.3: the AOR is the To URI).
  const registrars = new Map<string, Registrar>();
  const registrarFor = (realm: string): Registrar => {
    let r = registrars.get(realm);
    if (!r) {
      r = new Registrar({
        location, credentials: index, digest: digestFor(realm), realm, clock, node: config.node,
        log: log.child({ component: 'registrar', realm }), policy: p.registrar,
      });
      registrars.set(realm, r);
    }
    return r;
  };
  const register = (tx: ServerTransaction, req: SipRequest): void => {
    const to = req.to.uri;
    registrarFor(index.realmForDomain(to.isSip ? to.hostAddress : undefined)).handle(tx, req);
  };
  // Calls in progress: concurrent-call limits, and the record each call ends with.
  const tracker = new CallTracker({ clock, log: log.child({ component: 'calls' }) });
  // 话单, webhooks and metrics listen to the tracker, off the call path.
  const metrics = new DialplaneMetrics();
  metrics.trackCalls(tracker);
  redisClient?.on('error', () => metrics.countRedisError());
  // Embedded: beside the tenant file, like the API keys: data/config.json →
  // data/config.cdrs.jsonl (append-only, replayed at start) and data/config.webhooks.json.
  const beside = (suffix: string): string | undefined => config.storeFile?.replace(/(\.json)?$/, suffix);
  const storeLog = log.child({ component: 'store' });
  const onWarning = (msg: string, err?: unknown): void => storeLog.warn(err === undefined ? {} : { err }, msg);
  const cdrs: CdrStore = redisClient
    ? new RedisCdrStore({ redis: redisClient, prefix: config.redisPrefix, retentionDays: config.cdrRetentionDays })
    : await EmbeddedCdrStore.open({ retentionDays: config.cdrRetentionDays, file: beside('.cdrs.jsonl'), onWarning });
  const webhooks: WebhookStore = redisClient
    ? new RedisWebhookStore({ redis: redisClient, prefix: config.redisPrefix })
    : await EmbeddedWebhookStore.open({ file: beside('.webhooks.json'), onWarning });
  const cdrWriter = new CdrWriter({ store: cdrs, clock, log: log.child({ component: 'cdr' }) });
  cdrWriter.listen(tracker);
  // SSRF guard, shared by the admin API (registration) and the dispatcher
  // (every delivery): private ranges refused unless DIALPLANE_WEBHOOK_ALLOW
  // lets them through; this node's own addresses refused too (a webhook must
  // not reach our admin or SIP ports through the public address).
  const webhookUrlGuard = new WebhookUrlGuard({ allow: config.webhookAllow, selfAddresses: [...ourHosts] });
  const dispatcher = new WebhookDispatcher({ store: webhooks, clock, log: log.child({ component: 'webhooks' }), guard: webhookUrlGuard });
  dispatcher.listen(tracker);
  metrics.setQueueSources({ cdr: () => cdrWriter.stats(), webhooks: () => dispatcher.stats() });
  // First of the closers, while Redis is still open: the writer flushes what it can.
  closers.unshift(async () => {
    await dispatcher.close();
    await cdrWriter.close();
    await Promise.all([cdrs.close(), webhooks.close()]);
    metrics.close();
  });
  // 来电归属地: loaded once (≈ 0.25 s), then ≈ 0.1 µs a lookup.
  const region = await loadRegionIndex();
  const router = createCallExecutor({
    index, location, digestFor, counters: tenants, tracker, region,
    trusted: p.trustedSources.map(parseCidr),
    isLocalUri,
    flowAlive: (id) => transport.hasConnection(id),
    node: config.node, clock, log: log.child({ component: 'call' }),
  });

  // The proxy core is the transaction user of the layer it also sends through: wire it lazily.
  const core: { proxy?: ProxyCore } = {};
  const layer = new TransactionLayer({
    transport, clock, timers: p.timers, log: log.child({ component: 'transaction' }),
    tu: {
      onRequest: (tx, req) => core.proxy?.onRequest(tx, req),
      onAck: (req) => core.proxy?.onAck(req),
      onStrayResponse: (res) => core.proxy?.onStrayResponse(res),
    },
    // §17.2.1: the transaction sends 100 only if the TU has not sent a provisional
    // within 200 ms; downstream phones usually ring within a few ms, so the
    // caller hears their 180 and no extra message is built or sent.
    trying100DelayMs: 200,
  });
  const proxy = new ProxyCore({
    layer, clock, log: log.child({ component: 'proxy' }), router,
    registrar: register,
    interfaces: { viaFor: (t) => transport.viaFor(t), isLocalUri, flowDestination: (id) => transport.connectionDestination(id) },
    timerCMs: p.timers.timerC,
    t1Ms: p.timers.t1,
    onInDialogRequest: (req) => tracker.inDialog(req),
  });
  core.proxy = proxy;
  transport.setHandlers({
    onRequest: (req) => { metrics.countSipMessage(req.method); layer.receiveRequest(req); },
    onResponse: (res) => { metrics.countSipMessage(res.status); layer.receiveResponse(res); },
  });
  await transport.start();
  log.info({ bind: p.bind, advertise: p.advertise, ports: transport.ports, realm: p.realm, store: config.redisUrl ? 'redis' : 'embedded' }, 'Dialplane SIP listening');

  // Calls live in the node whose proxy carries them. With Redis the admin API
  // of any node also asks the others (src/store/redis/node-bus.ts).
  const ender = {
    // RFC 3326 Reason on our BYEs: the phones (and their CDRs) see why the call ended.
    hangUp: (d: Parameters<ProxyCore['hangUp']>[0]) => proxy.hangUp(d, { cause: 200, text: 'Call terminated by the administrator' }),
    abort: (id: string) => proxy.abort(id),
  };
  let nodeBus: RedisNodeBus | undefined;
  if (redisClient) {
    const bus = new RedisNodeBus({
      redis: redisClient, prefix: config.redisPrefix, log: log.child({ component: 'node-bus' }),
      // Unique per process: node ids may repeat (every container is pid 1).
      nodeId: `${config.node}-${randomBytes(4).toString('hex')}`,
      handler: (op, args) => {
        if (op === 'calls') return tracker.list();
        if (op === 'hangup') {
          const a = args as { tenant?: unknown; callId?: unknown };
          if (typeof a.tenant !== 'string' || typeof a.callId !== 'string') throw new Error('hangup needs tenant and callId');
          return tracker.hangUp(a.tenant, a.callId, ender);
        }
        throw new Error(`unknown question ${op}`);
      },
    });
    await bus.start();
    nodeBus = bus;
    closers.unshift(() => bus.stop());
  }
  const calls = {
    list: async () => {
      const here = tracker.list();
      if (!nodeBus) return here;
      const others = await nodeBus.ask('calls', null);
      return [...here, ...others.values.flatMap((v) => (Array.isArray(v) ? (v as CallRecord[]) : []))];
    },
    hangUp: async (tenant: string, callId: string): Promise<HangUpResult> => {
      const here = await tracker.hangUp(tenant, callId, ender);
      if (here.state !== 'unknown' || !nodeBus) return here;
      const others = await nodeBus.ask('hangup', { tenant, callId });
      return (others.values as HangUpResult[]).find((r) => r !== null && typeof r === 'object' && r.state !== 'unknown') ?? here;
    },
  };

  // Admin API (src/admin): HTTP on DIALPLANE_HTTP_PORT, on the SIP profile's bind address.
  let stopping = false;
  if (config.adminToken === undefined) log.warn({}, 'DIALPLANE_ADMIN_TOKEN is not set: tenants can only be managed with tenant API keys');
  const admin = await buildAdminApp({
    store: tenants, cache, keys: apiKeys, location, defaultRealm: p.realm, log: log.child({ component: 'admin' }),
    ...(config.adminToken !== undefined ? { adminToken: config.adminToken } : {}),
    ready: () => !stopping, region: (n) => region.lookup(n),
    cdrs, webhooks, dispatcher, webhookUrlGuard, metrics, prompts,
    // Rate-limit counters shared by the cluster, under <prefix>admin-rate:.
    ...(redisClient ? { sharedRateLimit: adminRateLimitBackend(redisClient, config.redisPrefix) } : {}),
    calls,
  });
  await admin.listen({ port: config.httpPort, host: p.bind });
  closers.unshift(async () => { stopping = true; await admin.close(); }, () => apiKeys.close(), () => prompts.close());
  log.info({ bind: p.bind, port: config.httpPort }, 'Dialplane admin API listening');

  return {
    config,
    transport,
    callData: { cdrs, webhooks, dispatcher, metrics },
    async stop() {
      await transport.stop();
      for (const c of closers) await c();
    },
  };
}

async function main(): Promise<void> {
  let config: Readonly<Config>;
  try {
    config = loadConfig(process.env, process.argv.slice(2), join(root, 'sip-profiles'));
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`dialplane: configuration error: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const log = createLogger(config.logLevel);
  let server: RunningServer;
  try {
    server = await startServer(config, log);
  } catch (err) {
    log.fatal({ err }, 'start-up failed');
    process.exit(1);
  }
  const shutdown = (sig: string): void => {
    log.info({ sig }, 'shutting down');
    server.stop().then(() => process.exit(0), () => process.exit(1));
    setTimeout(() => process.exit(1), 5000).unref();
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  // A bug must be logged loudly but must not silently kill calls in progress.
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  void main();
}
