// Every mutation goes through this outbox: it is written to IndexedDB (Dexie) with its
// idempotency key before it is sent, sent in order, and retried with backoff while the network
// is away — always with the same key, so the server applies it exactly once. A refusal by the
// server (any code but NETWORK) is not retried: it becomes a sentence next to the control that
// caused it (`errors[control]`).
import { Dexie, liveQuery, type EntityTable } from 'dexie';
import {
  CastStimmeDocument,
  ConfirmVerificationDocument,
  CreateKnotenDocument,
  DelegateDocument,
  DeleteAccountDocument,
  FileAntragDocument,
  LogoutDocument,
  newIdempotencyKey,
  ObjectToAntragDocument,
  RaiseFlagDocument,
  RegisterDocument,
  ResolveFlagDocument,
  RevokeDelegationDocument,
  RevokeSessionDocument,
  SpinFadenDocument,
  UpdateKnotenDesignDocument,
  WriteNachrichtDocument,
  type CastStimmeMutation,
  type CastStimmeMutationVariables,
  type ConfirmVerificationMutation,
  type ConfirmVerificationMutationVariables,
  type CreateKnotenMutation,
  type CreateKnotenMutationVariables,
  type DelegateMutation,
  type DelegateMutationVariables,
  type DeleteAccountMutation,
  type DeleteAccountMutationVariables,
  type FileAntragMutation,
  type FileAntragMutationVariables,
  type LogoutMutation,
  type LogoutMutationVariables,
  type ObjectToAntragMutation,
  type ObjectToAntragMutationVariables,
  type RaiseFlagMutation,
  type RaiseFlagMutationVariables,
  type RegisterMutation,
  type RegisterMutationVariables,
  type ResolveFlagMutation,
  type ResolveFlagMutationVariables,
  type RevokeDelegationMutation,
  type RevokeDelegationMutationVariables,
  type RevokeSessionMutation,
  type RevokeSessionMutationVariables,
  type SpinFadenMutation,
  type SpinFadenMutationVariables,
  type UpdateKnotenDesignMutation,
  type UpdateKnotenDesignMutationVariables,
  type WriteNachrichtMutation,
  type WriteNachrichtMutationVariables,
} from '@weberei/client';
import type { TypedDocumentNode } from '@weberei/client';
import { api, toShownError, type ShownError } from './api.svelte';

/** Operation name -> [result, variables]. */
export interface Ops {
  Register: [RegisterMutation, RegisterMutationVariables];
  Logout: [LogoutMutation, LogoutMutationVariables];
  RevokeSession: [RevokeSessionMutation, RevokeSessionMutationVariables];
  DeleteAccount: [DeleteAccountMutation, DeleteAccountMutationVariables];
  CreateKnoten: [CreateKnotenMutation, CreateKnotenMutationVariables];
  UpdateKnotenDesign: [UpdateKnotenDesignMutation, UpdateKnotenDesignMutationVariables];
  SpinFaden: [SpinFadenMutation, SpinFadenMutationVariables];
  WriteNachricht: [WriteNachrichtMutation, WriteNachrichtMutationVariables];
  FileAntrag: [FileAntragMutation, FileAntragMutationVariables];
  ObjectToAntrag: [ObjectToAntragMutation, ObjectToAntragMutationVariables];
  CastStimme: [CastStimmeMutation, CastStimmeMutationVariables];
  Delegate: [DelegateMutation, DelegateMutationVariables];
  RevokeDelegation: [RevokeDelegationMutation, RevokeDelegationMutationVariables];
  ConfirmVerification: [ConfirmVerificationMutation, ConfirmVerificationMutationVariables];
  RaiseFlag: [RaiseFlagMutation, RaiseFlagMutationVariables];
  ResolveFlag: [ResolveFlagMutation, ResolveFlagMutationVariables];
}
export type OpName = keyof Ops;
type Doc<O extends OpName> = TypedDocumentNode<Ops[O][0], Ops[O][1]>;

const DOCS: { [O in OpName]: Doc<O> } = {
  Register: RegisterDocument,
  Logout: LogoutDocument,
  RevokeSession: RevokeSessionDocument,
  DeleteAccount: DeleteAccountDocument,
  CreateKnoten: CreateKnotenDocument,
  UpdateKnotenDesign: UpdateKnotenDesignDocument,
  SpinFaden: SpinFadenDocument,
  WriteNachricht: WriteNachrichtDocument,
  FileAntrag: FileAntragDocument,
  ObjectToAntrag: ObjectToAntragDocument,
  CastStimme: CastStimmeDocument,
  Delegate: DelegateDocument,
  RevokeDelegation: RevokeDelegationDocument,
  ConfirmVerification: ConfirmVerificationDocument,
  RaiseFlag: RaiseFlagDocument,
  ResolveFlag: ResolveFlagDocument,
};

/** One queued mutation as stored in IndexedDB. */
export interface OutboxEntry<O extends OpName = OpName> {
  seq?: number;
  /** The idempotency key (also inside `variables.input` where the mutation takes one). */
  key: string;
  op: O;
  variables: Ops[O][1];
  /** Which control caused it: its refusal is shown there. */
  control: string;
  createdAt: number;
  attempts: number;
  nextAt: number;
  lastError?: string;
}

class OutboxDb extends Dexie {
  outbox!: EntityTable<OutboxEntry, 'seq'>;
  constructor() {
    super('weberei');
    this.version(1).stores({ outbox: '++seq, &key, op, control' });
  }
}

const INITIAL_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;

type Handler<O extends OpName> = (result: Ops[O][0], entry: OutboxEntry<O>) => void;

class Outbox {
  /** Entries not yet sent (mirrors IndexedDB, across tabs). */
  entries = $state<OutboxEntry[]>([]);
  /** Refusals by control. */
  errors = $state<Record<string, ShownError>>({});
  /** True while at least one entry waits for the network. */
  waiting = $state(false);

  #db: OutboxDb | null = null;
  #handlers = new Map<OpName, Set<Handler<OpName>>>();
  #waiters = new Map<string, { resolve: (r: unknown) => void; reject: (e: ShownError) => void }>();
  #flushing = false;
  #again = false;
  #timer: ReturnType<typeof setTimeout> | null = null;

  start() {
    if (this.#db) return;
    this.#db = new OutboxDb();
    liveQuery(() => this.#db!.outbox.orderBy('seq').toArray()).subscribe({
      next: (rows) => {
        this.entries = rows;
        this.waiting = rows.some((r) => r.attempts > 0);
      },
      error: () => {},
    });
    addEventListener('online', () => void this.retryNow());
    void this.flush();
  }

  /** Global effect of a result (also for entries sent after a reload). */
  on<O extends OpName>(op: O, handler: Handler<O>): () => void {
    let set = this.#handlers.get(op);
    if (!set) this.#handlers.set(op, (set = new Set()));
    set.add(handler as unknown as Handler<OpName>);
    return () => set.delete(handler as unknown as Handler<OpName>);
  }

  /**
   * Queue a mutation. `build(key)` makes the variables with the idempotency key. Resolves with
   * the result once sent (maybe much later), rejects with the server's refusal.
   */
  async submit<O extends OpName>(
    op: O,
    control: string,
    build: (key: string) => Ops[O][1],
  ): Promise<Ops[O][0]> {
    this.start();
    const key = newIdempotencyKey();
    this.clearError(control);
    const entry: OutboxEntry<O> = {
      key,
      op,
      variables: build(key),
      control,
      createdAt: Date.now(),
      attempts: 0,
      nextAt: 0,
    };
    const done = new Promise<Ops[O][0]>((resolve, reject) => {
      this.#waiters.set(key, { resolve: resolve as (r: unknown) => void, reject });
    });
    await this.#db!.outbox.add(entry as OutboxEntry);
    void this.flush();
    return done;
  }

  clearError(control: string) {
    if (control in this.errors) {
      const next = { ...this.errors };
      delete next[control];
      this.errors = next;
    }
  }

  pending<O extends OpName>(op: O, filter?: (e: OutboxEntry<O>) => boolean): OutboxEntry<O>[] {
    return this.entries.filter(
      (e) => e.op === op && (!filter || filter(e as OutboxEntry<O>)),
    ) as OutboxEntry<O>[];
  }

  isPending(control: string): boolean {
    return this.entries.some((e) => e.control === control);
  }

  /** Send everything due now (the network came back). */
  async retryNow() {
    if (!this.#db) return;
    await this.#db.outbox.toCollection().modify({ nextAt: 0 });
    void this.flush();
  }

  async flush(): Promise<void> {
    if (!this.#db) return;
    if (this.#flushing) {
      this.#again = true;
      return;
    }
    this.#flushing = true;
    try {
      const run = () => this.#drain();
      if (typeof navigator !== 'undefined' && navigator.locks) {
        // One tab sends at a time; the others see the result through IndexedDB.
        await navigator.locks.request('weberei-outbox', run);
      } else {
        await run();
      }
    } finally {
      this.#flushing = false;
      if (this.#again) {
        this.#again = false;
        void this.flush();
      }
    }
  }

  async #drain() {
    const db = this.#db!;
    for (;;) {
      const head = await db.outbox.orderBy('seq').first();
      if (!head) return;
      const wait = head.nextAt - Date.now();
      if (wait > 0) {
        this.#schedule(wait);
        return;
      }
      let result: unknown;
      try {
        result = await api.client.request(DOCS[head.op] as Doc<OpName>, head.variables as never);
      } catch (e) {
        const err = toShownError(e);
        if (err.code === 'NETWORK') {
          const attempts = head.attempts + 1;
          const backoff = Math.min(MAX_BACKOFF_MS, INITIAL_BACKOFF_MS * 2 ** (attempts - 1));
          const nextAt = Date.now() + backoff * (0.8 + Math.random() * 0.4);
          await db.outbox.update(head.seq!, { attempts, nextAt, lastError: err.message });
          this.#schedule(nextAt - Date.now());
          return;
        }
        await db.outbox.delete(head.seq!);
        this.errors = { ...this.errors, [head.control]: err };
        this.#waiters.get(head.key)?.reject(err);
        this.#waiters.delete(head.key);
        continue;
      }
      await db.outbox.delete(head.seq!);
      for (const h of this.#handlers.get(head.op) ?? []) {
        try {
          h(result as never, head as never);
        } catch (e) {
          console.error('outbox handler', e);
        }
      }
      this.#waiters.get(head.key)?.resolve(result);
      this.#waiters.delete(head.key);
    }
  }

  #schedule(ms: number) {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(
      () => {
        this.#timer = null;
        void this.flush();
      },
      Math.max(50, ms),
    );
  }
}

export const outbox = new Outbox();
