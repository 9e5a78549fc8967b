/**
 * Writes routing-rules/*.schema.json from src/routing/schema.ts, the one
 * place the schemas are defined (DESIGN.md §1 rule 4). Run after changing
 * a schema:   npx tsx routing-rules/generate-schemas.ts
 * test/unit/routing/schema-files.test.ts fails while the files are stale.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { schemaFiles } from '../src/routing/schema.js';

const here = dirname(fileURLToPath(import.meta.url));
for (const [name, text] of Object.entries(schemaFiles())) {
  writeFileSync(join(here, name), text);
  process.stdout.write(`wrote routing-rules/${name}\n`);
}
