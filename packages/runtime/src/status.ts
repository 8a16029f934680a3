/**
 * The status subject: `baton.<group>.status` gathers a reply from every node,
 * `baton.<group>.status.<node>` asks one. A reply holds each actor's XState
 * snapshot (state value and a context summary), plus node id, version, uptime,
 * the bus it uses and whether it consumes the JetStream submission stream.
 */
import type { AnyActorRef, Snapshot } from 'xstate';
import {
  summarizeScheduler,
  summarizeSupervisor,
  summarizeWatchdog,
  summarizeWorker,
  type SchedulerContext,
  type SupervisorContext,
  type WatchdogContext,
  type WorkerContext,
} from '@baton/actors';
import type { BusStatus } from './bus/bus.js';

export interface ActorStatus {
  /** The machine's state value (a string, or an object for parallel states). */
  readonly state: unknown;
  /** `active`, `done`, `error` or `stopped` (XState's snapshot status). */
  readonly status: string;
  readonly context: Record<string, unknown>;
}

/**
 * The JetStream submission stream on a node: `active` (the node consumes
 * it), `unavailable` (`nats.jetstream` is `'auto'` and the NATS server has
 * JetStream disabled), `off` (`nats.jetstream` is `false`), `none` (the
 * PostgreSQL bus has no stream), `pending` (the node has not got that far
 * in its start).
 */
export type SubmitStreamState = 'active' | 'unavailable' | 'off' | 'none' | 'pending';

export interface NodeStatus {
  readonly nodeId: string;
  readonly groupId: string;
  readonly version: string;
  readonly lifecycle: string;
  readonly uptimeS: number;
  readonly bus: Pick<BusStatus, 'kind' | 'connected' | 'reconnects' | 'dropped'>;
  readonly submitStream: SubmitStreamState;
  readonly actors: {
    readonly supervisor: ActorStatus;
    readonly worker: ActorStatus | null;
    readonly scheduler: ActorStatus | null;
    readonly watchdog: ActorStatus | null;
  };
}

type WithContext<C> = Snapshot<unknown> & { value: unknown; context: C };

function describe<C>(
  snapshot: WithContext<C> | undefined,
  summarize: (c: C) => object,
): ActorStatus | null {
  if (!snapshot) return null;
  return {
    state: snapshot.value,
    status: snapshot.status,
    context: { ...summarize(snapshot.context) },
  };
}

/** Reads the supervisor's and its children's snapshots into a status reply. */
export function nodeStatus(supervisor: AnyActorRef, base: Omit<NodeStatus, 'actors'>): NodeStatus {
  const snap = supervisor.getSnapshot() as WithContext<SupervisorContext> & {
    children: Record<string, AnyActorRef | undefined>;
  };
  const child = <C>(id: string) => snap.children[id]?.getSnapshot() as WithContext<C> | undefined;
  return {
    ...base,
    actors: {
      supervisor: describe(snap, summarizeSupervisor)!,
      worker: describe(child<WorkerContext>('worker'), summarizeWorker),
      scheduler: describe(child<SchedulerContext>('scheduler'), summarizeScheduler),
      watchdog: describe(child<WatchdogContext>('watchdog'), summarizeWatchdog),
    },
  };
}
