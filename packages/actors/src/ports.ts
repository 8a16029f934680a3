/**
 * The ports of the actors: everything they need from the outside world,
 * declared here as interfaces so that `@baton/actors` imports no other package
 * of ours. The runtime passes the real implementations (the store's
 * `TaskStore`, the NATS or LISTEN/NOTIFY bus, the handler registry, pino);
 * the unit tests pass in-memory fakes.
 *
 * Glossary
 *
 * - **task**: one unit of work: a `type` (which handler runs it), a JSON
 *   `payload` and a `queue`. Its state machine lives in PostgreSQL.
 * - **attempt**: how many times the task has been claimed. The pair
 *   (task id, attempt) is the **fencing token** of a run: a write from an older
 *   attempt is *stale* and changes nothing.
 * - **run**: one execution of a handler for one attempt, on this node.
 * - **lease**: a claimed task belongs to one node until its lease expires (on
 *   PostgreSQL's clock); long runs extend it, expired leases are rescued.
 * - **node**: one Baton process; `nodeId` is unique in its group.
 * - **group**: the nodes that share a bus prefix and a warm-backup token.
 * - **token**, **term**: the group's warm-backup leadership (seed 000's
 *   `token_holder` row). Every grant of the token increments the term (a
 *   re-grant to the same node too), so at most one node holds a given term;
 *   the term is the fencing token of every leader-only write.
 * - **token bearer**: the node holding the current term, with a lease on
 *   PostgreSQL's clock that it renews; the others are **standbys** (they read
 *   the token and take it over, by compare-and-set on the term they saw, when
 *   it is free) and a standby trying to take it is a **candidate**.
 * - **coordinated service**: work that runs only on the token bearer and is
 *   aborted the moment the node stops being the bearer.
 * - **hint**: a bus message (wake-up, heartbeat, cancel). Hints may be lost,
 *   duplicated or late; PostgreSQL holds the truth.
 *
 * @packageDocumentation
 */

/** JSON values, as stored in `jsonb` columns (the same shape as the store's `Json`). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Task ids are PostgreSQL `bigint`s carried as decimal strings. */
export type TaskId = string;

/** The fencing token of a run: the task and the attempt its claim produced. */
export interface AttemptRef {
  readonly id: TaskId;
  readonly attempt: number;
}

/** The fields of a claimed task the worker reads (a subset of the store's `Task`). */
export interface ClaimedTask extends AttemptRef {
  readonly type: string;
  readonly queue: string;
  readonly payload: Json;
  readonly maxAttempts: number;
}

/** Options of {@link StorePort.claim}. */
export interface ClaimRequest {
  /** The node that will own the leases. */
  readonly owner: string;
  readonly queue?: string;
  /** Claim only these types. */
  readonly types?: readonly string[];
  readonly limit: number;
  readonly leaseMs: number;
}

/** The outcome of a guarded write for one run. */
export type WriteOutcome = { readonly ok: true } | { readonly ok: false; readonly reason: 'stale' };

/** Per-item outcome of a batch write; `illegal` when the task is in an unexpected state. */
export type BatchOutcome =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: 'stale' }
  | { readonly ok: false; readonly reason: 'illegal'; readonly error: Error };

/** A completion in a batch. */
export interface CompletionRef extends AttemptRef {
  readonly result?: Json;
}

/**
 * Work run inside the completion transaction: it commits only if the
 * completion does. The argument is the store's transaction client (a `pg`
 * `PoolClient`), which the actors only pass through; the runtime gives it its
 * real type. (Declared through a method so that a function taking the
 * concrete client type fits, in both directions.)
 */
export type CompletionWork = { work(tx: unknown): Promise<void> }['work'];

/** A failure of a run, as recorded by {@link StorePort.fail}. */
export interface FailRequest extends AttemptRef {
  readonly error: {
    readonly message: string;
    readonly name?: string;
    readonly stack?: string;
    readonly code?: string;
  };
  /** `false` dead-letters the task at once. @default true */
  readonly retryable?: boolean;
  /** Overrides the store's backoff, in milliseconds. */
  readonly retryInMs?: number;
}

/** What {@link StorePort.fail} did. */
export type FailOutcome =
  | {
      readonly ok: true;
      /** `cancelled` when the task's cancellation had been requested. */
      readonly status: 'retry' | 'dead_letter' | 'cancelled';
      readonly runAt: Date;
    }
  | { readonly ok: false; readonly reason: 'stale' };

/** What {@link StorePort.extendLease} did. */
export type LeaseOutcome =
  | { readonly ok: true; readonly cancelRequested: boolean; readonly leaseExpiresAt: Date }
  | { readonly ok: false; readonly reason: 'stale' };

/**
 * The subset of the task store the actors use. The store's `TaskStore` is
 * structurally compatible: pass it as is. Every write is fenced by the
 * attempt inside the store.
 */
export interface StorePort {
  /** Claims up to `limit` due tasks, committed at once; each claim increments the attempt. */
  claim(request: ClaimRequest): Promise<readonly ClaimedTask[]>;
  /** claimed -> running, for a batch of runs about to start. */
  markRunning(refs: readonly AttemptRef[]): Promise<readonly BatchOutcome[]>;
  /** running -> completed for a batch, in one statement. */
  completeMany(refs: readonly CompletionRef[]): Promise<readonly BatchOutcome[]>;
  /** running -> completed for one run, with `work` inside the same transaction. */
  complete(
    ref: AttemptRef,
    options: { result?: Json; work?: CompletionWork },
  ): Promise<WriteOutcome>;
  /** running -> retry (after a backoff) or -> dead_letter. */
  fail(request: FailRequest): Promise<FailOutcome>;
  /** Pushes the lease to now + `leaseMs`; tells whether a cancellation was requested. */
  extendLease(ref: AttemptRef, leaseMs: number): Promise<LeaseOutcome>;
  /** A run aborted because its cancellation was requested: -> cancelled. */
  finishCancelled(ref: AttemptRef): Promise<WriteOutcome>;
  /** Graceful shutdown: claimed/running -> pending without charging the attempt. Returns how many. */
  release(refs: readonly AttemptRef[], node: string): Promise<number>;
  /** Expired leases -> retry or dead_letter; fenced by attempt, safe on many nodes at once. */
  rescueExpired(options: {
    node: string;
    limit?: number;
  }): Promise<readonly { id: TaskId; status: string }[]>;
  /**
   * A run ended here without a final write (its lease was lost, its write
   * failed after the retries, or its actor crashed): a store that keeps
   * something per run may drop it. The task itself is left to the lease.
   */
  forget?(ref: AttemptRef): void;
}

/** What a node tells about itself in a heartbeat. */
export interface HeartbeatInfo {
  /** `leaving` on graceful shutdown: the others drop the node at once. */
  readonly state: 'alive' | 'leaving';
  readonly inFlight: number;
  readonly concurrency: number;
}

/** A row of the `health_check` table, with its age computed by PostgreSQL. */
export interface MemberRecord {
  readonly nodeId: string;
  /** `now() - last_heartbeat` on PostgreSQL's clock, in milliseconds. */
  readonly heartbeatAgeMs: number;
}

/**
 * The watchdog's durable heartbeat (`health_check`), timed by PostgreSQL and
 * bound to one group by the runtime (e.g. over the store's `NodeStore`).
 */
export interface HeartbeatPort {
  /** Upserts this node's `health_check` row with `last_heartbeat = now()`. */
  beat(nodeId: string, info: HeartbeatInfo): Promise<void>;
  /** The group's rows, with their age on PostgreSQL's clock. */
  members(): Promise<readonly MemberRecord[]>;
  /**
   * A node leaving on purpose removes its row. Without it, the leaving
   * heartbeat is written with `beat`.
   */
  leave?(nodeId: string): Promise<void>;
  /** Deletes the group's rows silent for at least `olderThanMs`; returns how many. */
  prune?(olderThanMs: number): Promise<number>;
}

/** A bus message as the actors see it: a plain object (the runtime encodes it). */
export type BusPayload = Readonly<Record<string, unknown>>;

/** Stops a subscription; may be asynchronous. Safe to call more than once. */
export type Unsubscribe = () => void | Promise<void>;

/** The bus, reduced to what the actors need. Messages are hints. */
export interface BusPort {
  /** Publishes a hint. A rejection is logged by the caller and never retried. */
  publish(subject: string, message: BusPayload): Promise<void>;
  /** Subscribes; `subject` may hold wildcards. The handler must not throw. */
  subscribe(subject: string, handler: (message: BusPayload, subject: string) => void): Unsubscribe;
}

/** The subjects the actors use, built by the runtime (a subset of its `GroupSubjects`). */
export interface Subjects {
  /** Heartbeats of one node, e.g. `baton.<group>.hb.<node>`. */
  heartbeat(nodeId: string): string;
  /** Every node's heartbeats (a wildcard subscription). */
  readonly heartbeats: string;
  /** Wake-ups of one queue, e.g. `baton.<group>.dispatch.<queue>`. */
  dispatch(queue: string): string;
  /** Cancellation hints. */
  readonly cancel: string;
}

/** The body of a dispatch wake-up. */
export interface DispatchMessage {
  readonly queue: string;
  readonly reason: 'submitted' | 'due' | 'rescued';
  readonly from: string;
}

/** The body of a heartbeat on the bus. */
export interface HeartbeatMessage extends HeartbeatInfo {
  readonly nodeId: string;
  readonly seq: number;
  /** The sender's election role, when the election runs (a hint: PostgreSQL decides). */
  readonly role?: ElectionRole;
  /** The term the sender holds (bearer) or last saw. */
  readonly term?: number;
  /**
   * A release announcement: the sender has just released this term in
   * PostgreSQL (committed), so a standby may acquire it at once.
   */
  readonly released?: number;
}

/** The body of a cancellation hint. */
export interface CancelMessage {
  readonly taskId: TaskId;
}

/** Structured logging (pino-compatible: message first, fields second). */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A logger that drops everything. @default for every `logger` input */
export const silentLogger: Logger = Object.freeze({
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
});

/** A monotonic clock in milliseconds. XState's `SimulatedClock` fits. @default `performance` */
export interface ClockPort {
  now(): number;
}

/** What a handler receives for one run. */
export interface HandlerContext {
  readonly taskId: TaskId;
  readonly type: string;
  readonly queue: string;
  readonly payload: Json;
  readonly attempt: number;
  readonly maxAttempts: number;
  /** The fencing token of this run. */
  readonly token: AttemptRef;
  /** Aborted on timeout, cancellation, lost lease and at the end of a drain; `reason` is a {@link RunAbortedError}. */
  readonly signal: AbortSignal;
  /** A logger carrying the task id and attempt. */
  readonly logger: Logger;
  /** Extends the lease now (it is also extended every lease/3). Never rejects. Bound: may be destructured. */
  extendLease(this: void): Promise<void>;
  /**
   * Registers work to run inside the completion transaction; the run is then
   * completed on its own instead of in a batch. The last call wins. Bound:
   * may be destructured.
   */
  onComplete(this: void, work: CompletionWork): void;
}

/** A task handler and its options. */
export interface TaskHandler {
  run(context: HandlerContext): Promise<Json | void>;
  /** Most runs of this type at once on this node. @default unlimited (the node's concurrency) */
  readonly concurrency?: number;
  /** Aborts the run after this long. @default none */
  readonly timeoutMs?: number;
  /**
   * Whether an error is worth a retry. @default errors with `retryable: false`
   * are not, all others are
   */
  retryable?(error: unknown): boolean;
}

/** The handlers of this node, by task type. */
export interface HandlerRegistry {
  lookup(type: string): TaskHandler | undefined;
  /** The types this node can run (the claim filter). */
  types(): readonly string[];
}

/** Roles of the warm-backup election. */
export type ElectionRole = 'bearer' | 'standby' | 'candidate';

/**
 * The group's token as read from `token_holder` (a subset of the store's
 * `TokenState`).
 */
export interface TokenView {
  /** The bearer (Ballerina's `task_id`); `null` when the token was released. */
  readonly holder: string | null;
  readonly term: number;
  /** Lease left on PostgreSQL's clock; 0 when it expired. */
  readonly remainingMs: number;
}

/** What {@link LeadershipPort.acquire} did (the store's `AcquireOutcome`). */
export type AcquireResult =
  | { readonly ok: true; readonly term: number }
  | { readonly ok: false; readonly current: TokenView | null };

/**
 * The warm-backup token of this node's group, timed by PostgreSQL. The
 * store's `LeadershipStore` bound to one group fits (the runtime adds the
 * `groupId` to each call).
 */
export interface LeadershipPort {
  /** The token, or `null` when it was never granted. */
  current(): Promise<TokenView | null>;
  /**
   * Compare-and-set: takes the token when its term is still `observedTerm`
   * (0 = never granted) and it is free (released, or its lease expired on
   * PostgreSQL's clock). Of concurrent candidates for one term, one wins;
   * the grant is logged with `reason`.
   *
   * `onCompareAndSet`, when the port supports it, is called once, just
   * before the statement that may grant the token is sent (after any wait
   * for a lock): the grant's lease cannot start before that moment, so the
   * watchdog counts its local deadline from it rather than from the call.
   * A port that does not call it is safe too (the deadline then counts
   * from the call). It must never be called after that statement was sent.
   */
  acquire(request: {
    nodeId: string;
    observedTerm: number;
    leaseMs: number;
    reason?: string;
    onCompareAndSet?: () => void;
  }): Promise<AcquireResult>;
  /** Extends the lease of `term`; false when it is no longer this node's or it ran out. */
  renew(request: { nodeId: string; term: number; leaseMs: number }): Promise<boolean>;
  /** Gives the token up at once, so a standby need not wait for the lease. */
  release(request: { nodeId: string; term: number }): Promise<boolean>;
}

/** Why a run was aborted. */
export type AbortReason = 'timeout' | 'cancelled' | 'lease_lost' | 'shutdown';

/** The `signal.reason` of an aborted run. */
export class RunAbortedError extends Error {
  override readonly name = 'RunAbortedError';
  readonly code = 'RUN_ABORTED';
  constructor(
    readonly reason: AbortReason,
    readonly token: AttemptRef,
  ) {
    super(`run of task ${token.id} (attempt ${token.attempt}) aborted: ${reason}`);
  }
}
