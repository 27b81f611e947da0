import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { Kind, print, type DocumentNode, type OperationDefinitionNode } from 'graphql';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { WebereiError } from './errors.js';

export interface ClientOptions {
  /** Base URL, e.g. 'http://127.0.0.1:8080', or '' for the page's own origin. */
  url: string;
  /** The session token, read per request and per WebSocket connection. */
  token?: () => string | null | undefined;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
  /** A WebSocket constructor (default: the global one). In node, pass the `ws` package. */
  webSocketImpl?: unknown;
  /** Backoff between subscription reconnects: doubles from initialMs up to maxMs, with jitter. */
  retry?: { initialMs?: number; maxMs?: number };
}

/**
 * Where a subscription (or the client's WebSocket) stands: opening for the first time, receiving,
 * or waiting to reconnect after the connection dropped.
 */
export type ConnectionState = 'connecting' | 'live' | 'reconnecting';

/**
 * Variables of a subscription: `after` (when the operation has it) is the resume cursor. The
 * second member admits operations without `after` (AntragChanged): TypeScript's weak-type check
 * would otherwise reject `{ id: string }` against `{ after?: string | null }`.
 */
export type SubscriptionVariables = { after?: string | null } | { [key: string]: unknown };

export interface SubscriptionSink<R> {
  next(data: R): void;
  /** A final error: the subscription has ended (transport failures are retried, not reported). */
  error?(e: WebereiError): void;
  state?(s: ConnectionState): void;
}

export interface WebereiClient {
  /** Run a query or mutation over HTTP. Throws WebereiError. */
  request<R, V>(doc: TypedDocumentNode<R, V>, variables: V): Promise<R>;
  /**
   * Subscribe over WebSocket. When the connection drops, reconnects with backoff and subscribes
   * again with `after` = the cursor of the last diff received (`data.<root>.cursor`), so that
   * nothing is missed and nothing arrives twice. Returns the unsubscribe function.
   */
  subscribe<R, V extends SubscriptionVariables>(
    doc: TypedDocumentNode<R, V>,
    variables: V,
    sink: SubscriptionSink<R>,
  ): () => void;
  /** Listen to the WebSocket's state; called at once with the current state if there is one. */
  onState(listener: (s: ConnectionState) => void): () => void;
  /** Close the WebSocket and end every subscription. */
  dispose(): void;
}

/** A fresh idempotency key for one user action (reuse it when retrying that action). */
export function newIdempotencyKey(): string {
  return globalThis.crypto.randomUUID();
}

const DEFAULT_INITIAL_MS = 500;
const DEFAULT_MAX_MS = 30_000;
/** A ping every KEEPALIVE_MS; no pong within PONG_TIMEOUT_MS means a dead socket. */
const KEEPALIVE_MS = 10_000;
const PONG_TIMEOUT_MS = 5_000;

interface Printed {
  query: string;
  operationName: string | undefined;
  rootField: string | undefined;
  hasAfter: boolean;
}

const printedCache = new WeakMap<DocumentNode, Printed>();

function printed(doc: DocumentNode): Printed {
  let p = printedCache.get(doc);
  if (!p) {
    const op = doc.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
    const first = op?.selectionSet.selections.find((s) => s.kind === Kind.FIELD);
    p = {
      query: print(doc),
      operationName: op?.name?.value,
      rootField: first && first.kind === Kind.FIELD ? (first.alias ?? first.name).value : undefined,
      hasAfter: !!op?.variableDefinitions?.some((v) => v.variable.name.value === 'after'),
    };
    printedCache.set(doc, p);
  }
  return p;
}

/** Exponential backoff with jitter: a random delay in [d/2, d], d = min(max, initial * 2^attempt). */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const d = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(d / 2 + random() * (d / 2));
}

function stripSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

function wsUrlOf(base: string): string {
  if (base === '') {
    const loc = (globalThis as { location?: { protocol: string; host: string } }).location;
    if (!loc) throw WebereiError.network('url "" (same origin) needs a browser location');
    return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/graphql/ws`;
  }
  return `${base.replace(/^http/i, 'ws')}/graphql/ws`;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

interface CloseLike {
  code: number;
  reason: string;
}

function isCloseLike(e: unknown): e is CloseLike {
  return typeof e === 'object' && e !== null && 'code' in e && 'reason' in e && typeof (e as CloseLike).code === 'number';
}

/**
 * What a subscription's error means: a WebereiError that ends the subscription, or null for a
 * transport failure that is retried.
 */
function finalError(e: unknown): WebereiError | null {
  if (Array.isArray(e)) return WebereiError.fromGraphQL(e);
  if (e instanceof WebereiError) return e;
  if (isCloseLike(e)) {
    const reason = String(e.reason ?? '');
    // The server refuses connection_init with a wrong token (1002 plus its sentence).
    if ((e.code === 1002 || e.code === 4401 || e.code === 4403) && /token|session|log in|auth/i.test(reason)) {
      return new WebereiError([{ message: reason || 'the session token was refused', code: 'UNAUTHENTICATED' }]);
    }
    // Protocol misuse (bad request, subprotocol, duplicate ids, too many inits): retrying cannot help.
    if ([4400, 4406, 4409, 4429].includes(e.code)) {
      return WebereiError.network(`the server closed the WebSocket: ${e.code} ${reason}`);
    }
  }
  return null;
}

export function createClient(o: ClientOptions): WebereiClient {
  const base = stripSlash(o.url);
  const httpUrl = `${base}/graphql`;
  const initialMs = Math.max(1, o.retry?.initialMs ?? DEFAULT_INITIAL_MS);
  const maxMs = Math.max(initialMs, o.retry?.maxMs ?? DEFAULT_MAX_MS);

  const authHeader = (): string | undefined => {
    const t = o.token?.();
    return t ? `Bearer ${t}` : undefined;
  };

  // ---- HTTP -------------------------------------------------------------------------------
  async function request<R, V>(doc: TypedDocumentNode<R, V>, variables: V): Promise<R> {
    const p = printed(doc);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
    };
    const auth = authHeader();
    if (auth) headers.authorization = auth;
    const fetchImpl = o.fetch ?? globalThis.fetch;
    let res: Response;
    try {
      res = await fetchImpl(httpUrl, {
        method: 'POST',
        headers,
        body: JSON.stringify({ query: p.query, variables: variables ?? {}, operationName: p.operationName }),
      });
    } catch (e) {
      throw WebereiError.network(`no answer from ${httpUrl}: ${messageOf(e)}`, e);
    }
    let body: { data?: unknown; errors?: unknown[] } | undefined;
    try {
      body = (await res.json()) as typeof body;
    } catch (e) {
      if (res.status === 429) throw new WebereiError([{ message: 'too many requests', code: 'RATE_LIMITED' }]);
      if (res.status === 502 || res.status === 503 || res.status === 504) {
        throw new WebereiError([{ message: `the server is unavailable (HTTP ${res.status})`, code: 'UNAVAILABLE' }]);
      }
      throw WebereiError.network(`unreadable answer from ${httpUrl} (HTTP ${res.status}): ${messageOf(e)}`, e);
    }
    if (Array.isArray(body?.errors) && body.errors.length > 0) throw WebereiError.fromGraphQL(body.errors);
    if (body?.data === undefined || body.data === null) {
      throw WebereiError.network(`answer from ${httpUrl} without data (HTTP ${res.status})`);
    }
    return body.data as R;
  }

  // ---- WebSocket ----------------------------------------------------------------------------
  let ws: WsClient | undefined;
  let disposed = false;
  let connected = false;
  let lost = false; // the connection dropped while subscriptions were active
  let state: ConnectionState | undefined;
  let pongTimer: ReturnType<typeof setTimeout> | undefined;
  const stateListeners = new Set<(s: ConnectionState) => void>();
  const subs = new Set<{ onConnected(): void; stop(): void }>();

  const setState = (s: ConnectionState) => {
    if (s === state) return;
    state = s;
    for (const l of [...stateListeners]) l(s);
  };

  const wsClient = (): WsClient => {
    if (ws) return ws;
    ws = createWsClient({
      url: () => wsUrlOf(base),
      webSocketImpl: o.webSocketImpl,
      lazy: true,
      // Reconnects are ours (below): each subscription comes back with its own `after` cursor.
      retryAttempts: 0,
      keepAlive: KEEPALIVE_MS,
      connectionParams: () => {
        const auth = authHeader();
        return auth ? { authorization: auth } : {};
      },
      on: {
        connecting: () => setState(lost ? 'reconnecting' : 'connecting'),
        connected: () => {
          connected = true;
          lost = false;
          setState('live');
          for (const s of [...subs]) s.onConnected();
        },
        closed: () => {
          connected = false;
          clearTimeout(pongTimer);
          if (subs.size > 0 && !disposed) {
            lost = true;
            setState('reconnecting');
          }
        },
        ping: (received) => {
          if (received) return;
          clearTimeout(pongTimer);
          pongTimer = setTimeout(() => ws?.terminate(), PONG_TIMEOUT_MS);
        },
        pong: (received) => {
          if (received) clearTimeout(pongTimer);
        },
      },
    });
    return ws;
  };

  function subscribe<R, V extends SubscriptionVariables>(
    doc: TypedDocumentNode<R, V>,
    variables: V,
    sink: SubscriptionSink<R>,
  ): () => void {
    if (disposed) throw new Error('WebereiClient: subscribe after dispose()');
    const p = printed(doc);
    let vars: Record<string, unknown> = { ...(variables as Record<string, unknown>) };
    let stopped = false;
    let attempt = 0;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    let current: (() => void) | undefined;
    let subState: ConnectionState | undefined;
    let inFlight = false; // an attempt is subscribed (or subscribing) on the socket

    const setSubState = (s: ConnectionState) => {
      if (s === subState || stopped) return;
      subState = s;
      sink.state?.(s);
    };

    const record = {
      onConnected: () => {
        if (inFlight) setSubState('live');
      },
      stop: () => {
        stopped = true;
        inFlight = false;
        clearTimeout(retryTimer);
        current?.();
        current = undefined;
        subs.delete(record);
      },
    };

    const start = () => {
      if (stopped) return;
      let over = false;
      inFlight = true;
      const payload = { query: p.query, operationName: p.operationName, variables: vars };
      current = wsClient().subscribe<Record<string, unknown>>(payload, {
        next: (result) => {
          if (stopped || over) return;
          if (Array.isArray(result.errors) && result.errors.length > 0) {
            over = true;
            record.stop();
            sink.error?.(WebereiError.fromGraphQL(result.errors));
            return;
          }
          const data = result.data;
          if (!data) return;
          attempt = 0;
          setSubState('live');
          const cursor = p.rootField ? (data[p.rootField] as { cursor?: unknown } | null | undefined)?.cursor : undefined;
          if (p.hasAfter && typeof cursor === 'string') {
            vars = { ...vars, after: cursor };
            // graphql-ws itself resubscribes with this payload after a normal close: keep it current.
            payload.variables = vars;
          }
          sink.next(data as R);
        },
        error: (e: unknown) => {
          if (stopped || over) return;
          over = true;
          inFlight = false;
          current = undefined;
          const fatal = finalError(e);
          if (fatal) {
            record.stop();
            sink.error?.(fatal);
            return;
          }
          setSubState('reconnecting');
          retryTimer = setTimeout(start, backoffDelay(attempt++, initialMs, maxMs));
        },
        complete: () => {
          // The server ended the subscription (or we did): nothing more will come.
          if (!stopped && !over) {
            over = true;
            record.stop();
          }
        },
      });
      if (connected) setSubState('live');
    };

    subs.add(record);
    setSubState('connecting');
    start();
    return () => record.stop();
  }

  function onState(listener: (s: ConnectionState) => void): () => void {
    stateListeners.add(listener);
    if (state) listener(state);
    return () => {
      stateListeners.delete(listener);
    };
  }

  function dispose(): void {
    disposed = true;
    for (const s of [...subs]) s.stop();
    clearTimeout(pongTimer);
    stateListeners.clear();
    void ws?.dispose();
  }

  return { request, subscribe, onState, dispose };
}
