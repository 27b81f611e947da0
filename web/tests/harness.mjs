// Test harness for the browser tests: a real `weberei up` on a fresh database with a unique Ort
// (as the Rust e2e tests do), the built web client served by it (or, if that server does not
// serve web/build, by a small proxy here), headless Chromium through playwright-core, and the
// cleanup (process, database, the Ort's JetStream streams).
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, statSync, mkdirSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import { connect as netConnect, createServer as netServer } from 'node:net';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
export const WEB_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = resolve(WEB_DIR, '..');
export const BUILD_DIR = join(WEB_DIR, 'build');
export const ARTIFACTS = join(WEB_DIR, 'test-artifacts');
const BIN = process.env.WEBEREI_BIN ?? join(REPO, 'target', 'debug', 'weberei');
const NATS = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const REDIS = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PG = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** `t` + 10 lowercase alphanumerics: testkit-cleanup recognises (and removes) its streams. */
export function uniqueOrt() {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(10);
  return 't' + [...bytes].map((b) => alphabet[b % alphabet.length]).join('');
}

function freePort() {
  return new Promise((res, rej) => {
    const s = netServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

function psql(sql) {
  const r = spawnSync('psql', [`${PG}/postgres`, '-v', 'ON_ERROR_STOP=1', '-qc', sql], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`psql ${sql}: ${r.stderr}`);
}

function ensureBinary() {
  if (existsSync(BIN)) return;
  const r = spawnSync('cargo', ['build', '--bin', 'weberei'], { cwd: REPO, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('cargo build --bin weberei failed');
}

function ensureBuild() {
  if (!existsSync(join(BUILD_DIR, 'index.html'))) {
    throw new Error('web/build is missing: run `npm run build` in web/ first (npm test does)');
  }
}

/** Delete the Ort's JetStream streams (plain NATS protocol, JetStream API requests). */
async function deleteStreams(ort) {
  const url = new URL(NATS);
  const names = ['social', 'governance', 'finance', 'dlq', 'system'].map((d) => `wg_${ort}_${d}`);
  await new Promise((res) => {
    const sock = netConnect(Number(url.port || 4222), url.hostname);
    let buf = '';
    let answered = 0;
    const done = () => {
      sock.destroy();
      res();
    };
    const timer = setTimeout(done, 3000);
    sock.on('error', () => {
      clearTimeout(timer);
      res();
    });
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      if (buf.startsWith('INFO') && !sock.sentConnect) {
        sock.sentConnect = true;
        let out = 'CONNECT {"verbose":false,"pedantic":false,"headers":false}\r\nSUB _INBOX.webtest.* 1\r\n';
        names.forEach((n, i) => {
          out += `PUB $JS.API.STREAM.DELETE.${n} _INBOX.webtest.${i} 0\r\n\r\n`;
        });
        sock.write(out);
      }
      const msgs = buf.match(/MSG _INBOX\.webtest\./g);
      answered = msgs ? msgs.length : 0;
      if (buf.includes('PING\r\n')) sock.write('PONG\r\n');
      if (answered >= names.length) {
        clearTimeout(timer);
        done();
      }
    });
  });
}

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** Serve web/build and proxy /graphql (HTTP and WebSocket) to the API. */
async function startProxy(apiUrl) {
  const api = new URL(apiUrl);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (path.startsWith('/graphql') || path.startsWith('/health')) {
      const up = httpRequest(
        { host: api.hostname, port: api.port, path: req.url, method: req.method, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
      return;
    }
    let file = join(BUILD_DIR, path);
    if (!file.startsWith(BUILD_DIR) || !existsSync(file) || statSync(file).isDirectory()) {
      file = join(BUILD_DIR, 'index.html');
    }
    res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  server.on('upgrade', (req, socket, head) => {
    const up = netConnect(Number(api.port), api.hostname, () => {
      let raw = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      }
      up.write(raw + '\r\n');
      if (head?.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  const port = await freePort();
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) };
}

export class Weberei {
  /** Start `weberei up` on a fresh database and a unique Ort; `url` serves the web client. */
  static async start({ env = {} } = {}) {
    ensureBinary();
    ensureBuild();
    const w = new Weberei();
    w.ort = uniqueOrt();
    w.db = `wg_test_web_${w.ort}`;
    psql(`create database ${w.db}`);
    const port = await freePort();
    w.apiUrl = `http://127.0.0.1:${port}`;
    w.env = {
      ...process.env,
      NATS_URL: NATS,
      DATABASE_URL: `${PG}/${w.db}`,
      REDIS_URL: REDIS,
      WEBEREI_ORT: w.ort,
      WEBEREI_DEMO: 'false',
      WEBEREI_HTTP_ADDR: `127.0.0.1:${port}`,
      WEBEREI_WS_TICK_MS: '200',
      WEBEREI_WEB_DIR: BUILD_DIR,
      WEBEREI_MIN_DECISION_SECONDS: '1',
      WEBEREI_STREAM_MAX_BYTES: String(32 * 1024 * 1024),
      RUST_LOG: process.env.RUST_LOG ?? 'warn',
      ...env,
    };
    w.log = '';
    w.child = spawn(BIN, ['up'], { env: w.env, stdio: ['ignore', 'pipe', 'pipe'] });
    w.child.stderr.on('data', (d) => (w.log = (w.log + d).slice(-20000)));
    await new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`weberei up: no URL within 90 s\n${w.log}`)), 90_000);
      let out = '';
      w.child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('http://')) {
          clearTimeout(timer);
          res();
        }
      });
      w.child.on('exit', (code) => {
        clearTimeout(timer);
        rej(new Error(`weberei up exited (${code}) before it was ready\n${w.log}`));
      });
    });
    // The API serves web/build itself (WEBEREI_WEB_DIR) when it can; otherwise a proxy here does.
    const index = await fetch(`${w.apiUrl}/`).then((r) => r.text()).catch(() => '');
    if (index.includes('manifest.webmanifest') && !process.env.WEBEREI_WEB_VIA_PROXY) {
      w.url = w.apiUrl;
      w.servedBy = 'api';
    } else {
      w.proxy = await startProxy(w.apiUrl);
      w.url = w.proxy.url;
      w.servedBy = 'proxy';
    }
    return w;
  }

  async stop() {
    await this.proxy?.close();
    if (this.child && this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (this.child.exitCode === null) this.child.kill('SIGKILL');
    }
    try {
      psql(`drop database if exists ${this.db} with (force)`);
    } catch (e) {
      console.error(e.message);
    }
    await deleteStreams(this.ort);
  }

  /** POST /graphql; throws on GraphQL errors unless `allowErrors`. */
  async gql(query, variables = {}, token = null, allowErrors = false) {
    const res = await fetch(`${this.apiUrl}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
    const body = await res.json();
    if (body.errors && !allowErrors) throw new Error(JSON.stringify(body.errors));
    return body;
  }

  /** Register a role (home near Weimar's centre by default); returns { id, token }. */
  async register(name, lat = 50.9803, lng = 11.3294) {
    const r = await this.gql(
      'mutation($i: RegisterInput!) { register(input: $i) { token rolle { id } } }',
      { i: { idempotencyKey: randomUUID(), name, lat, lng } },
    );
    return { id: r.data.register.rolle.id, token: r.data.register.token };
  }

  /** `weberei admin verify <id>` with the server's environment, then wait until it shows. */
  async adminVerify(id) {
    const r = spawnSync(BIN, ['admin', 'verify', id], { env: this.env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`admin verify: ${r.stderr}`);
    await until(`${id} verified`, 15_000, async () => {
      const q = await this.gql('query($id: ID!) { rolle(id: $id) { verification { verified } } }', { id });
      return q.data.rolle?.verification?.verified === true;
    });
  }
}

export async function until(what, ms, check, every = 100) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (${last})`);
    await new Promise((r) => setTimeout(r, every));
  }
}

export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--enable-unsafe-swiftshader',
      '--use-angle=swiftshader',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}

/** A fresh context and page on the app, with the map loaded. */
export async function openApp(browser, w, { viewport = { width: 1280, height: 800 }, locale = 'de-DE' } = {}) {
  const context = await browser.newContext({ viewport, locale, serviceWorkers: 'block' });
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('[pageerror]', e.message));
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  await page.goto(w.url);
  await waitForMap(page);
  return { context, page };
}

export async function waitForMap(page) {
  await page.waitForFunction(() => {
    const m = window.__weberei?.map;
    return !!m && m.loaded() && !!m.getSource('knoten');
  }, null, { timeout: 30_000 });
}

/** Register through the Konto dialog; returns the role id. */
export async function registerInUi(page, name) {
  await page.getByTestId('konto-button').click();
  const form = page.getByTestId('register-form');
  await form.getByLabel('Name', { exact: true }).fill(name);
  await form.getByRole('button', { name: 'Registrieren' }).click();
  await page.getByTestId('me-name').filter({ hasText: name }).waitFor({ timeout: 15_000 });
  await page.getByTestId('konto').getByRole('button', { name: 'Schließen' }).click();
  return page.evaluate(() => window.__weberei.session.me.id);
}

/** Inject axe-core and return serious/critical violations. */
export async function axeViolations(page, context = 'body') {
  const source = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  // Evaluated through the DevTools protocol: the page's CSP (no inline scripts) stays in force.
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
    await page.evaluate(`${source}\n;true`);
  }
  const result = await page.evaluate(async (ctx) => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(ctx, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ') + ' :: ' + n.failureSummary),
    }));
  }, context);
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

export function artifactsDir() {
  mkdirSync(ARTIFACTS, { recursive: true });
  return ARTIFACTS;
}
