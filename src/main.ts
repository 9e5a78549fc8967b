/**
 * Composition root: reads the environment and profiles once, builds the
 * store, the SIP stack and the call router, and wires them together.
 * Nothing else in the code base reads process.env.
 */
import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, ConfigError, type Config } from './config/config.js';
import { createLogger } from './log.js';
import { systemClock } from './sip/clock.js';
import type { Logger } from './sip/logger.js';
import { TransportLayer } from './sip/transport/transport-layer.js';
import { TransactionLayer } from './sip/transaction/transaction-layer.js';
import { ProxyCore } from './sip/proxy/proxy-core.js';
import { Registrar } from './sip/registrar/registrar.js';
import { DigestAuthenticator } from './sip/registrar/digest.js';
import type { LocationService } from './sip/registrar/location-service.js';
import { EmbeddedLocationStore } from './store/embedded/location-store.js';
import { EmbeddedCredentialStore } from './store/embedded/credential-store.js';
import { RedisLocationStore } from './store/redis/location-store.js';
import { createRedisClient, waitForRedisReady } from './store/redis/connect.js';
import { createCallRouter, type Directory } from './call/call-router.js';
import { parseCidr } from './call/cidr.js';
import type { SipUri } from './sip/message/uri.js';

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root, whether running from src/ (tsx) or dist/src/. */
const root = here.includes(`${join('dist', 'src')}`) ? join(here, '..', '..') : join(here, '..');

export interface RunningServer {
  config: Readonly<Config>;
  transport: TransportLayer;
  stop(): Promise<void>;
}

export async function startServer(config: Readonly<Config>, log: Logger): Promise<RunningServer> {
  const p = config.profile;
  const clock = systemClock;
  const closers: Array<() => Promise<void>> = [];

  // Store: Redis when REDIS_URL is set, else in-process.
  let location: LocationService;
  if (config.redisUrl) {
    const redis = createRedisClient(config.redisUrl, log.child({ component: 'redis' }));
    // No offline queue: wait for the first connection before taking REGISTERs.
    await waitForRedisReady(redis, 10_000);
    location = new RedisLocationStore({ redis, prefix: 'dp:' });
    closers.push(async () => { await redis.quit().catch(() => undefined); });
  } else {
    const embedded = new EmbeddedLocationStore({});
    location = embedded;
    closers.push(async () => { embedded.close(); });
  }

  const credentials = new EmbeddedCredentialStore();
  const extensions = new Set<string>();
  const numbers = new Map<string, string[]>();
  if (config.demo) {
    const password = config.demoPassword ?? randomBytes(9).toString('base64url');
    for (const ext of ['1001', '1002']) {
      credentials.setPassword(ext, p.realm, password);
      extensions.add(ext);
    }
    numbers.set('4008123456', ['1001', '1002']);
    log.info({ tenant: 'demo', extensions: [...extensions], realm: p.realm, numbers: [...numbers.keys()], trustedCarrier: '127.0.0.2' }, 'demo tenant provisioned');
    if (!config.demoPassword) {
      // Printed once so a newcomer can register two softphones at once.
      process.stdout.write(`\nDemo tenant: extensions 1001 and 1002, realm "${p.realm}", password: ${password}\n\n`);
    }
  }
  const directory: Directory = {
    isExtension: (u) => extensions.has(u),
    numberTargets: (n) => numbers.get(n),
  };

  const secret = config.secret ? Buffer.from(config.secret, 'utf8') : randomBytes(32);
  const digest = new DigestAuthenticator({ realm: p.realm, secret: secret.length >= 16 ? secret : Buffer.concat([secret, Buffer.alloc(16)]), now: () => clock.now(), algorithms: [...p.digestAlgorithms] });

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
    if (!ourHosts.has(host)) return false;
    const ports = [transport.ports.udp, transport.ports.tcp, transport.ports.ws];
    // No port: the default 5060, or the realm used as a domain name.
    return uri.port === undefined ? host === p.realm.toLowerCase() || ports.includes(5060) : ports.includes(uri.port);
  };

  const registrar = new Registrar({
    location, credentials, digest, realm: p.realm, clock, node: config.node,
    log: log.child({ component: 'registrar' }), policy: p.registrar,
  });
  const router = createCallRouter({
    realm: p.realm, directory, location, credentials, digest,
    trusted: p.trustedSources.map(parseCidr),
    isLocalUri,
    flowAlive: (id) => transport.hasConnection(id),
    node: config.node, clock, log: log.child({ component: 'router' }), ringTimeoutMs: p.ringTimeoutMs,
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
  core.proxy = new ProxyCore({
    layer, clock, log: log.child({ component: 'proxy' }), router,
    registrar: registrar.handle,
    interfaces: { viaFor: (t) => transport.viaFor(t), isLocalUri, flowDestination: (id) => transport.connectionDestination(id) },
    timerCMs: p.timers.timerC,
    t1Ms: p.timers.t1,
  });
  transport.setHandlers({
    onRequest: (req) => layer.receiveRequest(req),
    onResponse: (res) => layer.receiveResponse(res),
  });
  await transport.start();
  log.info({ bind: p.bind, advertise: p.advertise, ports: transport.ports, realm: p.realm, store: config.redisUrl ? 'redis' : 'embedded' }, 'Dialplane SIP listening');

  return {
    config,
    transport,
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
