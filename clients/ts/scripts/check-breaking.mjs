#!/usr/bin/env node
// Breaking-change check of schema.graphql (graphql-js findBreakingChanges / findDangerousChanges).
//
// Which versions are compared:
//  - the working tree's schema.graphql differs from HEAD's: HEAD's -> the working tree's;
//  - otherwise: the version before the last commit that changed schema.graphql -> that commit's
//    (`git log -n 2 --format=%H -- schema.graphql`; a schema with one commit has nothing to compare).
// Every breaking change must be acknowledged in CHANGELOG.md under "## Unreleased" by a line
// that contains `BREAKING` and the change's schema coordinate (e.g. `QueryRoot.knoten`,
// `KnotenTyp.IDEEN`); otherwise the script prints each change and exits 1. Dangerous changes
// (e.g. an enum value added) are printed as warnings.
//
//   node scripts/check-breaking.mjs                          (git mode, in the repository)
//   node scripts/check-breaking.mjs --repo DIR               (git mode, another repository)
//   node scripts/check-breaking.mjs --old A.graphql --new B.graphql [--changelog FILE]
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BreakingChangeType, DangerousChangeType, buildSchema, findBreakingChanges, findDangerousChanges } from 'graphql';
import { repoRoot } from './lib.mjs';

const ROOT_ALIASES = { QueryRoot: 'Query', MutationRoot: 'Mutation', SubscriptionRoot: 'Subscription' };

/**
 * The schema coordinate a graphql-js change is about, read from its description (graphql-js
 * reports `{ type, description }` only; its descriptions name the coordinate's parts).
 */
export function coordinateOf(change) {
  const d = change.description;
  const B = BreakingChangeType;
  const D = DangerousChangeType;
  let m;
  switch (change.type) {
    case B.TYPE_REMOVED:
      if ((m = /^(?:Standard scalar )?(\w+) was removed\b/.exec(d))) return m[1];
      break;
    case B.TYPE_CHANGED_KIND:
      if ((m = /^(\w+) changed from /.exec(d))) return m[1];
      break;
    case B.TYPE_REMOVED_FROM_UNION:
      if ((m = /^(\w+) was removed from union type (\w+)\.$/.exec(d))) return m[2];
      break;
    case D.TYPE_ADDED_TO_UNION:
      if ((m = /^(\w+) was added to union type (\w+)\.$/.exec(d))) return m[2];
      break;
    case B.VALUE_REMOVED_FROM_ENUM:
      if ((m = /^(\w+) was removed from enum type (\w+)\.$/.exec(d))) return `${m[2]}.${m[1]}`;
      break;
    case D.VALUE_ADDED_TO_ENUM:
      if ((m = /^(\w+) was added to enum type (\w+)\.$/.exec(d))) return `${m[2]}.${m[1]}`;
      break;
    case B.REQUIRED_INPUT_FIELD_ADDED:
      if ((m = /^A required field (\w+) on input type (\w+) was added\.$/.exec(d))) return `${m[2]}.${m[1]}`;
      break;
    case D.OPTIONAL_INPUT_FIELD_ADDED:
      if ((m = /^An optional field (\w+) on input type (\w+) was added\.$/.exec(d))) return `${m[2]}.${m[1]}`;
      break;
    case B.IMPLEMENTED_INTERFACE_REMOVED:
      if ((m = /^(\w+) no longer implements interface (\w+)\.$/.exec(d))) return m[1];
      break;
    case D.IMPLEMENTED_INTERFACE_ADDED:
      if ((m = /^(\w+) added to interfaces implemented by (\w+)\.$/.exec(d))) return m[2];
      break;
    case B.FIELD_REMOVED:
      if ((m = /^(\w+)\.(\w+) was removed\.$/.exec(d))) return `${m[1]}.${m[2]}`;
      break;
    case B.FIELD_CHANGED_KIND:
      if ((m = /^(\w+)\.(\w+) changed type from /.exec(d))) return `${m[1]}.${m[2]}`;
      break;
    case B.REQUIRED_ARG_ADDED:
      if ((m = /^A required arg (\w+) on (\w+)\.(\w+) was added\.$/.exec(d))) return `${m[2]}.${m[3]}(${m[1]}:)`;
      break;
    case D.OPTIONAL_ARG_ADDED:
      if ((m = /^An optional arg (\w+) on (\w+)\.(\w+) was added\.$/.exec(d))) return `${m[2]}.${m[3]}(${m[1]}:)`;
      break;
    case B.ARG_REMOVED:
      if ((m = /^(\w+)\.(\w+) arg (\w+) was removed\.$/.exec(d))) return `${m[1]}.${m[2]}(${m[3]}:)`;
      break;
    case B.ARG_CHANGED_KIND:
    case D.ARG_DEFAULT_VALUE_CHANGE:
      if ((m = /^(\w+)\.(\w+) arg (\w+) /.exec(d))) return `${m[1]}.${m[2]}(${m[3]}:)`;
      break;
    case B.DIRECTIVE_REMOVED:
      if ((m = /^(\w+) was removed\.$/.exec(d))) return `@${m[1]}`;
      break;
    case B.DIRECTIVE_ARG_REMOVED:
      if ((m = /^(\w+) was removed from (\w+)\.$/.exec(d))) return `@${m[2]}(${m[1]}:)`;
      break;
    case B.REQUIRED_DIRECTIVE_ARG_ADDED:
      if ((m = /^A required arg (\w+) on directive (\w+) was added\.$/.exec(d))) return `@${m[2]}(${m[1]}:)`;
      break;
    case B.DIRECTIVE_REPEATABLE_REMOVED:
      if ((m = /^Repeatable flag was removed from (\w+)\.$/.exec(d))) return `@${m[1]}`;
      break;
    case B.DIRECTIVE_LOCATION_REMOVED:
      if ((m = /^\w+ was removed from (\w+)\.$/.exec(d))) return `@${m[1]}`;
      break;
    default:
      break;
  }
  // An unknown wording (a newer graphql-js): the first dotted name in the description.
  m = /@?\w+(\.\w+)?/.exec(d);
  return m ? m[0] : d;
}

/** The lines of the "## Unreleased" section of a changelog. */
export function unreleasedLines(changelog) {
  const lines = changelog.split(/\r?\n/);
  const start = lines.findIndex((l) => /^##\s+Unreleased\b/i.test(l.trim()));
  if (start < 0) return [];
  const out = [];
  for (const l of lines.slice(start + 1)) {
    if (/^##\s/.test(l.trim()) && !/^###/.test(l.trim())) break;
    out.push(l);
  }
  return out;
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Spellings of a coordinate that acknowledge it: itself, and with Query/Mutation/Subscription for the root types. */
function spellings(coordinate) {
  const out = [coordinate];
  for (const [root, alias] of Object.entries(ROOT_ALIASES)) {
    if (coordinate === root || coordinate.startsWith(`${root}.`)) out.push(alias + coordinate.slice(root.length));
  }
  return out;
}

/** Does one of the lines contain BREAKING and the coordinate (as a whole name, not a prefix)? */
export function isAcknowledged(coordinate, lines) {
  const res = spellings(coordinate).map((c) => new RegExp(`(^|[^\\w.@])${escape(c)}(?![\\w(]|\\.\\w)`));
  return lines.some((l) => l.includes('BREAKING') && res.some((re) => re.test(l)));
}

/** Compare two schemas; which breaking changes the changelog acknowledges. */
export function checkBreaking({ oldSdl, newSdl, changelog }) {
  const oldSchema = buildSchema(oldSdl);
  const newSchema = buildSchema(newSdl);
  const lines = unreleasedLines(changelog ?? '');
  const breaking = findBreakingChanges(oldSchema, newSchema)
    // A standard scalar (Int, Float, ...) that nothing references any more is left out of the
    // built schema; no client can have used it, so this is no change for clients.
    .filter((c) => !(c.type === BreakingChangeType.TYPE_REMOVED && c.description.startsWith('Standard scalar ')))
    .map((c) => {
    const coordinate = coordinateOf(c);
    return { ...c, coordinate, acknowledged: isAcknowledged(coordinate, lines) };
  });
  const dangerous = findDangerousChanges(oldSchema, newSchema).map((c) => ({ ...c, coordinate: coordinateOf(c) }));
  return { breaking, dangerous, ok: breaking.every((c) => c.acknowledged) };
}

function git(repo, args) {
  return execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
}

/** The two schema versions to compare, per the rule above; null when there is no earlier version. */
export function versionsFromGit(repo, file = 'schema.graphql') {
  const work = readFileSync(join(repo, file), 'utf8');
  let head;
  try {
    head = git(repo, ['show', `HEAD:${file}`]);
  } catch {
    return null; // not committed yet: nothing to compare with
  }
  if (head !== work) return { oldSdl: head, newSdl: work, oldLabel: `HEAD:${file}`, newLabel: `${file} (working tree)` };
  const commits = git(repo, ['log', '-n', '2', '--format=%H', '--', file]).split('\n').filter(Boolean);
  if (commits.length === 0) return null;
  let before;
  try {
    before = git(repo, ['show', `${commits[0]}^:${file}`]);
  } catch {
    return null; // the last change added the file
  }
  const label = commits[0].slice(0, 12);
  return { oldSdl: before, newSdl: work, oldLabel: `${label}^:${file}`, newLabel: `${label}:${file}` };
}

function arg(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const repo = arg('--repo') ?? repoRoot;
  const changelogPath = arg('--changelog') ?? join(repo, 'CHANGELOG.md');
  let versions;
  if (arg('--old') || arg('--new')) {
    const oldFile = arg('--old');
    const newFile = arg('--new') ?? join(repo, 'schema.graphql');
    if (!oldFile) throw new Error('--new needs --old');
    versions = { oldSdl: readFileSync(oldFile, 'utf8'), newSdl: readFileSync(newFile, 'utf8'), oldLabel: oldFile, newLabel: newFile };
  } else {
    versions = versionsFromGit(repo);
  }
  if (!versions) {
    console.log('schema.graphql: no earlier committed version to compare with');
    process.exit(0);
  }
  const changelog = existsSync(changelogPath) ? readFileSync(changelogPath, 'utf8') : '';
  const { breaking, dangerous, ok } = checkBreaking({ ...versions, changelog });
  for (const c of dangerous) console.warn(`dangerous (not breaking, check the clients): ${c.coordinate}: ${c.description}`);
  const open = breaking.filter((c) => !c.acknowledged);
  for (const c of breaking.filter((c) => c.acknowledged)) console.log(`breaking, acknowledged: ${c.coordinate}: ${c.description}`);
  if (!ok) {
    console.error(`schema.graphql: ${open.length} breaking change(s) from ${versions.oldLabel} to ${versions.newLabel} not acknowledged in ${changelogPath}:`);
    for (const c of open) console.error(`  - ${c.coordinate} (${c.type}): ${c.description}`);
    console.error('Acknowledge each one under "## Unreleased" in CHANGELOG.md with a line such as:');
    for (const c of open) console.error(`  - BREAKING: \`${c.coordinate}\`: <what changed and what clients must do>`);
    process.exit(1);
  }
  console.log(`schema.graphql: ${versions.oldLabel} -> ${versions.newLabel}: ${breaking.length} breaking change(s), all acknowledged; ${dangerous.length} dangerous`);
}
