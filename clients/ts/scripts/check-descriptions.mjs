#!/usr/bin/env node
// Description coverage of schema.graphql: every type, field, argument, enum value and input
// field has a description (the generated clients, GraphiQL and the Apollo tools show them).
//   node scripts/check-descriptions.mjs [--schema FILE]
// Prints the coordinates that lack one and exits 1; exits 0 when all are described.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import {
  buildSchema,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  isSpecifiedDirective,
  isSpecifiedScalarType,
} from 'graphql';
import { schemaPath } from './lib.mjs';

const described = (d) => typeof d === 'string' && d.trim().length > 0;

/** Schema coordinates (Type, Type.field, Type.field(arg:), Enum.VALUE, @dir(arg:)) without a description. */
export function missingDescriptions(sdl) {
  const schema = buildSchema(sdl);
  const missing = [];
  const types = Object.values(schema.getTypeMap())
    .filter((t) => !t.name.startsWith('__') && !isSpecifiedScalarType(t))
    .sort((a, b) => a.name.localeCompare(b.name));
  for (const t of types) {
    if (!described(t.description)) missing.push(t.name);
    if (isObjectType(t) || isInterfaceType(t)) {
      for (const f of Object.values(t.getFields())) {
        if (!described(f.description)) missing.push(`${t.name}.${f.name}`);
        for (const a of f.args) if (!described(a.description)) missing.push(`${t.name}.${f.name}(${a.name}:)`);
      }
    } else if (isInputObjectType(t)) {
      for (const f of Object.values(t.getFields())) if (!described(f.description)) missing.push(`${t.name}.${f.name}`);
    } else if (isEnumType(t)) {
      for (const v of t.getValues()) if (!described(v.description)) missing.push(`${t.name}.${v.name}`);
    }
  }
  for (const d of schema.getDirectives()) {
    if (isSpecifiedDirective(d)) continue;
    if (!described(d.description)) missing.push(`@${d.name}`);
    for (const a of d.args) if (!described(a.description)) missing.push(`@${d.name}(${a.name}:)`);
  }
  return missing;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--schema');
  const file = i > 0 ? process.argv[i + 1] : schemaPath;
  const missing = missingDescriptions(readFileSync(file, 'utf8'));
  if (missing.length) {
    console.error(`schema.graphql: ${missing.length} schema coordinate(s) without a description:`);
    for (const m of missing) console.error(`  ${m}`);
    console.error('Add a doc comment (`///` on the Rust item, or `#[graphql(desc = "...")]`), then `cargo run -q -- export-schema`.');
    process.exit(1);
  }
  console.log('schema.graphql: every type, field, argument, enum value and input field is described');
}
