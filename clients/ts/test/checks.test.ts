// The schema and operation checks: operations valid the way the generators read them, the
// breaking-change check (fixtures and the git rule), description coverage.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { checkOperations } from '../scripts/check-operations.mjs';
import { checkBreaking, versionsFromGit } from '../scripts/check-breaking.mjs';
import { missingDescriptions } from '../scripts/check-descriptions.mjs';
import { readOperationFiles, schemaPath, tsDir } from '../scripts/lib.mjs';

const fixtures = join(tsDir, 'test', 'fixtures');
const fixture = (name: string) => readFileSync(join(fixtures, name), 'utf8');
const script = (name: string) => join(tsDir, 'scripts', name);
const run = (args: string[], cwd = tsDir) => spawnSync(process.execPath, args, { cwd, encoding: 'utf8' });

describe('operation documents (clients/operations)', () => {
  test('validate against schema.graphql with the generators\' rules and cover every root field', () => {
    assert.deepEqual(checkOperations(readFileSync(schemaPath, 'utf8'), readOperationFiles()), []);
  });

  test('anonymous operations, duplicate names, reserved names and incomplete selections are caught', () => {
    const problems = checkOperations(readFileSync(schemaPath, 'utf8'), readOperationFiles(join(fixtures, 'operations-bad')));
    const has = (re: RegExp) => assert.ok(problems.some((p) => re.test(p)), `expected ${re} in:\n${problems.join('\n')}`);
    has(/anonymous query/);
    has(/operation Knoten defined twice/);
    has(/fragment SessionFields defined twice/);
    has(/Apollo iOS: field name "fragments" is reserved/);
    has(/Apollo iOS: variable name "self" is reserved/);
    has(/KnotenConnection misses field pageInfo/);
    has(/QueryRoot\.register|MutationRoot\.register: no mutation named Register/);
    has(/SubscriptionRoot\.viewport: no subscription named Viewport/);
    has(/argument knoten\(after:\) must be passed as a variable/);
  });
});

describe('breaking-change check', () => {
  const base = fixture('schema-base.graphql');

  test('a removed field, a narrowed type, a removed enum value and a narrowed argument are caught', () => {
    const r = checkBreaking({ oldSdl: base, newSdl: fixture('schema-breaking.graphql'), changelog: fixture('CHANGELOG-unacknowledged.md') });
    assert.equal(r.ok, false);
    assert.deepEqual(
      r.breaking.map((c) => [c.coordinate, c.acknowledged]).sort(),
      [
        ['Knoten.lat', false],
        ['Knoten.title', false],
        ['KnotenTyp.RESSOURCE', false],
        ['QueryRoot.knoten(first:)', false],
      ],
    );
    const cli = run([script('check-breaking.mjs'), '--old', join(fixtures, 'schema-base.graphql'), '--new', join(fixtures, 'schema-breaking.graphql'), '--changelog', join(fixtures, 'CHANGELOG-unacknowledged.md')]);
    assert.equal(cli.status, 1);
    assert.match(cli.stderr, /Knoten\.title \(FIELD_REMOVED\)/);
    assert.match(cli.stderr, /BREAKING: `Knoten\.lat`/);
  });

  test('acknowledged under "## Unreleased" (BREAKING + coordinate) it passes', () => {
    const r = checkBreaking({ oldSdl: base, newSdl: fixture('schema-breaking.graphql'), changelog: fixture('CHANGELOG-acknowledged.md') });
    assert.equal(r.ok, true);
    assert.equal(r.breaking.length, 4);
    const cli = run([script('check-breaking.mjs'), '--old', join(fixtures, 'schema-base.graphql'), '--new', join(fixtures, 'schema-breaking.graphql'), '--changelog', join(fixtures, 'CHANGELOG-acknowledged.md')]);
    assert.equal(cli.status, 0, cli.stderr);
  });

  test('a non-breaking addition passes without acknowledgement', () => {
    const r = checkBreaking({ oldSdl: base, newSdl: fixture('schema-addition.graphql'), changelog: '' });
    assert.equal(r.ok, true);
    assert.deepEqual(r.breaking, []);
    assert.deepEqual(r.dangerous.map((c) => c.coordinate), ['QueryRoot.knoten(after:)']);
  });

  test('git: the working tree against HEAD, else the last schema commit against its parent', () => {
    const repo = mkdtempSync(join(tmpdir(), 'weberei-breaking-'));
    try {
      const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args], { stdio: 'pipe' });
      git('init', '-q');
      const put = (schema: string, changelog: string) => {
        copyFileSync(join(fixtures, schema), join(repo, 'schema.graphql'));
        copyFileSync(join(fixtures, changelog), join(repo, 'CHANGELOG.md'));
      };
      const check = () => run([script('check-breaking.mjs'), '--repo', repo]);
      put('schema-base.graphql', 'CHANGELOG-unacknowledged.md');
      git('add', '.');
      git('commit', '-q', '-m', 'first schema');
      assert.equal(versionsFromGit(repo), null, 'one version: nothing to compare');
      assert.equal(check().status, 0);

      // Working tree differs from HEAD: compared with HEAD.
      put('schema-breaking.graphql', 'CHANGELOG-unacknowledged.md');
      assert.equal(versionsFromGit(repo)?.oldLabel, 'HEAD:schema.graphql');
      const dirty = check();
      assert.equal(dirty.status, 1);
      assert.match(dirty.stderr, /from HEAD:schema\.graphql to schema\.graphql \(working tree\)/);

      // Committed (and an unrelated commit after it): compared with the version before that commit.
      git('commit', '-q', '-am', 'breaking schema');
      writeFileSync(join(repo, 'other.txt'), 'x');
      git('add', 'other.txt');
      git('commit', '-q', '-m', 'unrelated');
      const clean = check();
      assert.equal(clean.status, 1, 'the committed breaking change is still reported');
      assert.match(clean.stderr, /\^:schema\.graphql/);
      assert.match(clean.stderr, /KnotenTyp\.RESSOURCE/);

      copyFileSync(join(fixtures, 'CHANGELOG-acknowledged.md'), join(repo, 'CHANGELOG.md'));
      const acked = check();
      assert.equal(acked.status, 0, acked.stderr);
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });
});

describe('description coverage', () => {
  test('lists every type, field, argument, enum value and input field without a description', () => {
    assert.deepEqual(missingDescriptions(fixture('schema-undescribed.graphql')).sort(), [
      'Farbe.ROT',
      'Filter.farbe',
      'Instant',
      'QueryRoot.a(x:)',
      'QueryRoot.b',
      'Thing',
    ]);
    const cli = run([script('check-descriptions.mjs'), '--schema', join(fixtures, 'schema-undescribed.graphql')]);
    assert.equal(cli.status, 1);
    assert.match(cli.stderr, /Farbe\.ROT/);
    const ok = run([script('check-descriptions.mjs'), '--schema', join(fixtures, 'schema-base.graphql')]);
    assert.equal(ok.status, 0, ok.stderr);
  });
});
