// The live map: Knoten and Fäden in the viewport. The `Knoten` query loads the box, the
// `viewport` subscription brings diffs; on pan/zoom it subscribes again with the new box and the
// last cursor (the server replays what was missed), and a `resync` diff reloads the box.
import {
  KnotenDocument,
  ViewportDocument,
  type FadenFieldsFragment,
  type KnotenQuery,
  type KnotenFieldsFragment,
  type NachrichtFieldsFragment,
  type ViewportDiffFieldsFragment,
} from '@weberei/client';
import { api, toShownError, type ShownError } from './api.svelte';
import { clampBbox, inBbox, type Bbox } from './geo';
import { session } from './session.svelte';

export type Knoten = KnotenFieldsFragment;
export type Faden = FadenFieldsFragment;
export type Nachricht = NachrichtFieldsFragment;
export type KnotenChange = ViewportDiffFieldsFragment['knotenChanges'][number];

type Listener<T> = (v: T) => void;

class Live {
  /** Knoten by id (replaced on every change: cheap to compare, easy to derive from). */
  knoten = $state.raw<Record<string, Knoten>>({});
  /** The visible box as the map reports it, and what the server is asked for. */
  view = $state.raw<Bbox | null>(null);
  zoom = $state(13);
  clamped = $state(false);
  error = $state<ShownError | null>(null);
  loading = $state(false);
  /** When the last diff arrived (tests and the status line read it). */
  lastDiffAt = $state(0);

  #cursor: string | null = null;
  #unsub: (() => void) | null = null;
  #loadGen = 0;
  #seenInDiff = new Map<string, number>();
  #messageListeners = new Set<Listener<Nachricht>>();
  #changeListeners = new Set<Listener<KnotenChange>>();

  /** The map moved (debounced by the map): follow it. */
  setView(view: Bbox, zoom: number) {
    this.view = view;
    this.zoom = zoom;
    this.restart();
  }

  /** (Re)subscribe for the current view with the last cursor, and load the box. */
  restart() {
    if (!this.view) return;
    const { bbox, clamped } = clampBbox(this.view, session.config.maxBboxAreaDeg2);
    this.clamped = clamped;
    this.#unsub?.();
    this.error = null;
    const zoom = Math.max(0, Math.min(22, this.zoom));
    this.#unsub = api.client.subscribe(
      ViewportDocument,
      { bbox, zoom, after: this.#cursor },
      {
        next: (d) => this.#apply(d.viewport, bbox),
        error: (e) => {
          this.error = toShownError(e);
        },
      },
    );
    void this.#load(bbox);
    // Without a cursor (no diff yet) the server cannot replay what happened just before the
    // subscription started, and the query may trail the log a little: load once more.
    if (!this.#cursor) this.#reloadSoon();
  }

  #reloadTimer: ReturnType<typeof setTimeout> | null = null;
  #reloadSoon() {
    if (this.#reloadTimer) clearTimeout(this.#reloadTimer);
    this.#reloadTimer = setTimeout(() => {
      this.#reloadTimer = null;
      this.reload();
    }, 1500);
  }

  /** Load the box again (after a resumed connection: covers a gap before the first cursor). */
  reload(again = false) {
    if (!this.view) return;
    void this.#load(clampBbox(this.view, session.config.maxBboxAreaDeg2).bbox);
    if (again) this.#reloadSoon();
  }

  stop() {
    this.#unsub?.();
    this.#unsub = null;
  }

  onMessage(l: Listener<Nachricht>): () => void {
    this.#messageListeners.add(l);
    return () => this.#messageListeners.delete(l);
  }

  onKnotenChange(l: Listener<KnotenChange>): () => void {
    this.#changeListeners.add(l);
    return () => this.#changeListeners.delete(l);
  }

  /** Put a Knoten on the map right away (e.g. the answer to our own createKnoten). */
  upsert(k: Knoten) {
    this.#seenInDiff.set(k.id, performance.now());
    this.knoten = { ...this.knoten, [k.id]: k };
  }

  /** A thread we spun ourselves: draw it without waiting for the diff. */
  upsertFaden(f: Faden) {
    const k = this.knoten[f.toKnotenId];
    if (!k) return;
    const faeden = [...k.faeden.filter((x) => x.id !== f.id), f];
    this.knoten = { ...this.knoten, [k.id]: { ...k, faeden } };
  }

  visible(): Knoten[] {
    const v = this.view;
    const all = Object.values(this.knoten);
    return v ? all.filter((k) => inBbox(v, k.lat, k.lng)) : all;
  }

  async #load(bbox: Bbox) {
    const gen = ++this.#loadGen;
    const started = performance.now();
    this.loading = true;
    try {
      const found: Knoten[] = [];
      let after: string | null = null;
      for (let page = 0; page < 4; page++) {
        const r: KnotenQuery = await api.client.request(KnotenDocument, { bbox, first: 500, after });
        found.push(...r.knoten.nodes);
        if (!r.knoten.pageInfo.hasNextPage) break;
        after = r.knoten.pageInfo.endCursor ?? null;
        if (!after) break;
      }
      if (gen !== this.#loadGen) return;
      const next: Record<string, Knoten> = {};
      for (const [id, k] of Object.entries(this.knoten)) {
        // Keep what a diff brought after the query started; drop what left the box.
        const seen = this.#seenInDiff.get(id) ?? 0;
        if (seen > started) next[id] = k;
      }
      for (const k of found) next[k.id] = next[k.id] ?? k;
      this.knoten = next;
    } catch (e) {
      if (gen === this.#loadGen) this.error = toShownError(e);
    } finally {
      if (gen === this.#loadGen) this.loading = false;
    }
  }

  #apply(d: ViewportDiffFieldsFragment, bbox: Bbox) {
    this.#cursor = d.cursor;
    this.lastDiffAt = Date.now();
    if (d.resync) {
      void this.#load(bbox);
      return;
    }
    if (d.heartbeat) return;
    const now = performance.now();
    let next: Record<string, Knoten> | null = null;
    const edit = () => (next ??= { ...this.knoten });
    for (const k of d.knoten) {
      edit()[k.id] = k;
      this.#seenInDiff.set(k.id, now);
    }
    for (const c of d.knotenChanges) {
      const k = (next ?? this.knoten)[c.id];
      if (c.kind === 'DECAYED') {
        if (k) delete edit()[c.id];
      } else if (k && c.kind === 'TWISTED') {
        edit()[c.id] = { ...k, isYarn: true };
      } else if (k && c.kind === 'DESIGNED') {
        edit()[c.id] = {
          ...k,
          designVersion: c.designVersion ?? k.designVersion,
          content: c.content ?? k.content,
        };
      }
      for (const l of this.#changeListeners) l(c);
    }
    for (const f of d.faeden) {
      const k = (next ?? this.knoten)[f.knotenId];
      if (!k) continue;
      let faeden = k.faeden;
      if (f.kind === 'SPUN' && f.faden) {
        faeden = [...faeden.filter((x) => x.id !== f.id), f.faden];
      } else if (f.kind === 'DECAYED') {
        faeden = faeden.filter((x) => x.id !== f.id);
      } else if (f.kind === 'TWISTED') {
        faeden = faeden.map((x) => (x.id === f.id ? { ...x, isYarn: true } : x));
      }
      edit()[k.id] = { ...k, faeden };
    }
    if (next) this.knoten = next;
    for (const m of d.nachrichten) for (const l of this.#messageListeners) l(m);
  }
}

export const live = new Live();
