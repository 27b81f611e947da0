// Against a live `weberei up` (fresh database, unique Ort, free port): queries, mutations,
// typed errors, and viewport subscriptions that resume from their cursor after a lost
// connection, explicitly and by themselves.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import {
  ConfigDocument,
  CreateKnotenDocument,
  MeDocument,
  SpinFadenDocument,
  ViewportDocument,
  WebereiError,
  WriteNachrichtDocument,
  createClient,
  newIdempotencyKey,
  type ConnectionState,
  type WebereiClient,
} from '../src/index.js';
import { freePort, startServer, type LiveServer } from './support/server.js';
import { counts, instrumentedWebSocket, recordViewport, register, sleep, until } from './support/helpers.js';

let server: LiveServer;
let anna: { token: string; id: string };
let ben: { token: string; id: string };
const clients: WebereiClient[] = [];

function client(token: string | undefined, extra: Partial<Parameters<typeof createClient>[0]> = {}): WebereiClient {
  const c = createClient({ url: server.url, token: () => token, webSocketImpl: WebSocket, ...extra });
  clients.push(c);
  return c;
}

async function createKnoten(c: WebereiClient, title: string, lat: number, lng: number): Promise<string> {
  const r = await c.request(CreateKnotenDocument, {
    input: { idempotencyKey: newIdempotencyKey(), title, typ: 'IDEEN', lat, lng },
  });
  assert.equal(r.createKnoten.replayed, false);
  return r.createKnoten.knoten.id;
}

async function spin(c: WebereiClient, knotenId: string): Promise<string> {
  const r = await c.request(SpinFadenDocument, {
    input: { idempotencyKey: newIdempotencyKey(), knotenId, typ: 'INTERESSE' },
  });
  return r.spinFaden.faden.id;
}

/** Wait a few ticks (200 ms each) so that anything sent twice would have arrived. */
const settle = () => sleep(1200);

describe('live server', { timeout: 90_000 }, () => {
  before(async () => {
    server = await startServer();
    anna = await register(server.url, 'Anna');
    ben = await register(server.url, 'Ben');
  });

  after(async () => {
    for (const c of clients) c.dispose();
    await server?.stop();
  });

  test('queries and mutations are typed and authenticated by the token', async () => {
    const a = client(anna.token);
    const me = await a.request(MeDocument, {});
    assert.equal(me.me?.id, anna.id);
    assert.equal(me.me?.name, 'Anna');
    const config = await a.request(ConfigDocument, {});
    assert.equal(config.config.ort, server.ort);
    assert.equal(config.config.wsTickMs, 200);
    // The same idempotency key returns the same Knoten and no second event.
    const key = newIdempotencyKey();
    const input = { idempotencyKey: key, title: 'Tauschregal', typ: 'RESSOURCE' as const, lat: 50.9701, lng: 11.3101 };
    const first = await a.request(CreateKnotenDocument, { input });
    const again = await a.request(CreateKnotenDocument, { input });
    assert.equal(again.createKnoten.replayed, true);
    assert.equal(again.createKnoten.knoten.id, first.createKnoten.knoten.id);
    assert.equal(again.createKnoten.event.id, first.createKnoten.event.id);
  });

  test('bad input is a WebereiError with code VALIDATION', async () => {
    const a = client(anna.token);
    const err = await a
      .request(CreateKnotenDocument, { input: { idempotencyKey: newIdempotencyKey(), title: 'Zu weit', typ: 'EVENT', lat: 123, lng: 11.3 } })
      .then(() => assert.fail('a latitude of 123 was accepted'), (e: unknown) => e);
    assert.ok(err instanceof WebereiError, String(err));
    assert.equal(err.code, 'VALIDATION');
    assert.ok(err.message.length > 0);
    assert.equal(err.errors[0]?.code, 'VALIDATION');
    const blank = await a
      .request(CreateKnotenDocument, { input: { idempotencyKey: newIdempotencyKey(), title: '   ', typ: 'EVENT', lat: 50.97, lng: 11.3 } })
      .then(() => assert.fail('a blank title was accepted'), (e: unknown) => e);
    assert.ok(blank instanceof WebereiError);
    assert.equal(blank.code, 'VALIDATION');
  });

  test('a mutation without a session is UNAUTHENTICATED', async () => {
    const anon = client(undefined);
    const err = await anon
      .request(CreateKnotenDocument, { input: { idempotencyKey: newIdempotencyKey(), title: 'Anonym', typ: 'IDEEN', lat: 50.97, lng: 11.3 } })
      .then(() => assert.fail('an anonymous createKnoten was accepted'), (e: unknown) => e);
    assert.ok(err instanceof WebereiError);
    assert.equal(err.code, 'UNAUTHENTICATED');
    assert.deepEqual(err.path, ['createKnoten']);
  });

  test('a subscription with a revoked token ends with UNAUTHENTICATED', async () => {
    const bad = client('wg_not-a-real-token', { retry: { initialMs: 50, maxMs: 100 } });
    const sub = recordViewport(bad, { bbox: { south: 50.96, west: 11.3, north: 50.99, east: 11.34 }, zoom: 14 });
    await until('the subscription error', 10_000, () => sub.errors.length > 0);
    assert.equal(sub.errors[0]?.code, 'UNAUTHENTICATED');
    await sleep(300);
    assert.equal(sub.errors.length, 1, 'reported once, not retried');
  });

  test('a viewport box larger than the server allows is VALIDATION', async () => {
    const a = client(anna.token);
    const sub = recordViewport(a, { bbox: { south: -80, west: -170, north: 80, east: 170 }, zoom: 3 });
    await until('the subscription error', 10_000, () => sub.errors.length > 0);
    assert.equal(sub.errors[0]?.code, 'VALIDATION');
    assert.equal(sub.diffs.length, 0);
  });

  test('resubscribing with the last cursor replays exactly the missed changes', async () => {
    const bbox = { south: 50.975, west: 11.315, north: 50.985, east: 11.33 };
    const a = client(anna.token);
    const b = client(ben.token);
    const sub = recordViewport(a, { bbox, zoom: 15 });
    await until('the subscription is live', 10_000, () => sub.states.includes('live'));
    // Anna ties a Knoten and spins a thread to it: the diff brings both.
    const k1 = await createKnoten(a, 'Gemeinschaftsgarten', 50.98, 11.32);
    const f1 = await spin(a, k1);
    await until('the diff with the Knoten and the thread', 10_000, () => sub.knotenIds().includes(k1) && sub.fadenIds().includes(f1));
    const seen = sub.diffs.find((d) => d.knoten.some((k) => k.id === k1))!.knoten.find((k) => k.id === k1)!;
    assert.equal(seen.title, 'Gemeinschaftsgarten');
    assert.equal(seen.typ, 'IDEEN');
    const cursor = sub.cursor();
    assert.ok(cursor, 'the diff carries a cursor');

    // Drop the connection: unsubscribe and close the client's WebSocket.
    sub.unsubscribe();
    a.dispose();

    // While Anna is away, Ben ties two Knoten, spins a thread and writes a message.
    const k2 = await createKnoten(b, 'Repair-Café', 50.981, 11.321);
    const k3 = await createKnoten(b, 'Lesekreis', 50.979, 11.322);
    const f2 = await spin(b, k1);
    const n1 = (await b.request(WriteNachrichtDocument, { input: { idempotencyKey: newIdempotencyKey(), knotenId: k2, text: 'Wer hilft mit?' } }))
      .writeNachricht.nachricht.id;

    // Anna comes back with the cursor: exactly the missed changes, each once.
    const a2 = client(anna.token);
    const resumed = recordViewport(a2, { bbox, zoom: 15, after: cursor });
    await until('the missed changes', 15_000, () => {
      const ks = resumed.knotenIds();
      return ks.includes(k2) && ks.includes(k3) && resumed.fadenIds().includes(f2) && resumed.nachrichtIds().includes(n1);
    });
    // Something Anna does now arrives live after the replay.
    const k4 = await createKnoten(a2, 'Nachbarschaftsfest', 50.978, 11.323);
    await until('the live Knoten after the replay', 10_000, () => resumed.knotenIds().includes(k4));
    await settle();
    assert.deepEqual([...counts(resumed.knotenIds())].sort(), [[k2, 1], [k3, 1], [k4, 1]].sort());
    assert.deepEqual([...counts(resumed.fadenIds())], [[f2, 1]]);
    assert.deepEqual([...counts(resumed.nachrichtIds())], [[n1, 1]]);
    assert.ok(!resumed.diffs.some((d) => d.resync), 'no resync needed');
    assert.equal(resumed.errors.length, 0);
  });

  test('a WebSocket dropped under the client reconnects with backoff and resumes from its cursor', async () => {
    const bbox = { south: 50.955, west: 11.295, north: 50.965, east: 11.31 };
    const deadPort = await freePort();
    const ws = instrumentedWebSocket(deadPort);
    const states: ConnectionState[] = [];
    const a = client(anna.token, { webSocketImpl: ws.Instrumented, retry: { initialMs: 100, maxMs: 1600 } });
    a.onState((s) => states.push(s));
    const b = client(ben.token);
    const sub = recordViewport(a, { bbox, zoom: 15 });
    await until('the subscription is live', 10_000, () => sub.states.includes('live'));
    const k1 = await createKnoten(a, 'Werkbank', 50.96, 11.3);
    await until('the first diff', 10_000, () => sub.knotenIds().includes(k1));
    const cursor = sub.cursor();
    assert.ok(cursor);

    // The socket dies under the client (no close handshake); the server is unreachable for a while.
    ws.ctl.offline = true;
    const socketsBefore = ws.opened.length;
    ws.sockets.at(-1)!.terminate();
    await until('the client notices', 5_000, () => sub.states.at(-1) === 'reconnecting');
    assert.equal(states.at(-1), 'reconnecting');

    // Changes made while the client is offline.
    const k2 = await createKnoten(b, 'Saatgutbörse', 50.961, 11.301);
    const f2 = await spin(b, k1);
    const k3 = await createKnoten(b, 'Fahrradwerkstatt', 50.959, 11.302);

    // It keeps trying, waiting longer each time (exponential backoff with jitter).
    await until('four refused reconnects', 15_000, () => ws.opened.length >= socketsBefore + 4);
    const attempts = ws.opened.slice(socketsBefore);
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
    assert.ok(gaps[0]! >= 40, `first retry waits (${gaps})`);
    assert.ok(gaps[2]! > gaps[0]!, `the waits grow: ${gaps}`);
    assert.equal(sub.errors.length, 0, 'transport failures are not errors');

    // The server is reachable again: the client reconnects by itself and resubscribes after the cursor.
    ws.ctl.offline = false;
    await until('the missed changes', 20_000, () => {
      const ks = sub.knotenIds();
      return ks.includes(k2) && ks.includes(k3) && sub.fadenIds().includes(f2);
    });
    await settle();
    const resubscribe = ws.sent
      .map((m) => JSON.parse(m.data) as { type: string; payload?: { variables?: { after?: string } } })
      .filter((m) => m.type === 'subscribe')
      .at(-1);
    assert.equal(resubscribe?.payload?.variables?.after, cursor, 'resubscribed with after = the last cursor');
    assert.deepEqual([...counts(sub.knotenIds())].sort(), [[k1, 1], [k2, 1], [k3, 1]].sort(), 'no duplicate, no gap');
    assert.deepEqual([...counts(sub.fadenIds())], [[f2, 1]]);
    assert.equal(sub.states.at(-1), 'live');
    assert.deepEqual(sub.states.slice(-2), ['reconnecting', 'live']);
    assert.equal(states.at(-1), 'live');
    assert.equal(sub.errors.length, 0);
  });
});
