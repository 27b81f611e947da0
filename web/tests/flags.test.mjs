// Feature flags come from the server's `config` query, not from the build: the same build
// shows no search box and the tour when the server says FF_SEARCH=false FF_TOUR=true.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Weberei, launchBrowser, openApp } from './harness.mjs';

let w;
let browser;

before(async () => {
  w = await Weberei.start({ env: { FF_SEARCH: 'false', FF_TOUR: 'true' } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await w?.stop();
});

test('FF_SEARCH off hides the search box; FF_TOUR on shows the five-step tour once', async () => {
  const { page, context } = await openApp(browser, w);
  assert.equal(await page.getByTestId('search').count(), 0);
  const tour = page.getByRole('dialog', { name: 'Die Karte' });
  await tour.waitFor();
  const titles = ['Die Karte'];
  for (let i = 0; i < 4; i++) {
    await page.getByRole('button', { name: 'Weiter' }).click();
    titles.push(await page.locator('#tour-title').innerText());
  }
  assert.deepEqual(titles, ['Die Karte', 'Knoten', 'Fäden', 'Räume', 'Webrat und Delegation']);
  assert.match(await page.locator('.tour').innerText(), /Schritt 5 von 5/);
  await page.getByRole('button', { name: "Los geht's" }).click();
  await page.locator('.tour').waitFor({ state: 'detached' });
  await page.reload();
  await page.getByRole('heading', { name: 'Stübchen' }).waitFor();
  await page.waitForTimeout(500);
  assert.equal(await page.locator('.tour').count(), 0, 'the tour is shown once');
  await context.close();
});
