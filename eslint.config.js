// Lint config. The layer rules of DESIGN.md §1 are enforced here with
// no-restricted-imports so a wrong-way dependency fails `npm test`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const sipLayer = {
  files: ['src/sip/**/*.ts'],
  rules: {
    'no-restricted-imports': ['error', {
      patterns: [
        { group: ['**/routing/**', '**/store/**', '**/call/**', '**/admin/**', '**/media/**', '**/main.js'], message: 'src/sip knows nothing about tenants, rules or storage (DESIGN.md §1 rule 1).' },
        { group: ['ioredis', 'fastify', 'pino'], message: 'src/sip takes its logger and storage through interfaces.' },
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
        { group: ['node:*', 'ioredis', 'fastify', '**/store/**', '**/sip/**', '**/call/**', '**/admin/**'], message: 'src/routing is pure: no I/O (DESIGN.md §1 rule 2).' },
      ],
    }],
  },
};
const notStore = {
  files: ['src/**/*.ts'],
  ignores: ['src/store/**'],
  rules: {
    'no-restricted-imports': ['error', { paths: [{ name: 'ioredis', message: 'Only src/store imports ioredis (DESIGN.md §1 rule 3).' }] }],
  },
};

// Only src/admin speaks HTTP (DESIGN.md §1 rule 3). main.ts wires the admin
// app in and never imports Fastify itself.
const notAdmin = {
  files: ['src/**/*.ts'],
  ignores: ['src/admin/**'],
  rules: {
    'no-restricted-imports': ['error', {
      paths: [{ name: 'ioredis', message: 'Only src/store imports ioredis (DESIGN.md §1 rule 3).' }],
      patterns: [{ group: ['fastify', '@fastify/*'], message: 'Only src/admin imports Fastify (DESIGN.md §1 rule 3).' }],
    }],
  },
};
const storeLayer = {
  files: ['src/store/**/*.ts'],
  rules: {
    'no-restricted-imports': ['error', { patterns: [{ group: ['fastify', '@fastify/*'], message: 'Only src/admin imports Fastify (DESIGN.md §1 rule 3).' }] }],
  },
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
  notAdmin,
  storeLayer,
  sipLayer,
  routingLayer,
);
