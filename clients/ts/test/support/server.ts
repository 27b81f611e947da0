// A live Weberei for one test file: a fresh database, a unique Ort, a free port, and
// `target/debug/weberei up` (build it with `cargo build --bin weberei`). `stop()` ends the
// process (SIGTERM), drops the database and deletes the Ort's JetStream streams.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { repoRoot } from '../../scripts/lib.mjs';

const PG_ADMIN = process.env.TEST_DATABASE_URL?.trim() || 'postgres://postgres@127.0.0.1:5432/postgres';
const NATS_URL = process.env.TEST_NATS_URL?.trim() || 'nats://127.0.0.1:4222';
const REDIS_URL = process.env.TEST_REDIS_URL?.trim() || 'redis://127.0.0.1:6379';
/** JetStream domains of an Ort (tests/webrat_e2e.rs deletes the same). */
const DOMAINS = ['social', 'governance', 'finance', 'dlq', 'system'];

export interface LiveServer {
  url: string;
  ort: string;
  database: string;
  stop(): Promise<void>;
}

/** `t` + 10 lowercase alphanumerics: testkit's rule, so testkit-cleanup recognises leftovers. */
export function uniqueOrt(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(10);
  let ort = 't';
  for (const b of bytes) ort += alphabet[b % alphabet.length];
  return ort;
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function psql(sql: string): void {
  execFileSync('psql', [PG_ADMIN, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], { stdio: ['ignore', 'ignore', 'pipe'] });
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

async function deleteStreams(ort: string): Promise<void> {
  const nc = await connect({ servers: NATS_URL.replace(/^nats:\/\//, ''), timeout: 5000 });
  try {
    const jsm = await jetstreamManager(nc);
    for (const d of DOMAINS) {
      try {
        await jsm.streams.delete(`wg_${ort}_${d}`);
      } catch {
        // not created by this run
      }
    }
  } finally {
    await nc.close();
  }
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

export async function startServer(extraEnv: Record<string, string> = {}): Promise<LiveServer> {
  const bin = join(repoRoot, 'target', 'debug', 'weberei');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`cargo build --bin weberei\` in ${repoRoot} first`);
  const ort = uniqueOrt();
  const database = `wg_test_${randomUUID().replace(/-/g, '')}`;
  psql(`CREATE DATABASE "${database}"`);
  const port = await freePort();
  const addr = `127.0.0.1:${port}`;
  const child = spawn(bin, ['up'], {
    cwd: repoRoot,
    env: {
      ...process.env,
      NATS_URL,
      DATABASE_URL: withDatabase(PG_ADMIN, database),
      REDIS_URL,
      WEBEREI_ORT: ort,
      WEBEREI_DEMO: 'false',
      WEBEREI_HTTP_ADDR: addr,
      WEBEREI_WS_TICK_MS: '200',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The first lines say why a start failed (a backtrace follows); keep them and the last ones.
  let stderrHead = '';
  let stderrTail = '';
  child.stderr?.on('data', (b: Buffer) => {
    if (stderrHead.length < 3000) stderrHead += b.toString();
    else stderrTail = (stderrTail + b.toString()).slice(-2000);
  });
  const stderrText = () => `${stderrHead.slice(0, 3000)}${stderrTail ? `\n...\n${stderrTail}` : ''}`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    child.kill('SIGTERM');
    if (!(await exited(child, 10_000))) {
      child.kill('SIGKILL');
      await exited(child, 5_000);
    }
    try {
      psql(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    } finally {
      await deleteStreams(ort);
    }
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`weberei up printed no URL within 60 s\n${stderrText()}`)), 60_000);
      const lines = createInterface({ input: child.stdout! });
      lines.on('line', (line) => {
        if (line.includes('http://')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`weberei up ended (${code ?? signal}) before printing its URL\n${stderrText()}`));
      });
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return { url: `http://${addr}`, ort, database, stop };
}
