/**
 * Routing engine benchmark: a synthetic tenant with 10,000 numbers and
 * 1,000 rules; measures compile time and per-call evaluate() latency.
 *
 *   npx tsc -p tsconfig.json && node dist/test/bench/routing-bench.js [calls]
 *
 * Each evaluate() call is timed on its own with process.hrtime.bigint()
 * (the timer's own cost is measured and printed, not subtracted), over a
 * rotating set of 4,096 pre-built facts so lookups do not hit one hot path.
 * Node built-ins only.
 */
import { performance } from 'node:perf_hooks';
import { compileGlobal, compileTenant, evaluate, type CompiledGlobal, type CompiledTenant } from '../../src/routing/engine.js';
import type { RoutingFacts } from '../../src/routing/facts.js';
import type { Action, Route, TenantDocument } from '../../src/routing/model.js';
import { validateTenant } from '../../src/routing/validate.js';

const CALLS = Number(process.argv[2] ?? 200_000);
const WARMUP = 50_000;
const ROUTES = 200;
const NUMBERS = 10_000;
const EXTENSIONS = 2_000;
const SIP = { ha1Md5: '0'.repeat(32), ha1Sha256: '0'.repeat(64) };

/** Deterministic PRNG so every run builds the same tenant and the same calls. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(20250106);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
const PROVINCES = ['北京', '上海', '广东', '浙江', '江苏', '四川', '湖北', '山东'];

function buildTenant(): TenantDocument {
  const extensions = Array.from({ length: EXTENSIONS }, (_, i) => ({
    number: String(2000 + i),
    sip: SIP,
    ...(i % 10 === 0 ? { alsoRing: { numbers: [`1380000${String(i).padStart(4, '0')}`], mode: i % 20 === 0 ? 'together' as const : 'after' as const } } : {}),
    ...(i % 3 === 0 ? { voicemail: `vm${i}` } : {}),
  }));
  const strategies = ['sequential', 'round-robin', 'random', 'weighted', 'simultaneous'] as const;
  const groups = Array.from({ length: 400 }, (_, g) => ({
    id: `g${g}`,
    strategy: strategies[g % strategies.length] ?? 'sequential',
    members: Array.from({ length: 5 }, (_, m) => ({ extension: String(2000 + ((g * 5 + m) % EXTENSIONS)), ...(g % 5 === 3 ? { weight: m + 1 } : {}) })),
  }));
  const schedules = Array.from({ length: 20 }, (_, s) => ({
    id: `s${s}`,
    weekly: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'] as const, from: `0${8 + (s % 2)}:00`, to: '18:00' }, { days: ['sat'] as const, from: '10:00', to: '14:00' }, { days: ['fri'] as const, from: '22:00', to: '02:00' }]
      .map((w) => ({ ...w, days: [...w.days] })),
    holidays: [{ date: '2025-01-01' }, { date: '2025-01-28', to: '2025-02-04' }, { date: '2025-05-01', to: '2025-05-05' }, { date: '2025-10-01', to: '2025-10-08' }],
    makeupWorkdays: [{ date: '2025-01-26' }, { date: '2025-02-08' }, { date: '2025-04-27' }, { date: '2025-09-28' }, { date: '2025-10-11' }],
  }));
  const routes: Route[] = Array.from({ length: ROUTES }, (_, r) => {
    const g = (k: number) => `g${(r * 2 + k) % groups.length}`;
    const ringGroup = (k: number): Action => ({ kind: 'ringGroup', group: g(k) });
    return {
      id: `r${r}`,
      rules: [
        { id: 'blocked', when: { callerBlacklisted: true }, actions: [{ kind: 'announce', prompt: 'blocked' }] },
        { id: 'closed', when: { schedule: { id: `s${r % schedules.length}`, inside: false } }, actions: [{ kind: 'announce', prompt: 'closed', then: 'next' }, { kind: 'voicemail', box: `r${r}` }] },
        { id: 'region', when: { callerRegion: { in: [{ province: PROVINCES[r % PROVINCES.length] ?? '北京' }, { province: '上海', city: '上海' }] } }, actions: [ringGroup(0), ringGroup(1), { kind: 'voicemail', box: `r${r}` }] },
        { id: 'vip', when: { callerNumber: { patterns: [`13${r % 10}*`, '+1*'] }, calledNumber: { patterns: ['400*'] } }, actions: [{ kind: 'ring', strategy: 'sequential', targets: [{ extension: String(2000 + r) }, { number: `1390000${String(r).padStart(4, '0')}` }] }] },
        { id: 'default', actions: [ringGroup(1), { kind: 'forward', number: `1370000${String(r).padStart(4, '0')}` }] },
      ],
    };
  });
  const numbers: NonNullable<TenantDocument['numbers']> = [];
  for (let i = 0; numbers.length < 9_000; i++) numbers.push({ number: i % 2 === 0 ? String(4008000000 + i) : `0571${String(80000000 + i)}`, route: `r${i % ROUTES}` });
  for (let i = 0; numbers.length < 9_800; i++) numbers.push({ range: { from: `0755${String(60000000 + i * 100)}`, to: `0755${String(60000000 + i * 100 + 99)}` }, route: `r${i % ROUTES}` });
  for (let i = 0; numbers.length < NUMBERS; i++) numbers.push({ prefix: `010${String(7000 + i)}`, route: `r${i % ROUTES}` });
  return {
    id: 'bench',
    outboundCallerId: '057180000001',
    numbers,
    extensions,
    groups,
    schedules,
    blacklist: { numbers: Array.from({ length: 10_000 }, (_, i) => `1510000${String(i).padStart(4, '0')}`), prefixes: Array.from({ length: 1_000 }, (_, i) => `+86165${String(i).padStart(3, '0')}`) },
    regionOverrides: Array.from({ length: 1_000 }, (_, i) => ({ prefix: `+86139${String(i).padStart(4, '0')}`, province: pick(PROVINCES) })),
    inboundTrunks: [{ id: 'carrier', sources: ['10.0.0.0/8'] }],
    outboundGateways: [
      { id: 'cmcc', host: 'cmcc.example.invalid', priority: 5, carriers: ['cmcc'] },
      { id: 'ctcc', host: 'ctcc.example.invalid', priority: 5, carriers: ['ctcc'] },
      { id: 'default', host: 'gw.example.invalid', priority: 1 },
    ],
    routes,
  };
}

function buildGlobal(): CompiledGlobal {
  return compileGlobal({
    blacklist: { prefixes: ['+861700', '+861701'] },
    carriers: {
      segments: [...['134', '135', '136', '137', '138', '139', '150', '151', '152', '158', '159', '182', '187', '188'].map((p) => ({ prefix: p, carrier: 'cmcc' })), ...['133', '153', '180', '181', '189', '199'].map((p) => ({ prefix: p, carrier: 'ctcc' }))],
      ported: Array.from({ length: 100_000 }, (_, i) => ({ number: `1370${String(i).padStart(7, '0')}`, carrier: i % 2 === 0 ? 'ctcc' : 'cmcc' })),
    },
  });
}

function buildFacts(doc: TenantDocument): RoutingFacts[] {
  const called = (doc.numbers ?? []).map((n) => n.number ?? (n.range ? n.range.from.slice(0, -2) + String(Math.floor(rand() * 100)).padStart(2, '0') : `${n.prefix ?? ''}1234`));
  const callerForms = () => {
    const x = rand();
    if (x < 0.6) return `13${Math.floor(rand() * 10)}${String(Math.floor(rand() * 1e8)).padStart(8, '0')}`;
    if (x < 0.8) return `+86571${String(Math.floor(rand() * 1e8)).padStart(8, '0')}`;
    if (x < 0.85) return `1510000${String(Math.floor(rand() * 1e4)).padStart(4, '0')}`; // blacklisted
    if (x < 0.9) return '+14155552671';
    return `139${String(Math.floor(rand() * 1e8)).padStart(8, '0')}`; // some hit the region overrides
  };
  const base = Date.UTC(2025, 2, 3, 0, 0); // Monday 2025-03-03 08:00 Shanghai
  return Array.from({ length: 4096 }, (_, i): RoutingFacts => {
    const region = pick(PROVINCES);
    return {
      tenant: 'bench',
      origin: { kind: 'trunk', trunk: 'carrier' },
      called: pick(called),
      caller: callerForms(),
      callerRegion: { province: `${region}省`, city: `${region}市` },
      // 70% in office hours (Mon-Fri 09:00-18:00), the rest anywhere in the week.
      time: rand() < 0.7
        ? base + Math.floor(rand() * 5) * 86_400_000 + 3_600_000 + Math.floor(rand() * 9 * 3_600_000)
        : base + Math.floor(rand() * 7 * 86_400_000),
      counters: i % 2 === 0 ? { [`rr:bench:group:g${i % 400}`]: i } : undefined,
      seed: Math.floor(rand() * 2 ** 32),
    };
  });
}

function buildInternalFacts(): RoutingFacts[] {
  return Array.from({ length: 4096 }, (_, i): RoutingFacts => ({
    tenant: 'bench',
    origin: { kind: 'extension', extension: String(2000 + (i % EXTENSIONS)) },
    called: i % 2 === 0 ? String(2000 + ((i * 7) % EXTENSIONS)) : `13${i % 10}${String(i * 7919).padStart(8, '0').slice(-8)}`,
    time: Date.UTC(2025, 2, 3, 2, 0),
    seed: i,
  }));
}

interface Stats { p50: number; p90: number; p99: number; p999: number; max: number; mean: number; perSec: number }

function measure(tenant: CompiledTenant, global: CompiledGlobal, list: readonly RoutingFacts[], explain: boolean): Stats {
  const n = list.length;
  let sink = 0;
  for (let i = 0; i < WARMUP; i++) sink += evaluate(tenant, list[i % n] as RoutingFacts, { global, explain }).plan.steps.length;
  const samples = new Float64Array(CALLS);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) {
    const f = list[i % n] as RoutingFacts;
    const a = process.hrtime.bigint();
    sink += evaluate(tenant, f, { global, explain }).plan.steps.length;
    samples[i] = Number(process.hrtime.bigint() - a);
  }
  const total = Number(process.hrtime.bigint() - t0);
  if (sink === 0) throw new Error('no steps planned');
  samples.sort();
  const q = (p: number) => (samples[Math.min(CALLS - 1, Math.floor(p * CALLS))] ?? 0) / 1000;
  let sum = 0;
  for (const s of samples) sum += s;
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999), max: (samples[CALLS - 1] ?? 0) / 1000, mean: sum / CALLS / 1000, perSec: CALLS / (total / 1e9) };
}

function timerCost(): number {
  const samples = new Float64Array(100_000);
  for (let i = 0; i < samples.length; i++) {
    const a = process.hrtime.bigint();
    samples[i] = Number(process.hrtime.bigint() - a);
  }
  samples.sort();
  return (samples[samples.length >> 1] ?? 0) / 1000;
}

function main(): void {
  const doc = buildTenant();
  const rules = (doc.routes ?? []).reduce((acc, r) => acc + r.rules.length, 0);

  let t = performance.now();
  const v = validateTenant(doc);
  const validateMs = performance.now() - t;
  if (!v.ok) throw new Error(`synthetic tenant invalid: ${JSON.stringify(v.issues.slice(0, 5))}`);
  const compileRuns: number[] = [];
  let tenant: CompiledTenant | undefined;
  for (let i = 0; i < 5; i++) {
    t = performance.now();
    tenant = compileTenant(doc);
    compileRuns.push(performance.now() - t);
  }
  if (!tenant) throw new Error('not compiled');
  t = performance.now();
  const global = buildGlobal();
  const globalMs = performance.now() - t;

  const inbound = buildFacts(doc);
  const internal = buildInternalFacts();
  const outcomes = new Map<string, number>();
  for (const f of inbound) {
    const o = evaluate(tenant, f, { global }).explanation;
    const key = `${o.outcome}/${o.routes[0]?.matchedRule ?? '-'}`;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  }

  const fmt = (x: number, d = 2) => x.toFixed(d).padStart(9);
  process.stdout.write(`\nRouting engine benchmark — node ${process.version}, ${CALLS.toLocaleString('en')} timed calls per scenario after ${WARMUP.toLocaleString('en')} warm-up\n`);
  process.stdout.write(`tenant: ${tenant.stats.numbers.toLocaleString('en')} exact numbers + ${(NUMBERS - tenant.stats.numbers).toLocaleString('en')} ranges/prefixes (${tenant.stats.numberBlocks.toLocaleString('en')} trie blocks), ${rules.toLocaleString('en')} rules in ${tenant.stats.routes} routes, ${tenant.stats.extensions.toLocaleString('en')} extensions, 400 groups, 10,000 blacklisted numbers; global: 100,000 ported numbers\n\n`);
  const sorted = [...compileRuns].sort((a, b) => a - b);
  process.stdout.write('| build step                                 |        ms |\n|--------------------------------------------|-----------|\n');
  process.stdout.write(`| first validateTenant (+ ajv schema compile)| ${fmt(validateMs, 1)} |\n`);
  process.stdout.write(`| compileTenant (validate + index), median/5 | ${fmt(sorted[2] ?? 0, 1)} |\n`);
  process.stdout.write(`| compileGlobal (100k ported)                | ${fmt(globalMs, 1)} |\n\n`);

  process.stdout.write(`hrtime.bigint() pair costs ${timerCost().toFixed(3)} µs (included in every sample below)\n\n`);
  process.stdout.write('| evaluate() scenario                 |  p50 µs |  p90 µs |  p99 µs | p99.9 µs |   max µs | mean µs |   calls/s |\n');
  process.stdout.write('|-------------------------------------|---------|---------|---------|----------|----------|---------|-----------|\n');
  const row = (name: string, s: Stats) => process.stdout.write(`| ${name.padEnd(35)} | ${s.p50.toFixed(2).padStart(7)} | ${s.p90.toFixed(2).padStart(7)} | ${s.p99.toFixed(2).padStart(7)} | ${s.p999.toFixed(2).padStart(8)} | ${s.max.toFixed(1).padStart(8)} | ${s.mean.toFixed(2).padStart(7)} | ${Math.round(s.perSec).toLocaleString('en').padStart(9)} |\n`);
  row('inbound via trunk (call path)', measure(tenant, global, inbound, false));
  row('inbound via trunk, explain (dry run)', measure(tenant, global, inbound, true));
  row('extension → extension / outbound', measure(tenant, global, internal, false));
  process.stdout.write(`\ninbound mix (outcome/first matched rule over the 4,096 facts): ${[...outcomes].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')}\n`);
}

main();
