// Shared helpers for the check scripts: where the schema and the operation documents live.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const tsDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = resolve(tsDir, '..', '..');
export const schemaPath = join(repoRoot, 'schema.graphql');
export const operationsDir = join(repoRoot, 'clients', 'operations');

/** The operation documents as [{ path, body }], sorted by file name. */
export function readOperationFiles(dir = operationsDir) {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.graphql'))
    .sort()
    .map((f) => ({ path: join(dir, f), body: readFileSync(join(dir, f), 'utf8') }));
}
