/**
 * Coordinated services (seed 000's warm backup, the listener form of seed
 * 001): a service's `execute` runs on an interval only while this node bears
 * the group's token. It gets the term (its fencing token) and an AbortSignal
 * that fires the moment the node stops being the bearer. A service that
 * keeps failing, or a run that hangs past its bound, makes the node yield the
 * token (Ballerina flaw 4: process liveness is not job health).
 *
 * One actor per service. The supervisor spawns them from `services` and
 * forwards the watchdog's `ELECTION.BEARER` / `ELECTION.STANDBY` to them; a
 * runtime may also run one on its own (`actor.on('yield', ...)`).
 * See docs/actors.md.
 */
import { assign, emit, fromPromise, setup } from 'xstate';
import type { ElectionBearerEvent, ElectionStandbyEvent } from './election.js';
import { ActorConfigError, intOption, messageOf } from './options.js';
import { toParent } from './parent.js';
import { silentLogger, type ClockPort, type Logger } from './ports.js';

/** What `execute` receives for one run. */
export interface CoordinatedRunContext {
  /** The term this node bears: the fencing token of every leader-only write. */
  readonly term: number;
  /** Aborted when the node stops being the bearer, on a hang, or on stop; `reason` is a {@link CoordinatedAbortedError}. */
  readonly signal: AbortSignal;
  /** Counts the runs of this service on this node, from 1. */
  readonly run: number;
  readonly logger: Logger;
}

/** A service that runs only on the token bearer. Durations are milliseconds. */
export interface CoordinatedService {
  /** Unique on the node. */
  readonly name: string;
  /** Time between the starts of two runs (runs never overlap). */
  readonly intervalMs: number;
  execute(context: CoordinatedRunContext): Promise<void>;
  /** Run at once when the node becomes the bearer, else after `intervalMs`. @default true */
  readonly runOnAcquire?: boolean;
  /** Failed runs in a row after which the node yields the token; 0 never yields. @default 3 */
  readonly maxConsecutiveFailures?: number;
  /** A run still going after this long is aborted and the node yields (at most 2147483647). @default 60000 */
  readonly hangTimeoutMs?: number;
  /** How long the node sits out after yielding. @default the election's `yieldCooldownMs` */
  readonly yieldCooldownMs?: number;
}

export type CoordinatedAbortReason = 'stepped_down' | 'hung' | 'term_changed' | 'stopped';

/** The `signal.reason` of an aborted coordinated run. */
export class CoordinatedAbortedError extends Error {
  override readonly name = 'CoordinatedAbortedError';
  readonly code = 'COORDINATED_ABORTED';
  constructor(
    readonly reason: CoordinatedAbortReason,
    readonly service: string,
    readonly term: number,
  ) {
    super(`coordinated service ${service} (term ${term}) aborted: ${reason}`);
  }
}

/** The service asks the node to give the token up (sent to the parent, and emitted as `yield`). */
export interface ServiceYieldEvent {
  readonly type: 'SERVICE.YIELD';
  readonly service: string;
  readonly term: number;
  readonly reason: 'failing' | 'hung';
  readonly cooldownMs?: number;
}

export interface CoordinatedInput {
  readonly service: CoordinatedService;
  readonly logger?: Logger;
  /** The actor's clock (run starts are measured on it). @default performance */
  readonly clock?: ClockPort;
  /**
   * Checked right before each run starts: does this node still bear `term`
   * on its local deadline? A run is skipped when not (the step-down event is
   * on its way). The supervisor reads the watchdog's snapshot.
   * @default always true
   */
  readonly leaseHeld?: (term: number) => boolean;
}

export interface CoordinatedStats {
  runs: number;
  succeeded: number;
  failed: number;
  aborted: number;
  skipped: number;
  yields: number;
}

export interface CoordinatedServiceContext {
  readonly service: CoordinatedService;
  readonly logger: Logger;
  readonly clock: ClockPort;
  readonly leaseHeld: (term: number) => boolean;
  readonly maxConsecutiveFailures: number;
  readonly hangTimeoutMs: number;
  term: number | null;
  controller: AbortController | null;
  /** When the last run started, on the actor's clock. */
  lastStartAt: number | null;
  consecutiveFailures: number;
  lastError: string | null;
  stats: CoordinatedStats;
}

export type CoordinatedEvent = ElectionBearerEvent | ElectionStandbyEvent;

interface RunInput {
  readonly service: CoordinatedService;
  readonly controller: AbortController;
  readonly term: number;
  readonly run: number;
  readonly logger: Logger;
}

/** Validates a service's options (names the bad one) and fills the defaults. */
export function compileService(service: CoordinatedService): {
  maxConsecutiveFailures: number;
  hangTimeoutMs: number;
} {
  const name = `services.${service.name}`;
  if (typeof service.name !== 'string' || service.name.length === 0)
    throw new ActorConfigError('services.name', 'must be a non-empty string', service.name);
  if (typeof service.execute !== 'function')
    throw new ActorConfigError(`${name}.execute`, 'must be a function', typeof service.execute);
  intOption(`${name}.intervalMs`, service.intervalMs, 0);
  if (service.yieldCooldownMs !== undefined)
    intOption(`${name}.yieldCooldownMs`, service.yieldCooldownMs, 0, 0);
  return {
    maxConsecutiveFailures: intOption(
      `${name}.maxConsecutiveFailures`,
      service.maxConsecutiveFailures,
      3,
      0,
    ),
    hangTimeoutMs: intOption(`${name}.hangTimeoutMs`, service.hangTimeoutMs, 60_000),
  };
}

const errorOf = ({ event }: { event: { error: unknown } }) => event.error;

/** The id of the invoked run in `executing`. */
const RUN_ID = 'run';

/** The run's own end (its promise settled) is what left `executing`. */
const runEnded = (eventType: string) =>
  eventType === `xstate.done.actor.${RUN_ID}` || eventType === `xstate.error.actor.${RUN_ID}`;

function abortReason(eventType: string): CoordinatedAbortReason {
  if (eventType === 'ELECTION.STANDBY') return 'stepped_down';
  if (eventType === 'ELECTION.BEARER') return 'term_changed';
  if (eventType.startsWith('xstate.after')) return 'hung';
  return 'stopped';
}

export const coordinatedServiceMachine = setup({
  types: {
    input: {} as CoordinatedInput,
    context: {} as CoordinatedServiceContext,
    events: {} as CoordinatedEvent,
    emitted: {} as Omit<ServiceYieldEvent, 'type'> & { type: 'yield' },
  },
  actors: {
    execute: fromPromise<void, RunInput>(({ input, signal }) => {
      const { controller, service, term } = input;
      // Stopping the actor aborts XState's signal: pass it on with a reason.
      signal.addEventListener('abort', () =>
        controller.abort(new CoordinatedAbortedError('stopped', service.name, term)),
      );
      try {
        return service.execute({
          term,
          signal: controller.signal,
          run: input.run,
          logger: input.logger,
        });
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
    }),
  },
  delays: {
    nextRun: ({ context }) =>
      context.lastStartAt === null
        ? context.service.intervalMs
        : Math.max(0, context.lastStartAt + context.service.intervalMs - context.clock.now()),
    hangTimeout: ({ context }) => context.hangTimeoutMs,
  },
  guards: {
    runOnAcquire: ({ context }) => context.service.runOnAcquire ?? true,
    leaseHeld: ({ context }) => context.term !== null && context.leaseHeld(context.term),
    newTerm: ({ context, event }) =>
      event.type === 'ELECTION.BEARER' && event.term !== context.term,
    tooManyFailures: ({ context }) =>
      context.maxConsecutiveFailures > 0 &&
      context.consecutiveFailures + 1 >= context.maxConsecutiveFailures,
  },
  actions: {
    setTerm: assign({
      term: ({ event }) => (event.type === 'ELECTION.BEARER' ? event.term : null),
      consecutiveFailures: 0,
      lastStartAt: null,
    }),
    clearTerm: assign({ term: null }),
    startRun: assign(({ context }) => ({
      controller: new AbortController(),
      lastStartAt: context.clock.now(),
      stats: { ...context.stats, runs: context.stats.runs + 1 },
    })),
    /** Leaving `executing` before the run ended aborts it (a run that ended needs nothing). */
    abortRun: ({ context, event }) => {
      const c = context.controller;
      if (!c || c.signal.aborted || runEnded(event.type)) return;
      c.abort(
        new CoordinatedAbortedError(
          abortReason(event.type),
          context.service.name,
          context.term ?? 0,
        ),
      );
    },
    /** A skipped run counts as this interval's tick: check again one interval later. */
    skipRun: assign({
      lastStartAt: ({ context }) => context.clock.now(),
      stats: ({ context }) => ({ ...context.stats, skipped: context.stats.skipped + 1 }),
    }),
    succeeded: assign({
      consecutiveFailures: 0,
      lastError: null,
      stats: ({ context }) => ({ ...context.stats, succeeded: context.stats.succeeded + 1 }),
    }),
    failed: assign(({ context }, error: unknown) => ({
      consecutiveFailures: context.consecutiveFailures + 1,
      lastError: messageOf(error),
      stats: {
        ...context.stats,
        failed: context.stats.failed + 1,
        aborted:
          error instanceof CoordinatedAbortedError
            ? context.stats.aborted + 1
            : context.stats.aborted,
      },
    })),
    countAborted: assign({
      stats: ({ context }) => ({ ...context.stats, aborted: context.stats.aborted + 1 }),
    }),
    askToYield: toParent<CoordinatedServiceContext, 'failing' | 'hung'>((context, reason) => {
      const { service } = context;
      const ask: ServiceYieldEvent = {
        type: 'SERVICE.YIELD',
        service: service.name,
        term: context.term ?? 0,
        reason,
        ...(service.yieldCooldownMs === undefined ? {} : { cooldownMs: service.yieldCooldownMs }),
      };
      context.logger.warn('coordinated service yields the token', {
        service: service.name,
        term: ask.term,
        reason,
        lastError: context.lastError,
      });
      return ask;
    }),
    emitYield: emit(({ context }, reason: 'failing' | 'hung') => ({
      type: 'yield' as const,
      service: context.service.name,
      term: context.term ?? 0,
      reason,
      ...(context.service.yieldCooldownMs === undefined
        ? {}
        : { cooldownMs: context.service.yieldCooldownMs }),
    })),
    countYield: assign({
      stats: ({ context }) => ({ ...context.stats, yields: context.stats.yields + 1 }),
    }),
  },
}).createMachine({
  id: 'coordinated',
  context: ({ input }) => {
    const { service } = input;
    return {
      service,
      logger: input.logger ?? silentLogger,
      clock: input.clock ?? performance,
      leaseHeld: input.leaseHeld ?? (() => true),
      ...compileService(service),
      term: null,
      controller: null,
      lastStartAt: null,
      consecutiveFailures: 0,
      lastError: null,
      stats: { runs: 0, succeeded: 0, failed: 0, aborted: 0, skipped: 0, yields: 0 },
    };
  },
  initial: 'standby',
  states: {
    standby: {
      on: { 'ELECTION.BEARER': { target: 'active', actions: 'setTerm' } },
    },
    active: {
      on: {
        'ELECTION.STANDBY': { target: 'standby', actions: 'clearTerm' },
        'ELECTION.BEARER': {
          guard: 'newTerm',
          target: 'active',
          reenter: true,
          actions: 'setTerm',
        },
      },
      initial: 'starting',
      states: {
        // The first run right after an acquisition skips the local lease check:
        // the grant that sent ELECTION.BEARER is fresh (and the watchdog's own
        // snapshot may not show it yet); the run's record is fenced by term anyway.
        starting: {
          always: [{ guard: 'runOnAcquire', target: 'executing' }, { target: 'waiting' }],
        },
        waiting: { after: { nextRun: 'due' } },
        /** The lease is checked on the local clock right before each run. */
        due: {
          always: [
            { guard: 'leaseHeld', target: 'executing' },
            { target: 'waiting', actions: 'skipRun' },
          ],
        },
        executing: {
          entry: 'startRun',
          exit: 'abortRun',
          invoke: {
            id: RUN_ID,
            src: 'execute',
            input: ({ context }) => ({
              service: context.service,
              controller: context.controller ?? new AbortController(),
              term: context.term ?? 0,
              run: context.stats.runs,
              logger: context.logger,
            }),
            onDone: { target: 'waiting', actions: 'succeeded' },
            onError: [
              {
                guard: 'tooManyFailures',
                target: 'yielded',
                actions: [
                  { type: 'failed', params: errorOf },
                  { type: 'askToYield', params: 'failing' },
                  { type: 'emitYield', params: 'failing' },
                  'countYield',
                ],
              },
              { target: 'waiting', actions: { type: 'failed', params: errorOf } },
            ],
          },
          after: {
            hangTimeout: {
              target: 'yielded',
              actions: [
                'countAborted',
                { type: 'askToYield', params: 'hung' },
                { type: 'emitYield', params: 'hung' },
                'countYield',
              ],
            },
          },
        },
        /** Asked the node to yield; waits for the step-down (or a new term). */
        yielded: {},
      },
    },
  },
});

/** A status summary of a coordinated service's context. */
export function summarizeCoordinated(context: CoordinatedServiceContext) {
  return {
    service: context.service.name,
    term: context.term,
    consecutiveFailures: context.consecutiveFailures,
    lastError: context.lastError,
    ...context.stats,
  };
}
