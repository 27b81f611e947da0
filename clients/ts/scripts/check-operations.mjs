#!/usr/bin/env node
// Checks clients/operations/*.graphql against schema.graphql the way the code generators
// (GraphQL Code Generator, Apollo Kotlin, Apollo iOS) read them:
//  - every file parses; all files together validate against the schema (graphql-js `validate`,
//    all specified rules);
//  - no anonymous operation; operation names and fragment names are unique across files;
//  - every root field of Query, Mutation and Subscription has exactly one operation named after
//    it in PascalCase, in the file of its kind, passing every argument as a variable;
//  - every field of every selected object type is selected (see fragments.graphql for the two
//    documented exceptions: RolleCoreFields and connection edges).
// Exit code 1 with a list of problems otherwise.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  buildSchema,
  concatAST,
  getNamedType,
  isObjectType,
  isAbstractType,
  Kind,
  parse,
  GraphQLError,
  Source,
  specifiedRules,
  TypeInfo,
  validate,
  visit,
  visitWithTypeInfo,
} from 'graphql';
import { readOperationFiles, schemaPath } from './lib.mjs';

const KIND_FILE = { query: 'queries.graphql', mutation: 'mutations.graphql', subscription: 'subscriptions.graphql' };

/** Fields that may be left out on purpose: "Type.field" -> the fragment (or a selection made of it) that may omit it. */
const ALLOWED_OMISSIONS = {
  // RolleCoreFields is reached from RolleVerification.confirmedBy: selecting `verification`
  // there would recurse without end.
  'Rolle.verification': 'RolleCoreFields',
};

/**
 * The extra rules of the Apollo generators (Apollo iOS's frontend validates with graphql-js'
 * specified rules plus these; Apollo Kotlin's are a subset): no `__typename` alias, no @defer,
 * no response key Apollo iOS reserves, no variable named like its generated parameters.
 * `schemaNamespace` is the namespace recommended in clients/README.md.
 */
export const APOLLO_IOS_SCHEMA_NAMESPACE = 'WebereiAPI';
const firstLower = (s) => s.charAt(0).toLowerCase() + s.slice(1);
function apolloRules() {
  const disallowedFields = ['__data', 'fragments', '_'];
  const disallowedVariables = ['self', '_', firstLower(APOLLO_IOS_SCHEMA_NAMESPACE)];
  const entityField = firstLower(APOLLO_IOS_SCHEMA_NAMESPACE);
  return [
    (ctx) => ({
      Field(node) {
        const key = (node.alias ?? node.name).value;
        if (node.alias?.value === '__typename') ctx.reportError(new GraphQLError('Apollo: `__typename` must not be an alias', { nodes: node }));
        if (disallowedFields.includes(firstLower(key))) ctx.reportError(new GraphQLError(`Apollo iOS: field name "${key}" is reserved: alias it`, { nodes: node }));
        if (node.selectionSet && firstLower(key) === entityField) ctx.reportError(new GraphQLError(`Apollo iOS: object field "${key}" clashes with the schema namespace`, { nodes: node }));
      },
      VariableDefinition(node) {
        const name = node.variable.name.value;
        if (disallowedVariables.includes(firstLower(name))) ctx.reportError(new GraphQLError(`Apollo iOS: variable name "${name}" is reserved`, { nodes: node }));
      },
      Directive(node) {
        if (node.name.value === 'defer') ctx.reportError(new GraphQLError('Apollo iOS: @defer is not supported', { nodes: node }));
      },
    }),
  ];
}

const pascal = (s) => s.charAt(0).toUpperCase() + s.slice(1);

export function checkOperations(schemaSdl, files) {
  const problems = [];
  const schema = buildSchema(schemaSdl);
  const docs = [];
  for (const f of files) {
    try {
      docs.push({ path: f.path, doc: parse(new Source(f.body, f.path)) });
    } catch (e) {
      problems.push(`${f.path}: ${e.message}`);
    }
  }
  if (problems.length) return problems;
  const all = concatAST(docs.map((d) => d.doc));
  for (const e of validate(schema, all, [...specifiedRules, ...apolloRules()])) {
    const loc = e.locations?.[0];
    problems.push(`${e.source?.name ?? ''}${loc ? `:${loc.line}:${loc.column}` : ''}: ${e.message}`);
  }

  // Names: no anonymous operations, unique operation and fragment names (across files: the
  // generators put them all in one namespace).
  const opNames = new Map();
  const fragNames = new Map();
  const ops = [];
  for (const { path, doc } of docs) {
    for (const def of doc.definitions) {
      if (def.kind === Kind.OPERATION_DEFINITION) {
        if (!def.name) {
          problems.push(`${path}:${def.loc?.startToken.line}: anonymous ${def.operation}`);
          continue;
        }
        const n = def.name.value;
        if (opNames.has(n)) problems.push(`operation ${n} defined twice (${opNames.get(n)}, ${path})`);
        opNames.set(n, path);
        ops.push({ path, def });
      } else if (def.kind === Kind.FRAGMENT_DEFINITION) {
        const n = def.name.value;
        if (fragNames.has(n)) problems.push(`fragment ${n} defined twice (${fragNames.get(n)}, ${path})`);
        if (opNames.has(n)) problems.push(`fragment ${n} has the name of an operation`);
        fragNames.set(n, path);
      }
    }
  }
  for (const n of fragNames.keys()) if (opNames.has(n)) problems.push(`name ${n} is both an operation and a fragment`);

  // Coverage of the root fields: one operation per field, named after it, every argument a variable.
  const roots = {
    query: schema.getQueryType(),
    mutation: schema.getMutationType(),
    subscription: schema.getSubscriptionType(),
  };
  for (const [kind, type] of Object.entries(roots)) {
    if (!type) continue;
    for (const field of Object.values(type.getFields())) {
      const name = pascal(field.name);
      const found = ops.find((o) => o.def.name.value === name);
      if (!found) {
        problems.push(`${type.name}.${field.name}: no ${kind} named ${name} in ${KIND_FILE[kind]}`);
        continue;
      }
      if (found.def.operation !== kind) problems.push(`${name}: is a ${found.def.operation}, expected a ${kind}`);
      if (basename(found.path) !== KIND_FILE[kind]) problems.push(`${name}: belongs in ${KIND_FILE[kind]}, found in ${basename(found.path)}`);
      const sel = found.def.selectionSet.selections.filter((s) => s.kind === Kind.FIELD);
      const rootSel = sel.find((s) => s.name.value === field.name);
      if (!rootSel || sel.length !== 1) {
        problems.push(`${name}: must select exactly the root field ${field.name}`);
        continue;
      }
      for (const arg of field.args) {
        const a = rootSel.arguments?.find((x) => x.name.value === arg.name);
        if (!a || a.value.kind !== Kind.VARIABLE) problems.push(`${name}: argument ${field.name}(${arg.name}:) must be passed as a variable`);
      }
    }
  }
  for (const { def } of ops) {
    const kind = def.operation;
    const type = roots[kind];
    const sel = def.selectionSet.selections[0];
    if (!type || sel?.kind !== Kind.FIELD || !type.getFields()[sel.name.value] || pascal(sel.name.value) !== def.name.value) {
      problems.push(`${def.name.value}: not named after its root field (PascalCase)`);
    }
  }

  // Every field of every selected object type is selected. Fragments are checked on their own
  // (each fragment must be complete, so every use of it is); inline selections likewise.
  const fragments = new Map();
  for (const def of all.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  const fieldsOf = (selectionSet, typeName, seen = new Set()) => {
    const out = new Set();
    for (const s of selectionSet.selections) {
      if (s.kind === Kind.FIELD) out.add(s.name.value);
      else if (s.kind === Kind.FRAGMENT_SPREAD) {
        const f = fragments.get(s.name.value);
        if (f && !seen.has(f.name.value) && f.typeCondition.name.value === typeName) {
          seen.add(f.name.value);
          for (const x of fieldsOf(f.selectionSet, typeName, seen)) out.add(x);
        }
      } else if (s.kind === Kind.INLINE_FRAGMENT) {
        if (!s.typeCondition || s.typeCondition.name.value === typeName) {
          for (const x of fieldsOf(s.selectionSet, typeName, seen)) out.add(x);
        }
      }
    }
    return out;
  };
  const typeInfo = new TypeInfo(schema);
  const checkSet = (node, type, where) => {
    if (!isObjectType(type)) return;
    const have = fieldsOf(node.selectionSet, type.name);
    const isEdge = type.name.endsWith('Edge') && where.endsWith('.edges');
    for (const f of Object.keys(type.getFields())) {
      if (have.has(f)) continue;
      if (isEdge && f === 'node') continue;
      const coord = `${type.name}.${f}`;
      const allowedIn = ALLOWED_OMISSIONS[coord];
      if (allowedIn && (node.name?.value === allowedIn || node.selectionSet.selections.some((s) => s.kind === Kind.FRAGMENT_SPREAD && s.name.value === allowedIn))) continue;
      problems.push(`${where}: selection on ${type.name} misses field ${f}`);
    }
  };
  for (const { path, doc } of docs) {
    let owner = '';
    visit(
      doc,
      visitWithTypeInfo(typeInfo, {
        OperationDefinition(n) {
          owner = n.name?.value ?? '(anonymous)';
        },
        FragmentDefinition(n) {
          owner = n.name.value;
          checkSet(n, typeInfo.getType(), `${basename(path)} fragment ${owner}`);
        },
        Field(n) {
          if (!n.selectionSet) return;
          const t = getNamedType(typeInfo.getType());
          if (isAbstractType(t)) return; // unions: each member is selected with a complete fragment
          // A selection made only of a fragment of a different (abstract) type is checked there.
          const where = `${basename(path)} ${owner}.${n.name.value}`;
          const parent = typeInfo.getParentType();
          const isEdgeNode = parent && parent.name.endsWith('Edge') && n.name.value === 'node';
          if (isEdgeNode) return; // edges carry the node's id only; `nodes` carries the full node
          checkSet(n, t, where);
        },
      }),
    );
  }
  return problems;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const files = readOperationFiles();
  const problems = checkOperations(readFileSync(schemaPath, 'utf8'), files);
  if (problems.length) {
    console.error(`clients/operations: ${problems.length} problem(s):`);
    for (const p of problems) console.error(`  - ${p}`);
    process.exit(1);
  }
  const n = files.reduce((acc, f) => acc + parse(f.body).definitions.length, 0);
  console.log(`clients/operations: ${files.length} files, ${n} definitions valid against schema.graphql; every root field covered`);
}
