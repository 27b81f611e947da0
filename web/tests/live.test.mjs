// The live map and rooms, through a real server and headless Chromium: a Knoten tied in one
// browser appears in another without reload; messages arrive live; messages written offline
// wait in the outbox and arrive exactly once; search flies to a misspelled title; a server
// refusal shows as a sentence next to the control.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Weberei, launchBrowser, openApp, registerInUi, until } from './harness.mjs';

let w;
let browser;
let A;
let B;

before(async () => {
  w = await Weberei.start();
  browser = await launchBrowser();
  A = await openApp(browser, w);
  B = await openApp(browser, w);
  await registerInUi(A.page, 'Anna');
  await registerInUi(B.page, 'Bernd');
});

after(async () => {
  await browser?.close();
  await w?.stop();
});

const roomQuery = `query($id: ID!) { room(knotenId: $id) { thread(last: 100) { nodes { id text } } } }`;

/** Titles of the Knoten in the page's map source. */
const mapTitles = (page) =>
  page.evaluate(() => (window.__weberei.knoten?.features ?? []).map((f) => f.properties.title));

let knotenId;

test('a Knoten tied by A appears on B\'s map within 3 s, and messages travel both ways', async () => {
  const title = 'Tauschregal im Hof';
  const map = A.page.getByTestId('map');
  const box = await map.boundingBox();
  await map.click({ position: { x: box.width * 0.55, y: box.height * 0.5 } });
  const form = A.page.getByTestId('tie-form');
  await form.getByLabel('Titel').fill(title);
  await form.getByLabel('Art').selectOption('RESSOURCE');
  const tiedAt = Date.now();
  await form.getByRole('button', { name: 'Knüpfen' }).click();

  // B: no reload, the marker arrives through the viewport subscription.
  await B.page.waitForFunction(
    (t) => (window.__weberei.knoten?.features ?? []).some((f) => f.properties.title === t),
    title,
    { timeout: 3000 },
  );
  const seenAfter = Date.now() - tiedAt;
  assert.ok(seenAfter <= 3000, `B saw the Knoten after ${seenAfter} ms`);
  assert.ok((await mapTitles(A.page)).includes(title));

  // A's room opened on the new Knoten.
  const roomA = A.page.getByTestId('room');
  await roomA.getByRole('heading', { name: title }).waitFor();
  knotenId = await roomA.getAttribute('data-knoten-id');
  assert.match(knotenId, /^[0-9a-f-]{36}$/);

  // B opens the room from the Stübchen list and writes.
  await B.page.getByTestId('stuebchen-list').getByRole('button', { name: new RegExp(title) }).click();
  const roomB = B.page.getByTestId('room');
  await roomB.getByRole('heading', { name: title }).waitFor();
  await roomB.getByLabel('Nachricht schreiben').fill('Hallo Anna, ich bringe Bücher mit.');
  await roomB.getByRole('button', { name: 'Senden' }).click();

  // A sees it live.
  await A.page
    .getByTestId('thread')
    .getByText('Hallo Anna, ich bringe Bücher mit.')
    .waitFor({ timeout: 5000 });
  await roomA.getByLabel('Nachricht schreiben').fill('Danke Bernd!');
  await roomA.getByRole('button', { name: 'Senden' }).click();
  await B.page.getByTestId('thread').getByText('Danke Bernd!').waitFor({ timeout: 5000 });
});

test('messages written offline are shown pending and arrive exactly once', async () => {
  assert.ok(knotenId, 'needs the room of the first test');
  const room = A.page.getByTestId('room');
  await A.context.setOffline(true);
  const texts = ['Offline eins', 'Offline zwei'];
  for (const text of texts) {
    await room.getByLabel('Nachricht schreiben').fill(text);
    await room.getByRole('button', { name: 'Senden' }).click();
  }
  const pending = A.page.locator('[data-pending="true"]');
  await until('two pending messages', 5000, async () => (await pending.count()) === 2);
  await assert.doesNotReject(pending.filter({ hasText: 'Offline zwei' }).waitFor());
  await A.page.getByTestId('outbox-count').waitFor();
  // Still pending after a while: nothing was sent.
  await A.page.waitForTimeout(1500);
  assert.equal(await pending.count(), 2);

  await A.context.setOffline(false);
  await until('pending messages sent', 15_000, async () => (await pending.count()) === 0);
  for (const text of texts) {
    await A.page.getByTestId('thread').locator('.msg', { hasText: text }).first().waitFor();
  }
  // Exactly once on the screen of A (live diffs and the mutation's answer do not double it)...
  await A.page.waitForTimeout(1000);
  for (const text of texts) {
    assert.equal(await A.page.getByTestId('thread').locator('.msg', { hasText: text }).count(), 1);
  }
  // ...at B, live...
  for (const text of texts) {
    await B.page.getByTestId('thread').locator('.msg', { hasText: text }).first().waitFor({ timeout: 5000 });
    assert.equal(await B.page.getByTestId('thread').locator('.msg', { hasText: text }).count(), 1);
  }
  // ...and on the server.
  const r = await w.gql(roomQuery, { id: knotenId });
  const all = r.data.room.thread.nodes.map((n) => n.text);
  for (const text of texts) assert.equal(all.filter((t) => t === text).length, 1, all.join(' | '));
});

test('search finds a misspelled title, flies there and opens the room', async () => {
  // A Knoten some kilometres away, out of the current view.
  const { token } = await w.register('Clara');
  const r = await w.gql(
    `mutation($i: CreateKnotenInput!) { createKnoten(input: $i) { knoten { id } } }`,
    {
      i: {
        idempotencyKey: crypto.randomUUID(),
        title: 'Gemeinschaftsgarten am Ilmufer',
        typ: 'IDEEN',
        lat: 51.02,
        lng: 11.40,
      },
    },
    token,
  );
  const id = r.data.createKnoten.knoten.id;
  await until('the Knoten is projected', 5000, async () =>
    (await w.gql('query($id: ID!) { room(knotenId: $id) { knoten { id } } }', { id })).data.room,
  );
  const search = B.page.getByTestId('search');
  await search.fill('Gemeinschaftsgartn Ilmufr');
  await B.page.locator(`[role=option][data-hit-id="${id}"]`).waitFor({ timeout: 5000 });
  await search.press('Enter');
  await B.page.getByTestId('room').getByRole('heading', { name: 'Gemeinschaftsgarten am Ilmufer' }).waitFor();
  await until('the map flew there', 5000, () =>
    B.page.evaluate(() => {
      const c = window.__weberei.map.getCenter();
      return Math.abs(c.lat - 51.02) < 0.001 && Math.abs(c.lng - 11.4) < 0.001;
    }),
  );
  // Once there, it is on B's live map too.
  await B.page.waitForFunction(
    () => (window.__weberei.knoten?.features ?? []).some((f) => f.properties.title === 'Gemeinschaftsgarten am Ilmufer'),
    null,
    { timeout: 5000 },
  );
});

test('a stale design edit is a CONFLICT, said as a sentence, and the draft stays', async () => {
  const room = A.page.getByTestId('room');
  // Back to the first room (search opened another one in B; A still has its own open).
  await room.getByRole('heading', { name: 'Tauschregal im Hof' }).waitFor();
  await room.getByRole('tab', { name: 'Gestaltung' }).click();
  const text = room.locator('#design-text');
  await text.fill('Regal: Bücher, Spiele, Werkzeug');
  // Meanwhile the same person saves from another device.
  const token = await A.page.evaluate(() => window.__weberei.api.token);
  await w.gql(
    `mutation($i: UpdateKnotenDesignInput!) { updateKnotenDesign(input: $i) { design { version } } }`,
    { i: { idempotencyKey: crypto.randomUUID(), knotenId, expectedVersion: 0, content: { text: 'Vom Handy' } } },
    token,
  );
  await room.getByRole('button', { name: 'Speichern' }).click();
  const conflict = room.locator('.error[data-error-code="CONFLICT"]');
  await conflict.waitFor({ timeout: 5000 });
  assert.equal(await conflict.count(), 1);
  assert.match(await conflict.innerText(), /inzwischen gespeichert \(jetzt Version 1\)/);
  assert.equal(await text.inputValue(), 'Regal: Bücher, Spiele, Werkzeug');
  // Taking the new version and saving again works.
  await room.getByRole('button', { name: 'Neue Fassung übernehmen' }).click();
  assert.equal(await text.inputValue(), 'Vom Handy');
  await text.fill('Vom Handy, und: Regal für alle');
  await room.getByRole('button', { name: 'Speichern' }).click();
  await room.getByText('Gemeinsamer Entwurf (Version 2)').waitFor({ timeout: 5000 });
  const r = await w.gql(`query($id: ID!) { room(knotenId: $id) { design { version content } } }`, { id: knotenId });
  assert.deepEqual(r.data.room.design, { version: 2, content: { text: 'Vom Handy, und: Regal für alle' } });
});

test('a refusal by the server is a sentence next to the control (empty title: VALIDATION)', async () => {
  await A.page.getByRole('button', { name: 'Knoten in der Mitte knüpfen' }).click();
  const form = A.page.getByTestId('tie-form');
  await form.getByLabel('Titel').fill('   ');
  await form.getByRole('button', { name: 'Knüpfen' }).click();
  const error = form.locator('.error[data-error-code="VALIDATION"]');
  await error.waitFor({ timeout: 5000 });
  const text = await error.innerText();
  assert.match(text, /Die Eingabe passt nicht/);
  assert.match(text, /Der Server sagt:/);
  // Not retried: nothing waits in the outbox.
  assert.equal(await A.page.evaluate(() => window.__weberei.outbox.entries.length), 0);
  await form.getByRole('button', { name: 'Abbrechen' }).click();
  await form.waitFor({ state: 'detached' });
});
