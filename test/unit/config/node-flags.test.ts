/** The server runs with the same V8 flags however it is started (src/node-flags.ts). */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_FLAGS } from '../../../src/node-flags.js';

const root = process.cwd();

t.test('npm start passes NODE_FLAGS to node', async (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  t.equal(pkg.scripts.start, ['node', ...NODE_FLAGS, 'dist/src/main.js'].join(' '));
});

t.test('the Docker image passes NODE_FLAGS to node', async (t) => {
  const entry = /^ENTRYPOINT (.*)$/m.exec(readFileSync(join(root, 'Dockerfile'), 'utf8'))?.[1];
  t.same(JSON.parse(entry ?? 'null'), ['node', ...NODE_FLAGS, 'dist/src/main.js']);
});
