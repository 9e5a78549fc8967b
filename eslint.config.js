// Lint config. The layer rules of DESIGN.md §1 are enforced here with
// no-restricted-imports so a wrong-way dependency fails `npm test`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Layers above store/ and call/: they listen to calls and use stores, never the other way round.
const upperLayers = ['**/metrics/**', '**/cdr/**', '**/webhooks/**', '**/admin/**', '**/main.js'];
const noRedis = { name: 'ioredis', message: 'Only src/store imports ioredis (DESIGN.md §1 rule 3).' };
const noPromClient = { name: 'prom-client', message: 'Only src/metrics imports prom-client; lower layers get plain hook functions.' };

const sipLayer = {
  files: ['src/sip/**/*.ts'],
  rules: {
    'no-restricted-imports': ['error', {
      patterns: [
        { group: ['**/routing/**', '**/store/**', '**/call/**', '**/media/**', ...upperLayers], message: 'src/sip knows nothing about tenants, rules or storage (DESIGN.md §1 rule 1).' },
        { group: ['ioredis', 'fastify', '@fastify/*', 'pino', 'prom-client'], message: 'src/sip takes its logger, storage and metrics hooks through interfaces.' },
      ],
    }],
  },
};
const routingLayer = {
  files: ['src/routing/**/*.ts'],
  rules: {
    // Pure: time and randomness arrive as facts (DESIGN.md §1 rule 2).
    'no-restricted-properties': ['error',
      { object: 'Date', property: 'now', message: 'src/routing is pure: time is a fact.' },
      { object: 'Math', property: 'random', message: 'src/routing is pure: randomness comes from facts.seed.' }],
    'no-restricted-globals': ['error', 'process', 'setTimeout', 'setInterval', 'setImmediate', 'fetch'],
    'no-restricted-imports': ['error', {
      patterns: [
        { group: ['node:*', 'ioredis', 'fastify', 'prom-client', '**/store/**', '**/sip/**', '**/call/**', ...upperLayers], message: 'src/routing is pure: no I/O (DESIGN.md §1 rule 2).' },
      ],
    }],
  },
};
const noFastify = { group: ['fastify', '@fastify/*'], message: 'Only src/admin imports Fastify (DESIGN.md §1 rule 3).' };

// A rule set for a file replaces earlier ones for the same rule, so each
// layer's block repeats the package bans that apply to it.
const notStore = {
  files: ['src/**/*.ts'],
  ignores: ['src/store/**', 'src/metrics/**', 'src/admin/**', 'src/call/**'],
  rules: {
    'no-restricted-imports': ['error', { paths: [noRedis, noPromClient], patterns: [noFastify] }],
  },
};
const metricsLayer = {
  files: ['src/metrics/**/*.ts'],
  rules: { 'no-restricted-imports': ['error', { paths: [noRedis], patterns: [noFastify] }] },
};
const storeLayer = {
  files: ['src/store/**/*.ts'],
  rules: {
    'no-restricted-imports': ['error', {
      paths: [noPromClient],
      patterns: [noFastify, { group: ['**/call/**', ...upperLayers], message: 'src/store is below calls, CDR writers, webhooks, metrics and the admin API: it declares the shapes it stores.' }],
    }],
  },
};
const callLayer = {
  files: ['src/call/**/*.ts'],
  rules: {
    'no-restricted-imports': ['error', {
      paths: [noRedis, noPromClient],
      patterns: [noFastify, { group: upperLayers, message: 'src/call is below CDR writers, webhooks, metrics and the admin API: they listen to the CallTracker.' }],
    }],
  },
};
// Media (WAV reading, G.711): pure functions over bytes, usable by the
// admin API (upload checks) and later by RTP playback; it knows nothing of
// where prompts are stored or who asks for them.
const mediaLayer = {
  files: ['src/media/**/*.ts'],
  rules: {
    'no-restricted-imports': ['error', {
      paths: [noRedis, noPromClient],
      patterns: [noFastify, { group: ['**/store/**', '**/call/**', '**/routing/**', ...upperLayers], message: 'src/media is below the store, calls and the admin API: bytes in, verdicts out.' }],
    }],
  },
};
// Only src/admin speaks HTTP; main.ts wires the admin app in and never imports Fastify itself.
const adminLayer = {
  files: ['src/admin/**/*.ts'],
  rules: { 'no-restricted-imports': ['error', { paths: [noRedis, noPromClient] }] },
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.tap/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-control-regex': 'off',
    },
  },
  notStore,
  metricsLayer,
  storeLayer,
  callLayer,
  adminLayer,
  mediaLayer,
  sipLayer,
  routingLayer,
);
