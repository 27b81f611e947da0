// Client behaviour that needs no server: backoff, error mapping, transport failures.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigDocument, WebereiError, backoffDelay, createClient, newIdempotencyKey } from '../src/index.js';
import { freePort } from './support/server.js';

describe('client without a server', () => {
  test('backoff doubles up to the maximum, with jitter in [d/2, d]', () => {
    assert.equal(backoffDelay(0, 100, 1000, () => 0), 50);
    assert.equal(backoffDelay(0, 100, 1000, () => 1), 100);
    assert.equal(backoffDelay(3, 100, 1000, () => 1), 800);
    assert.equal(backoffDelay(4, 100, 1000, () => 1), 1000);
    assert.equal(backoffDelay(50, 100, 1000, () => 0), 500);
    const samples = Array.from({ length: 200 }, () => backoffDelay(2, 100, 10_000));
    assert.ok(samples.every((d) => d >= 200 && d <= 400));
    assert.ok(new Set(samples).size > 10, 'jittered');
  });

  test('GraphQL errors keep the server code, path and sentence; an unknown code is VALIDATION', () => {
    const e = WebereiError.fromGraphQL([
      { message: 'der Titel ist leer', path: ['createKnoten'], extensions: { code: 'VALIDATION' } },
      { message: 'Unknown field "x"' },
    ]);
    assert.equal(e.code, 'VALIDATION');
    assert.equal(e.message, 'der Titel ist leer');
    assert.deepEqual(e.path, ['createKnoten']);
    assert.deepEqual(e.errors.map((x) => x.code), ['VALIDATION', 'VALIDATION']);
    assert.ok(e instanceof Error);
    assert.equal(WebereiError.fromGraphQL([{ message: 'm', extensions: { code: 'RATE_LIMITED' } }]).code, 'RATE_LIMITED');
  });

  test('no answer is NETWORK', async () => {
    const port = await freePort();
    const c = createClient({ url: `http://127.0.0.1:${port}` });
    const err = await c.request(ConfigDocument, {}).then(() => assert.fail('answered'), (e: unknown) => e);
    assert.ok(err instanceof WebereiError);
    assert.equal(err.code, 'NETWORK');
    assert.match(err.message, /no answer/);
  });

  test('idempotency keys are fresh UUIDs', () => {
    const a = newIdempotencyKey();
    assert.match(a, /^[0-9a-f-]{36}$/);
    assert.notEqual(a, newIdempotencyKey());
  });
});
