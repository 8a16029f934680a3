/**
 * In-memory fakes of the actors' ports, for unit tests of the machines (the
 * store itself is tested against PostgreSQL in packages/store).
 */
import type {
  AttemptRef,
  BatchOutcome,
  BusPayload,
  BusPort,
  ClaimedTask,
  ClaimRequest,
  CompletionRef,
  CompletionWork,
  FailOutcome,
  FailRequest,
  HandlerContext,
  HandlerRegistry,
  HeartbeatInfo,
  HeartbeatPort,
  Json,
  LeadershipPort,
  AcquireResult,
  TokenView,
  LeaseOutcome,
  MemberRecord,
  StorePort,
  Subjects,
  TaskHandler,
  WatchdogInput,
  WriteOutcome,
} from '../src/index.js';
import { createActor } from 'xstate';
import { watchdogMachine } from '../src/index.js';

type Status =
  'pending' | 'claimed' | 'running' | 'retry' | 'completed' | 'dead_letter' | 'cancelled';

export interface FakeTask {
  id: string;
  type: string;
  queue: string;
  payload: Json;
  status: Status;
  attempt: number;
  maxAttempts: number;
  cancelRequested: boolean;
  result?: Json;
}

/** Lets all pending promise callbacks run (promise actors settle on microtasks). */
export async function flush(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

export class FakeStore implements StorePort {
  readonly tasks = new Map<string, FakeTask>();
  readonly calls = {
    claim: [] as ClaimRequest[],
    markRunning: [] as AttemptRef[][],
    completeMany: [] as CompletionRef[][],
    complete: [] as { ref: AttemptRef; work: CompletionWork | undefined }[],
    fail: [] as FailRequest[],
    extendLease: [] as AttemptRef[],
    finishCancelled: [] as AttemptRef[],
    release: [] as AttemptRef[][],
    rescueExpired: 0,
    forget: [] as AttemptRef[],
  };
  /** Errors thrown by the next call of a method, once each. */
  readonly failNext = new Map<keyof FakeStore['calls'], Error>();
  /** Methods whose every call fails while they are in this set (the database unreachable). */
  readonly unreachable = new Set<keyof FakeStore['calls']>();
  /** What the next rescueExpired calls return. */
  rescueResults: number[] = [];
  #next = 1;

  add(n: number, type = 't', queue = 'default'): string[] {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const id = String(this.#next++);
      this.tasks.set(id, {
        id,
        type,
        queue,
        payload: { n: i },
        status: 'pending',
        attempt: 0,
        maxAttempts: 3,
        cancelRequested: false,
      });
      ids.push(id);
    }
    return ids;
  }

  status(id: string): Status | undefined {
    return this.tasks.get(id)?.status;
  }

  #throw(method: keyof FakeStore['calls']) {
    if (this.unreachable.has(method)) throw new Error(`${method}: database unreachable`);
    const error = this.failNext.get(method);
    if (error) {
      this.failNext.delete(method);
      throw error;
    }
  }

  #current(ref: AttemptRef, statuses: Status[]): FakeTask | undefined {
    const t = this.tasks.get(ref.id);
    return t && t.attempt === ref.attempt && statuses.includes(t.status) ? t : undefined;
  }

  /** While set, claim calls wait for it before they take their tasks (a claim in flight). */
  claimGate: Promise<void> | undefined;
  /** Errors thrown by claim calls by number (1 = the first call), once each. */
  readonly failClaimCall = new Map<number, Error>();

  async claim(request: ClaimRequest): Promise<ClaimedTask[]> {
    this.calls.claim.push(request);
    this.#throw('claim');
    const failure = this.failClaimCall.get(this.calls.claim.length);
    if (failure) throw failure;
    if (this.claimGate) await this.claimGate;
    const got: ClaimedTask[] = [];
    for (const t of this.tasks.values()) {
      if (got.length >= request.limit) break;
      if (t.status !== 'pending' || t.queue !== (request.queue ?? 'default')) continue;
      if (request.types && !request.types.includes(t.type)) continue;
      t.status = 'claimed';
      t.attempt++;
      got.push({
        id: t.id,
        type: t.type,
        queue: t.queue,
        payload: t.payload,
        attempt: t.attempt,
        maxAttempts: t.maxAttempts,
      });
    }
    return got;
  }

  async markRunning(refs: readonly AttemptRef[]): Promise<BatchOutcome[]> {
    this.calls.markRunning.push([...refs]);
    this.#throw('markRunning');
    return refs.map((r) => {
      const t = this.#current(r, ['claimed']);
      if (!t) return { ok: false, reason: 'stale' };
      t.status = 'running';
      return { ok: true };
    });
  }

  /** While set, completeMany calls wait for it (writes in flight). */
  completeGate: Promise<void> | undefined;

  async completeMany(refs: readonly CompletionRef[]): Promise<BatchOutcome[]> {
    this.calls.completeMany.push([...refs]);
    if (this.completeGate) await this.completeGate;
    this.#throw('completeMany');
    return refs.map((r) => {
      const t = this.#current(r, ['running']);
      if (!t) return { ok: false, reason: 'stale' };
      t.status = 'completed';
      t.result = r.result ?? null;
      return { ok: true };
    });
  }

  async complete(
    ref: AttemptRef,
    options: { result?: Json; work?: CompletionWork },
  ): Promise<WriteOutcome> {
    this.calls.complete.push({ ref, work: options.work });
    this.#throw('complete');
    const t = this.#current(ref, ['running']);
    if (!t) return { ok: false, reason: 'stale' };
    await options.work?.('tx');
    t.status = 'completed';
    t.result = options.result ?? null;
    return { ok: true };
  }

  async fail(request: FailRequest): Promise<FailOutcome> {
    this.calls.fail.push(request);
    this.#throw('fail');
    const t = this.#current(request, ['claimed', 'running']);
    if (!t) return { ok: false, reason: 'stale' };
    t.status = request.retryable === false || t.attempt >= t.maxAttempts ? 'dead_letter' : 'retry';
    return {
      ok: true,
      status: t.status === 'dead_letter' ? 'dead_letter' : 'retry',
      runAt: new Date(0),
    };
  }

  /** While set, extendLease calls wait for it (a call that hangs). */
  extendGate: Promise<void> | undefined;

  async extendLease(ref: AttemptRef): Promise<LeaseOutcome> {
    this.calls.extendLease.push(ref);
    if (this.extendGate) await this.extendGate;
    this.#throw('extendLease');
    const t = this.#current(ref, ['claimed', 'running']);
    if (!t) return { ok: false, reason: 'stale' };
    return { ok: true, cancelRequested: t.cancelRequested, leaseExpiresAt: new Date(0) };
  }

  async finishCancelled(ref: AttemptRef): Promise<WriteOutcome> {
    this.calls.finishCancelled.push(ref);
    this.#throw('finishCancelled');
    const t = this.#current(ref, ['claimed', 'running']);
    if (!t) return { ok: false, reason: 'stale' };
    t.status = 'cancelled';
    return { ok: true };
  }

  forget(ref: AttemptRef): void {
    this.calls.forget.push({ id: ref.id, attempt: ref.attempt });
  }

  async release(refs: readonly AttemptRef[]): Promise<number> {
    this.calls.release.push([...refs]);
    this.#throw('release');
    let n = 0;
    for (const r of refs) {
      const t = this.#current(r, ['claimed', 'running']);
      if (!t) continue;
      // As the store does: the attempt number stays, one more try makes up for it.
      t.status = 'pending';
      t.maxAttempts++;
      n++;
    }
    return n;
  }

  async rescueExpired(): Promise<{ id: string; status: string }[]> {
    this.calls.rescueExpired++;
    this.#throw('rescueExpired');
    const n = this.rescueResults.shift() ?? 0;
    return Array.from({ length: n }, (_, i) => ({ id: String(1000 + i), status: 'retry' }));
  }
}

/** A handler whose runs wait until the test settles them. */
export class GatedHandler implements TaskHandler {
  readonly started: HandlerContext[] = [];
  readonly #gates = new Map<string, { resolve: (v: Json) => void; reject: (e: unknown) => void }>();
  running = 0;
  maxRunning = 0;
  constructor(readonly options: { concurrency?: number; timeoutMs?: number } = {}) {}
  get concurrency() {
    return this.options.concurrency;
  }
  get timeoutMs() {
    return this.options.timeoutMs;
  }

  run(context: HandlerContext): Promise<Json> {
    this.started.push(context);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    return new Promise<Json>((resolve, reject) => {
      this.#gates.set(context.taskId, { resolve, reject });
    }).finally(() => this.running--);
  }

  succeed(taskId: string, result: Json = { ok: taskId }) {
    this.#gates.get(taskId)?.resolve(result);
  }

  reject(taskId: string, error: unknown) {
    this.#gates.get(taskId)?.reject(error);
  }
}

export function registry(handlers: Record<string, TaskHandler>): HandlerRegistry {
  return { lookup: (type) => handlers[type], types: () => Object.keys(handlers) };
}

export class FakeBus implements BusPort {
  readonly published: { subject: string; message: BusPayload }[] = [];
  readonly subscriptions = new Map<string, (message: BusPayload, subject: string) => void>();
  failPublish = false;

  async publish(subject: string, message: BusPayload): Promise<void> {
    if (this.failPublish) throw new Error('bus down');
    this.published.push({ subject, message });
  }

  subscribe(subject: string, handler: (message: BusPayload, subject: string) => void) {
    this.subscriptions.set(subject, handler);
    return () => void this.subscriptions.delete(subject);
  }

  /** Delivers a message to the subscription of exactly `subscription`. */
  deliver(subscription: string, message: BusPayload, subject = subscription) {
    const handler = this.subscriptions.get(subscription);
    if (!handler) throw new Error(`no subscription to ${subscription}`);
    handler(message, subject);
  }
}

export const subjects: Subjects = {
  heartbeat: (node) => `baton.g.hb.${node}`,
  heartbeats: 'baton.g.hb.*',
  dispatch: (queue) => `baton.g.dispatch.${queue}`,
  cancel: 'baton.g.cancel',
};

export class FakeHeartbeat implements HeartbeatPort {
  readonly beats: { nodeId: string; info: HeartbeatInfo }[] = [];
  rows: MemberRecord[] = [];
  failBeats = false;

  async beat(nodeId: string, info: HeartbeatInfo): Promise<void> {
    if (this.failBeats) throw new Error('database down');
    this.beats.push({ nodeId, info });
  }

  async members(): Promise<MemberRecord[]> {
    return this.rows;
  }

  readonly pruned: number[] = [];
  async prune(olderThanMs: number): Promise<number> {
    this.pruned.push(olderThanMs);
    const before = this.rows.length;
    this.rows = this.rows.filter((r) => r.heartbeatAgeMs < olderThanMs);
    return before - this.rows.length;
  }
}

/** A heartbeat table whose leaving node deletes its row. */
export class LeavingHeartbeat extends FakeHeartbeat {
  readonly left: string[] = [];

  async leave(nodeId: string): Promise<void> {
    this.left.push(nodeId);
  }
}

export type LeadershipMethod = 'current' | 'acquire' | 'renew' | 'release';

/**
 * The group's `token_holder` row and grant log, in memory, with the store's
 * semantics: acquire is a compare-and-set on the observed term, allowed only
 * when the token is free (never granted, released, or lease expired on the
 * *database's* clock); renew by the holder of the current term while its
 * lease runs; release by the holder of the current term. Database time is its
 * own: tests advance it with `advance`, independently of the nodes' clocks.
 */
export class FakeTokenTable {
  now = 0;
  row: { holder: string | null; term: number; expiresAt: number } | null = null;
  /**
   * Fenced work holds the group's fence lock until this database time: an
   * acquire run as the store's (`FakeLeadership.storeAcquire`) waits for it,
   * for at most its lease (the store's `lock_timeout`).
   */
  fencedUntil = 0;
  /** Acquires waiting for the fence lock now (each holds a connection). */
  lockWaiting = 0;
  readonly grants: { term: number; holder: string; at: number; reason: string }[] = [];
  /** Every call that reached the database, in order, with its database time. */
  readonly log: {
    node: string;
    method: LeadershipMethod;
    term?: number;
    ok?: boolean;
    at: number;
  }[] = [];

  /** Replies due at a database time (slow round trips), delivered by `advance`. */
  readonly #due: { at: number; deliver: () => void }[] = [];

  /** Runs `deliver` once database time has advanced by `ms`. */
  later(ms: number, deliver: () => void): void {
    this.#due.push({ at: this.now + ms, deliver });
  }

  advance(ms: number): void {
    this.now += ms;
    const due = this.#due.filter((d) => d.at <= this.now).sort((a, b) => a.at - b.at);
    for (const d of due) {
      this.#due.splice(this.#due.indexOf(d), 1);
      d.deliver();
    }
  }

  current(): TokenView | null {
    if (!this.row) return null;
    return {
      holder: this.row.holder,
      term: this.row.term,
      remainingMs: Math.max(0, this.row.expiresAt - this.now),
    };
  }

  acquire(
    nodeId: string,
    observedTerm: number,
    leaseMs: number,
    reason = 'election',
  ): AcquireResult {
    const r = this.row;
    let term: number | null = null;
    if (!r && observedTerm === 0) term = 1;
    else if (
      r &&
      observedTerm > 0 &&
      r.term === observedTerm &&
      (r.holder === null || r.expiresAt <= this.now)
    )
      term = r.term + 1;
    if (term === null) return { ok: false, current: this.current() };
    this.row = { holder: nodeId, term, expiresAt: this.now + leaseMs };
    this.grants.push({ term, holder: nodeId, at: this.now, reason });
    return { ok: true, term };
  }

  renew(nodeId: string, term: number, leaseMs: number): boolean {
    const r = this.row;
    if (!r || r.holder !== nodeId || r.term !== term || r.expiresAt <= this.now) return false;
    r.expiresAt = this.now + leaseMs;
    return true;
  }

  release(nodeId: string, term: number): boolean {
    const r = this.row;
    if (!r || r.holder !== nodeId || r.term !== term) return false;
    r.holder = null;
    r.expiresAt = this.now;
    return true;
  }

  /** A node's connection to this table: its own faults (hang, fail, late replies). */
  connect(node: string): FakeLeadership {
    return new FakeLeadership(this, node);
  }
}

/** One node's {@link LeadershipPort} over a {@link FakeTokenTable}. */
export class FakeLeadership implements LeadershipPort {
  /** Calls that never answer (the statement is not executed either). */
  readonly hang = new Set<LeadershipMethod>();
  /** Calls that fail (not executed). */
  readonly fail = new Set<LeadershipMethod>();
  /** Calls executed at once whose reply is held until `deliverHeld()` (a paused process). */
  readonly holdReplies = new Set<LeadershipMethod>();
  /**
   * A slow round trip: the reply of a call comes this many ms of database
   * time after it was sent (0: at once). The statement runs when the call is
   * sent, or when it answers with `executeOnReply` (PostgreSQL's `now()` is
   * then that of the answer).
   */
  replyDelay: (method: LeadershipMethod) => number = () => 0;
  executeOnReply = false;
  /**
   * When set, an acquire runs as the store's does, in three round trips of
   * `roundTripMs` (instead of one call timed by `replyDelay`): begin and take
   * the fence lock (waiting for `table.fencedUntil`, or failing with a lock
   * timeout after `leaseMs` of waiting), the compare-and-set (sent, with
   * `onCompareAndSet`, once the first answers, and run on the database half
   * a round trip later), then the commit.
   */
  storeAcquire: { roundTripMs: number } | null = null;
  readonly #held: (() => void)[] = [];

  constructor(
    readonly table: FakeTokenTable,
    readonly node: string,
  ) {}

  deliverHeld(): void {
    for (const deliver of this.#held.splice(0)) deliver();
  }

  #call<T>(method: LeadershipMethod, run: () => T, term?: number): Promise<T> {
    if (this.hang.has(method)) return new Promise<T>(() => undefined);
    if (this.fail.has(method)) return Promise.reject(new Error(`${method}: database unreachable`));
    const execute = () => this.#execute(method, run, term);
    const delay = this.replyDelay(method);
    if (delay > 0) {
      const value = this.executeOnReply ? undefined : { v: execute() };
      return new Promise<T>((resolve) =>
        this.table.later(delay, () => resolve(value ? value.v : execute())),
      );
    }
    const value = execute();
    if (!this.holdReplies.has(method)) return Promise.resolve(value);
    return new Promise<T>((resolve) => this.#held.push(() => resolve(value)));
  }

  #execute<T>(method: LeadershipMethod, run: () => T, term?: number): T {
    const value = run();
    this.table.log.push({
      node: this.node,
      method,
      ...(term === undefined ? {} : { term }),
      ...(typeof value === 'boolean' ? { ok: value } : {}),
      at: this.table.now,
    });
    return value;
  }

  /** An acquire in the store's three round trips (see `storeAcquire`). */
  #storeAcquire(
    { roundTripMs }: { roundTripMs: number },
    r: Parameters<LeadershipPort['acquire']>[0],
  ): Promise<AcquireResult> {
    const half = roundTripMs / 2;
    const lockTimeout = () =>
      Object.assign(new Error('canceling statement due to lock timeout'), { code: '55P03' });
    return new Promise<AcquireResult>((resolve, reject) =>
      // The lock statement reaches the database, and waits for the fenced work.
      this.table.later(half, () => {
        const wait = Math.max(0, this.table.fencedUntil - this.table.now);
        this.table.lockWaiting++;
        if (wait > r.leaseMs) {
          this.table.later(r.leaseMs, () => {
            this.table.lockWaiting--;
            this.table.later(half, () => reject(lockTimeout()));
          });
          return;
        }
        this.table.later(wait, () => this.table.lockWaiting--);
        this.table.later(wait + half, () => {
          r.onCompareAndSet?.();
          this.table.later(half, () => {
            const result = this.#execute(
              'acquire',
              () => this.table.acquire(r.nodeId, r.observedTerm, r.leaseMs, r.reason),
              r.observedTerm,
            );
            this.table.later(roundTripMs + half, () => resolve(result));
          });
        });
      }),
    );
  }

  current(): Promise<TokenView | null> {
    return this.#call('current', () => this.table.current());
  }

  acquire(r: Parameters<LeadershipPort['acquire']>[0]): Promise<AcquireResult> {
    if (this.storeAcquire && !this.hang.has('acquire') && !this.fail.has('acquire'))
      return this.#storeAcquire(this.storeAcquire, r);
    return this.#call(
      'acquire',
      () => {
        r.onCompareAndSet?.();
        return this.table.acquire(r.nodeId, r.observedTerm, r.leaseMs, r.reason);
      },
      r.observedTerm,
    );
  }

  renew(r: { nodeId: string; term: number; leaseMs: number }): Promise<boolean> {
    return this.#call('renew', () => this.table.renew(r.nodeId, r.term, r.leaseMs), r.term);
  }

  release(r: { nodeId: string; term: number }): Promise<boolean> {
    return this.#call('release', () => this.table.release(r.nodeId, r.term), r.term);
  }
}

/** A watchdog actor (not started) with fake ports and `input` on top: for config checks. */
export function bareWatchdog(input: Partial<WatchdogInput>) {
  return createActor(watchdogMachine, {
    input: {
      nodeId: 'n1',
      heartbeat: new FakeHeartbeat(),
      bus: new FakeBus(),
      subjects,
      ...input,
    },
  });
}
