import type { Pool, PoolClient, QueryConfig, QueryResult, QueryResultRow } from 'pg';
import { backoffMs } from './backoff.js';
import { IllegalTransitionError, InvalidArgumentError, TaskNotFoundError } from './errors.js';
import { storableJson } from './json.js';
import { createdBeforeSql, pruneSql, rescueSql, taskSql } from './tasks.sql.js';
import type { FencedOutcome } from './leadership.js';
import {
  TASK_STATUSES,
  TERMINAL_STATUSES,
  type AttemptRef,
  type BackoffPolicy,
  type CancelOutcome,
  type ClaimOptions,
  type DirectStart,
  type EnqueueInput,
  type EnqueueResult,
  type FailInput,
  type FailOutcome,
  type HistoryEntry,
  type Json,
  type ListFilter,
  type ListPage,
  type Outcome,
  type RescuedTask,
  type RunnableTask,
  type StatusCounts,
  type Task,
  type TaskId,
  type TaskStatus,
} from './types.js';
import { validateEnqueue, type EnqueueLimits, type ValidEnqueue } from './validate.js';

/** Anything that runs a query: the pool, or a caller's client inside its own transaction. */
export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(config: QueryConfig): Promise<QueryResult<R>>;
}

/** Counters of writes the fences refused. */
export interface StoreStats {
  /** Completions, failures and lease extensions from a stale attempt. */
  staleAttempts: number;
  /** Leader-only writes refused because their term was no longer current. */
  staleTerms: number;
}

export interface TaskStoreOptions extends EnqueueLimits {
  readonly backoff: BackoffPolicy;
  readonly random?: () => number;
}

export interface CompleteOptions {
  readonly result?: Json;
  /**
   * Caller work run inside the completion transaction, after the guarded
   * update: it commits only if the completion does, so its effects happen at
   * most once per task.
   */
  readonly work?: (client: PoolClient) => Promise<void>;
}

export interface Fence {
  readonly groupId: string;
  readonly term: number;
}

/** A completion in a batch. */
export interface CompletionRef extends AttemptRef {
  readonly result?: Json;
}

/** Failures the store reports per item of a batch. */
export type BatchOutcome =
  Outcome | { readonly ok: false; readonly reason: 'illegal'; readonly error: Error };

const TASK_ID = /^[1-9][0-9]{0,18}$/;

/**
 * A batch's ids or attempts as a PostgreSQL array literal, joined natively
 * (pg would quote and escape each element); anything that is not a plain
 * integer makes it hand the values to pg as they are.
 */
function intArray(values: readonly (string | number)[]): string | readonly (string | number)[] {
  return values.every(isPlainInt) ? `{${values.join(',')}}` : values;
}

const isPlainInt = (v: string | number) =>
  typeof v === 'number' ? Number.isSafeInteger(v) : TASK_ID.test(v);

/** The largest bigint: a longer id of 19 digits is not one PostgreSQL can hold. */
const MAX_TASK_ID = 9223372036854775807n;

function checkId(id: unknown, field = 'id'): TaskId {
  if (typeof id !== 'string' || !TASK_ID.test(id) || BigInt(id) > MAX_TASK_ID) {
    throw new InvalidArgumentError(field, 'must be a task id (a positive integer as a string)', id);
  }
  return id;
}

interface TaskRow {
  id: string;
  type: string;
  queue: string;
  payload: Json;
  status: TaskStatus;
  priority: number;
  run_at: Date;
  attempt: number;
  max_attempts: number;
  idempotency_key: string | null;
  lease_owner: string | null;
  lease_expires_at: Date | null;
  cancel_requested: boolean;
  last_error: Json | null;
  result: Json | null;
  created_at: Date;
  claimed_at: Date | null;
  started_at: Date | null;
  finished_at: Date | null;
}

/** A row the enqueue statements return (the started columns only with enqueueStart). */
interface EnqueuedRow {
  id: string;
  idempotency_key: string | null;
  status?: string;
  type?: string;
  queue?: string;
  payload?: Json;
  attempt?: number;
  max_attempts?: number;
}

/** What a batch write returns: rows changed, and which only when short of the batch. */
interface BatchWrittenRow {
  n: number;
  ids: string[] | null;
}

type RunnableRow = Pick<
  TaskRow,
  'id' | 'type' | 'queue' | 'payload' | 'attempt' | 'max_attempts' | 'idempotency_key'
>;

function toTask(r: TaskRow): Task {
  return {
    id: r.id,
    type: r.type,
    queue: r.queue,
    payload: r.payload,
    status: r.status,
    priority: r.priority,
    runAt: r.run_at,
    attempt: r.attempt,
    maxAttempts: r.max_attempts,
    idempotencyKey: r.idempotency_key,
    leaseOwner: r.lease_owner,
    leaseExpiresAt: r.lease_expires_at,
    cancelRequested: r.cancel_requested,
    lastError: r.last_error,
    result: r.result,
    createdAt: r.created_at,
    claimedAt: r.claimed_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

/** The task aggregate: enqueue, claim, run, finish, and read back. */
export class TaskStore {
  readonly #pool: Pool;
  readonly #sql: ReturnType<typeof taskSql>;
  readonly #rescue: string;
  readonly #prune: string;
  readonly #createdBefore: string;
  readonly #maxId: string;
  readonly #rescueFenced: string;
  readonly #schema: string;
  readonly #opts: TaskStoreOptions;
  readonly stats: StoreStats = { staleAttempts: 0, staleTerms: 0 };

  constructor(pool: Pool, quotedSchema: string, schema: string, opts: TaskStoreOptions) {
    this.#pool = pool;
    this.#sql = taskSql(quotedSchema);
    this.#prune = pruneSql(quotedSchema);
    this.#createdBefore = createdBeforeSql(quotedSchema);
    this.#maxId = `select max(id)::text as max from ${quotedSchema}.tasks`;
    this.#rescue = rescueSql(quotedSchema, false);
    this.#rescueFenced = rescueSql(quotedSchema, true);
    this.#schema = schema;
    this.#opts = opts;
  }

  #named(name: string, text: string, values: unknown[]) {
    return { name: `baton.${this.#schema}.${name}`, text, values };
  }

  /** Validates without writing: throws the same typed errors `enqueue` would. */
  validate(input: EnqueueInput<unknown>, prefix = ''): ValidEnqueue {
    return validateEnqueue(input, this.#opts, prefix);
  }

  /** Enqueues one task; with `client`, inside the caller's own transaction. */
  async enqueue(input: EnqueueInput<unknown>, client?: Queryable): Promise<EnqueueResult> {
    const [result] = await this.enqueueMany([input], client);
    return result!;
  }

  /**
   * Enqueues many tasks in one statement. All are validated first: one bad
   * input rejects the batch and nothing is written. Results are in input order.
   */
  async enqueueMany(
    inputs: readonly EnqueueInput<unknown>[],
    client?: Queryable,
  ): Promise<EnqueueResult[]> {
    const results = await this.#enqueue(inputs, client ?? this.#pool, undefined);
    return results.map(({ id, duplicate }) => ({ id, duplicate }));
  }

  /**
   * Enqueues like `enqueueMany`, and stores the tasks marked in
   * `start.eligible` already started on `start.owner` (running, attempt 1,
   * leased for `start.leaseMs`) when nothing claimable waits in `start.queue`
   * (their own queue must be it, with no `runAt` or delay): the submitting
   * node runs them without a claim. A backlog in the queue, a duplicate, or
   * an ineligible task is stored pending as usual; `started` says which
   * happened.
   */
  async enqueueAndStart(
    inputs: readonly EnqueueInput<unknown>[],
    start: DirectStart,
  ): Promise<(EnqueueResult & { started: RunnableTask | null })[]> {
    if (start.eligible.length !== inputs.length) {
      throw new InvalidArgumentError('start.eligible', 'must have one flag per task');
    }
    return this.#enqueue(inputs, this.#pool, start);
  }

  async #enqueue(
    inputs: readonly EnqueueInput<unknown>[],
    db: Queryable,
    start: DirectStart | undefined,
  ): Promise<(EnqueueResult & { started: RunnableTask | null })[]> {
    const list: unknown = inputs;
    if (!Array.isArray(list)) throw new InvalidArgumentError('tasks', 'must be an array', list);
    const valid = inputs.map((input, i) =>
      validateEnqueue(input, this.#opts, inputs.length > 1 ? `tasks[${i}].` : ''),
    );
    if (valid.length === 0) return [];
    const columns = [
      valid.map((v) => v.type),
      valid.map((v) => v.queue),
      valid.map((v) => v.payloadJson),
      valid.map((v) => v.priority),
      valid.map((v) => v.runAt),
      valid.map((v) => v.delayMs),
      valid.map((v) => v.maxAttempts),
      valid.map((v) => v.idempotencyKey),
    ];
    const { rows } = await db.query<EnqueuedRow>(
      start
        ? this.#named('enqueueStart', this.#sql.enqueueStart, [
            ...columns,
            start.eligible,
            start.owner,
            start.leaseMs,
            start.queue,
            start.types,
          ])
        : this.#named('enqueue', this.#sql.enqueue, columns),
    );
    const started = (r: EnqueuedRow): RunnableTask | null =>
      r.status === 'running'
        ? {
            id: r.id,
            type: r.type!,
            queue: r.queue!,
            payload: r.payload!,
            attempt: r.attempt!,
            maxAttempts: r.max_attempts!,
            idempotencyKey: r.idempotency_key,
            status: 'running',
          }
        : null;
    const byKey = new Map<string, EnqueuedRow>();
    const unkeyed: EnqueuedRow[] = [];
    for (const r of rows) {
      if (r.idempotency_key === null) unkeyed.push(r);
      else byKey.set(r.idempotency_key, r);
    }
    const missing = valid
      .map((v) => v.idempotencyKey)
      .filter((k): k is string => k !== null && !byKey.has(k));
    const existing = new Map<string, string>();
    if (missing.length > 0) {
      const found = await db.query<{ id: string; idempotency_key: string }>({
        text: this.#sql.byIdempotencyKeys,
        values: [missing],
      });
      for (const r of found.rows) existing.set(r.idempotency_key, r.id);
    }
    let next = 0;
    const claimedKeys = new Set<string>();
    return valid.map((v) => {
      if (v.idempotencyKey === null) {
        const row = unkeyed[next++]!;
        return { id: row.id, duplicate: false, started: started(row) };
      }
      const fresh = byKey.get(v.idempotencyKey);
      if (fresh !== undefined && !claimedKeys.has(v.idempotencyKey)) {
        claimedKeys.add(v.idempotencyKey);
        return { id: fresh.id, duplicate: false, started: started(fresh) };
      }
      const id = fresh?.id ?? existing.get(v.idempotencyKey);
      if (id === undefined) {
        // The conflicting row was deleted between the insert and the lookup.
        throw new TaskNotFoundError(`with idempotency key ${v.idempotencyKey}`);
      }
      return { id, duplicate: true, started: null };
    });
  }

  /**
   * Claims up to `limit` due tasks, committed at once (no transaction stays
   * open while handlers run). Each claim increments `attempt` and sets a lease;
   * with `start`, the tasks are also marked running in the same statement.
   */
  async claim(opts: ClaimOptions): Promise<Task[]> {
    const { rows } = await this.#pool.query<TaskRow>(
      this.#named('claim', this.#sql.claim, [
        opts.queue ?? 'default',
        opts.types ?? null,
        opts.limit,
        opts.owner,
        opts.leaseMs,
        opts.start ?? false,
      ]),
    );
    return rows.map(toTask);
  }

  /**
   * The worker's claim: up to `limit` due tasks, claimed and started
   * (pending -> running) in one statement, returned with only what a run
   * needs. Cheaper than `claim` (no timestamps to parse, no ordering of the
   * result); the batch is in no particular order.
   */
  async claimRuns(opts: Omit<ClaimOptions, 'start'>): Promise<RunnableTask[]> {
    const { rows } = await this.#pool.query<RunnableRow>(
      this.#named('claimRuns', this.#sql.claimRuns, [
        opts.queue ?? 'default',
        opts.types ?? null,
        opts.limit,
        opts.owner,
        opts.leaseMs,
        true,
      ]),
    );
    return rows.map((r): RunnableTask => ({
      id: r.id,
      type: r.type,
      queue: r.queue,
      payload: r.payload,
      attempt: r.attempt,
      maxAttempts: r.max_attempts,
      idempotencyKey: r.idempotency_key,
      status: 'running',
    }));
  }

  /** claimed -> running, for a batch of runs about to start. */
  async markRunning(refs: readonly AttemptRef[]): Promise<BatchOutcome[]> {
    if (refs.length === 0) return [];
    const { rows } = await this.#pool.query<{ id: string }>(
      this.#named('markRunning', this.#sql.markRunning, [
        refs.map((r) => r.id),
        refs.map((r) => r.attempt),
      ]),
    );
    return this.#outcomes(
      refs,
      rows.map((r) => r.id),
      'running',
    );
  }

  /** Pushes the lease deadline to now + `leaseMs`; tells whether a cancellation was asked for. */
  async extendLease(
    ref: AttemptRef,
    leaseMs: number,
  ): Promise<
    { ok: true; cancelRequested: boolean; leaseExpiresAt: Date } | { ok: false; reason: 'stale' }
  > {
    const { rows } = await this.#pool.query<{ cancel_requested: boolean; lease_expires_at: Date }>(
      this.#named('extendLease', this.#sql.extendLease, [ref.id, ref.attempt, leaseMs]),
    );
    const row = rows[0];
    if (row)
      return {
        ok: true,
        cancelRequested: row.cancel_requested,
        leaseExpiresAt: row.lease_expires_at,
      };
    const [outcome] = await this.#outcomes([ref], [], 'running');
    return this.#failure(outcome!);
  }

  /** running -> completed for one run, optionally with caller work in the same transaction. */
  async complete(ref: AttemptRef, opts: CompleteOptions = {}): Promise<Outcome> {
    if (!opts.work) {
      const [outcome] = await this.completeMany([{ ...ref, result: opts.result ?? null }]);
      return outcome!.ok ? { ok: true } : this.#failure(outcome!);
    }
    const client = await this.#pool.connect();
    let updated = false;
    try {
      await client.query('begin');
      const { rows } = await client.query<BatchWrittenRow>(
        this.#named('complete', this.#sql.complete, [
          [ref.id],
          [ref.attempt],
          [storableJson(opts.result)],
        ]),
      );
      updated = rows[0]!.n === 1;
      if (updated) await opts.work(client);
      await client.query(updated ? 'commit' : 'rollback');
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      client.release();
      throw error;
    }
    client.release();
    if (updated) return { ok: true };
    const [outcome] = await this.#outcomes([ref], [], 'completed');
    return this.#failure(outcome!);
  }

  /** running -> completed for a batch of runs, in one statement. */
  async completeMany(refs: readonly CompletionRef[]): Promise<BatchOutcome[]> {
    if (refs.length === 0) return [];
    const ids = intArray(refs.map((r) => r.id));
    const attempts = intArray(refs.map((r) => r.attempt));
    const query = refs.every((r) => r.result === undefined || r.result === null)
      ? this.#named('completeNoResults', this.#sql.completeNoResults, [ids, attempts])
      : this.#named('complete', this.#sql.complete, [
          ids,
          attempts,
          refs.map((r) => storableJson(r.result)),
        ]);
    const { rows } = await this.#pool.query<BatchWrittenRow>(query);
    const { n, ids: written } = rows[0]!;
    if (n === refs.length) return refs.map(() => ({ ok: true }));
    return this.#outcomes(refs, written ?? [], 'completed');
  }

  /**
   * running -> retry (at a backoff with full jitter) or -> dead_letter (attempts
   * spent, or `retryable: false`).
   */
  async fail(input: FailInput): Promise<FailOutcome> {
    const retryable = input.retryable ?? true;
    const delay =
      input.retryInMs ?? backoffMs(input.attempt, this.#opts.backoff, this.#opts.random);
    const error = storableJson({
      message: input.error.message,
      name: input.error.name ?? null,
      code: input.error.code ?? null,
      stack: input.error.stack ?? null,
      attempt: input.attempt,
    });
    const { rows } = await this.#pool.query<{
      status: 'retry' | 'dead_letter' | 'cancelled';
      run_at: Date;
    }>(this.#named('fail', this.#sql.fail, [input.id, input.attempt, retryable, delay, error]));
    const row = rows[0];
    if (row) return { ok: true, status: row.status, runAt: row.run_at };
    const [outcome] = await this.#outcomes([input], [], 'retry');
    return this.#failure(outcome!);
  }

  /** The worker aborted a run whose cancellation was requested: -> cancelled. */
  async finishCancelled(ref: AttemptRef, detail: Json = { reason: 'cancelled' }): Promise<Outcome> {
    const { rows } = await this.#pool.query(this.#sql.finishCancelled, [
      ref.id,
      ref.attempt,
      storableJson(detail),
    ]);
    if (rows.length === 1) return { ok: true };
    const [outcome] = await this.#outcomes([ref], [], 'cancelled');
    return this.#failure(outcome!);
  }

  /**
   * Cancels a task: a pending or retrying task is cancelled at once; a claimed
   * or running one is marked, and its worker aborts it.
   */
  async cancel(
    id: TaskId,
    node: string | null = null,
    reason = 'cancelled',
  ): Promise<CancelOutcome> {
    checkId(id);
    const { rows } = await this.#pool.query<{
      old_status: TaskStatus;
      new_status: TaskStatus | null;
    }>(this.#sql.cancel, [id, node, storableJson({ reason })]);
    const row = rows[0];
    if (!row) throw new TaskNotFoundError(id);
    if (row.new_status === null)
      return { ok: false, reason: 'already_final', status: row.old_status };
    return { ok: true, status: row.new_status === 'cancelled' ? 'cancelled' : 'cancel_requested' };
  }

  /**
   * Graceful shutdown: claimed/running -> pending, the attempt not charged
   * (its number is kept, a fencing token only grows; max_attempts grows by one).
   */
  async release(refs: readonly AttemptRef[], node: string): Promise<number> {
    return (await this.releaseEach(refs, node)).length;
  }

  /** `release`, telling which tasks it changed and how: pending, or cancelled (requested). */
  async releaseEach(
    refs: readonly AttemptRef[],
    node: string,
  ): Promise<{ id: TaskId; status: 'pending' | 'cancelled' }[]> {
    if (refs.length === 0) return [];
    const { rows } = await this.#pool.query<{ id: string; status: 'pending' | 'cancelled' }>(
      this.#sql.release,
      [refs.map((r) => r.id), refs.map((r) => r.attempt), node],
    );
    return rows;
  }

  /**
   * Rescues tasks whose lease expired (their worker died): -> retry, or
   * dead_letter when attempts are spent. Safe to run on many nodes at once;
   * with `fence`, refused unless the term is current.
   */
  async rescueExpired(opts: {
    node: string;
    limit?: number;
    fence?: Fence;
  }): Promise<RescuedTask[]> {
    const limit = opts.limit ?? 1000;
    const { rows } = opts.fence
      ? await this.#pool.query<RescuedTask>(this.#rescueFenced, [
          limit,
          opts.node,
          opts.fence.groupId,
          opts.fence.term,
        ])
      : await this.#pool.query<RescuedTask>(this.#rescue, [limit, opts.node]);
    return rows;
  }

  /**
   * Retention: deletes tasks of a terminal `status` that finished more than
   * `olderThanMs` ago, with their history and schedule ticks.
   *
   * It walks the primary key in windows of `windowIds` ids, each one
   * statement inside `fenced` (the caller's leader-only transaction: a
   * stale term deletes nothing and ends the walk), from `after` up to the
   * last task created before the cutoff (found by bisection: later ones
   * cannot have finished before it). A window costs the same whether it
   * holds a deletable row or none, so kept rows (a month of dead letters,
   * delayed tasks) never make one statement long. At most `maxWindows` per
   * call: `after` in the result says where the next call goes on, `null`
   * that the walk reached the end (start again from the beginning next time).
   * An idempotency key is free again once its task is deleted.
   */
  async prune(opts: {
    status: 'completed' | 'cancelled' | 'dead_letter';
    olderThanMs: number;
    fenced: <T>(work: (client: PoolClient) => Promise<T>) => Promise<FencedOutcome<T>>;
    after?: string | null;
    windowIds?: number;
    maxWindows?: number;
  }): Promise<
    { ok: true; deleted: number; after: string | null } | { ok: false; reason: 'stale_term' }
  > {
    if (!TERMINAL_STATUSES.has(opts.status)) {
      throw new InvalidArgumentError(
        'status',
        'must be completed, cancelled or dead_letter',
        opts.status,
      );
    }
    const window = BigInt(opts.windowIds ?? 5000);
    const upper = await this.#lastCreatedBefore(opts.olderThanMs);
    if (upper === undefined) return { ok: true, deleted: 0, after: null };
    let from = opts.after != null ? BigInt(opts.after) : 0n;
    let deleted = 0;
    for (let i = 0; i < (opts.maxWindows ?? 50) && from < upper; i++) {
      // Over gaps (ids deleted, or never used) at once: from the next id there is.
      const next = await this.#firstIdFrom(from + 1n);
      if (next === undefined || next.id > upper) {
        from = upper;
        break;
      }
      from = next.id - 1n;
      const to = from + window < upper ? from + window : upper;
      const outcome = await opts.fenced((client) =>
        client.query<{ n: number }>(this.#prune, [
          opts.status,
          from.toString(),
          to.toString(),
          opts.olderThanMs,
        ]),
      );
      if (!outcome.ok) return { ok: false, reason: 'stale_term' };
      deleted += outcome.value.rows[0]!.n;
      from = to;
    }
    return { ok: true, deleted, after: from < upper ? from.toString() : null };
  }

  /**
   * The largest task id created more than `ms` ago (ids grow with creation
   * time), found by bisection over the primary key: a few dozen index
   * probes, however large the table.
   */
  async #lastCreatedBefore(ms: number): Promise<bigint | undefined> {
    const probe = (from: bigint) => this.#firstIdFrom(from, ms);
    const first = await probe(0n);
    if (!first?.old) return undefined;
    let found = first.id;
    const { rows } = await this.#pool.query<{ max: string }>(this.#maxId);
    let high = BigInt(rows[0]!.max);
    while (found < high) {
      const mid = found + (high - found + 1n) / 2n;
      const row = await probe(mid);
      if (row?.old) found = row.id;
      else high = mid - 1n;
    }
    return found;
  }

  /** The first task id at or after `from`, and whether it was created more than `ms` ago. */
  async #firstIdFrom(from: bigint, ms = 0): Promise<{ id: bigint; old: boolean } | undefined> {
    const { rows } = await this.#pool.query<{ id: string; old: boolean }>(this.#createdBefore, [
      from.toString(),
      ms,
    ]);
    const row = rows[0];
    return row ? { id: BigInt(row.id), old: row.old } : undefined;
  }

  /** dead_letter -> pending, with `attempts` more attempts (recorded). */
  async redrive(id: TaskId, opts: { node?: string; attempts?: number } = {}): Promise<void> {
    checkId(id);
    const attempts = opts.attempts ?? 1;
    if (!Number.isInteger(attempts) || attempts < 1 || attempts > 1000) {
      throw new InvalidArgumentError('attempts', 'must be an integer between 1 and 1000', attempts);
    }
    const { rows } = await this.#pool.query<{ old_status: TaskStatus; redriven: boolean }>(
      this.#sql.redrive,
      [id, attempts, opts.node ?? null],
    );
    const row = rows[0];
    if (!row) throw new TaskNotFoundError(id);
    if (!row.redriven)
      throw new IllegalTransitionError(
        id,
        row.old_status,
        'pending',
        'only a dead letter can be redriven',
      );
  }

  async get(id: TaskId): Promise<Task | null> {
    checkId(id);
    const { rows } = await this.#pool.query<TaskRow>(this.#named('get', this.#sql.get, [id]));
    return rows[0] ? toTask(rows[0]) : null;
  }

  /** Newest first, with keyset pagination (`cursor` = the previous page's `nextCursor`). */
  async list(filter: ListFilter = {}): Promise<ListPage> {
    const limit = filter.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new InvalidArgumentError('limit', 'must be an integer between 1 and 1000', limit);
    }
    const statuses =
      filter.status === undefined
        ? null
        : Array.isArray(filter.status)
          ? filter.status
          : [filter.status];
    for (const st of statuses ?? []) {
      if (!TASK_STATUSES.includes(st as TaskStatus)) {
        throw new InvalidArgumentError('status', `must be one of ${TASK_STATUSES.join(', ')}`, st);
      }
    }
    const cursor = filter.cursor === undefined ? null : checkId(filter.cursor, 'cursor');
    const { rows } = await this.#pool.query<TaskRow>(this.#sql.list, [
      statuses,
      filter.type ?? null,
      filter.queue ?? null,
      cursor,
      limit + 1,
    ]);
    const page = rows.slice(0, limit).map(toTask);
    return { tasks: page, nextCursor: rows.length > limit ? page.at(-1)!.id : null };
  }

  /**
   * Task types nobody runs: tasks due for longer than `dueForMs` whose type
   * and queue no node that beat within `liveWithinMs` handles (as its
   * heartbeat info says: `queue` and `types`), counted among at most
   * `sample` due tasks; the 20 largest, largest first. Every group in the
   * schema counts: its tasks are the schema's.
   */
  async unhandled(opts: {
    dueForMs: number;
    liveWithinMs: number;
    sample?: number;
  }): Promise<{ type: string; queue: string; count: number }[]> {
    const { rows } = await this.#pool.query<{ type: string; queue: string; n: number }>(
      this.#sql.unhandled,
      [opts.dueForMs, opts.liveWithinMs, opts.sample ?? 10_000],
    );
    return rows.map((r) => ({ type: r.type, queue: r.queue, count: r.n }));
  }

  async counts(): Promise<StatusCounts> {
    const { rows } = await this.#pool.query<{ status: TaskStatus; n: number }>(this.#sql.counts);
    const counts = Object.fromEntries(TASK_STATUSES.map((st) => [st, 0])) as StatusCounts;
    for (const r of rows) counts[r.status] = r.n;
    return counts;
  }

  /**
   * The whole history of a task: creation and the last attempt's happy-path
   * steps from the task row's columns, everything else from history rows.
   */
  async history(id: TaskId): Promise<HistoryEntry[]> {
    checkId(id);
    const task = await this.get(id);
    if (!task) throw new TaskNotFoundError(id);
    const { rows } = await this.#pool.query<{
      task_id: string;
      from_status: TaskStatus | null;
      to_status: TaskStatus;
      at: Date;
      node: string | null;
      attempt: number;
      detail: Json | null;
    }>(this.#sql.history, [id]);
    const entries: HistoryEntry[] = [
      {
        taskId: id,
        from: null,
        to: 'pending',
        at: task.createdAt,
        node: null,
        attempt: 0,
        detail: null,
      },
    ];
    for (const r of rows) {
      entries.push({
        taskId: id,
        from: r.from_status,
        to: r.to_status,
        at: r.at,
        node: r.node,
        attempt: r.attempt,
        detail: r.detail,
      });
    }
    // The first attempt's claim and start are not written as rows (hot path).
    if (task.attempt === 1 && task.claimedAt) {
      entries.push({
        taskId: id,
        from: 'pending',
        to: 'claimed',
        at: task.claimedAt,
        node: task.leaseOwner,
        attempt: 1,
        detail: null,
      });
      if (task.startedAt) {
        entries.push({
          taskId: id,
          from: 'claimed',
          to: 'running',
          at: task.startedAt,
          node: task.leaseOwner,
          attempt: 1,
          detail: null,
        });
      }
    }
    if (task.status === 'completed' && task.finishedAt) {
      entries.push({
        taskId: id,
        from: 'running',
        to: 'completed',
        at: task.finishedAt,
        node: task.leaseOwner,
        attempt: task.attempt,
        detail: null,
      });
    }
    return entries.sort((a, b) => a.at.getTime() - b.at.getTime() || a.attempt - b.attempt);
  }

  /** Classifies the refs an update did not change (`updated`: the ids it did): stale (an older or lost lease) or illegal. */
  async #outcomes(
    refs: readonly AttemptRef[],
    updated: readonly string[],
    to: TaskStatus,
  ): Promise<BatchOutcome[]> {
    if (updated.length === refs.length) return refs.map(() => ({ ok: true }));
    const done = new Set(updated);
    const misses = refs.filter((r) => !done.has(r.id));
    const { rows } = await this.#pool.query<{ id: string; status: TaskStatus; attempt: number }>(
      this.#sql.attemptOf,
      [misses.map((r) => r.id)],
    );
    const current = new Map(rows.map((r) => [r.id, r]));
    return refs.map((ref): BatchOutcome => {
      if (done.has(ref.id)) return { ok: true };
      const row = current.get(ref.id);
      if (!row) return { ok: false, reason: 'illegal', error: new TaskNotFoundError(ref.id) };
      const liveLease =
        ref.attempt === row.attempt && (row.status === 'claimed' || row.status === 'running');
      if (ref.attempt < 1 || ref.attempt > row.attempt || liveLease) {
        return {
          ok: false,
          reason: 'illegal',
          error: new IllegalTransitionError(
            ref.id,
            row.status,
            to,
            `attempt ${ref.attempt}, task at attempt ${row.attempt}`,
          ),
        };
      }
      this.stats.staleAttempts++;
      return { ok: false, reason: 'stale' };
    });
  }

  /** The outcome of a single write that changed nothing: stale, or an illegal request thrown. */
  #failure(outcome: BatchOutcome): { ok: false; reason: 'stale' } {
    if (outcome.ok) throw new Error('unreachable: a write that changed nothing classified as ok');
    if (outcome.reason === 'stale') return { ok: false, reason: 'stale' };
    throw outcome.error;
  }
}
