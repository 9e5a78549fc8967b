/**
 * Caller region index micro-benchmark: load time and memory of
 * loadRegionIndex(), then lookups/s and per-lookup p50/p99.
 *
 *   npx tsx test/bench/region-bench.ts [lookups]
 *   npx tsx --expose-gc test/bench/region-bench.ts   (memory after a GC: steadier figures)
 *
 * Numbers rotate through 4,096 pre-built inputs in the forms caller IDs
 * arrive in (+86…, 0086…, 86…, bare mobiles, 0-prefixed landlines with and
 * without separators, 400 numbers, garbage), so neither the branch predictor
 * nor the cache sees one hot number. Throughput is one timed loop; latency
 * times each lookup alone with process.hrtime.bigint() (the timer's own cost
 * is printed, not subtracted). Node built-ins only.
 */
import { performance } from 'node:perf_hooks';
import { loadRegionIndex } from '../../src/call/region-index.js';

const LOOKUPS = Number(process.argv[2] ?? 5_000_000);
const LATENCY_SAMPLES = 200_000;
const gc = (globalThis as { gc?: () => void }).gc;

/** Deterministic PRNG so every run looks up the same numbers. */
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
const digits = (n: number): string => Array.from({ length: n }, () => Math.floor(rand() * 10)).join('');
const AREAS = ['10', '21', '20', '22', '23', '571', '755', '512', '471', '991', '771', '898', '731'];

function corpus(size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < size; i++) {
    const mobile = `1${3 + Math.floor(rand() * 7)}${digits(9)}`;
    const area = AREAS[Math.floor(rand() * AREAS.length)] ?? '571';
    const landline = `${area}${digits(area.length === 2 ? 8 : 8 - Math.floor(rand() * 2))}`;
    switch (i % 10) {
      case 0: out.push(`+86${mobile}`); break;
      case 1: case 2: out.push(mobile); break;
      case 3: out.push(`0086${mobile}`); break;
      case 4: out.push(`86${mobile}`); break;
      case 5: out.push(`0${landline}`); break;
      case 6: out.push(`+86${landline}`); break;
      case 7: out.push(`0${area}-${landline.slice(area.length)}`); break;
      case 8: out.push(`400${digits(7)}`); break;
      default: out.push(rand() < 0.5 ? 'anonymous' : digits(4)); break;
    }
  }
  return out;
}

gc?.();
const before = process.memoryUsage();
const t0 = performance.now();
const index = await loadRegionIndex();
const loadMs = performance.now() - t0;
gc?.();
const after = process.memoryUsage();
const mb = (b: number): string => (b / 1048576).toFixed(1);
console.log(`load: ${loadMs.toFixed(0)} ms, ${index.stats.entries} keys, ${index.stats.descriptions} regions`);
console.log(`memory retained${gc ? ' (after GC)' : ' (no --expose-gc: includes garbage)'}: heap +${mb(after.heapUsed - before.heapUsed)} MB, ` +
  `array buffers +${mb(after.arrayBuffers - before.arrayBuffers)} MB, rss +${mb(after.rss - before.rss)} MB`);

const inputs = corpus(4096);
const mask = inputs.length - 1;
let found = 0;
for (let i = 0; i < 500_000; i++) if (index.lookup(inputs[i & mask] as string) !== undefined) found++; // warm-up (JIT)

found = 0;
const start = performance.now();
for (let i = 0; i < LOOKUPS; i++) if (index.lookup(inputs[i & mask] as string) !== undefined) found++;
const seconds = (performance.now() - start) / 1000;
console.log(`throughput: ${Math.round(LOOKUPS / seconds).toLocaleString('en')} lookups/s (${LOOKUPS.toLocaleString('en')} lookups, ${(100 * found / LOOKUPS).toFixed(0)}% with a region)`);

const samples = new Float64Array(LATENCY_SAMPLES);
const overhead = new Float64Array(LATENCY_SAMPLES);
for (let i = 0; i < LATENCY_SAMPLES; i++) {
  const input = inputs[i & mask] as string;
  const a = process.hrtime.bigint();
  if (index.lookup(input) !== undefined) found++;
  const b = process.hrtime.bigint();
  const c = process.hrtime.bigint();
  samples[i] = Number(b - a);
  overhead[i] = Number(c - b);
}
samples.sort();
overhead.sort();
const pct = (xs: Float64Array, p: number): number => xs[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? NaN;
console.log(`latency per lookup: p50 ${pct(samples, 0.5)} ns, p99 ${pct(samples, 0.99)} ns, max ${pct(samples, 1)} ns ` +
  `(timer alone: p50 ${pct(overhead, 0.5)} ns, p99 ${pct(overhead, 0.99)} ns)`);
if (found < 0) console.log(found); // keeps the loops' results observable
