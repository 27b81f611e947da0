// The main screen and a room: axe-core finds no serious or critical violations; screenshots at
// 1280x800 and 360x740 go to web/test-artifacts/; narrow screens use tabs; a lost connection
// shows "reconnecting" and the app resumes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Weberei, artifactsDir, axeViolations, launchBrowser, openApp, registerInUi, until } from './harness.mjs';

let w;
let browser;

before(async () => {
  w = await Weberei.start();
  browser = await launchBrowser();
  // Some life on the map: Knoten of three kinds, threads from three homes, an Antrag.
  const homes = [
    [50.975, 11.315],
    [50.988, 11.34],
    [50.972, 11.345],
  ];
  const roles = [];
  for (const [i, [lat, lng]] of homes.entries()) roles.push(await w.register(`Nachbar ${i + 1}`, lat, lng));
  const made = [];
  const knoten = [
    ['Reparaturcafé im Stadtteilzentrum', 'EVENT', 50.9846, 11.319],
    ['Lastenrad zum Ausleihen', 'RESSOURCE', 50.9801, 11.329],
    ['Bücherschrank am Goetheplatz', 'RESSOURCE', 50.9811, 11.3245],
    ['Gemeinschaftsgarten am Ilmufer', 'IDEEN', 50.9772, 11.3322],
  ];
  for (const [title, typ, lat, lng] of knoten) {
    const r = await w.gql(
      'mutation($i: CreateKnotenInput!) { createKnoten(input: $i) { knoten { id } } }',
      { i: { idempotencyKey: crypto.randomUUID(), title, typ, lat, lng } },
      roles[0].token,
    );
    made.push(r.data.createKnoten.knoten.id);
  }
  // Three roles spin to the garden: it becomes yarn; one thread to the café.
  for (const role of roles) {
    await w.gql(
      'mutation($i: SpinFadenInput!) { spinFaden(input: $i) { faden { id } } }',
      { i: { idempotencyKey: crypto.randomUUID(), knotenId: made[3], typ: 'MITARBEIT' } },
      role.token,
    );
  }
  await w.gql(
    'mutation($i: SpinFadenInput!) { spinFaden(input: $i) { faden { id } } }',
    { i: { idempotencyKey: crypto.randomUUID(), knotenId: made[0], typ: 'INTERESSE' } },
    roles[1].token,
  );
  await w.gql(
    'mutation($i: WriteNachrichtInput!) { writeNachricht(input: $i) { nachricht { id } } }',
    { i: { idempotencyKey: crypto.randomUUID(), knotenId: made[0], text: 'Wer bringt Werkzeug mit?' } },
    roles[1].token,
  );
  await w.adminVerify(roles[0].id);
  await w.gql(
    'mutation($i: FileAntragInput!) { fileAntrag(input: $i) { antrag { id } } }',
    {
      i: {
        idempotencyKey: crypto.randomUUID(),
        title: 'Sitzbänke am Ilmufer',
        decisionDeadline: new Date(Date.now() + 5 * 86400_000).toISOString(),
      },
    },
    roles[0].token,
  );
});

after(async () => {
  await browser?.close();
  await w?.stop();
});

function report(violations) {
  return violations.map((v) => `${v.impact} ${v.id}: ${v.help}\n  ${v.nodes.join('\n  ')}`).join('\n');
}

test('main screen and a room: no serious or critical axe violations; screenshots', async () => {
  const { page, context } = await openApp(browser, w);
  await registerInUi(page, 'Greta');
  await page.getByTestId('stuebchen-list').getByRole('button').first().waitFor();
  await page.locator('[data-antrag-id]').first().waitFor({ timeout: 10_000 });
  await page.waitForTimeout(500);
  const dir = artifactsDir();
  await page.screenshot({ path: join(dir, 'main-1280x800.png') });

  const main = await axeViolations(page);
  assert.deepEqual(main, [], report(main));

  await page.getByTestId('stuebchen-list').getByRole('button', { name: /Reparaturcafé/ }).click();
  await page.getByTestId('thread').getByText('Wer bringt Werkzeug mit?').waitFor();
  await page.waitForTimeout(1000);
  await page.screenshot({ path: join(dir, 'room-1280x800.png') });
  const room = await axeViolations(page);
  assert.deepEqual(room, [], report(room));
  // The page's own CSP (scripts and workers from 'self' only, plus the bootstrap's hash) holds.
  assert.match((await page.locator('meta[http-equiv="content-security-policy"]').getAttribute('content')) ?? '', /script-src 'self' 'sha256-/);
  assert.deepEqual(await page.evaluate(() => window.__csp), []);

  // Keyboard: the room's tabs move with the arrow keys.
  await page.getByRole('tab', { name: 'Gespräch' }).focus();
  await page.keyboard.press('ArrowRight');
  assert.equal(
    await page.evaluate(() => document.activeElement?.getAttribute('aria-selected')),
    'true',
  );
  await page.getByRole('tabpanel').getByText(/Nachbar 2|Noch niemand/).first().waitFor();
  await context.close();
});

test('Konto: "Daten herunterladen" saves everything about me as JSON, and nothing of others', async () => {
  const { page, context } = await openApp(browser, w);
  await registerInUi(page, 'Ida Export');
  await page.getByTestId('konto-button').click();
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 15_000 }),
    page.getByTestId('konto').getByRole('button', { name: 'Daten herunterladen' }).click(),
  ]);
  assert.match(download.suggestedFilename(), /^weberei-meine-daten-\d{4}-\d{2}-\d{2}\.json$/);
  const path = await download.path();
  const doc = JSON.parse(readFileSync(path, 'utf8'));
  assert.equal(doc.rolle.name, 'Ida Export');
  assert.equal(doc.sessions.length, 1);
  assert.ok(!JSON.stringify(doc).includes('Nachbar 1'), 'only my own data');
  await context.close();
});

test('at 360 px the panels are tabs; screenshot', async () => {
  const { page, context } = await openApp(browser, w, { viewport: { width: 360, height: 740 } });
  await page.waitForTimeout(800);
  const dir = artifactsDir();
  await page.screenshot({ path: join(dir, 'main-360x740.png') });
  // The map fills the screen; the Stübchen panel is one tap away.
  assert.equal(await page.getByTestId('stuebchen').isVisible(), false);
  await page.getByTestId('tab-stuebchen').click();
  await page.getByTestId('stuebchen').waitFor({ state: 'visible' });
  await page.getByTestId('stuebchen-list').getByRole('button').first().waitFor();
  await page.screenshot({ path: join(dir, 'stuebchen-360x740.png') });
  const narrow = await axeViolations(page);
  assert.deepEqual(narrow, [], report(narrow));
  // Nothing sticks out sideways.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(overflow <= 360, `page is ${overflow}px wide`);
  await context.close();
});

test('a lost connection shows "reconnecting" and the map resumes afterwards', async () => {
  const { page, context } = await openApp(browser, w);
  await page.getByTestId('connection').locator('[data-state="live"]').waitFor({ timeout: 10_000 });
  await context.setOffline(true);
  await page.getByTestId('connection').locator('[data-state="reconnecting"]').waitFor({ timeout: 15_000 });
  assert.match(await page.getByTestId('connection').innerText(), /verbinde neu/);
  // Meanwhile someone ties a Knoten in view.
  const other = await w.register('Otto');
  await w.gql(
    'mutation($i: CreateKnotenInput!) { createKnoten(input: $i) { knoten { id } } }',
    { i: { idempotencyKey: crypto.randomUUID(), title: 'Während du weg warst', typ: 'EVENT', lat: 50.981, lng: 11.327 } },
    other.token,
  );
  await context.setOffline(false);
  await page.getByTestId('connection').locator('[data-state="live"]').waitFor({ timeout: 20_000 });
  // Resumed from the cursor: the missed Knoten arrives without reload.
  await until('the missed Knoten', 10_000, () =>
    page.evaluate(() =>
      (window.__weberei.knoten?.features ?? []).some((f) => f.properties.title === 'Während du weg warst'),
    ),
  );
  await context.close();
});

test('installable: manifest and icons are served, the service worker keeps the shell offline', async () => {
  const manifest = await fetch(`${w.url}/manifest.webmanifest`).then((r) => r.json());
  assert.equal(manifest.name, 'Weberei');
  for (const icon of manifest.icons) {
    const r = await fetch(new URL(icon.src, w.url));
    assert.equal(r.status, 200, icon.src);
    assert.equal(r.headers.get('content-type')?.split(';')[0], icon.type, icon.src);
  }
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(w.url);
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
  await page.reload(); // now controlled by the worker
  await page.waitForFunction(() => !!navigator.serviceWorker.controller);
  await context.setOffline(true);
  await page.reload();
  await page.getByRole('heading', { name: 'Stübchen' }).waitFor({ timeout: 10_000 });
  await page.getByRole('alert').filter({ hasText: 'Der Server antwortet gerade nicht' }).waitFor();
  await context.close();
});
