import WebSocket from 'ws';
import {
  RegisterDocument,
  ViewportDocument,
  createClient,
  newIdempotencyKey,
  type ConnectionState,
  type ViewportSubscription,
  type ViewportSubscriptionVariables,
  type WebereiClient,
  type WebereiError,
} from '../../src/index.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function until(what: string, ms: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** Register a role near Weimar; returns its token and id. */
export async function register(url: string, name: string): Promise<{ token: string; id: string }> {
  const anon = createClient({ url });
  const r = await anon.request(RegisterDocument, {
    input: { idempotencyKey: newIdempotencyKey(), name, lat: 50.9795, lng: 11.3235 },
  });
  return { token: r.register.token, id: r.register.rolle.id };
}

export type Diff = ViewportSubscription['viewport'];

/** A viewport subscription that records every diff, state and error. */
export function recordViewport(client: WebereiClient, variables: ViewportSubscriptionVariables) {
  const diffs: Diff[] = [];
  const states: ConnectionState[] = [];
  const errors: WebereiError[] = [];
  const unsubscribe = client.subscribe(ViewportDocument, variables, {
    next: (d) => diffs.push(d.viewport),
    error: (e) => errors.push(e),
    state: (s) => states.push(s),
  });
  const all = <T>(pick: (d: Diff) => readonly T[]) => diffs.flatMap((d) => [...pick(d)]);
  return {
    diffs,
    states,
    errors,
    unsubscribe,
    knotenIds: () => all((d) => d.knoten.map((k) => k.id)),
    fadenIds: () => all((d) => d.faeden.map((f) => f.id)),
    nachrichtIds: () => all((d) => d.nachrichten.map((n) => n.id)),
    /** The cursor of the last diff received. */
    cursor: () => diffs.at(-1)?.cursor,
    /** Diffs that carried something (not heartbeats). */
    contentDiffs: () => diffs.filter((d) => d.knoten.length + d.faeden.length + d.nachrichten.length + d.knotenChanges.length > 0),
  };
}

/**
 * The `ws` WebSocket, instrumented: remembers every socket and every message sent, and while
 * `offline` is set, points new sockets at a closed port (the connection is refused, as when the
 * server is unreachable).
 */
export function instrumentedWebSocket(deadPort: number) {
  const sockets: InstanceType<typeof WebSocket>[] = [];
  const opened: number[] = [];
  const sent: { at: number; data: string }[] = [];
  const ctl = { offline: false };
  class Instrumented extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      opened.push(Date.now());
      super(ctl.offline ? url.replace(/:\d+\//, `:${deadPort}/`) : url, protocols);
      sockets.push(this);
    }
    override send(data: unknown, ...rest: unknown[]): void {
      sent.push({ at: Date.now(), data: String(data) });
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      (super.send as any)(data, ...rest);
    }
  }
  return { Instrumented, sockets, opened, sent, ctl };
}

/** Occurrences of each value. */
export function counts(xs: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}
