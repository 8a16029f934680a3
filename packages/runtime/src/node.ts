/**
 * A Baton node: config compiled once, the store and the bus opened, the
 * supervisor (with worker, scheduler and watchdog) started, and the node's
 * own subjects served: submission, status. `await using` shuts it down.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { createActor, type Actor, type ActorRef, type SnapshotFrom } from 'xstate';
import pkg from '../package.json' with { type: 'json' };
import {
  summarizeWatchdog,
  summarizeWorker,
  supervisorMachine,
  type SupervisorOutput,
  type WatchdogContext,
  type WorkerContext,
  type WorkerEvent,
  type workerMachine,
} from '@baton/actors';
import {
  createScheduleStore,
  createStore,
  type NodeStore,
  type PreviousBeat,
  type Store,
  type TaskStatus,
} from '@baton/store';
import type { Bus, BusSubscription } from './bus/bus.js';
import { encodeAs, detectEncoding, encodeMessage, encodeMessageWith } from './bus/codec.js';
import { groupSubjects, type GroupSubjects } from './bus/subjects.js';
import { actorLogger, busPort, heartbeatPort, isDisconnected } from './adapters.js';
import { openBus, startStreamIntake, type StreamIntake } from './bus-factory.js';
import { createClient, type BatonClient } from './client.js';
import {
  checkService,
  coordinatedService,
  retentionService,
  UNHANDLED_PLAN,
  unhandledTasksService,
  scheduleFirer,
  type ServiceDefinition,
} from './coordination.js';
import { scheduleCalendar } from './schedule/spec.js';
import { schedulerApi } from './schedules.js';
import { EnqueueBatcher, type DirectStarts } from './enqueue-batcher.js';
import { compileConfig, ConfigError, type CompiledConfig, type NodeOptions } from './config.js';
import { Handlers, type HandlerFn, type HandlerOptions } from './handlers.js';
import {
  createHealthCheck,
  createLogger,
  createMetrics,
  LoopMonitor,
  startHttpServer,
  type BatonMetrics,
  type HttpServerHandle,
  type Logger,
  type MemberState,
  type NodeSample,
} from './observability/index.js';
import { pgPoolConfig } from './pg-config.js';
import { retryDelayMs } from './schedule/policies.js';
import { nodeStatus, type NodeStatus, type SubmitStreamState } from './status.js';
import { errorCode, handleSubmission } from './submit.js';
import { TrackedStore, type TaskEventItem } from './tracked-store.js';

export const VERSION: string = pkg.version;

export type NodeLifecycle = 'created' | 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

/** How a node ended. */
export interface NodeExit {
  readonly status: 'stopped' | 'failed';
  readonly reason: string | null;
}

/** Extra parts for embedding and tests. */
export interface NodeDeps {
  /** A logger to use instead of the one the config describes. */
  readonly logger?: Logger;
}

/** The coordinated services every node runs (see coordination.ts): their names are taken. */
const BUILT_IN_SERVICES = new Set(['baton.schedules', 'baton.retention', 'baton.unhandled']);

export class BatonNode implements AsyncDisposable {
  readonly config: CompiledConfig;
  readonly handlers: Handlers;
  readonly logger: Logger;
  readonly metrics: BatonMetrics;
  #lifecycle: NodeLifecycle = 'created';
  #store: Store | undefined;
  #control: Store | undefined;
  /** This process, in its heartbeat rows: tells another process beating under the same id. */
  readonly #instance = `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
  #conflictLoggedAt = -Infinity;
  #bus: Bus | undefined;
  #supervisor: Actor<typeof supervisorMachine> | undefined;
  #tracked: TrackedStore | undefined;
  #http: HttpServerHandle | undefined;
  #intake: StreamIntake | undefined;
  /** Kept after a stop (the intake is then gone): what the node had. */
  #submitStream: SubmitStreamState = 'pending';
  #client: BatonClient | undefined;
  readonly #subscriptions: BusSubscription[] = [];
  /** The status subjects': kept through a drain, until the node closes. */
  readonly #statusSubscriptions: BusSubscription[] = [];
  readonly #services = new Map<string, ServiceDefinition>();
  #role: { role: 'bearer' | 'standby'; term: number | null } = { role: 'standby', term: null };
  readonly #loop: LoopMonitor;
  readonly #startedAt = Date.now();
  readonly #exit: Promise<NodeExit>;
  /** The start under way, if any; a shutdown meanwhile sets `#stopRequested`. */
  #starting: Promise<void> | undefined;
  #stopRequested = false;
  #resolveExit!: (exit: NodeExit) => void;
  #shutdown: Promise<NodeExit> | undefined;
  #subjects: GroupSubjects;

  constructor(options: NodeOptions, deps: NodeDeps = {}) {
    this.config = compileConfig(options);
    this.handlers = new Handlers(this.config.worker.timeoutMs);
    this.logger =
      deps.logger ??
      createLogger({
        level: this.config.logLevel,
        nodeId: this.config.nodeId,
        groupId: this.config.groupId,
      });
    this.metrics = createMetrics({
      defaultMetrics: true,
      nodeInfo: {
        node: this.config.nodeId,
        group: this.config.groupId,
        version: VERSION,
        bus: this.config.bus,
      },
    });
    this.#loop = new LoopMonitor({
      stallThresholdMs: Math.max(30_000, this.config.worker.leaseMs),
      idleSilenceMs: this.config.worker.pollIntervalMs * 5 + 5_000,
    });
    this.#subjects = groupSubjects(this.config.groupId);
    this.#exit = new Promise((resolve) => (this.#resolveExit = resolve));
  }

  get id(): string {
    return this.config.nodeId;
  }

  get lifecycle(): NodeLifecycle {
    return this.#lifecycle;
  }

  /** Resolves when the node has ended, by `shutdown()` or by a failure. */
  get exited(): Promise<NodeExit> {
    return this.#exit;
  }

  get store(): Store {
    if (!this.#store) throw new Error('the node is not started');
    return this.#store;
  }

  get bus(): Bus {
    if (!this.#bus) throw new Error('the node is not started');
    return this.#bus;
  }

  /** The typed client over this node's store and bus. */
  get client(): BatonClient {
    if (!this.#client) throw new Error('the node is not started');
    return this.#client;
  }

  /** The URL of /health, /ready and /metrics, when HTTP is served. */
  get httpUrl(): string | null {
    return this.#http?.url ?? null;
  }

  /**
   * Registers the handler of a task type (before `start()`).
   *
   * @example
   * node.handle<{ to: string }>('email.send', async (ctx) => {
   *   await sendMail(ctx.payload.to, { signal: ctx.signal });
   * }, { concurrency: 5, timeoutMs: 10_000 });
   */
  handle<P = unknown>(type: string, fn: HandlerFn<P>, options?: HandlerOptions): this {
    if (this.#lifecycle !== 'created') throw new Error('register handlers before start()');
    this.handlers.add(type, fn as HandlerFn, options);
    return this;
  }

  /**
   * Registers a coordinated (warm-backup) service: `execute` runs only on the
   * token bearer of the group, every `trigger.interval` seconds, with the
   * term as fencing token and a signal aborted the moment the node stops
   * being the bearer.
   *
   * @example
   * node.service('billing.sweep', {
   *   trigger: { interval: 5 },
   *   execute: async ({ term, signal, fenced }) => {
   *     await fenced((tx) => tx.query('update invoices set swept = true where due < now()'));
   *   },
   * });
   */
  service(name: string, definition: ServiceDefinition): this {
    if (this.#lifecycle !== 'created') throw new Error('register services before start()');
    checkService(name, definition);
    if (this.#services.has(name) || BUILT_IN_SERVICES.has(name)) {
      throw new Error(`a service named ${name} is already registered`);
    }
    this.#services.set(name, definition);
    return this;
  }

  /** This node's role in the warm-backup election, and its term. */
  get role(): { role: 'bearer' | 'standby'; term: number | null } {
    return this.#role;
  }

  /** Connects, migrates, starts the actors and serves the node's subjects. */
  async start(): Promise<void> {
    if (this.#lifecycle !== 'created')
      throw new Error(`cannot start a node that is ${this.#lifecycle}`);
    this.#lifecycle = 'starting';
    this.#starting = this.#open();
    try {
      await this.#starting;
    } catch (error) {
      await this.#stopActors();
      this.#lifecycle = this.#stopRequested ? 'stopped' : 'failed';
      await this.#close();
      throw error;
    }
  }

  /**
   * Refuses to start under a node id that a live process of the group is
   * beating under: two processes with one id would share its token, its
   * leases and its heartbeat row (the token would change hands at every
   * renewal). A fresh row may be a process that has just ended: it is
   * watched for a liveness interval, and refused only if it beats again.
   */
  async #claimNodeId(nodes: NodeStore): Promise<void> {
    const { nodeId, groupId, heartbeatMs, livenessMs } = this.config;
    const first = await nodes.member(nodeId, groupId);
    if (!first || first.ageMs >= livenessMs) return;
    // Until the row would count as silent, and at least two heartbeats.
    const watchMs = Math.max(2 * heartbeatMs, livenessMs - first.ageMs);
    for (let waited = 0; waited < watchMs; waited += heartbeatMs) {
      await new Promise((resolve) => setTimeout(resolve, heartbeatMs));
      this.#unlessStopped();
      const now = await nodes.member(nodeId, groupId);
      if (!now) return;
      if (now.lastHeartbeat.getTime() !== first.lastHeartbeat.getTime()) {
        throw new ConfigError(
          'nodeId',
          `"${nodeId}" is in use by a live node of group "${groupId}" (${now.instance ?? 'a process'} beat ${now.ageMs} ms ago): give every node its own id`,
          nodeId,
        );
      }
    }
  }

  /** Another live process beats under this node's id (see heartbeatPort): said loudly, at most every 10 s. */
  #nodeIdConflict(other: PreviousBeat): void {
    this.metrics.nodeIdConflicts.inc();
    const now = Date.now();
    if (now - this.#conflictLoggedAt < 10_000) return;
    this.#conflictLoggedAt = now;
    this.logger.error(
      { instance: this.#instance, other: other.instance },
      'another live process uses this node id: give every node its own id (BATON_NODE_ID); until then they take the token from each other',
    );
  }

  /** A shutdown came while the node was starting: the start unwinds at its next step. */
  #unlessStopped(): void {
    if (this.#stopRequested) throw new Error('the node was shut down while it was starting');
  }

  /**
   * After a failed start: the actors, if they were started, shut down as in a
   * drain (the watchdog gives the token back, the node says it leaves), within
   * the grace period, then are stopped whatever their state.
   */
  async #stopActors(): Promise<void> {
    const supervisor = this.#supervisor;
    if (!supervisor || supervisor.getSnapshot().status !== 'active') return;
    supervisor.send({ type: 'SHUTDOWN', graceMs: 0 });
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.config.shutdownGraceMs + 5000);
    });
    await Promise.race([this.#exit, limit]);
    clearTimeout(timer);
    supervisor.stop();
  }

  async #open(): Promise<void> {
    const { config, logger } = this;
    const store = createStore({
      connection: pgPoolConfig(config.database, `baton:${config.nodeId}`),
      schema: config.database.schema,
      maxPayloadBytes: config.maxPayloadBytes,
    });
    this.#store = store;
    const pool = store.pool;
    pool.on('error', (error) => logger.warn({ err: error }, 'idle database connection failed'));
    await store.migrate();
    this.#unlessStopped();
    await this.#claimNodeId(store.nodes);
    this.#unlessStopped();
    // A NATS server that is down holds the start here (the client retries):
    // say so, rather than sit silent with no HTTP server yet.
    const waiting = config.nats
      ? setInterval(
          () =>
            logger.warn(
              { servers: [config.nats!.servers].flat().map((s) => s.replace(/\/\/[^@/]*@/, '//')) },
              'waiting for the NATS server to answer; the node starts when it does',
            ),
          3000,
        )
      : undefined;
    const bus = await openBus(config, pool).finally(() => clearInterval(waiting));
    this.#bus = bus;
    this.#unlessStopped();
    bus.onEvent((e) => {
      if (e.type === 'reconnected') this.metrics.busReconnects.inc();
      if (e.type !== 'handler-error')
        logger.info({ bus: bus.kind, event: e.type }, 'bus connection event');
    });
    const s = this.#subjects;
    // Items are packed once per array: a claim that starts its runs emits
    // `claimed` and `running` with the same one.
    let packedItems: readonly TaskEventItem[] | undefined;
    let packed: Uint8Array = new Uint8Array();
    const emit = (status: TaskStatus, tasks: readonly TaskEventItem[]) => {
      if (tasks !== packedItems) {
        packed = encodeMessage(tasks);
        packedItems = tasks;
      }
      bus
        .publish(
          s.taskEvent(status),
          encodeMessageWith({ status, node: config.nodeId, at: Date.now() }, 'tasks', packed),
        )
        .catch((error: unknown) =>
          this.metrics.busMessagesDropped.inc({
            subject_kind: 'events',
            reason: isDisconnected(error) ? 'disconnected' : 'publish_failed',
          }),
        );
    };
    const schedules = createScheduleStore(store, scheduleCalendar);
    this.#tracked = new TrackedStore(
      store.tasks,
      emit,
      this.metrics,
      this.#loop,
      {
        retryDelayMs: async (taskId, attempt) => {
          const tick = await schedules.forTask(taskId);
          const cfg = tick?.schedule.retryConfig;
          return cfg ? retryDelayMs(cfg, attempt) : undefined;
        },
        deadLettered: async (taskId) => {
          const outcome = await schedules.onTickFailed(taskId);
          if (outcome?.log) {
            logger.error(
              { schedule: outcome.scheduleId, task: taskId, action: outcome.action },
              'scheduled job failed',
            );
          }
        },
      },
      (task) =>
        logger.warn(
          { task: task.id, type: task.type, attempt: task.attempt, error: task.error },
          'task dead-lettered',
        ),
    );
    this.metrics.setTaskCountsSource(() => store.tasks.counts());
    this.#client = createClient({
      store,
      bus,
      groupId: config.groupId,
      scheduler: schedulerApi(schedules, config.groupId, () => undefined),
    });
    // The warm-backup control traffic (heartbeats, token renewals, fenced run
    // records) has a pool of its own, so a busy worker never delays a renewal.
    const control = createStore({
      connection: { ...pgPoolConfig(config.database, `baton-control:${config.nodeId}`), max: 3 },
      schema: config.database.schema,
    });
    this.#control = control;
    control.pool.on('error', (error) =>
      logger.warn({ err: error }, 'idle control connection failed'),
    );
    const coordination = {
      store: control,
      groupId: config.groupId,
      nodeId: config.nodeId,
      metrics: this.metrics,
    };
    const services = [
      scheduleFirer(schedules, {
        ...coordination,
        intervalMs: config.scheduleTickMs,
        logger: actorLogger(logger),
        wake: (queue) => {
          if (queue === config.worker.queue) this.#supervisor?.send({ type: 'WAKE', queue });
          bus
            .publish(
              s.dispatch(queue),
              encodeMessage({ queue, reason: 'due', from: config.nodeId }),
            )
            .catch(() => undefined); // a lost wake-up costs a poll interval, never a tick
        },
      }),
      retentionService(config.retention, {
        ...coordination,
        store,
        logger: actorLogger(logger),
      }),
      unhandledTasksService(UNHANDLED_PLAN, {
        store,
        metrics: this.metrics,
        logger: actorLogger(logger),
      }),
      // Users' fenced work runs on the node's pool, not the control pool: it
      // may take long, and must never hold a connection a renewal needs.
      ...[...this.#services].map(([name, def]) =>
        coordinatedService(name, def, { ...coordination, store }),
      ),
    ];
    const g = config.groupId;
    const leadership = {
      current: () => control.leadership.current(g),
      acquire: (o: {
        nodeId: string;
        observedTerm: number;
        leaseMs: number;
        reason?: string;
        onCompareAndSet?: () => void;
      }) => control.leadership.acquire({ ...o, groupId: g }),
      renew: (o: { nodeId: string; term: number; leaseMs: number }) =>
        control.leadership.renew({ ...o, groupId: g }),
      release: (o: { nodeId: string; term: number }) =>
        control.leadership.release({ ...o, groupId: g }),
    };

    /** Counts a bus message dropped, by its subject's kind (`baton.<group>.<kind>...`). */
    const dropped = (subject: string, reason: 'malformed' | 'disconnected') =>
      this.metrics.busMessagesDropped.inc({
        subject_kind: subject.split('.')[2] ?? 'unknown',
        reason,
      });
    const drop = (subject: string, reason: string) => {
      dropped(subject, 'malformed');
      logger.warn({ subject, reason }, 'dropped a malformed bus message');
    };
    const supervisor = createActor(supervisorMachine, {
      input: {
        nodeId: config.nodeId,
        store: this.#tracked,
        handlers: this.handlers,
        heartbeat: heartbeatPort(control.nodes, config.groupId, {
          instance: this.#instance,
          works: { queue: config.worker.queue, types: this.handlers.types() },
          conflict: (other) => this.#nodeIdConflict(other),
        }),
        bus: busPort(bus, drop, (subject) => dropped(subject, 'disconnected')),
        subjects: s,
        logger: actorLogger(logger),
        worker: {
          queue: config.worker.queue,
          concurrency: config.worker.concurrency,
          leaseMs: config.worker.leaseMs,
          pollIntervalMs: config.worker.pollIntervalMs,
          completionFlushMs: config.worker.completionFlushMs,
          defaultTimeoutMs: config.worker.timeoutMs,
          drainGraceMs: config.shutdownGraceMs,
        },
        scheduler: { queues: [config.worker.queue], rescueIntervalMs: config.rescueIntervalMs },
        watchdog: {
          heartbeatIntervalMs: config.heartbeatMs,
          livenessCheckIntervalMs: config.livenessMs,
          election: { leaseMs: config.livenessMs, heartbeatMs: config.heartbeatMs },
        },
        leadership,
        services,
        onRoleChange: (change) => {
          this.#role = { role: change.role, term: change.term };
          this.metrics.setLeader(g, change.role === 'bearer', change.term);
          // The bearer's own count: a standby shows none, not a stale one.
          if (change.role === 'standby') this.metrics.tasksUnhandled.reset();
          logger.info(
            { role: change.role, term: change.term, reason: change.reason },
            'warm-backup role',
          );
        },
      },
    });
    this.#supervisor = supervisor;
    this.metrics.setNodeSampler(() => this.#sample());
    supervisor.subscribe({
      complete: () =>
        void this.#ended(supervisor.getSnapshot().output ?? { status: 'stopped', reason: null }),
      error: (error) => void this.#ended({ status: 'failed', reason: String(error) }),
    });
    supervisor.start();
    await this.#serve(bus, store);
    this.#unlessStopped();
    await this.#whenRunning(supervisor);
    this.#unlessStopped();
    if (config.http) {
      this.#http = await startHttpServer({
        host: config.http.host,
        port: config.http.port,
        registry: this.metrics.registry,
        ready: () => this.#lifecycle === 'running',
        health: createHealthCheck({
          nodeId: config.nodeId,
          loop: this.#loop,
          database: () => pool.query('select 1'),
          bus: () => bus.status(),
        }),
        routes: {
          '/api/status': async () => ({ status: 200, body: this.status() }),
          '/api/counts': async () => ({ status: 200, body: await store.tasks.counts() }),
        },
      });
    }
    this.#unlessStopped();
    this.#lifecycle = 'running';
    logger.info(
      {
        bus: bus.kind,
        queue: config.worker.queue,
        types: this.handlers.types(),
        http: this.httpUrl,
      },
      'node running',
    );
  }

  /** Submission (one node per message: a queue group) and status (every node answers). */
  async #serve(bus: Bus, store: Store): Promise<void> {
    const s = this.#subjects;
    const { config } = this;
    const accepted = (queue: string) => {
      if (queue === config.worker.queue) this.#supervisor?.send({ type: 'WAKE', queue });
      this.#supervisor?.send({ type: 'TASKS_SUBMITTED', queue, count: 1 });
    };
    const batcher = new EnqueueBatcher(store.tasks, { direct: this.#directStarts() });
    const submitDeps = {
      typeOf: (subject: string) => s.typeOf(subject),
      enqueue: (input: Parameters<Store['tasks']['enqueue']>[0]) => batcher.enqueue(input),
      maxBodyBytes: Math.min(bus.status().maxPayload, config.maxPayloadBytes + 64 * 1024),
      accepted: (
        input: { type: string; queue?: string },
        result: { started?: boolean; duplicate: boolean },
      ) => {
        // A duplicate stored nothing: the task it names was counted and woken for.
        if (result.duplicate) return;
        this.metrics.recordEnqueued(input.type);
        // A direct start is already running here: nobody needs waking.
        if (!result.started) accepted(input.queue ?? 'default');
      },
      rejected: (error: unknown, replied: boolean, subject: string) => {
        // Labelled with the code the submitter was told.
        const code = errorCode(error);
        this.metrics.submissionsRejected.inc({ reason: code });
        // Bad input is the submitter's, and counted: one line, no stack. A
        // failure of the node's own (the database) keeps its stack.
        if (code === 'INTERNAL')
          this.logger.warn({ subject, replied, err: error }, 'submission not stored');
        else
          this.logger.info(
            { subject, code, replied, error: (error as Error).message },
            'submission refused',
          );
      },
    };
    this.#subscriptions.push(
      await bus.subscribe(s.submitAll, (msg) => handleSubmission(msg, submitDeps), {
        queue: 'baton-submit',
      }),
    );
    const answer = async (msg: Parameters<Parameters<Bus['subscribe']>[1]>[0]) => {
      const encoding = msg.data.length > 0 ? detectEncoding(msg.data) : 'msgpack';
      await msg.respond(encodeAs(encoding, this.status()));
    };
    // Status is answered until the node closes: a draining node is seen draining.
    this.#statusSubscriptions.push(await bus.subscribe(s.status, answer));
    this.#statusSubscriptions.push(await bus.subscribe(s.statusOf(config.nodeId), answer));
    this.#intake = await startStreamIntake(bus, config, submitDeps, this.logger);
    this.#submitStream = this.#intake.state;
  }

  /** What /metrics shows of the worker's pool and the watchdog's member view, read at scrape time. */
  #sample(): NodeSample | undefined {
    const children = this.#supervisor?.getSnapshot().children;
    if (!children) return undefined;
    // A child that failed to start has no context (or only part of one) to read.
    const context = <C>(id: 'worker' | 'watchdog', field: keyof C) => {
      const c = (children[id]?.getSnapshot() as { context?: C } | undefined)?.context;
      return c?.[field] === undefined ? undefined : c;
    };
    const worker = context<WorkerContext>('worker', 'runs');
    const watchdog = context<WatchdogContext>('watchdog', 'members');
    const members: Partial<Record<MemberState, number>> = {};
    for (const m of watchdog ? summarizeWatchdog(watchdog).members : []) {
      members[m.status] = (members[m.status] ?? 0) + 1;
    }
    return {
      poolActive: worker ? summarizeWorker(worker).inFlight : 0,
      poolCapacity: worker ? worker.config.concurrency : this.config.worker.concurrency,
      members,
    };
  }

  /**
   * Direct starts of submissions (see EnqueueBatcher): only for this node's
   * queue, due at once, while running, and within the worker's limits (the
   * worker decides, holding the slot under a key until the write is done).
   */
  #directStarts(): DirectStarts {
    const { config } = this;
    let seq = 0;
    const worker = () =>
      this.#supervisor?.getSnapshot().children.worker as
        ActorRef<SnapshotFrom<typeof workerMachine>, WorkerEvent> | undefined;
    return {
      start: {
        owner: config.nodeId,
        leaseMs: config.worker.leaseMs,
        queue: config.worker.queue,
        types: this.handlers.types(),
      },
      reserve: (input) => {
        if ((input.queue ?? 'default') !== config.worker.queue) return undefined;
        if (input.runAt !== undefined || input.delayMs !== undefined) return undefined;
        const w = worker();
        if (this.#lifecycle !== 'running' || !w || w.getSnapshot().status !== 'active') {
          return undefined;
        }
        const key = `direct:${++seq}`;
        w.send({ type: 'DIRECT.RESERVE', key, taskType: input.type });
        return w.getSnapshot().context.reserved.has(key) ? key : undefined;
      },
      // The handler starts first; its events and metrics follow (its
      // settlement reaches the tracked store no sooner than a microtask later).
      started: (key, task) => {
        worker()?.send({ type: 'DIRECT.STARTED', key, task });
        this.#tracked?.started([task]);
      },
      release: (key) => worker()?.send({ type: 'DIRECT.RELEASE', key }),
    };
  }

  async #whenRunning(supervisor: Actor<typeof supervisorMachine>): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        const snap = supervisor.getSnapshot();
        if (snap.matches('running')) return resolve();
        if (snap.status !== 'active' || snap.matches('failed')) {
          reject(new Error(`the node failed to start: ${snap.context.failure ?? snap.status}`));
        }
      };
      const sub = supervisor.subscribe({ next: check, error: reject, complete: check });
      check();
      void this.#exit.finally(() => sub.unsubscribe());
    });
  }

  /** This node's status: each actor's state and context summary. */
  status(): NodeStatus {
    const bus = this.#bus?.status();
    const base = {
      nodeId: this.config.nodeId,
      groupId: this.config.groupId,
      version: VERSION,
      lifecycle: this.#lifecycle,
      uptimeS: Math.round((Date.now() - this.#startedAt) / 1000),
      bus: {
        kind: bus?.kind ?? this.config.bus,
        connected: bus?.connected ?? false,
        reconnects: bus?.reconnects ?? 0,
        dropped: bus?.dropped ?? 0,
      },
      submitStream: this.#submitStream,
    };
    if (!this.#supervisor) throw new Error('the node is not started');
    return nodeStatus(this.#supervisor, base);
  }

  /**
   * Graceful shutdown: stop taking submissions and claims, let in-flight
   * tasks finish within `graceMs`, give the rest back without charging their
   * attempt, publish a leaving heartbeat, close everything.
   */
  shutdown(graceMs: number = this.config.shutdownGraceMs): Promise<NodeExit> {
    this.#shutdown ??= this.#drain(graceMs);
    return this.#shutdown;
  }

  async #drain(graceMs: number): Promise<NodeExit> {
    if (this.#lifecycle === 'created') {
      // Never started: it never will be (start() refuses a stopped node).
      this.#lifecycle = 'stopped';
      const exit = { status: 'stopped' as const, reason: null };
      this.#resolveExit(exit);
      return exit;
    }
    if (this.#lifecycle === 'starting') {
      // The start unwinds at its next step (it may wait on a server that is
      // down): give it the grace period, then close what it opened anyway.
      this.#stopRequested = true;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.#starting?.catch(() => undefined),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
      ]);
      clearTimeout(timer);
      // (Read through the getter: the await may have changed it.)
      if (this.lifecycle !== 'running') {
        await this.#stopActors();
        this.#lifecycle = 'stopped';
        await this.#close();
        return { status: 'stopped', reason: null };
      }
    }
    if (this.#lifecycle === 'running') this.#lifecycle = 'draining';
    // The supervisor resigns the token first (a standby takes it at once),
    // then drains the worker; meanwhile the node stops taking submissions.
    const supervisor = this.#supervisor;
    if (supervisor && supervisor.getSnapshot().status === 'active') {
      supervisor.send({ type: 'SHUTDOWN', graceMs });
    }
    await Promise.all([
      ...this.#subscriptions.splice(0).map((sub) => sub.unsubscribe().catch(() => undefined)),
      this.#intake?.stop().catch(() => undefined),
    ]);
    const exit = supervisor ? await this.#exit : { status: 'stopped' as const, reason: null };
    await this.#close();
    return exit;
  }

  #ended(exit: SupervisorOutput): void {
    this.#lifecycle = exit.status;
    if (exit.status === 'failed') this.logger.error({ reason: exit.reason }, 'node failed');
    this.#resolveExit(exit);
    if (exit.status === 'failed') void this.#close();
  }

  async #close(): Promise<void> {
    await Promise.all(
      [...this.#subscriptions.splice(0), ...this.#statusSubscriptions.splice(0)].map((sub) =>
        sub.unsubscribe().catch(() => undefined),
      ),
    );
    await this.#intake?.stop().catch(() => undefined);
    this.#intake = undefined;
    await this.#http?.close().catch(() => undefined);
    this.#http = undefined;
    await this.#bus?.close().catch(() => undefined);
    await this.#store?.close().catch(() => undefined);
    await this.#control?.close().catch(() => undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#lifecycle === 'created') return;
    await this.shutdown();
  }
}

/** Creates a node; the config is validated here (typed errors name the bad option). */
export function createNode(options: NodeOptions, deps?: NodeDeps): BatonNode {
  return new BatonNode(options, deps);
}
