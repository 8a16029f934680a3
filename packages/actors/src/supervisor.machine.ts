/**
 * The supervisor: the node's root actor. It starts the watchdog, the worker
 * and the scheduler in that order, routes bus hints to them, restarts a
 * crashed child with exponential backoff within an intensity limit, and runs
 * the lifecycle `starting -> running -> draining -> stopped | failed`.
 * See docs/actors.md.
 */
import { and, assign, enqueueActions, setup, stopChild, type AnyActorRef } from 'xstate';
import { compileService, coordinatedServiceMachine } from './coordinated.js';
import { holdsLease, type StepDownReason } from './election.js';
import { hintRouter } from './hints.js';
import { ActorConfigError, exponentialMs, intOption, messageOf } from './options.js';
import type { ChildName } from './parent.js';
import { silentLogger } from './ports.js';
import { schedulerMachine } from './scheduler.machine.js';
import type {
  RoleChange,
  SupervisorContext,
  SupervisorEvent,
  SupervisorInput,
  SupervisorOutput,
} from './supervisor.types.js';
import { watchdogMachine } from './watchdog.machine.js';
import type { WatchdogContext } from './watchdog.types.js';
import { workerMachine } from './worker.machine.js';
import type { WorkerContext } from './worker.types.js';

const CHILDREN: readonly ChildName[] = ['watchdog', 'worker', 'scheduler'];
const isChild = (id: unknown): id is ChildName => CHILDREN.includes(id as ChildName);

/** The worker's load, read from the supervisor's worker child, for the heartbeats. */
function workerLoad(self: AnyActorRef): { inFlight: number; concurrency: number } {
  const worker = (self.getSnapshot() as { children?: Record<string, AnyActorRef | undefined> })
    .children?.worker;
  // A worker that failed to start (its input refused) has no context to read.
  const context = (worker?.getSnapshot() as { context?: Partial<WorkerContext> } | undefined)
    ?.context;
  if (!context?.runs || !context.config) return { inFlight: 0, concurrency: 0 };
  return { inFlight: context.runs.size, concurrency: context.config.concurrency };
}

/** Whether the watchdog child says this node bears `term` on its local deadline (read synchronously). */
function leaseHeld(self: AnyActorRef, term: number): boolean {
  const watchdog = (self.getSnapshot() as { children?: Record<string, AnyActorRef | undefined> })
    .children?.watchdog;
  const snapshot = watchdog?.getSnapshot() as { context?: WatchdogContext } | undefined;
  const context = snapshot?.context;
  return context ? holdsLease(context.election, context.clock.now(), term) : false;
}

const serviceId = (name: string) => `service:${name}`;

/** Validates the coordinated services: unique names, and an election to run them under. */
function checkServices(input: SupervisorInput): void {
  const names = new Set<string>();
  for (const service of input.services ?? []) {
    compileService(service);
    if (names.has(service.name))
      throw new ActorConfigError('services', 'names must be unique', service.name);
    names.add(service.name);
  }
  if (names.size > 0 && (!input.leadership || !input.watchdog?.election)) {
    throw new ActorConfigError(
      'services',
      'need leadership and watchdog.election (they run only on the token bearer)',
      [...names].join(', '),
    );
  }
}

const live = (context: SupervisorContext, child: ChildName) =>
  context.children[child] === 'starting' || context.children[child] === 'up';

/** A draining step's way out: its child ended (done or crashed), marked stopped, on to `target`. */
function childEnded<C extends 'worker' | 'watchdog'>(child: C, target: string) {
  const exit = { target, actions: { type: 'markStopped' as const, params: child } };
  return { [`xstate.done.actor.${child}`]: exit, [`xstate.error.actor.${child}`]: exit } as Record<
    `xstate.done.actor.${C}` | `xstate.error.actor.${C}`,
    typeof exit
  >;
}

export const supervisorMachine = setup({
  types: {
    input: {} as SupervisorInput,
    context: {} as SupervisorContext,
    events: {} as SupervisorEvent,
    output: {} as SupervisorOutput,
  },
  actors: {
    watchdog: watchdogMachine,
    worker: workerMachine,
    scheduler: schedulerMachine,
    hintRouter,
    coordinated: coordinatedServiceMachine,
  },
  delays: {
    startTimeout: ({ context }) => context.startTimeoutMs,
    leaveTimeout: ({ context }) => context.leaveTimeoutMs,
    drainDeadline: ({ context }) =>
      (context.shutdownGraceMs ?? context.input.worker?.drainGraceMs ?? 30_000) +
      (context.input.worker?.closeTimeoutMs ?? 5000) +
      1000,
  },
  guards: {
    readyIs: ({ event }, child: ChildName) => event.type === 'CHILD.READY' && event.child === child,
    isChildCrash: ({ event }) => 'actorId' in event && isChild(event.actorId) && 'error' in event,
    restartAllowed: ({ context }) => {
      const since = context.clock.now() - context.restart.withinMs;
      return context.restarts.filter((r) => r.at > since).length < context.restart.maxRestarts;
    },
    workerGone: ({ context }) => !live(context, 'worker'),
    watchdogGone: ({ context }) => !live(context, 'watchdog'),
  },
  actions: {
    spawnWatchdog: enqueueActions(({ context, enqueue, self }) => {
      const { input } = context;
      enqueue.spawnChild('watchdog', {
        id: 'watchdog',
        input: {
          ...input.watchdog,
          nodeId: input.nodeId,
          heartbeat: input.heartbeat,
          bus: input.bus,
          subjects: input.subjects,
          clock: context.clock,
          logger: context.logger,
          load: () => workerLoad(self),
          ...(input.leadership ? { leadership: input.leadership } : {}),
        },
      });
      enqueue.assign({ children: { ...context.children, watchdog: 'starting' } });
    }),
    spawnWorker: enqueueActions(({ context, enqueue }) => {
      const { input } = context;
      enqueue.spawnChild('worker', {
        id: 'worker',
        input: {
          ...input.worker,
          nodeId: input.nodeId,
          store: input.store,
          handlers: input.handlers,
          logger: context.logger,
        },
      });
      enqueue.assign({ children: { ...context.children, worker: 'starting' } });
    }),
    spawnScheduler: enqueueActions(({ context, enqueue }) => {
      const { input } = context;
      enqueue.spawnChild('scheduler', {
        id: 'scheduler',
        input: {
          queues: [input.worker?.queue ?? 'default'],
          ...input.scheduler,
          nodeId: input.nodeId,
          store: input.store,
          bus: input.bus,
          subjects: input.subjects,
          logger: context.logger,
        },
      });
      enqueue.assign({ children: { ...context.children, scheduler: 'starting' } });
    }),
    markReady: assign({
      children: ({ context, event }) =>
        event.type === 'CHILD.READY' && context.children[event.child] === 'starting'
          ? { ...context.children, [event.child]: 'up' }
          : context.children,
    }),
    scheduleRestart: enqueueActions(({ context, event, enqueue }) => {
      if (!('actorId' in event) || !isChild(event.actorId) || !('error' in event)) return;
      const child = event.actorId;
      const now = context.clock.now();
      const since = now - context.restart.withinMs;
      const restarts = [...context.restarts.filter((r) => r.at > since), { child, at: now }];
      const n = restarts.filter((r) => r.child === child).length;
      const delay = exponentialMs(n, context.restart.baseDelayMs, context.restart.maxDelayMs);
      context.logger.error('child crashed; restarting', {
        child,
        delayMs: delay,
        error: messageOf(event.error),
      });
      enqueue.assign({ restarts, children: { ...context.children, [child]: 'restarting' } });
      enqueue.raise({ type: 'RESTART', child }, { delay, id: `restart.${child}` });
    }),
    recordFailure: assign({
      failure: ({ event }) =>
        'actorId' in event && 'error' in event
          ? `${String(event.actorId)} crashed beyond the restart limit: ${messageOf(event.error)}`
          : 'failed',
    }),
    stop: enqueueActions(({ context, enqueue }, child: ChildName) => {
      if (context.children[child] === 'not_started') return;
      enqueue(stopChild(child));
      enqueue.assign({ children: { ...context.children, [child]: 'stopped' } });
    }),
    markStopped: assign({
      children: ({ context }, child: ChildName) => ({ ...context.children, [child]: 'stopped' }),
    }),
    forward: enqueueActions(({ context, event, enqueue }) => {
      const to: ChildName | undefined =
        event.type === 'WAKE' || event.type === 'CANCEL'
          ? 'worker'
          : event.type === 'HEARTBEAT_RECEIVED'
            ? 'watchdog'
            : event.type === 'TASKS_SUBMITTED'
              ? 'scheduler'
              : undefined;
      if (to && live(context, to)) enqueue.sendTo(to, event);
    }),
    spawnServices: enqueueActions(({ context, enqueue, self }) => {
      for (const service of context.input.services ?? []) {
        enqueue.spawnChild('coordinated', {
          id: serviceId(service.name),
          input: {
            service,
            logger: context.logger,
            clock: context.clock,
            leaseHeld: (term: number) => leaseHeld(self, term),
          },
        });
      }
    }),
    /** A role change from the watchdog: remember it, tell the services, call the hook. */
    roleChanged: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'ELECTION.BEARER' && event.type !== 'ELECTION.STANDBY') return;
      const change: RoleChange =
        event.type === 'ELECTION.BEARER'
          ? { role: 'bearer', term: event.term, reason: 'acquired' }
          : { role: 'standby', term: event.term, reason: event.reason };
      enqueue.assign({ election: { role: change.role, term: change.term } });
      for (const service of context.input.services ?? [])
        enqueue.sendTo(serviceId(service.name), event);
      enqueue(() => callHook(context, change));
    }),
    /** The watchdog is gone (crash, stop) while this node was the bearer: the role is lost. */
    roleLost: enqueueActions(
      (
        { context, event, enqueue },
        params: { reason: StepDownReason; ifWatchdogCrashed?: true },
      ) => {
        const { reason } = params;
        const { role, term } = context.election;
        if (role !== 'bearer' || term === null) return;
        if (params.ifWatchdogCrashed && !('actorId' in event && event.actorId === 'watchdog'))
          return;
        const notice = { type: 'ELECTION.STANDBY', term, reason } as const;
        enqueue.assign({ election: { role: 'standby', term } });
        for (const service of context.input.services ?? [])
          enqueue.sendTo(serviceId(service.name), notice);
        enqueue(() => callHook(context, { role: 'standby', term, reason }));
      },
    ),
    logServiceError: ({ context, event }) => {
      if ('actorId' in event && 'error' in event)
        context.logger.error('coordinated service actor failed', {
          actor: String(event.actorId),
          error: messageOf(event.error),
        });
    },
    forwardYield: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'SERVICE.YIELD' && event.type !== 'YIELD') return;
      if (!live(context, 'watchdog')) return;
      enqueue.sendTo('watchdog', {
        type: 'YIELD',
        reason: event.type === 'SERVICE.YIELD' ? `${event.service}: ${event.reason}` : event.reason,
        cooldownMs: event.cooldownMs,
        term: event.term,
      });
    }),
  },
}).createMachine({
  id: 'supervisor',
  context: ({ input }) => {
    checkServices(input);
    return {
      input,
      clock: input.clock ?? performance,
      logger: input.logger ?? silentLogger,
      restart: {
        maxRestarts: intOption('restart.maxRestarts', input.restart?.maxRestarts, 5, 0),
        withinMs: intOption('restart.withinMs', input.restart?.withinMs, 60_000),
        baseDelayMs: intOption('restart.baseDelayMs', input.restart?.baseDelayMs, 200, 0),
        maxDelayMs: intOption('restart.maxDelayMs', input.restart?.maxDelayMs, 10_000, 0),
      },
      startTimeoutMs: intOption('startTimeoutMs', input.startTimeoutMs, 30_000),
      leaveTimeoutMs: intOption('leaveTimeoutMs', input.leaveTimeoutMs, 5000),
      children: { watchdog: 'not_started', worker: 'not_started', scheduler: 'not_started' },
      restarts: [],
      droppedHints: 0,
      shutdownGraceMs: undefined,
      failure: null,
      election: { role: null, term: null },
    };
  },
  entry: 'spawnServices',
  invoke: {
    id: 'hints',
    src: 'hintRouter',
    input: ({ context }) => ({
      bus: context.input.bus,
      subjects: context.input.subjects,
      queue: context.input.worker?.queue ?? 'default',
    }),
    onError: {
      actions: ({ context, event }) =>
        context.logger.error('bus subscriptions failed; the worker falls back to polling', {
          error: messageOf(event.error),
        }),
    },
  },
  on: {
    WAKE: { actions: 'forward' },
    CANCEL: { actions: 'forward' },
    HEARTBEAT_RECEIVED: { actions: 'forward' },
    TASKS_SUBMITTED: { actions: 'forward' },
    'HINT.INVALID': {
      actions: [
        assign({ droppedHints: ({ context }) => context.droppedHints + 1 }),
        ({ context, event }) =>
          context.logger.warn('malformed bus message dropped', {
            subject: event.subject,
            reason: event.reason,
          }),
      ],
    },
    'CHILD.READY': { actions: 'markReady' },
    'ELECTION.BEARER': { actions: 'roleChanged' },
    'ELECTION.STANDBY': { actions: 'roleChanged' },
    'SERVICE.YIELD': { actions: 'forwardYield' },
    YIELD: { actions: 'forwardYield' },
    RESTART: {
      actions: enqueueActions(({ event, enqueue }) => {
        enqueue(stopChild(event.child));
        if (event.child === 'watchdog') enqueue('spawnWatchdog');
        else if (event.child === 'worker') enqueue('spawnWorker');
        else enqueue('spawnScheduler');
      }),
    },
    'xstate.error.actor.*': [
      {
        guard: and(['isChildCrash', 'restartAllowed']),
        actions: [
          { type: 'roleLost', params: { reason: 'watchdog_stopped', ifWatchdogCrashed: true } },
          'scheduleRestart',
        ],
      },
      {
        guard: 'isChildCrash',
        target: '.failed',
        actions: [
          { type: 'roleLost', params: { reason: 'watchdog_stopped', ifWatchdogCrashed: true } },
          'recordFailure',
        ],
      },
      // A service actor never fails on its own (its runs' errors are caught); log, do not crash.
      { actions: 'logServiceError' },
    ],
    SHUTDOWN: {
      target: '.draining',
      actions: assign({ shutdownGraceMs: ({ event }) => event.graceMs }),
    },
  },
  output: ({ context }) => ({
    status: context.failure === null ? 'stopped' : 'failed',
    reason: context.failure,
  }),
  initial: 'starting',
  states: {
    starting: {
      initial: 'watchdog',
      after: {
        startTimeout: {
          target: 'failed',
          actions: assign({
            failure: ({ context }) => `start timed out after ${context.startTimeoutMs} ms`,
          }),
        },
      },
      states: {
        watchdog: {
          entry: 'spawnWatchdog',
          on: {
            'CHILD.READY': {
              guard: { type: 'readyIs', params: 'watchdog' },
              target: 'worker',
              actions: 'markReady',
            },
          },
        },
        worker: {
          entry: 'spawnWorker',
          on: {
            'CHILD.READY': {
              guard: { type: 'readyIs', params: 'worker' },
              target: 'scheduler',
              actions: 'markReady',
            },
          },
        },
        scheduler: {
          entry: 'spawnScheduler',
          on: {
            'CHILD.READY': {
              guard: { type: 'readyIs', params: 'scheduler' },
              target: '#supervisor.running',
              actions: 'markReady',
            },
          },
        },
      },
    },
    running: {},
    draining: {
      entry: [
        { type: 'stop', params: 'scheduler' },
        // Hand the token over at once, not after the worker's drain.
        enqueueActions(({ context, enqueue }) => {
          if (live(context, 'watchdog')) enqueue.sendTo('watchdog', { type: 'RESIGN' });
        }),
      ],
      on: {
        SHUTDOWN: {},
        RESTART: {},
        'xstate.error.actor.*': {
          guard: 'isChildCrash',
          actions: [
            { type: 'roleLost', params: { reason: 'watchdog_stopped', ifWatchdogCrashed: true } },
            // Gone: the drain does not wait for it (a LEAVE to it would go unanswered).
            { type: 'markStopped', params: ({ event }) => event.actorId as ChildName },
            ({ context, event }) =>
              context.logger.error('child crashed while draining', {
                child: String(event.actorId),
                error: messageOf(event.error),
              }),
          ],
        },
      },
      initial: 'worker',
      states: {
        worker: {
          entry: enqueueActions(({ context, enqueue }) => {
            if (live(context, 'worker'))
              enqueue.sendTo('worker', { type: 'DRAIN', graceMs: context.shutdownGraceMs });
          }),
          always: { guard: 'workerGone', target: 'leaving' },
          on: childEnded('worker', 'leaving'),
          after: {
            drainDeadline: { target: 'leaving', actions: { type: 'stop', params: 'worker' } },
          },
        },
        leaving: {
          entry: enqueueActions(({ context, enqueue }) => {
            if (live(context, 'watchdog')) enqueue.sendTo('watchdog', { type: 'LEAVE' });
          }),
          always: { guard: 'watchdogGone', target: '#supervisor.stopped' },
          on: childEnded('watchdog', '#supervisor.stopped'),
          after: { leaveTimeout: '#supervisor.stopped' },
        },
      },
    },
    stopped: { type: 'final', entry: { type: 'roleLost', params: { reason: 'shutdown' } } },
    failed: {
      type: 'final',
      entry: [
        { type: 'roleLost', params: { reason: 'watchdog_stopped' } },
        ({ context }) => context.logger.error('supervisor failed', { reason: context.failure }),
      ],
    },
  },
});

/** A status summary of a supervisor snapshot's context. */
export function summarizeSupervisor(context: SupervisorContext) {
  return {
    nodeId: context.input.nodeId,
    children: context.children,
    restarts: context.restarts.length,
    droppedHints: context.droppedHints,
    failure: context.failure,
    role: context.election.role,
    term: context.election.term,
  };
}

/** Calls the runtime's role-change hook; a throw is logged, never crosses the actor boundary. */
function callHook(context: SupervisorContext, change: RoleChange): void {
  const hook = context.input.onRoleChange;
  if (!hook) return;
  try {
    hook(change);
  } catch (error) {
    context.logger.error('onRoleChange hook threw', { ...change, error: messageOf(error) });
  }
}
