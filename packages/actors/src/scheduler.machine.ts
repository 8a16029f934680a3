/**
 * The scheduler: publishes dispatch wake-ups (hints) when tasks are
 * submitted and periodically for work that became due (retries, `runAt`),
 * and rescues expired leases. Recurring schedules come in a later issue, in
 * the `recurring` region. See docs/actors.md.
 */
import { assign, fromPromise, setup } from 'xstate';
import { intOption, messageOf } from './options.js';
import { notifyReady } from './parent.js';
import {
  silentLogger,
  type BusPort,
  type DispatchMessage,
  type Logger,
  type StorePort,
  type Subjects,
} from './ports.js';

/** Input of the scheduler. Durations are milliseconds. */
export interface SchedulerInput {
  readonly nodeId: string;
  readonly store: Pick<StorePort, 'rescueExpired'>;
  readonly bus: Pick<BusPort, 'publish'>;
  readonly subjects: Pick<Subjects, 'dispatch'>;
  readonly logger?: Logger;
  /** The queues to wake. @default ['default'] */
  readonly queues?: readonly string[];
  /** Wake-ups for work that became due. @default 1000 */
  readonly dueIntervalMs?: number;
  /** How often expired leases are rescued. @default 5000 */
  readonly rescueIntervalMs?: number;
  /** Most rescues per call; a full call is followed at once by another. @default 1000 */
  readonly rescueLimit?: number;
}

/** Counters of the scheduler, for the status subject. */
export interface SchedulerStats {
  wakeUps: number;
  publishErrors: number;
  rescued: number;
  rescueErrors: number;
}

export interface SchedulerContext {
  readonly nodeId: string;
  readonly store: Pick<StorePort, 'rescueExpired'>;
  readonly bus: Pick<BusPort, 'publish'>;
  readonly subjects: Pick<Subjects, 'dispatch'>;
  readonly logger: Logger;
  readonly queues: readonly string[];
  readonly dueIntervalMs: number;
  readonly rescueIntervalMs: number;
  readonly rescueLimit: number;
  /** Wake-ups waiting to be published, by queue, with their reason. */
  pending: Record<string, DispatchMessage['reason']>;
  /** The wake-ups being published. */
  publishing: readonly DispatchMessage[];
  /** The last rescue filled its limit: rescue again at once. */
  moreToRescue: boolean;
  stats: SchedulerStats;
}

export type SchedulerEvent =
  /** Tasks were committed on this node (the runtime's submit path). */
  | { type: 'TASKS_SUBMITTED'; queue?: string; count?: number }
  /** Publish a wake-up now, e.g. when a schedule fires (later issue). */
  | { type: 'DISPATCH'; queue?: string; reason: DispatchMessage['reason'] };

interface PublishInput {
  readonly bus: Pick<BusPort, 'publish'>;
  readonly subjects: Pick<Subjects, 'dispatch'>;
  readonly messages: readonly DispatchMessage[];
}

/** Publishes every message; resolves with how many failed (hints are never retried). */
async function publishAll({ bus, subjects, messages }: PublishInput): Promise<number> {
  const results = await Promise.allSettled(
    messages.map((m) => bus.publish(subjects.dispatch(m.queue), { ...m })),
  );
  return results.filter((r) => r.status === 'rejected').length;
}

export const schedulerMachine = setup({
  types: {
    input: {} as SchedulerInput,
    context: {} as SchedulerContext,
    events: {} as SchedulerEvent,
  },
  actors: {
    publish: fromPromise<number, PublishInput>(({ input }) => publishAll(input)),
    rescue: fromPromise<
      number,
      { store: SchedulerContext['store']; nodeId: string; limit: number }
    >(
      async ({ input }) =>
        (await input.store.rescueExpired({ node: input.nodeId, limit: input.limit })).length,
    ),
  },
  delays: {
    dueInterval: ({ context }) => context.dueIntervalMs,
    rescueInterval: ({ context }) => context.rescueIntervalMs,
  },
  guards: {
    hasPending: ({ context }) => Object.keys(context.pending).length > 0,
    moreToRescue: ({ context }) => context.moreToRescue,
  },
  actions: {
    request: assign({
      pending: (
        { context },
        p: { queue: string | undefined; reason: DispatchMessage['reason'] | null },
      ) => {
        if (p.reason === null) return context.pending;
        const pending = { ...context.pending };
        for (const queue of p.queue === undefined ? context.queues : [p.queue]) {
          // `submitted` wins over `due`/`rescued`: only the reason of the hint changes.
          if (pending[queue] !== 'submitted') pending[queue] = p.reason;
        }
        return pending;
      },
    }),
  },
}).createMachine({
  id: 'scheduler',
  context: ({ input }) => ({
    nodeId: input.nodeId,
    store: input.store,
    bus: input.bus,
    subjects: input.subjects,
    logger: input.logger ?? silentLogger,
    queues: input.queues ?? ['default'],
    dueIntervalMs: intOption('dueIntervalMs', input.dueIntervalMs, 1000),
    rescueIntervalMs: intOption('rescueIntervalMs', input.rescueIntervalMs, 5000),
    rescueLimit: intOption('rescueLimit', input.rescueLimit, 1000),
    pending: {},
    publishing: [],
    moreToRescue: false,
    stats: { wakeUps: 0, publishErrors: 0, rescued: 0, rescueErrors: 0 },
  }),
  entry: notifyReady('scheduler'),
  type: 'parallel',
  on: {
    TASKS_SUBMITTED: {
      actions: {
        type: 'request',
        params: ({ event }) => ({ queue: event.queue, reason: 'submitted' }),
      },
    },
    DISPATCH: {
      actions: {
        type: 'request',
        params: ({ event }) => ({ queue: event.queue, reason: event.reason }),
      },
    },
  },
  states: {
    dispatch: {
      initial: 'idle',
      states: {
        idle: {
          always: { guard: 'hasPending', target: 'publishing' },
          after: {
            dueInterval: {
              target: 'idle',
              reenter: true,
              actions: { type: 'request', params: { queue: undefined, reason: 'due' } },
            },
          },
        },
        publishing: {
          entry: assign(({ context }) => ({
            publishing: Object.entries(context.pending).map(([queue, reason]) => ({
              queue,
              reason,
              from: context.nodeId,
            })),
            pending: {},
          })),
          invoke: {
            src: 'publish',
            input: ({ context }) => ({
              bus: context.bus,
              subjects: context.subjects,
              messages: context.publishing,
            }),
            onDone: {
              target: 'idle',
              actions: assign(({ context, event }) => ({
                stats: {
                  ...context.stats,
                  wakeUps: context.stats.wakeUps + context.publishing.length - event.output,
                  publishErrors: context.stats.publishErrors + event.output,
                },
              })),
            },
          },
        },
      },
    },
    rescue: {
      initial: 'waiting',
      states: {
        waiting: {
          always: { guard: 'moreToRescue', target: 'rescuing' },
          after: { rescueInterval: 'rescuing' },
        },
        rescuing: {
          invoke: {
            src: 'rescue',
            input: ({ context }) => ({
              store: context.store,
              nodeId: context.nodeId,
              limit: context.rescueLimit,
            }),
            onDone: {
              target: 'waiting',
              actions: [
                assign(({ context, event }) => ({
                  moreToRescue: event.output >= context.rescueLimit,
                  stats: { ...context.stats, rescued: context.stats.rescued + event.output },
                })),
                {
                  type: 'request',
                  params: ({ event }) => ({
                    queue: undefined,
                    reason: event.output > 0 ? 'rescued' : null,
                  }),
                },
              ],
            },
            onError: {
              target: 'waiting',
              actions: [
                ({ context, event }) =>
                  context.logger.error('rescue of expired leases failed', {
                    error: messageOf(event.error),
                  }),
                assign(({ context }) => ({
                  moreToRescue: false,
                  stats: { ...context.stats, rescueErrors: context.stats.rescueErrors + 1 },
                })),
              ],
            },
          },
        },
      },
    },
    /**
     * Recurring schedules (interval, cron, one-time) are added by the
     * scheduling issue here: a tick fires once in the cluster, fenced by the
     * leader's term, then raises DISPATCH.
     */
    recurring: {
      initial: 'none',
      states: { none: {} },
    },
  },
});

/** A status summary of a scheduler snapshot's context. */
export function summarizeScheduler(context: SchedulerContext) {
  return { queues: context.queues, ...context.stats };
}
