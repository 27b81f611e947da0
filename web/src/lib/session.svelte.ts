// The person's role (Me), the server's configuration (flags come from the `config` query, never
// from build-time constants), and what follows from a session: register, logout, delete.
import {
  ConfigDocument,
  MeDocument,
  MyDelegationDocument,
  type ConfigFieldsFragment,
  type MyDelegationFieldsFragment,
  type RolleFieldsFragment,
} from '@weberei/client';
import { api, toShownError } from './api.svelte';
import { outbox } from './outbox.svelte';

/** Config fields the server may add (read when present, defaults otherwise). */
export type AppConfig = ConfigFieldsFragment & {
  mapStyleUrl?: string | null;
  weaveryResolution?: number;
  decaySeconds?: number;
};

export const DEFAULT_CONFIG: AppConfig = {
  flags: {
    search: false,
    tour: false,
    timelineDelta: false,
    push: false,
    transitiveDelegation: false,
    stripe: false,
  },
  wsTickMs: 1500,
  maxBboxAreaDeg2: 25,
  ort: '',
  mapStyleUrl: null,
  weaveryResolution: 7,
  decaySeconds: 7 * 24 * 3600,
};

/** Run `f` again when the projections have caught up with a mutation (they follow the log). */
export function later(f: () => unknown, delays: number[] = [1200, 4000]) {
  for (const d of delays) setTimeout(() => void f(), d);
}

class Session {
  config = $state<AppConfig>(DEFAULT_CONFIG);
  configLoaded = $state(false);
  me = $state<RolleFieldsFragment | null>(null);
  delegation = $state<MyDelegationFieldsFragment | null>(null);
  loadError = $state<string | null>(null);

  get verified(): boolean {
    return this.me?.verification?.verified ?? false;
  }

  async loadConfig() {
    try {
      const r = await api.client.request(ConfigDocument, {});
      this.config = { ...DEFAULT_CONFIG, ...r.config };
      this.loadError = null;
    } catch (e) {
      this.loadError = toShownError(e).message;
    } finally {
      this.configLoaded = true;
    }
  }

  async loadMe() {
    if (!api.token) {
      this.me = null;
      this.delegation = null;
      return;
    }
    try {
      const r = await api.client.request(MeDocument, {});
      if (!r.me) {
        // The token is unknown or revoked: forget it.
        api.setToken(null);
        this.me = null;
        return;
      }
      this.me = r.me;
      await this.loadDelegation();
    } catch (e) {
      const err = toShownError(e);
      if (err.code === 'UNAUTHENTICATED') {
        api.setToken(null);
        this.me = null;
      }
    }
  }

  async loadDelegation() {
    if (!api.token) return;
    try {
      const r = await api.client.request(MyDelegationDocument, {});
      this.delegation = r.myDelegation;
    } catch {
      /* shown as unknown */
    }
  }

  /** Wire the outbox's global effects: a registered role stores its token, and so on. */
  wire() {
    outbox.on('Register', (r) => {
      api.setToken(r.register.token);
      this.me = r.register.rolle;
      void this.loadDelegation();
    });
    outbox.on('Logout', () => this.forget());
    outbox.on('DeleteAccount', () => this.forget());
    // The answer is the truth at once; the projections follow a moment later.
    outbox.on('Delegate', (r) => {
      this.delegation = {
        incoming: this.delegation?.incoming ?? [],
        outgoing: r.delegate.delegation,
      };
      later(() => this.loadDelegation());
    });
    outbox.on('RevokeDelegation', () => {
      this.delegation = { incoming: this.delegation?.incoming ?? [], outgoing: null };
      later(() => this.loadDelegation());
    });
  }

  forget() {
    api.setToken(null);
    this.me = null;
    this.delegation = null;
  }
}

export const session = new Session();
