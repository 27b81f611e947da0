// The Webrat panel through a real server: an Antrag filed by an admin-verified role appears
// near the viewport; a verified person votes in the panel and the tally follows.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Weberei, launchBrowser, openApp, registerInUi, until } from './harness.mjs';

let w;
let browser;
let vera;
let fritz;

before(async () => {
  w = await Weberei.start();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await w?.stop();
});

test('a verified person votes on an Antrag in the Webrat panel and the tally updates', async () => {
  vera = await openApp(browser, w);
  const { page } = vera;
  const voterId = await registerInUi(page, 'Vera');
  await w.adminVerify(voterId);

  // Filed by another verified role (home in the same Weberei) through GraphQL; the panel
  // receives it live through the webrat subscription.
  const filer = (fritz = await w.register('Fritz'));
  await w.adminVerify(filer.id);
  const deadline = new Date(Date.now() + 3600_000).toISOString();
  const filed = await w.gql(
    `mutation($i: FileAntragInput!) { fileAntrag(input: $i) { antrag { id } } }`,
    {
      i: {
        idempotencyKey: crypto.randomUUID(),
        title: 'Bank am Goetheplatz aufstellen',
        content: { text: 'Eine Bank im Schatten, für alle.' },
        decisionDeadline: deadline,
      },
    },
    filer.token,
  );
  const antragId = filed.data.fileAntrag.antrag.id;

  const entry = page.locator(`[data-antrag-id="${antragId}"]`).first();
  await entry.waitFor({ timeout: 10_000 });
  await entry.click();
  const view = page.getByTestId('antrag');
  await view.getByRole('heading', { name: 'Bank am Goetheplatz aufstellen' }).waitFor();
  const ja = view.locator('dd[data-vote="JA"]');
  assert.equal(await ja.innerText(), '0');

  await view.getByRole('button', { name: 'Ja', exact: true }).click();
  await page.waitForFunction(
    () => document.querySelector('[data-testid=antrag] dd[data-vote="JA"]')?.textContent === '1',
    null,
    { timeout: 10_000 },
  );
  await view.getByTestId('my-vote').filter({ hasText: 'Ja' }).waitFor();
  // The list entry follows too.
  await page.getByRole('button', { name: 'Alle Anträge' }).click();
  await page.locator(`[data-antrag-id="${antragId}"]`).filter({ hasText: 'Ja 1' }).waitFor();

  // The server counted it, once.
  const r = await w.gql(
    `query($id: ID!) { antrag(id: $id) { tally { ja nein participation } } }`,
    { id: antragId },
  );
  assert.deepEqual(r.data.antrag.tally, { ja: 1, nein: 0, participation: 1 });
});

test('an unverified person is told why the vote was refused', async () => {
  const { page } = await openApp(browser, w);
  await registerInUi(page, 'Ulla');
  const entry = page.locator('[data-antrag-id]').first();
  await entry.waitFor({ timeout: 10_000 });
  await entry.click();
  const view = page.getByTestId('antrag');
  await view.getByRole('button', { name: 'Nein', exact: true }).click();
  const error = view.locator('.error[data-error-code="FORBIDDEN"]');
  await error.waitFor({ timeout: 5000 });
  assert.match(await error.innerText(), /Das darfst du hier nicht/);
});

test('filing an Antrag, delegating and revoking, and resolving a report in the panel', async () => {
  const { page } = vera;
  // Vera's session learns that she is verified.
  await page.reload();
  await page.waitForFunction(() => window.__weberei?.session?.me?.verification?.verified === true);

  // File an Antrag in the panel: it opens, and the list has it.
  await page.getByTestId('file-antrag').click();
  await page.getByLabel('Titel').fill('Trinkbrunnen am Markt');
  await page.getByLabel('Worum geht es?').fill('Ein Brunnen für heiße Tage.');
  await page.getByRole('button', { name: 'Antrag stellen' }).last().click();
  const view = page.getByTestId('antrag');
  await view.getByRole('heading', { name: 'Trinkbrunnen am Markt' }).waitFor({ timeout: 5000 });
  assert.match(await view.innerText(), /gestellt von Vera/);

  // Delegate to Fritz, found by name; then revoke.
  await page.getByRole('tab', { name: 'Delegation' }).click();
  await page.getByLabel('Person suchen (Name)').fill('Fritz');
  await page.getByRole('button', { name: 'Fritz', exact: true }).click();
  await page.getByRole('button', { name: 'Übertragen' }).click();
  await page.getByTestId('delegation-outgoing').filter({ hasText: 'Deine Stimme geht an Fritz' }).waitFor({ timeout: 5000 });
  const d = await w.gql('{ myDelegation { outgoing { toId active } } }', {}, await page.evaluate(() => window.__weberei.api.token));
  assert.deepEqual(d.data.myDelegation.outgoing, { toId: fritz.id, active: true });
  await page.getByRole('button', { name: 'Delegation widerrufen' }).click();
  await page.getByTestId('delegation').getByText('Du hast deine Stimme niemandem übertragen.').waitFor({ timeout: 5000 });

  // A report by someone else; Vera (verified, neither author nor reporter) hides the content.
  const k = await w.gql(
    `mutation($i: CreateKnotenInput!) { createKnoten(input: $i) { knoten { id } } }`,
    { i: { idempotencyKey: crypto.randomUUID(), title: 'Werbung für Autos', typ: 'IDEEN', lat: 50.98, lng: 11.33 } },
    fritz.token,
  );
  const flaggedId = k.data.createKnoten.knoten.id;
  await until('the Knoten is projected', 5000, async () =>
    (await w.gql('query($id: ID!) { room(knotenId: $id) { knoten { id } } }', { id: flaggedId })).data.room,
  );
  const reporter = await w.register('Rita');
  await w.gql(
    `mutation($i: RaiseFlagInput!) { raiseFlag(input: $i) { flag { id } } }`,
    { i: { idempotencyKey: crypto.randomUUID(), targetKind: 'KNOTEN', targetId: k.data.createKnoten.knoten.id, reason: 'Reine Werbung' } },
    reporter.token,
  );
  await page.getByRole('tab', { name: 'Moderation' }).click();
  const thread = page.locator('.threads > li', { hasText: 'Werbung für Autos' });
  await thread.waitFor({ timeout: 5000 });
  assert.match(await thread.innerText(), /Rita: Reine Werbung/);
  await thread.getByLabel('Begründung').fill('Kein Knoten, nur Werbung');
  await thread.getByRole('button', { name: 'Verbergen' }).click();
  await thread.waitFor({ state: 'detached', timeout: 5000 });
  const settled = await until('the resolution is projected', 5000, async () => {
    const m = await w.gql('{ moderationThreads(open: false) { nodes { outcome open } } }');
    return m.data.moderationThreads.nodes.length > 0 && m.data.moderationThreads.nodes;
  });
  assert.deepEqual(settled, [{ outcome: 'HIDDEN', open: false }]);
});
