/**
 * Prometheus metrics of a node (prom-client). Every metric is named
 * `baton_...` with its unit and `_total` for counters, and lives in the
 * node's own {@link Registry}: several nodes in one process (tests, the
 * demo) never collide, and the global default registry is used only when a
 * caller passes it explicitly.
 *
 * Metrics, by label:
 * - `baton_tasks_enqueued_total{type}`
 * - `baton_tasks_completed_total{type,status}`, status in {@link TaskOutcome}
 * - `baton_task_retries_total{type}`, `baton_tasks_dead_lettered_total{type}`
 * - `baton_stale_writes_rejected_total{kind}`, kind in {@link StaleWriteKind}
 * - `baton_submissions_rejected_total{reason}`
 * - `baton_bus_messages_dropped_total{subject_kind,reason}`, `baton_bus_reconnects_total`
 * - `baton_tasks{status}`: cluster-wide counts read from PostgreSQL on scrape, cached
 * - `baton_worker_pool_active`, `baton_worker_pool_capacity`
 * - `baton_group_members{state}`, state in {@link MemberState}
 * - `baton_leader{group}` (1 on the token bearer), `baton_leader_term{group}`
 * - `baton_task_duration_seconds{type,status}`, `baton_claim_duration_seconds`
 * - `baton_node_info{node,group,version,bus}` = 1
 * - `baton_task_counts_failures_total`: failed count queries behind `baton_tasks`
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { BatchHistogram, type HistogramSeries } from './batch-histogram.js';
import { TaskCountsCache, type TaskCountsReading, type TaskCountsSource } from './task-counts.js';

/** How an attempt ended, as counted by `baton_tasks_completed_total{status}`. */
export type TaskOutcome = 'completed' | 'retry' | 'dead_letter' | 'cancelled';

/** Which fence refused a stale write: the task's attempt or the leader's term. */
export type StaleWriteKind = 'attempt' | 'term';

/** A member's state in the watchdog's view of the group. */
export type MemberState = 'alive' | 'suspect' | 'gone';

/** The node's state the scrape-time gauges show. */
export interface NodeSample {
  readonly poolActive: number;
  readonly poolCapacity: number;
  readonly members: Readonly<Partial<Record<MemberState, number>>>;
}

export type NodeSampler = () => NodeSample | undefined;

/** The constant labels of `baton_node_info`. */
export interface NodeInfo {
  readonly node: string;
  readonly group: string;
  readonly version: string;
  /** The bus adapter's kind, e.g. `nats` or `postgres`. */
  readonly bus: string;
}

/**
 * Buckets of `baton_task_duration_seconds`, 1 ms to 60 s.
 */
export const TASK_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
]);

/**
 * Buckets of `baton_claim_duration_seconds`, 0.5 ms to 1 s.
 */
export const CLAIM_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
]);

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /**
   * Registry to register into. Pass prom-client's global `register` only if
   * you really want the process-wide one.
   * @default a new Registry owned by this node
   */
  readonly registry?: Registry;
  /**
   * Also collect prom-client's default process metrics (`process_*`,
   * `nodejs_*`, kept under their conventional names, without the prefix).
   * The node's entrypoint turns this on; tests with many nodes leave it off.
   * @default false
   */
  readonly defaultMetrics?: boolean;
  /**
   * How long task counts behind `baton_tasks` are reused, in milliseconds.
   * @default 5000
   */
  readonly taskCountsTtlMs?: number;
  /** Sets `baton_node_info` at once (see {@link BatonMetrics.setNodeInfo}). */
  readonly nodeInfo?: NodeInfo;
  /**
   * Monotonic clock for the task-count cache, in milliseconds.
   * @default performance.now
   */
  readonly now?: () => number;
}

/**
 * A node's metrics: the prom-client objects, typed by their label names,
 * plus helpers that keep related metrics consistent.
 */
export interface BatonMetrics {
  /** The registry every metric below is registered in; serve it on `/metrics`. */
  readonly registry: Registry;
  readonly tasksEnqueued: Counter<'type'>;
  readonly tasksCompleted: Counter<'type' | 'status'>;
  readonly taskRetries: Counter<'type'>;
  readonly tasksDeadLettered: Counter<'type'>;
  readonly tasksPruned: Counter<'status'>;
  readonly tasksUnhandled: Gauge<'type' | 'queue'>;
  readonly staleWritesRejected: Counter<'kind'>;
  readonly nodeIdConflicts: Counter;
  readonly submissionsRejected: Counter<'reason'>;
  readonly busMessagesDropped: Counter<'subject_kind' | 'reason'>;
  readonly busReconnects: Counter;
  readonly taskCountFailures: Counter;
  readonly tasks: Gauge<'status'>;
  readonly workerPoolActive: Gauge;
  readonly workerPoolCapacity: Gauge;
  readonly groupMembers: Gauge<'state'>;
  readonly leader: Gauge<'group'>;
  readonly leaderTerm: Gauge<'group'>;
  /** Recorded per batch (see batch-histogram.ts); read through the registry. */
  readonly taskDuration: BatchHistogram<'type' | 'status'>;
  readonly claimDuration: Histogram;
  readonly nodeInfo: Gauge<'node' | 'group' | 'version' | 'bus'>;

  /**
   * Records the end of one attempt: `baton_tasks_completed_total{type,status}`
   * and `baton_task_duration_seconds{type,status}`, plus
   * `baton_task_retries_total` for `retry` and `baton_tasks_dead_lettered_total`
   * for `dead_letter`. Use this rather than the counters one by one.
   */
  recordOutcome(type: string, status: TaskOutcome, durationSeconds: number): void;
  /** `recordOutcome` for a batch of attempts of one type that ended the same way. */
  recordOutcomes(type: string, status: TaskOutcome, durationsSeconds: readonly number[]): void;
  /**
   * Counts a task enqueued through this node, labelled with its type. Types
   * come from submitters, so only the first {@link MAX_ENQUEUED_TYPE_LABELS}
   * distinct ones get a series of their own; the rest count under
   * {@link OTHER_TYPE_LABEL}, and the number of series stays bounded.
   */
  recordEnqueued(type: string): void;
  /** Counts a write refused by the attempt or term fence. */
  recordStaleWrite(kind: StaleWriteKind): void;
  /** Sets `baton_group_members`; a state missing from `counts` is set to 0. */
  setMembers(counts: Readonly<Partial<Record<MemberState, number>>>): void;
  /**
   * Installs what `baton_worker_pool_active`, `baton_worker_pool_capacity`
   * and `baton_group_members` read at scrape time: the node's own state
   * (undefined, or a sampler returning undefined: the gauges keep their values).
   */
  setNodeSampler(sampler: NodeSampler | undefined): void;
  /** Sets `baton_leader{group}` (1 when this node bears the token) and its term. */
  setLeader(group: string, isTokenBearer: boolean, term: number): void;
  /** Replaces the labels of `baton_node_info` (value 1). */
  setNodeInfo(info: NodeInfo): void;
  /**
   * Installs the query behind `baton_tasks{status}`; `undefined` removes it
   * (the gauge is then empty). Results are cached for `taskCountsTtlMs` and
   * never queried twice at once.
   */
  setTaskCountsSource(source: TaskCountsSource | undefined): void;
  /** Task counts through the same cache (for the dashboard API). */
  taskCounts(): Promise<TaskCountsReading>;
}

const OUTCOMES: ReadonlySet<string> = new Set<TaskOutcome>([
  'completed',
  'retry',
  'dead_letter',
  'cancelled',
]);

/** Whether a task status is an attempt's outcome, as `recordOutcome` counts them. */
export const isTaskOutcome = (status: string): status is TaskOutcome => OUTCOMES.has(status);
const MEMBER_STATES: readonly MemberState[] = ['alive', 'suspect', 'gone'];

/** Distinct task types `baton_tasks_enqueued_total` labels by name. */
export const MAX_ENQUEUED_TYPE_LABELS = 200;
/** The `type` label of enqueued tasks beyond those. */
export const OTHER_TYPE_LABEL = '(other)';
const STALE_KINDS: readonly StaleWriteKind[] = ['attempt', 'term'];

/**
 * Creates a node's metrics in its own registry.
 *
 * @example
 * const metrics = createMetrics({ nodeInfo: { node: 'n1', group: 'g', version: '0.1.0', bus: 'nats' } });
 * metrics.setTaskCountsSource(() => store.tasks.counts());
 * metrics.recordEnqueued('email');
 * const end = metrics.claimDuration.startTimer(); await claim(); end();
 * metrics.recordOutcome('email', 'completed', 0.012);
 */
export function createMetrics(options: MetricsOptions = {}): BatonMetrics {
  const registry = options.registry ?? new Registry();
  const registers = [registry];
  const cache = new TaskCountsCache({
    ...(options.taskCountsTtlMs !== undefined && { ttlMs: options.taskCountsTtlMs }),
    ...(options.now !== undefined && { now: options.now }),
  });

  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Counter<L>({ name, help, labelNames, registers });
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Gauge<L>({ name, help, labelNames, registers });
  // The node's own state, read at scrape time (see setNodeSampler).
  let sampleNode: NodeSampler | undefined;
  const sampled = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    read: (gauge: Gauge<L>, sample: NodeSample) => void,
  ) =>
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers,
      collect() {
        const sample = sampleNode?.();
        if (sample) read(this, sample);
      },
    });

  const taskCountFailures = new Counter({
    name: 'baton_task_counts_failures_total',
    help: 'Task count queries behind baton_tasks that failed (the last good counts are served).',
    registers,
    // Waits for the same (shared) count query as baton_tasks, so one scrape
    // shows the failure it caused.
    async collect() {
      await cache.get();
    },
  });
  const tasks = new Gauge<'status'>({
    name: 'baton_tasks',
    help: 'Tasks in the group by status, read from PostgreSQL at scrape time and cached.',
    labelNames: ['status'],
    registers,
    async collect() {
      const reading = await cache.get();
      this.reset();
      for (const [status, count] of Object.entries(reading.counts ?? {})) {
        this.set({ status }, count);
      }
    },
  });

  /** The label children of recordOutcome, by outcome and type. */
  const outcomeSeries = new Map<
    string,
    { completed: { inc(n?: number): void }; duration: HistogramSeries }
  >();

  const enqueuedSeries = new Map<string, { inc(n?: number): void }>();
  let otherEnqueued: { inc(n?: number): void } | undefined;

  const metrics: Omit<
    BatonMetrics,
    | 'recordOutcome'
    | 'recordOutcomes'
    | 'recordEnqueued'
    | 'recordStaleWrite'
    | 'setMembers'
    | 'setNodeSampler'
    | 'setLeader'
    | 'setNodeInfo'
    | 'setTaskCountsSource'
    | 'taskCounts'
  > = {
    registry,
    tasksEnqueued: counter('baton_tasks_enqueued_total', 'Tasks enqueued through this node.', [
      'type',
    ]),
    tasksCompleted: counter(
      'baton_tasks_completed_total',
      'Attempts finished on this node, by outcome (completed, retry, dead_letter, cancelled).',
      ['type', 'status'],
    ),
    taskRetries: counter(
      'baton_task_retries_total',
      'Attempts that failed and were scheduled for a retry.',
      ['type'],
    ),
    tasksDeadLettered: counter(
      'baton_tasks_dead_lettered_total',
      'Tasks moved to the dead letter state (attempts exhausted or a non-retryable error).',
      ['type'],
    ),
    tasksUnhandled: gauge(
      'baton_tasks_unhandled',
      'Tasks due for over a minute whose type and queue no live node handles, as the token bearer last counted them (a sample of at most 10,000 due tasks; the 20 largest).',
      ['type', 'queue'],
    ),
    tasksPruned: counter(
      'baton_tasks_pruned_total',
      'Finished tasks deleted past their retention by this node (as the token bearer), by status.',
      ['status'],
    ),
    staleWritesRejected: counter(
      'baton_stale_writes_rejected_total',
      'Writes refused because their attempt or leadership term was stale (the fence at work).',
      ['kind'],
    ),
    nodeIdConflicts: counter(
      'baton_node_id_conflicts_total',
      'Heartbeats that found this node id written by another live process since the last one.',
      [],
    ),
    submissionsRejected: counter(
      'baton_submissions_rejected_total',
      'Task submissions refused before anything was stored, by error code.',
      ['reason'],
    ),
    busMessagesDropped: counter(
      'baton_bus_messages_dropped_total',
      'Bus messages dropped: received and undecodable, invalid or without a reply subject, or not sent (disconnected; publish failed).',
      ['subject_kind', 'reason'],
    ),
    busReconnects: counter(
      'baton_bus_reconnects_total',
      'Reconnections of the bus to its server.',
      [],
    ),
    taskCountFailures,
    tasks,
    workerPoolActive: sampled(
      'baton_worker_pool_active',
      'Handlers running on this node now.',
      [],
      (g, s) => g.set(s.poolActive),
    ),
    workerPoolCapacity: sampled(
      'baton_worker_pool_capacity',
      'Handlers this node may run at once (its concurrency limit).',
      [],
      (g, s) => g.set(s.poolCapacity),
    ),
    groupMembers: sampled(
      'baton_group_members',
      "Members of the group in this node's view, by state.",
      ['state'],
      (g, s) => {
        for (const state of MEMBER_STATES) g.set({ state }, s.members[state] ?? 0);
      },
    ),
    leader: gauge(
      'baton_leader',
      '1 while this node bears the leadership token of the group, else 0.',
      ['group'],
    ),
    leaderTerm: gauge(
      'baton_leader_term',
      'The leadership term this node last saw for the group.',
      ['group'],
    ),
    taskDuration: new BatchHistogram<'type' | 'status'>({
      name: 'baton_task_duration_seconds',
      help: 'Handler run time of an attempt, by task type and outcome.',
      labelNames: ['type', 'status'],
      buckets: [...TASK_DURATION_BUCKETS],
      registers,
    }),
    claimDuration: new Histogram({
      name: 'baton_claim_duration_seconds',
      help: 'Time of one batched claim query against PostgreSQL.',
      buckets: [...CLAIM_DURATION_BUCKETS],
      registers,
    }),
    nodeInfo: gauge('baton_node_info', 'Identity of this node; the value is always 1.', [
      'node',
      'group',
      'version',
      'bus',
    ]),
  };

  // Known label values start at 0, so rates and "fence exercised" checks work
  // before the first event.
  for (const kind of STALE_KINDS) metrics.staleWritesRejected.inc({ kind }, 0);
  for (const state of MEMBER_STATES) metrics.groupMembers.set({ state }, 0);

  const result: BatonMetrics = {
    ...metrics,
    recordOutcome(type, status, durationSeconds) {
      result.recordOutcomes(type, status, [durationSeconds]);
    },
    recordOutcomes(type, status, durationsSeconds) {
      const n = durationsSeconds.length;
      if (n === 0) return;
      const key = `${status}\u0000${type}`;
      let series = outcomeSeries.get(key);
      if (!series) {
        if (!isTaskOutcome(status)) throw new TypeError(`unknown task outcome: ${String(status)}`);
        // Label lookups hash the labels on every call; the hot path keeps the children.
        series = {
          completed: metrics.tasksCompleted.labels({ type, status }),
          duration: metrics.taskDuration.series({ type, status }),
        };
        outcomeSeries.set(key, series);
      }
      series.completed.inc(n);
      const { duration } = series;
      for (let i = 0; i < n; i++) {
        const seconds = durationsSeconds[i]!;
        if (seconds >= 0) duration.observe(seconds);
      }
      if (status === 'retry') metrics.taskRetries.inc({ type }, n);
      if (status === 'dead_letter') metrics.tasksDeadLettered.inc({ type }, n);
    },
    recordEnqueued(type) {
      let counter = enqueuedSeries.get(type);
      if (!counter && enqueuedSeries.size < MAX_ENQUEUED_TYPE_LABELS) {
        counter = metrics.tasksEnqueued.labels({ type });
        enqueuedSeries.set(type, counter);
      }
      (
        counter ?? (otherEnqueued ??= metrics.tasksEnqueued.labels({ type: OTHER_TYPE_LABEL }))
      ).inc();
    },
    recordStaleWrite(kind) {
      metrics.staleWritesRejected.inc({ kind });
    },
    setNodeSampler(sampler) {
      sampleNode = sampler;
    },
    setMembers(counts) {
      for (const state of MEMBER_STATES) metrics.groupMembers.set({ state }, counts[state] ?? 0);
    },
    setLeader(group, isTokenBearer, term) {
      metrics.leader.set({ group }, isTokenBearer ? 1 : 0);
      metrics.leaderTerm.set({ group }, term);
    },
    setNodeInfo(info) {
      metrics.nodeInfo.reset();
      metrics.nodeInfo.set(
        { node: info.node, group: info.group, version: info.version, bus: info.bus },
        1,
      );
    },
    setTaskCountsSource(source) {
      cache.setSource(
        source &&
          (async () => {
            try {
              return await source();
            } catch (error) {
              taskCountFailures.inc();
              throw error;
            }
          }),
      );
    },
    taskCounts: () => cache.get(),
  };

  if (options.nodeInfo) result.setNodeInfo(options.nodeInfo);
  if (options.defaultMetrics === true) collectDefaultMetrics({ register: registry });
  return result;
}
