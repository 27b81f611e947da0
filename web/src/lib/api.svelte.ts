// The one GraphQL client of the app (same origin: /graphql and /graphql/ws), the session token,
// and the connection state shown in the top bar. A new token means a new client (the WebSocket
// authenticates in connection_init), so `epoch` counts clients: live subscriptions restart on it.
import {
  createClient,
  WebereiError,
  type ConnectionState,
  type ErrorCode,
  type WebereiClient,
} from '@weberei/client';

const TOKEN_KEY = 'weberei.token';

function readToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

class Api {
  token = $state<string | null>(readToken());
  connection = $state<ConnectionState>('connecting');
  epoch = $state(0);
  /** Counts returns to 'live' after 'reconnecting' on the same client (the client resumed). */
  resumed = $state(0);
  #client: WebereiClient;
  #offState: () => void = () => {};

  constructor() {
    this.#client = this.#make();
    if (typeof addEventListener === 'function') {
      // The browser knows first when the network is gone: say so at once.
      addEventListener('offline', () => {
        this.connection = 'reconnecting';
      });
      // Back online: reconnect now instead of waiting for the next backoff step. Subscriptions
      // restart on the new epoch with their last cursor, so nothing is missed.
      addEventListener('online', () => {
        if (this.connection !== 'live') this.#renew();
      });
    }
  }

  #make(): WebereiClient {
    const client = createClient({
      url: typeof location === 'undefined' ? '' : location.origin,
      token: () => this.token,
      retry: { initialMs: 500, maxMs: 10_000 },
    });
    this.#offState = client.onState((s) => {
      if (s === 'live' && this.connection === 'reconnecting') this.resumed += 1;
      this.connection = s;
    });
    return client;
  }

  get client(): WebereiClient {
    return this.#client;
  }

  /** Store (or forget, with null) the session token and reconnect with it. */
  setToken(token: string | null) {
    if (token === this.token) return;
    this.token = token;
    try {
      if (token) localStorage.setItem(TOKEN_KEY, token);
      else localStorage.removeItem(TOKEN_KEY);
    } catch {
      /* no storage: the session lasts as long as the page */
    }
    this.#renew();
  }

  #renew() {
    this.#offState();
    this.#client.dispose();
    this.connection = 'connecting';
    this.#client = this.#make();
    this.epoch += 1;
  }
}

export const api = new Api();

export interface ShownError {
  code: ErrorCode;
  message: string;
}

/** Any thrown value as an error the UI can show (unknown throws count as NETWORK). */
export function toShownError(e: unknown): ShownError {
  if (e instanceof WebereiError) return { code: e.code, message: e.message };
  if (e && typeof e === 'object' && 'code' in e && 'message' in e) {
    const o = e as { code: ErrorCode; message: unknown };
    return { code: o.code, message: String(o.message) };
  }
  return { code: 'NETWORK', message: e instanceof Error ? e.message : String(e) };
}
