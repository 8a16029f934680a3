/** The supervisor's types: its input, context, events and output. */
import type { DoneActorEvent, ErrorActorEvent } from 'xstate';
import type { CoordinatedService, ServiceYieldEvent } from './coordinated.js';
import type { ElectionNotice, StepDownReason } from './election.js';
import type { ChildName, ChildReadyEvent } from './parent.js';
import type {
  BusPort,
  ClockPort,
  HandlerRegistry,
  HeartbeatMessage,
  HeartbeatPort,
  LeadershipPort,
  Logger,
  StorePort,
  Subjects,
} from './ports.js';
import type { SchedulerInput } from './scheduler.machine.js';
import type { WatchdogInput } from './watchdog.types.js';
import type { WorkerInput } from './worker.types.js';

/** Restart intensity: at most `maxRestarts` restarts in `withinMs`; beyond, the node fails. */
export interface RestartPolicy {
  /** @default 5 */
  readonly maxRestarts?: number;
  /** @default 60000 */
  readonly withinMs?: number;
  /** First restart delay; doubles per restart of the same child in the window. @default 200 */
  readonly baseDelayMs?: number;
  /** @default 10000 */
  readonly maxDelayMs?: number;
}

type Shared =
  | 'nodeId'
  | 'logger'
  | 'store'
  | 'handlers'
  | 'bus'
  | 'subjects'
  | 'heartbeat'
  | 'clock'
  | 'leadership';

/** A change of this node's role in the warm-backup election. */
export interface RoleChange {
  readonly role: 'bearer' | 'standby';
  /** The term gained (bearer) or lost (standby). */
  readonly term: number;
  /** `acquired` when it became the bearer; why it stopped being one otherwise. */
  readonly reason: 'acquired' | StepDownReason;
}

/** Input of the supervisor: the node's ports, and each child's own options. */
export interface SupervisorInput {
  readonly nodeId: string;
  readonly store: StorePort;
  readonly handlers: HandlerRegistry;
  readonly heartbeat: HeartbeatPort;
  readonly bus: BusPort;
  readonly subjects: Subjects;
  /** Give the actor's clock (restart windows are measured on it). @default performance */
  readonly clock?: ClockPort;
  readonly logger?: Logger;
  readonly worker?: Omit<WorkerInput, Shared>;
  readonly scheduler?: Omit<SchedulerInput, Shared>;
  /** Give `election` here (with `leadership`) to run the warm-backup election. */
  readonly watchdog?: Omit<WatchdogInput, Shared | 'load'>;
  /** The group's warm-backup token (the store's `LeadershipStore` bound to the group). */
  readonly leadership?: LeadershipPort;
  /**
   * Called on every role change, in order, terms strictly increasing across
   * `bearer` changes. On `standby`, stop coordinated work at once. A throw is
   * logged and ignored.
   */
  readonly onRoleChange?: (change: RoleChange) => void;
  /**
   * Services that run only while this node bears the token (one actor each,
   * `service:<name>`). Need `leadership` and `watchdog.election`.
   */
  readonly services?: readonly CoordinatedService[];
  readonly restart?: RestartPolicy;
  /** Most time for all three children to report ready. @default 30000 */
  readonly startTimeoutMs?: number;
  /** Most time for the leaving heartbeat at the end of a drain. @default 5000 */
  readonly leaveTimeoutMs?: number;
}

export type ChildStatus = 'not_started' | 'starting' | 'up' | 'restarting' | 'stopped';

export interface SupervisorContext {
  readonly input: SupervisorInput;
  readonly clock: ClockPort;
  readonly logger: Logger;
  readonly restart: Required<RestartPolicy>;
  readonly startTimeoutMs: number;
  readonly leaveTimeoutMs: number;
  children: Record<ChildName, ChildStatus>;
  /** Recent restarts, on the supervisor's clock, for the intensity limit. */
  restarts: { child: ChildName; at: number }[];
  /** Bus messages dropped because they were malformed. */
  droppedHints: number;
  shutdownGraceMs: number | undefined;
  failure: string | null;
  /** This node's role as the watchdog last reported it (`null` before any). */
  election: { role: 'bearer' | 'standby' | null; term: number | null };
}

export type SupervisorEvent =
  /** Graceful shutdown: drain the worker within `graceMs` (default: the worker's `drainGraceMs`). */
  | { type: 'SHUTDOWN'; graceMs?: number }
  /** Forwarded to the worker. */
  | { type: 'WAKE'; queue?: string }
  | { type: 'CANCEL'; taskId: string }
  /** Forwarded to the watchdog. */
  | { type: 'HEARTBEAT_RECEIVED'; message: HeartbeatMessage }
  /** Forwarded to the scheduler. */
  | { type: 'TASKS_SUBMITTED'; queue?: string; count?: number }
  | { type: 'HINT.INVALID'; subject: string; reason: string }
  | { type: 'RESTART'; child: ChildName }
  /** From the watchdog: role changes (forwarded to the services and the hook). */
  | ElectionNotice
  /** Give the token up and sit out (from a service, or from the runtime). */
  | ServiceYieldEvent
  | { type: 'YIELD'; reason?: string; cooldownMs?: number; term?: number }
  | ChildReadyEvent
  | ErrorActorEvent
  | DoneActorEvent;

/** How the supervisor ended. */
export interface SupervisorOutput {
  readonly status: 'stopped' | 'failed';
  readonly reason: string | null;
}
