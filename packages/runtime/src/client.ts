/**
 * The typed client: enqueue (one, many, or inside the caller's own
 * transaction), read, cancel and count tasks. Writes go to PostgreSQL (the
 * truth); a wake-up hint is published on the bus afterwards so a worker
 * claims at once instead of at its next poll.
 */
import type {
  CancelOutcome,
  EnqueueInput,
  EnqueueResult,
  HistoryEntry,
  ListFilter,
  ListPage,
  Queryable,
  StatusCounts,
  Store,
  Task,
  TaskId,
} from '@baton/store';
import type { Bus } from './bus/bus.js';
import { decodeMessage, encodeMessage } from './bus/codec.js';
import { groupSubjects } from './bus/subjects.js';
import type { SchedulerApi } from './schedules.js';
import type { NodeStatus } from './status.js';

export interface BatonClient {
  /**
   * Stores one task and wakes a worker.
   *
   * @example
   * const { id } = await client.enqueue({ type: 'email.send', payload: { to: 'a@b.c' } });
   */
  enqueue<P>(input: EnqueueInput<P>): Promise<EnqueueResult>;
  /** Stores many tasks in one statement (all or nothing) and wakes the workers. */
  enqueueMany<P>(inputs: readonly EnqueueInput<P>[]): Promise<EnqueueResult[]>;
  /**
   * Stores a task inside the caller's own transaction (a `pg` client between
   * BEGIN and COMMIT): it exists only if the caller commits. No wake-up is
   * sent (the client cannot know when the caller commits): a worker finds it
   * at its next poll, or call `wake(queue)` after the commit.
   */
  enqueueInTransaction<P>(client: Queryable, input: EnqueueInput<P>): Promise<EnqueueResult>;
  /** Publishes a wake-up for `queue`. */
  wake(queue?: string): Promise<void>;
  get(id: TaskId): Promise<Task | null>;
  list(filter?: ListFilter): Promise<ListPage>;
  history(id: TaskId): Promise<HistoryEntry[]>;
  counts(): Promise<StatusCounts>;
  /** Cancels a task: at once when it waits; its worker aborts it when it runs. */
  cancel(id: TaskId): Promise<CancelOutcome>;
  /**
   * The status of the group's nodes (the status subject): one reply per node
   * that answers within `maxWaitMs` (default 1000), sorted by node id; with
   * `nodeId`, that node's only. A node that does not answer is not listed.
   *
   * @example
   * for (const n of await client.status()) console.log(n.nodeId, n.lifecycle, n.actors.worker?.state);
   */
  status(options?: { nodeId?: string; maxWaitMs?: number }): Promise<NodeStatus[]>;
  /** One-time, interval and cron jobs with Ballerina's names (fired by the token bearer). */
  readonly scheduler: SchedulerApi;
}

export function createClient(opts: {
  store: Store;
  bus: Bus;
  groupId: string;
  scheduler: SchedulerApi;
  from?: string;
}): BatonClient {
  const { store, bus } = opts;
  const s = groupSubjects(opts.groupId);
  const from = opts.from ?? 'client';
  const wake = async (queue = 'default') => {
    await bus
      .publish(s.dispatch(queue), encodeMessage({ queue, reason: 'submitted', from }))
      .catch(() => undefined); // a lost hint costs latency, never correctness
  };
  return {
    async enqueue(input) {
      const result = await store.tasks.enqueue(input);
      await wake(input.queue);
      return result;
    },
    async enqueueMany(inputs) {
      const results = await store.tasks.enqueueMany(inputs);
      await Promise.all([...new Set(inputs.map((i) => i.queue ?? 'default'))].map((q) => wake(q)));
      return results;
    },
    enqueueInTransaction: (client, input) => store.tasks.enqueue(input, client),
    wake,
    get: (id) => store.tasks.get(id),
    list: (filter) => store.tasks.list(filter),
    history: (id) => store.tasks.history(id),
    counts: () => store.tasks.counts(),
    scheduler: opts.scheduler,
    async status({ nodeId, maxWaitMs = 1000 } = {}) {
      const subject = nodeId === undefined ? s.status : s.statusOf(nodeId);
      const replies = await bus.requestMany(subject, encodeMessage({}), {
        maxWaitMs,
        ...(nodeId === undefined ? {} : { expected: 1 }),
      });
      return replies
        .map((r) => decodeMessage(r) as NodeStatus)
        .sort((a, b) => a.nodeId.localeCompare(b.nodeId));
    },
    async cancel(id) {
      const outcome = await store.tasks.cancel(id, from);
      if (outcome.ok && outcome.status === 'cancel_requested') {
        await bus.publish(s.cancel, encodeMessage({ taskId: id })).catch(() => undefined);
      }
      return outcome;
    },
  };
}
