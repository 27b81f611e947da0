// The Webrat panel's data: Anträge of the Webereien in the viewport (`Antraege` query) kept live
// by the `webrat` subscription (same cursor/resync rules as the map).
import {
  AntraegeDocument,
  AntragDocument,
  WebratDocument,
  type AntragFieldsFragment,
  type WebratDiffFieldsFragment,
} from '@weberei/client';
import { api, toShownError, type ShownError } from './api.svelte';
import { clampBbox, type Bbox } from './geo';
import { session } from './session.svelte';

export type Antrag = AntragFieldsFragment;

class Webrat {
  antraege = $state.raw<Antrag[]>([]);
  error = $state<ShownError | null>(null);
  loading = $state(false);

  #cursor: string | null = null;
  #unsub: (() => void) | null = null;
  #bbox: Bbox | null = null;
  #view: Bbox | null = null;
  #zoom = 12;
  #gen = 0;
  #refetch = new Map<string, ReturnType<typeof setTimeout>>();

  setView(view: Bbox, zoom: number) {
    this.#view = view;
    this.#zoom = zoom;
    // Anträge belong to Webereien (H3 cells) and are placed at the cell's centre: widen the
    // box by about a cell so that the Webereien the view cuts into are "near" too.
    const padLat = 0.025;
    const padLng = padLat / Math.max(0.2, Math.cos(((view.south + view.north) / 2) * (Math.PI / 180)));
    const { bbox } = clampBbox(
      {
        west: view.west - padLng,
        east: view.east + padLng,
        south: view.south - padLat,
        north: view.north + padLat,
      },
      session.config.maxBboxAreaDeg2,
    );
    this.#bbox = bbox;
    this.#unsub?.();
    this.#unsub = api.client.subscribe(
      WebratDocument,
      { bbox, zoom: Math.max(0, Math.min(22, zoom)), after: this.#cursor },
      {
        next: (d) => this.#apply(d.webrat),
        error: (e) => {
          this.error = toShownError(e);
        },
      },
    );
    void this.load();
    // No cursor yet: the server cannot replay the moment before this subscription; the query
    // may trail the log a little. Load once more.
    if (!this.#cursor) {
      clearTimeout(this.#again);
      this.#again = setTimeout(() => void this.load(), 1500);
    }
  }

  #again: ReturnType<typeof setTimeout> | undefined;

  restart() {
    if (this.#view) this.setView(this.#view, this.#zoom);
  }

  async load() {
    const bbox = this.#bbox;
    if (!bbox) return;
    const gen = ++this.#gen;
    this.loading = true;
    try {
      const r = await api.client.request(AntraegeDocument, { bbox, first: 100 });
      if (gen !== this.#gen) return;
      this.antraege = r.antraege.nodes;
      this.error = null;
    } catch (e) {
      if (gen === this.#gen) this.error = toShownError(e);
    } finally {
      if (gen === this.#gen) this.loading = false;
    }
  }

  get(id: string): Antrag | undefined {
    return this.antraege.find((a) => a.id === id);
  }

  /** Fetch one Antrag again (its tally counts delegations: the server computes it). */
  async refresh(id: string): Promise<Antrag | null> {
    try {
      const r = await api.client.request(AntragDocument, { id });
      if (r.antrag) this.put(r.antrag);
      return r.antrag;
    } catch {
      return null;
    }
  }

  put(a: Antrag) {
    const i = this.antraege.findIndex((x) => x.id === a.id);
    this.antraege =
      i < 0 ? [a, ...this.antraege] : this.antraege.map((x) => (x.id === a.id ? a : x));
  }

  #apply(d: WebratDiffFieldsFragment) {
    this.#cursor = d.cursor;
    if (d.resync) {
      void this.load();
      return;
    }
    for (const c of d.changes) {
      if (c.kind === 'FILED' && c.antrag) {
        this.put(c.antrag);
      } else {
        // Votes, objections and decisions change the tally: ask for the Antrag once per burst.
        clearTimeout(this.#refetch.get(c.antragId));
        this.#refetch.set(
          c.antragId,
          setTimeout(() => {
            this.#refetch.delete(c.antragId);
            void this.refresh(c.antragId);
            // The tally is read from the projection, which may trail the feed a little.
            setTimeout(() => void this.refresh(c.antragId), 1200);
          }, 150),
        );
      }
    }
  }
}

export const webrat = new Webrat();
