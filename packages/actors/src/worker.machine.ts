/**
 * The worker: claims tasks in batches, runs them as `run` child actors under
 * a node-wide and per-type concurrency limit, completes successes in
 * batches, and drains on request. See docs/actors.md.
 */
import {
  and,
  assign,
  enqueueActions,
  fromPromise,
  raise,
  setup,
  type DoneActorEvent,
  type ErrorActorEvent,
} from 'xstate';
import { claimRound, planClaims, type ClaimRoundInput, type ClaimRoundOutput } from './claim.js';
import { exponentialMs, messageOf, NEVER_MS } from './options.js';
import { notifyReady } from './parent.js';
import {
  silentLogger,
  type AttemptRef,
  type BatchOutcome,
  type ClaimedTask,
  type CompletionRef,
  type StorePort,
} from './ports.js';
import { runMachine, type RunInput } from './run.machine.js';
import { Lane, type LaneRun } from './worker.lane.js';
import {
  actorIdOf,
  ChildIds,
  compileWorkerConfig,
  countCompletions,
  countSettled,
  type WorkerInput,
  type WorkerStats,
  type RunEntry,
  type WorkerContext,
  type WorkerEvent,
} from './worker.types.js';

function isErrorEvent(event: WorkerEvent): event is ErrorActorEvent {
  return event.type.startsWith('xstate.error.actor.');
}

const runKey = (ref: AttemptRef) => `run:${ref.id}:${ref.attempt}`;

function withoutKey<V>(map: ReadonlyMap<string, V>, key: string): ReadonlyMap<string, V> {
  if (!map.has(key)) return map;
  const next = new Map(map);
  next.delete(key);
  return next;
}

/**
 * Completion writers are children `flush.<slot>`, a slot per writer: ids
 * reused, not numbered per batch (see ChildIds for why).
 */
const FLUSH_PREFIX = 'flush.';
const flushSlot = (actorId: string) => Number(actorId.slice(FLUSH_PREFIX.length));
function freeFlushSlot(flushing: ReadonlyMap<number, unknown>): number {
  let slot = 0;
  while (flushing.has(slot)) slot++;
  return slot;
}

function isFlushDone(event: WorkerEvent): event is DoneActorEvent<readonly BatchOutcome[]> {
  return event.type.startsWith('xstate.done.actor.');
}

const inFlight = (ctx: WorkerContext) => ctx.runs.size;

/** Runs in flight and slots held for direct starts, by what they count against. */
function occupied(ctx: WorkerContext): { readonly type: string }[] {
  const out: { type: string }[] = [...ctx.runs.values()];
  for (const type of ctx.reserved.values()) out.push({ type });
  return out;
}

function runInput(context: WorkerContext, task: ClaimedTask): RunInput {
  const handler = context.handlers.lookup(task.type);
  return {
    task,
    handler,
    store: context.store,
    logger: context.logger,
    leaseMs: context.config.leaseMs,
    timeoutMs: handler?.timeoutMs ?? context.config.defaultTimeoutMs,
    writeAttempts: context.config.writeAttempts,
    writeRetryMs: context.config.writeRetryMs,
  };
}

/** When an inline run still running gets its actor: half of the earlier of lease/3 and its timeout after it started. */
function checkAt(context: WorkerContext, run: LaneRun): number {
  let ms = Math.floor(context.config.leaseMs / 3);
  if (run.timeoutMs !== undefined) ms = Math.min(ms, run.timeoutMs);
  return run.startedAt + Math.max(1, Math.floor(ms / 2));
}

const LANE_CHECK = 'lane.check';

/**
 * Keeps one `LANE.CHECK` timer for all inline runs: sets it for `due` unless
 * the one still set (`current`; undefined once it has fired) comes no later.
 * One timer however many batches run: a timer per batch would pile up under
 * a stream of direct starts.
 */
function scheduleLaneCheck(
  context: WorkerContext,
  enqueue: {
    cancel: (id: string) => void;
    raise: (event: WorkerEvent, options: { id: string; delay: number }) => void;
    assign: (values: Partial<WorkerContext>) => void;
  },
  current: number | undefined,
  due: number | undefined,
): void {
  if (due === undefined || (current !== undefined && current <= due)) return;
  if (current !== undefined) enqueue.cancel(LANE_CHECK);
  const delay = Math.max(0, due - context.config.now());
  enqueue.raise({ type: 'LANE.CHECK' }, { id: LANE_CHECK, delay });
  enqueue.assign({ laneCheckAt: due });
}

/** The earliest check among inline runs still running. */
function nextLaneCheck(context: WorkerContext, runs: readonly LaneRun[]): number | undefined {
  let due: number | undefined;
  for (const run of runs) {
    if (run.settled !== undefined || run.actor) continue;
    const at = checkAt(context, run);
    if (due === undefined || at < due) due = at;
  }
  return due;
}

/*
 * The per-task bodies of the batch actions are functions of their own: an
 * action runs once per batch, too rarely for V8 to optimize it, so a loop
 * body left inline in it stays interpreted (it was 18% of the node's CPU in
 * the burn-down), while a function called once per task is optimized.
 */

/** Starts one claimed task's handler inline and records its run in `runs`. */
function startInline(
  context: WorkerContext,
  worker: Parameters<Lane['start']>[0],
  task: ClaimedTask,
  startedAt: number,
  runs: Map<string, RunEntry>,
): LaneRun {
  const key = runKey(task);
  const handler = context.handlers.lookup(task.type);
  const lane = context.lane.start(worker, {
    key,
    task,
    handler,
    timeoutMs: handler?.timeoutMs ?? context.config.defaultTimeoutMs,
    store: context.store,
    leaseMs: context.config.leaseMs,
    logger: context.logger,
    startedAt,
  });
  runs.set(key, { id: task.id, attempt: task.attempt, type: task.type, lane });
  return lane;
}

/** The completion of an inline run whose handler simply returned; undefined otherwise. */
function plainSuccess(run: LaneRun): CompletionRef | undefined {
  const { settled } = run;
  if (!settled?.ok || run.work !== undefined) return undefined;
  return { id: run.task.id, attempt: run.task.attempt, result: settled.result };
}

type RunSpawner = (
  src: 'run',
  options: { id: string; input: RunInput },
) => NonNullable<LaneRun['actor']>;

/**
 * An assigner that gives inline runs their run actors (see worker.lane.ts);
 * the run records keep the actor, so the context itself is unchanged.
 */
function adopt(runs: readonly LaneRun[]) {
  return ({ context, spawn }: { context: WorkerContext; spawn: RunSpawner }) => {
    const now = context.config.now();
    for (const run of runs) {
      const elapsedMs = Math.max(0, now - run.startedAt);
      const leaseElapsedMs = Math.max(0, now - (run.leaseExtendedAt ?? run.startedAt));
      if (run.actor || !context.runs.has(run.key)) continue;
      run.actorId ??= context.runIds.take();
      run.actor = spawn('run', {
        id: run.actorId,
        input: {
          ...runInput(context, run.task),
          adopted: {
            promise: run.promise,
            controller: run.controller,
            work: run.work,
            elapsedMs,
            leaseElapsedMs,
          },
        },
      });
    }
    return {};
  };
}

/** Inline runs among `keys` that have no actor yet. */
function inlineRuns(context: WorkerContext, keys?: readonly string[]): LaneRun[] {
  const entries: (RunEntry | undefined)[] = keys
    ? keys.map((k) => context.runs.get(k))
    : [...context.runs.values()];
  const out: LaneRun[] = [];
  for (const entry of entries) if (entry?.lane && !entry.lane.actor) out.push(entry.lane);
  return out;
}

/** The parts of `enqueueActions`' enqueue that the helpers below use. */
interface Enqueue {
  assign: (assigner: ReturnType<typeof adopt>) => void;
  stopChild: (id: string) => void;
}

/**
 * Gives inline runs their actors in this step, their ids taken at once, so
 * that events enqueued after this call can be sent to them.
 */
function adoptNow(context: WorkerContext, enqueue: Pick<Enqueue, 'assign'>, runs: LaneRun[]) {
  if (runs.length === 0) return;
  for (const run of runs) run.actorId ??= context.runIds.take();
  enqueue.assign(adopt(runs));
}

/** Stops a run's actor; its id is free again. */
function stopRunActor(context: WorkerContext, enqueue: Pick<Enqueue, 'stopChild'>, id: string) {
  enqueue.stopChild(id);
  context.runIds.give(id);
}

/**
 * Slots neither running, held for a direct start, nor spoken for by the
 * claim round in flight (its plan's limit: it may bring that many).
 */
const freeSlots = (ctx: WorkerContext) =>
  ctx.config.concurrency - inFlight(ctx) - ctx.reserved.size - (ctx.claimPlan?.limit ?? 0);

/** How many tasks of `type` the claim round in flight may still bring. */
function claimable(ctx: WorkerContext, type: string): number {
  let n = 0;
  for (const call of ctx.claimPlan?.calls ?? []) if (call.types.includes(type)) n += call.limit;
  return Math.min(n, ctx.claimPlan?.limit ?? 0);
}

/** Successes not yet written: queued, and in the batches being written. */
function pendingCompletions(ctx: WorkerContext): number {
  let n = ctx.queuedCompletions.length;
  for (const batch of ctx.flushing.values()) n += batch.length;
  return n;
}

/**
 * Every writer is busy and a full batch per writer waits behind them: claims
 * pause until the writes catch up, so finished runs cannot pile up unwritten
 * (and outlive their leases) when the database is slow.
 */
const completionsBehind = (ctx: WorkerContext) =>
  ctx.flushing.size >= ctx.config.completionWriters &&
  ctx.queuedCompletions.length >= ctx.config.completionBatchSize * ctx.config.completionWriters;

export const workerMachine = setup({
  types: {
    input: {} as WorkerInput,
    context: {} as WorkerContext,
    events: {} as WorkerEvent,
    output: {} as WorkerStats,
  },
  actors: {
    run: runMachine,
    claimRound: fromPromise<ClaimRoundOutput, ClaimRoundInput>(({ input }) => claimRound(input)),
    completeMany: fromPromise<
      readonly BatchOutcome[],
      { store: StorePort; refs: readonly CompletionRef[] }
    >(({ input }) => input.store.completeMany(input.refs)),
    release: fromPromise<number, { store: StorePort; refs: readonly AttemptRef[]; nodeId: string }>(
      ({ input }) => input.store.release(input.refs, input.nodeId),
    ),
  },
  delays: {
    pollInterval: ({ context }) => context.config.pollIntervalMs,
    claimRetry: ({ context }) =>
      exponentialMs(
        context.claimErrors,
        context.config.claimRetryMs,
        context.config.pollIntervalMs,
      ),
    completionFlush: ({ context }) => context.config.completionFlushMs,
    flushRetry: ({ context }) => context.config.claimRetryMs,
    drainGrace: ({ context }) => Math.min(context.drainGraceMs, NEVER_MS),
    closeTimeout: ({ context }) => context.config.closeTimeoutMs,
  },
  guards: {
    hasCapacity: ({ context }) => freeSlots(context) > 0 && !completionsBehind(context),
    shouldClaim: ({ context }) =>
      !completionsBehind(context) &&
      ((context.wakePending && freeSlots(context) > 0) ||
        (context.backlog &&
          freeSlots(context) >=
            Math.min(context.config.refillThreshold, context.config.concurrency))),
    forOurQueue: ({ context, event }) =>
      event.type !== 'WAKE' || event.queue === undefined || event.queue === context.config.queue,
    drainRequested: ({ context }) => context.drainRequested,
    /** A direct start fits: a free slot, the type's own limit, writes keeping up. */
    canReserve: ({ context, event }) => {
      if (event.type !== 'DIRECT.RESERVE' || context.drainRequested) return false;
      if (freeSlots(context) <= 0 || completionsBehind(context)) return false;
      const handler = context.handlers.lookup(event.taskType);
      if (!handler) return false;
      if (handler.concurrency === undefined) return true;
      const busy = occupied(context).filter((r) => r.type === event.taskType).length;
      return busy + claimable(context, event.taskType) < handler.concurrency;
    },
    /** No runs, and no slot held for a direct start whose write is still in flight. */
    noRuns: ({ context }) => inFlight(context) === 0 && context.reserved.size === 0,
    /** The drain's grace is over: runs were aborted. */
    aborted: ({ context }) => context.aborted,
    hasQueuedCompletions: ({ context }) => context.queuedCompletions.length > 0,
    completionBatchFull: ({ context }) =>
      context.queuedCompletions.length >= context.config.completionBatchSize,
    hasCompletionWriter: ({ context }) =>
      context.queuedCompletions.length > 0 &&
      context.flushing.size < context.config.completionWriters,
    completionsWritten: ({ context }) =>
      context.queuedCompletions.length === 0 && context.flushing.size === 0,
    nothingToRelease: ({ context }) => context.toRelease.length === 0,
  },
  actions: {
    startRuns: enqueueActions(({ context, enqueue, self }, tasks: readonly ClaimedTask[]) => {
      const runs = new Map(context.runs);
      if (context.config.inlineRuns) {
        const startedAt = context.config.now();
        const started: LaneRun[] = [];
        for (const task of tasks) started.push(startInline(context, self, task, startedAt, runs));
        enqueue.assign({ runs });
        scheduleLaneCheck(context, enqueue, context.laneCheckAt, nextLaneCheck(context, started));
        return;
      }
      for (const task of tasks) {
        const actorId = context.runIds.take();
        runs.set(runKey(task), { id: task.id, attempt: task.attempt, type: task.type, actorId });
        enqueue.spawnChild('run', { id: actorId, input: runInput(context, task) });
      }
      enqueue.assign({ runs });
    }),
    settleInline: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'LANE.SETTLED') return;
      let runs: Map<string, RunEntry> | undefined;
      const completions: CompletionRef[] = [];
      const handOver: LaneRun[] = [];
      for (const run of event.runs) {
        if (run.actor || context.runs.get(run.key)?.lane !== run) continue;
        const completion = plainSuccess(run);
        if (completion) {
          runs ??= new Map(context.runs);
          runs.delete(run.key);
          completions.push(completion);
        } else {
          // Failed, or completes with its work: the run actor writes it.
          handOver.push(run);
        }
      }
      if (runs) {
        enqueue.assign({ runs, queuedCompletions: context.queuedCompletions.concat(completions) });
      }
      if (handOver.length > 0) enqueue.assign(adopt(handOver));
    }),
    settleRun: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'RUN.SETTLED') return;
      const key = runKey(event.ref);
      const entry = context.runs.get(key);
      const runs = new Map(context.runs);
      runs.delete(key);
      const { outcome } = event;
      enqueue.assign({
        runs,
        stats: countSettled(context.stats, outcome),
        ...(outcome.kind === 'succeeded' && {
          queuedCompletions: [
            ...context.queuedCompletions,
            { ...event.ref, result: outcome.result },
          ],
        }),
        ...(outcome.kind === 'abandoned' && { toRelease: [...context.toRelease, event.ref] }),
      });
      const actorId = entry && actorIdOf(entry);
      if (actorId !== undefined) stopRunActor(context, enqueue, actorId);
      if (outcome.kind === 'stale' || outcome.kind === 'write_failed') {
        context.store.forget?.(event.ref);
      }
    }),
    forgetCrashedRun: enqueueActions(({ context, event, enqueue }) => {
      if (!isErrorEvent(event)) return;
      const actorId = event.actorId;
      let key: string | undefined;
      let entry: RunEntry | undefined;
      for (const [k, e] of context.runs) if (actorIdOf(e) === actorId) [key, entry] = [k, e];
      if (key === undefined || entry === undefined) return;
      context.logger.error('run crashed; its lease will expire', {
        run: key,
        error: messageOf(event.error),
      });
      const runs = new Map(context.runs);
      runs.delete(key);
      enqueue.assign({
        runs,
        stats: { ...context.stats, writeErrors: context.stats.writeErrors + 1 },
      });
      stopRunActor(context, enqueue, actorId);
      context.store.forget?.(entry);
    }),
    cancelRun: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'CANCEL') return;
      const targets = [...context.runs.values()].filter((run) => run.id === event.taskId);
      adoptNow(context, enqueue, inlineRuns(context, targets.map(runKey)));
      for (const run of targets) enqueue.sendTo(actorIdOf(run)!, { type: 'CANCEL' });
    }),
    abortRuns: enqueueActions(({ context, enqueue }) => {
      enqueue.assign({ aborted: true });
      adoptNow(context, enqueue, inlineRuns(context));
      for (const run of context.runs.values()) enqueue.sendTo(actorIdOf(run)!, { type: 'ABORT' });
    }),
    /** Moves the next batch of queued successes to a free writer. */
    startFlush: enqueueActions(({ context, enqueue }) => {
      const size = context.config.completionBatchSize;
      const refs = context.queuedCompletions.slice(0, size);
      const slot = freeFlushSlot(context.flushing);
      const flushing = new Map(context.flushing).set(slot, refs);
      enqueue.assign({
        queuedCompletions: context.queuedCompletions.slice(size),
        flushing,
      });
      enqueue.spawnChild('completeMany', {
        id: `${FLUSH_PREFIX}${slot}`,
        input: { store: context.store, refs },
      });
    }),
    // A finished writer is stopped explicitly: a spawned child that is done
    // stays among the worker's children until it is.
    flushWritten: enqueueActions(({ context, event, enqueue }) => {
      if (!isFlushDone(event)) return;
      const flushing = new Map(context.flushing);
      flushing.delete(flushSlot(event.actorId));
      enqueue.assign({ flushing, stats: countCompletions(context.stats, event.output) });
      enqueue.stopChild(event.actorId);
    }),
    /** A failed write's batch goes back to the front of the queue. */
    flushFailed: enqueueActions(({ context, event, enqueue }) => {
      if (!isErrorEvent(event)) return;
      const slot = flushSlot(event.actorId);
      const refs = context.flushing.get(slot) ?? [];
      const flushing = new Map(context.flushing);
      flushing.delete(slot);
      enqueue.assign({
        flushing,
        queuedCompletions: refs.concat(context.queuedCompletions),
        stats: { ...context.stats, writeErrors: context.stats.writeErrors + 1 },
      });
      enqueue.stopChild(event.actorId);
    }),
    logError: ({ context }, params: { message: string; error: unknown }) =>
      context.logger.error(params.message, {
        node: context.config.nodeId,
        error: messageOf(params.error),
      }),
  },
}).createMachine({
  id: 'worker',
  context: ({ input }) => {
    const config = compileWorkerConfig(input);
    return {
      config,
      store: input.store,
      handlers: input.handlers,
      logger: input.logger ?? silentLogger,
      lane: new Lane(config.now),
      laneCheckAt: undefined,
      runs: new Map(),
      claimPlan: undefined,
      aborted: false,
      wakePending: false,
      backlog: false,
      claimErrors: 0,
      drainRequested: false,
      drainGraceMs: config.drainGraceMs,
      queuedCompletions: [],
      reserved: new Map(),
      flushing: new Map(),
      runIds: new ChildIds('run.'),
      toRelease: [],
      stats: {
        claimed: 0,
        completed: 0,
        failed: 0,
        deadLettered: 0,
        timedOut: 0,
        cancelled: 0,
        stale: 0,
        released: 0,
        claimErrors: 0,
        writeErrors: 0,
      },
    };
  },
  entry: notifyReady('worker'),
  type: 'parallel',
  on: {
    'RUN.SETTLED': { actions: 'settleRun' },
    'LANE.SETTLED': { actions: 'settleInline' },
    'LANE.ADOPT': {
      actions: enqueueActions(({ context, event, enqueue }) => {
        const runs = inlineRuns(context, [event.key]);
        adoptNow(context, enqueue, runs);
        for (const run of runs) {
          for (const early of run.early.splice(0)) enqueue.sendTo(run.actorId!, early);
        }
      }),
    },
    // The earliest check is due: runs past their check get actors; the timer
    // is set again for the next one, if any run is still inline.
    'LANE.CHECK': {
      actions: enqueueActions(({ context, enqueue }) => {
        const now = context.config.now();
        const due: LaneRun[] = [];
        const later: LaneRun[] = [];
        for (const run of inlineRuns(context)) {
          if (run.settled !== undefined) continue;
          (checkAt(context, run) <= now ? due : later).push(run);
        }
        if (due.length > 0) enqueue.assign(adopt(due));
        enqueue.assign({ laneCheckAt: undefined });
        scheduleLaneCheck(context, enqueue, undefined, nextLaneCheck(context, later));
      }),
    },
    'xstate.error.actor.*': { actions: 'forgetCrashedRun' },
    CANCEL: { actions: 'cancelRun' },
    // A direct start's task is stored running and leased to this node: it runs
    // here whatever the intake is doing (a drain waits for it like any run),
    // unless the drain's grace is over: then it is given back uncharged with
    // the aborted runs, as they are.
    'DIRECT.STARTED': [
      {
        guard: 'aborted',
        actions: assign(({ context, event }) => ({
          reserved: withoutKey(context.reserved, event.key),
          toRelease: [...context.toRelease, { id: event.task.id, attempt: event.task.attempt }],
          stats: { ...context.stats, claimed: context.stats.claimed + 1 },
        })),
      },
      {
        actions: [
          { type: 'startRuns', params: ({ event }) => [event.task] },
          assign(({ context, event }) => ({
            reserved: withoutKey(context.reserved, event.key),
            stats: { ...context.stats, claimed: context.stats.claimed + 1 },
          })),
        ],
      },
    ],
    'DIRECT.RELEASE': {
      actions: assign(({ context, event }) => ({
        reserved: withoutKey(context.reserved, event.key),
      })),
    },
  },
  output: ({ context }) => context.stats,
  states: {
    intake: {
      initial: 'accepting',
      states: {
        accepting: {
          on: {
            WAKE: { guard: 'forOurQueue', actions: assign({ wakePending: true }) },
            'DIRECT.RESERVE': {
              guard: 'canReserve',
              actions: assign(({ context, event }) => ({
                reserved: new Map(context.reserved).set(event.key, event.taskType),
              })),
            },
            DRAIN: {
              actions: assign({
                drainRequested: true,
                drainGraceMs: ({ context, event }) => event.graceMs ?? context.config.drainGraceMs,
              }),
            },
          },
          initial: 'claiming',
          states: {
            idle: {
              always: [
                { guard: 'drainRequested', target: '#worker.intake.draining' },
                { guard: 'shouldClaim', target: 'claiming' },
              ],
              after: {
                pollInterval: [
                  { guard: 'hasCapacity', target: 'claiming' },
                  { target: 'idle', reenter: true },
                ],
              },
            },
            claiming: {
              // The plan is kept while the round is out: what it may bring counts
              // against the free slots (see freeSlots, canReserve).
              entry: assign(({ context }) => ({
                wakePending: false,
                claimPlan: planClaims(context.config, context.handlers, occupied(context)),
              })),
              invoke: {
                src: 'claimRound',
                input: ({ context }) => ({
                  store: context.store,
                  config: context.config,
                  plan: context.claimPlan ?? { limit: 0, calls: [] },
                }),
                onDone: {
                  target: 'idle',
                  actions: [
                    assign({ claimPlan: undefined }),
                    { type: 'startRuns', params: ({ event }) => event.output.tasks },
                    assign(({ context, event }) => ({
                      claimErrors: 0,
                      backlog: event.output.full,
                      stats: {
                        ...context.stats,
                        claimed:
                          context.stats.claimed + event.output.tasks.length + event.output.stale,
                        stale: context.stats.stale + event.output.stale,
                        claimErrors:
                          context.stats.claimErrors + (event.output.error === undefined ? 0 : 1),
                      },
                    })),
                    ({ context, event }) => {
                      if (event.output.error === undefined) return;
                      context.logger.error('a claim call failed; the round runs what it claimed', {
                        node: context.config.nodeId,
                        error: messageOf(event.output.error),
                      });
                    },
                  ],
                },
                onError: {
                  target: 'backoff',
                  actions: [
                    {
                      type: 'logError',
                      params: ({ event }) => ({ message: 'claim failed', error: event.error }),
                    },
                    assign(({ context }) => ({
                      claimPlan: undefined,
                      claimErrors: context.claimErrors + 1,
                      stats: { ...context.stats, claimErrors: context.stats.claimErrors + 1 },
                    })),
                  ],
                },
              },
            },
            backoff: {
              always: { guard: 'drainRequested', target: '#worker.intake.draining' },
              after: { claimRetry: 'claiming' },
            },
          },
        },
        draining: {
          initial: 'waiting',
          states: {
            waiting: {
              always: [
                { guard: and(['noRuns', 'nothingToRelease']), target: 'finishing' },
                { guard: 'noRuns', target: 'releasing' },
              ],
              after: { drainGrace: 'aborting' },
            },
            aborting: {
              entry: 'abortRuns',
              always: [
                { guard: and(['noRuns', 'nothingToRelease']), target: 'finishing' },
                { guard: 'noRuns', target: 'releasing' },
              ],
            },
            releasing: {
              invoke: {
                src: 'release',
                input: ({ context }) => ({
                  store: context.store,
                  refs: context.toRelease,
                  nodeId: context.config.nodeId,
                }),
                onDone: {
                  target: 'finishing',
                  actions: assign(({ context, event }) => ({
                    toRelease: [],
                    stats: { ...context.stats, released: context.stats.released + event.output },
                  })),
                },
                onError: {
                  target: 'finishing',
                  actions: {
                    type: 'logError',
                    params: ({ event }) => ({
                      message: 'release failed; the leases will expire',
                      error: event.error,
                    }),
                  },
                },
              },
            },
            finishing: {
              always: { guard: 'completionsWritten', target: '#worker.intake.stopped' },
              after: {
                closeTimeout: {
                  target: '#worker.intake.stopped',
                  actions: {
                    type: 'logError',
                    params: {
                      message: 'completions left unwritten at shutdown',
                      error: 'close timeout',
                    },
                  },
                },
              },
            },
          },
        },
        stopped: { type: 'final', entry: raise({ type: 'COMPLETIONS.CLOSE' }) },
      },
    },
    completions: {
      initial: 'idle',
      on: {
        'COMPLETIONS.CLOSE': '.closed',
        'xstate.done.actor.flush.*': { actions: 'flushWritten' },
        'xstate.error.actor.flush.*': {
          target: '.retrying',
          actions: [
            'flushFailed',
            {
              type: 'logError',
              params: ({ event }) => ({
                message: 'completeMany failed; retrying',
                error: isErrorEvent(event) ? event.error : undefined,
              }),
            },
          ],
        },
      },
      states: {
        idle: { always: { guard: 'hasQueuedCompletions', target: 'collecting' } },
        collecting: {
          always: {
            guard: and(['completionBatchFull', 'hasCompletionWriter']),
            target: 'idle',
            actions: 'startFlush',
          },
          // Due: straight to a free writer, else wait for one in `due`.
          after: {
            completionFlush: [
              { guard: 'hasCompletionWriter', target: 'idle', actions: 'startFlush' },
              { target: 'due' },
            ],
          },
        },
        /** The batch is due; it goes as soon as a writer is free. */
        due: {
          always: { guard: 'hasCompletionWriter', target: 'idle', actions: 'startFlush' },
        },
        retrying: { after: { flushRetry: 'idle' } },
        closed: {
          type: 'final',
          // A write still in flight at the close timeout may fail: counted, not retried.
          on: { 'xstate.error.actor.flush.*': { actions: 'flushFailed' } },
        },
      },
    },
  },
});

/** A status summary of a worker snapshot's context. */
export function summarizeWorker(context: WorkerContext) {
  return {
    inFlight: inFlight(context),
    concurrency: context.config.concurrency,
    queue: context.config.queue,
    reserved: context.reserved.size,
    pendingCompletions: pendingCompletions(context),
    completionWrites: context.flushing.size,
    ...context.stats,
  };
}
