/**
 * Coordinated (warm-backup) services as users define them, turned into the
 * actors' `CoordinatedService`: each run is first recorded in `service_runs`
 * inside a transaction fenced by the bearer's term (so a stale bearer cannot
 * even start a run, and `maxCount` holds across failovers), then `execute`
 * runs with the term and an AbortSignal that fires the moment the node stops
 * being the bearer.
 */
import type { PoolClient } from 'pg';
import type { CoordinatedService, Logger as ActorLogger } from '@baton/actors';
import {
  InvalidArgumentError,
  type FencedOutcome,
  type ScheduleStore,
  type Store,
} from '@baton/store';
import type { BatonMetrics } from './observability/index.js';

export interface ServiceContext {
  /** The fencing token: the term this node bears. */
  readonly term: number;
  /** Aborted when this node stops being the bearer (or the run hangs, or the node stops). */
  readonly signal: AbortSignal;
  /** This run's id in the group's run log (`service_runs`): unique and increasing. */
  readonly run: number;
  readonly logger: ActorLogger;
  /**
   * Runs leader-only writes in a transaction that holds the term: refused
   * (`{ ok: false }`) if another node has been granted a newer term, and a
   * newer term cannot be granted until it ends. It runs at READ COMMITTED;
   * it does not hold up the lease renewals, however long it takes. If the
   * node steps down meanwhile (`signal` aborts), the statement in flight is
   * cancelled and the transaction rolls back: it rejects with the signal's
   * reason, and the next bearer's grant does not wait for it.
   */
  fenced<T>(work: (tx: PoolClient) => Promise<T>): Promise<FencedOutcome<T>>;
}

/** A coordinated service (seed 001's listener form with seed 000's warm backup). */
export interface ServiceDefinition {
  readonly trigger: {
    /** Seconds between the starts of two runs (decimals allowed). */
    readonly interval: number;
    /** Runs in the whole group; -1 unlimited. @default -1 */
    readonly maxCount?: number;
    readonly startTime?: Date | string;
    readonly endTime?: Date | string;
  };
  execute(ctx: ServiceContext): Promise<void>;
  /** Failed runs in a row after which the node yields the token. @default 3 */
  readonly maxConsecutiveFailures?: number;
  /** A run still going after this many milliseconds is aborted and the node yields. @default 60000 */
  readonly hangTimeoutMs?: number;
}

function instant(field: string, value: Date | string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) throw new InvalidArgumentError(field, 'must be a date', value);
  return d;
}

/** Validates a definition at registration (typed errors naming the field). */
export function checkService(name: string, def: ServiceDefinition): void {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
    throw new InvalidArgumentError(
      'name',
      'must be 1 to 64 letters, digits, ".", "_" or "-"',
      name,
    );
  }
  const { interval, maxCount } = def.trigger ?? {};
  if (typeof interval !== 'number' || !Number.isFinite(interval) || interval <= 0) {
    throw new InvalidArgumentError(
      'trigger.interval',
      'must be a positive number of seconds',
      interval,
    );
  }
  if (
    maxCount !== undefined &&
    (!Number.isInteger(maxCount) || (maxCount < 1 && maxCount !== -1))
  ) {
    throw new InvalidArgumentError(
      'trigger.maxCount',
      'must be -1 or a positive integer',
      maxCount,
    );
  }
  const start = instant('trigger.startTime', def.trigger.startTime);
  const end = instant('trigger.endTime', def.trigger.endTime);
  if (start && end && end <= start) {
    throw new InvalidArgumentError(
      'trigger.endTime',
      'must be after trigger.startTime',
      def.trigger.endTime,
    );
  }
  if (typeof def.execute !== 'function')
    throw new InvalidArgumentError('execute', 'must be a function');
}

export interface CoordinationDeps {
  readonly store: Store;
  readonly groupId: string;
  readonly nodeId: string;
  readonly metrics: BatonMetrics;
}

/** A user's service as the actors run it. */
export function coordinatedService(
  name: string,
  def: ServiceDefinition,
  deps: CoordinationDeps,
): CoordinatedService {
  const { store, groupId, nodeId, metrics } = deps;
  const start = instant('trigger.startTime', def.trigger.startTime);
  const end = instant('trigger.endTime', def.trigger.endTime);
  return {
    name,
    intervalMs: Math.max(1, Math.round(def.trigger.interval * 1000)),
    ...(def.maxConsecutiveFailures !== undefined
      ? { maxConsecutiveFailures: def.maxConsecutiveFailures }
      : {}),
    ...(def.hangTimeoutMs !== undefined ? { hangTimeoutMs: def.hangTimeoutMs } : {}),
    async execute({ term, signal, logger }) {
      if (start || end) {
        const now = await store.now();
        if ((start && now < start) || (end && now > end)) return;
      }
      /**
       * Leader-only work while this node bears the token: the statement in
       * flight is cancelled when it steps down, and the transaction rolls
       * back rather than commit late (the next bearer's grant waits for it;
       * it need not wait for work that no longer counts).
       */
      const whileBearer = <T>(work: (tx: PoolClient) => Promise<T>) =>
        store.leadership.fenced({ groupId, term }, async (tx) => {
          // pg's Client keeps its backend's pid (from BackendKeyData); its types omit it.
          const pid = (tx as PoolClient & { processID: number }).processID;
          const cancel = () =>
            void store.pool.query('select pg_cancel_backend($1)', [pid]).catch(() => undefined);
          signal.addEventListener('abort', cancel, { once: true });
          try {
            signal.throwIfAborted();
            const value = await work(tx);
            signal.throwIfAborted();
            return value;
          } finally {
            signal.removeEventListener('abort', cancel);
          }
        });
      // Recorded (and counted against maxCount) the same way: a run counted must run.
      const fencedRecord = await whileBearer((tx) =>
        store.serviceRuns.record(
          {
            groupId,
            service: name,
            term,
            node: nodeId,
            ...(def.trigger.maxCount !== undefined ? { maxCount: def.trigger.maxCount } : {}),
          },
          tx,
        ),
      );
      const recorded = fencedRecord.ok ? fencedRecord.value : fencedRecord;
      if (!recorded.ok) {
        if (recorded.reason === 'stale_term') metrics.recordStaleWrite('term');
        return;
      }
      signal.throwIfAborted();
      await def.execute({
        term,
        signal,
        run: recorded.run,
        logger,
        fenced: (work) => {
          const outcome = whileBearer(work);
          // Counting only: a rejection is the caller's to handle, and must not
          // surface again here as an unhandled one (it would end the process).
          outcome.then(
            (o) => !o.ok && metrics.recordStaleWrite('term'),
            () => undefined,
          );
          return outcome;
        },
      });
    },
  };
}

/** The built-in service that fires due schedule ticks, on the bearer only, fenced by its term. */
export function scheduleFirer(
  schedules: ScheduleStore,
  deps: CoordinationDeps & {
    intervalMs: number;
    logger: ActorLogger;
    /** Wakes the workers of a queue that ticks were materialised in. */
    wake: (queue: string) => void;
  },
): CoordinatedService {
  return {
    name: 'baton.schedules',
    intervalMs: deps.intervalMs,
    maxConsecutiveFailures: 0,
    async execute({ term, signal }) {
      for (let round = 0; round < 50 && !signal.aborted; round++) {
        const outcome = await schedules.fireDue({
          groupId: deps.groupId,
          limit: 100,
          fence: { groupId: deps.groupId, term },
        });
        if (!outcome.ok) {
          deps.metrics.recordStaleWrite('term');
          return;
        }
        for (const queue of new Set(
          outcome.schedules.filter((s) => s.ticks.length > 0).map((s) => s.queue),
        )) {
          deps.wake(queue);
        }
        for (const s of outcome.schedules) {
          if (s.log && s.skipped > 0) {
            deps.logger.warn('schedule ticks missed and skipped (LOG_AND_IGNORE)', {
              schedule: s.scheduleId,
              skipped: s.skipped,
            });
          }
        }
        if (!outcome.more) return;
      }
    },
  };
}

/** How long each terminal status is kept (ms), and how often the bearer prunes. */
export interface RetentionPlan {
  readonly completedMs: number | null;
  readonly cancelledMs: number | null;
  readonly deadLetterMs: number | null;
  readonly intervalMs: number;
}

/**
 * The built-in service that deletes finished tasks past their retention, and
 * the run log of coordinated services as old as completed tasks may get, on
 * the bearer only, in leader-only transactions fenced by its term (the
 * lease renewals never wait for them). Each run walks up to 50 windows of
 * 5,000 task ids per status and goes on where the last one stopped, so a
 * large table is covered over several runs and no statement is long.
 */
export function retentionService(
  plan: RetentionPlan,
  deps: CoordinationDeps & { logger: ActorLogger },
): CoordinatedService {
  const kept = [
    ['completed', plan.completedMs],
    ['cancelled', plan.cancelledMs],
    ['dead_letter', plan.deadLetterMs],
  ] as const;
  // Where each status's walk goes on (this node's, while it bears the token).
  const cursors = new Map<string, string | null>();
  return {
    name: 'baton.retention',
    intervalMs: plan.intervalMs,
    // Housekeeping: a failing run is retried next interval, never worth the token.
    maxConsecutiveFailures: 0,
    hangTimeoutMs: 600_000,
    async execute({ term, signal }) {
      const fence = { groupId: deps.groupId, term };
      const fenced = <T>(work: (client: PoolClient) => Promise<T>) =>
        deps.store.leadership.fenced(fence, work);
      for (const [status, olderThanMs] of kept) {
        if (olderThanMs === null || signal.aborted) continue;
        const outcome = await deps.store.tasks.prune({
          status,
          olderThanMs,
          fenced,
          after: cursors.get(status) ?? null,
        });
        if (!outcome.ok) {
          deps.metrics.recordStaleWrite('term');
          return;
        }
        cursors.set(status, outcome.after);
        if (outcome.deleted > 0) {
          deps.metrics.tasksPruned.inc({ status }, outcome.deleted);
          deps.logger.info('deleted finished tasks past their retention', {
            status,
            deleted: outcome.deleted,
            olderThanMs,
          });
        }
      }
      // The run log of coordinated services is kept as long as completed tasks.
      if (plan.completedMs === null) return;
      for (let batch = 0; batch < 20 && !signal.aborted; batch++) {
        const runs = await deps.store.serviceRuns.prune({ olderThanMs: plan.completedMs, fence });
        if (!runs.ok) {
          deps.metrics.recordStaleWrite('term');
          return;
        }
        if (runs.deleted < 1000) return;
      }
    },
  };
}

/** How the bearer looks for tasks nobody runs (see unhandledTasksService). */
export interface UnhandledPlan {
  readonly intervalMs: number;
  /** Only tasks due for longer than this count. */
  readonly dueForMs: number;
  /** Only nodes that beat within this count as handling anything. */
  readonly liveWithinMs: number;
}

/** The defaults: every minute, tasks due for over a minute, nodes heard from in the last 30 s. */
export const UNHANDLED_PLAN: UnhandledPlan = {
  intervalMs: 60_000,
  dueForMs: 60_000,
  liveWithinMs: 30_000,
};

/** A type and queue are warned of at most this often. */
const UNHANDLED_WARN_EVERY_MS = 10 * 60_000;

/**
 * The built-in service that finds tasks nobody runs: due for over a minute,
 * of a type and queue that no live node handles (a misspelt type, a handler
 * not deployed, a queue no node works). They would wait forever in silence;
 * the bearer says so in `baton_tasks_unhandled` and a warning per type and
 * queue every 10 minutes. A read only: no fence.
 */
export function unhandledTasksService(
  plan: UnhandledPlan,
  deps: Pick<CoordinationDeps, 'store' | 'metrics'> & {
    logger: ActorLogger;
    now?: () => number;
  },
): CoordinatedService {
  const now = deps.now ?? Date.now;
  const warnedAt = new Map<string, number>();
  return {
    name: 'baton.unhandled',
    intervalMs: plan.intervalMs,
    // A bearer that has just started has not heard every node's types yet.
    runOnAcquire: false,
    maxConsecutiveFailures: 0,
    async execute({ signal }) {
      const found = await deps.store.tasks.unhandled({
        dueForMs: plan.dueForMs,
        liveWithinMs: plan.liveWithinMs,
      });
      if (signal.aborted) return;
      const gauge = deps.metrics.tasksUnhandled;
      gauge.reset();
      for (const f of found) {
        gauge.set({ type: f.type, queue: f.queue }, f.count);
        const key = `${f.queue}\u0000${f.type}`;
        const at = now();
        if (at - (warnedAt.get(key) ?? -Infinity) < UNHANDLED_WARN_EVERY_MS) continue;
        warnedAt.set(key, at);
        deps.logger.warn(
          'tasks wait that no live node handles: deploy a handler for their type in their queue, or cancel them',
          { type: f.type, queue: f.queue, waiting: f.count },
        );
      }
    },
  };
}
