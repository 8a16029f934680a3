/** The watchdog's types (input, context, events) and its membership rules. */
import type { ElectionConfig, ElectionOptions, ElectionView } from './election.js';
import { messageOf } from './options.js';
import type {
  AcquireResult,
  BusPort,
  ClockPort,
  HeartbeatInfo,
  HeartbeatMessage,
  HeartbeatPort,
  LeadershipPort,
  Logger,
  MemberRecord,
  Subjects,
} from './ports.js';

/** Input of the watchdog. Durations are milliseconds. */
export interface WatchdogInput {
  readonly nodeId: string;
  readonly heartbeat: HeartbeatPort;
  readonly bus: Pick<BusPort, 'publish'>;
  readonly subjects: Pick<Subjects, 'heartbeat'>;
  /** The clock member ages and the bearer's deadline are measured on: give the actor's clock. @default performance */
  readonly clock?: ClockPort;
  readonly logger?: Logger;
  /** Ballerina's `heartbeatFrequency`. @default 1000 */
  readonly heartbeatIntervalMs?: number;
  /** Ballerina's `livenessCheckInterval`: how often `health_check` is read. @default 5000 */
  readonly livenessCheckIntervalMs?: number;
  /** Silence after which a member is suspect. @default 3 heartbeats */
  readonly suspectAfterMs?: number;
  /** Silence after which a member is gone. @default 10 heartbeats */
  readonly goneAfterMs?: number;
  /**
   * Silence after which a gone member is dropped from the view and its
   * `health_check` row deleted (a node killed without saying goodbye leaves
   * one; nodes named per process would otherwise pile up). Never the token
   * holder this node knows of. @default the larger of 300000 and 3 x goneAfterMs
   */
  readonly forgetAfterMs?: number;
  /** This node's load, sent with each heartbeat. @default none (0 / 0) */
  readonly load?: () => { inFlight: number; concurrency: number };
  /** The group's warm-backup token. Required with `election`. */
  readonly leadership?: LeadershipPort;
  /**
   * Runs the warm-backup election (with `leadership`). Without it the
   * `election` region stays `disabled`.
   * @example { leaseMs: 5000, heartbeatMs: 1000 }
   */
  readonly election?: ElectionOptions;
}

export type MemberStatus = 'alive' | 'suspect' | 'gone';

/** What the watchdog knows of one member of the group (itself included). */
export interface MemberView {
  readonly nodeId: string;
  readonly status: MemberStatus;
  /** When it was last heard of, on the watchdog's clock. */
  readonly lastSeenAt: number;
  /** It said goodbye (a `leaving` heartbeat): gone at once. */
  readonly left: boolean;
  readonly inFlight?: number;
  readonly concurrency?: number;
}

export interface WatchdogContext {
  readonly nodeId: string;
  readonly heartbeat: HeartbeatPort;
  readonly bus: Pick<BusPort, 'publish'>;
  readonly subjects: Pick<Subjects, 'heartbeat'>;
  readonly clock: ClockPort;
  readonly logger: Logger;
  readonly heartbeatIntervalMs: number;
  readonly livenessCheckIntervalMs: number;
  readonly suspectAfterMs: number;
  readonly goneAfterMs: number;
  readonly forgetAfterMs: number;
  readonly load: () => { inFlight: number; concurrency: number };
  /** `null` when the election is disabled. */
  readonly leadership: LeadershipPort | null;
  readonly electionConfig: ElectionConfig | null;
  seq: number;
  beats: number;
  beatFailures: number;
  /** LEAVE arrived while a beat was being written: leave once it is (see the machine). */
  leaveRequested: boolean;
  /** When `health_check` was last written, on the watchdog's clock; `null` before the first. */
  lastBeatAt: number | null;
  members: Record<string, MemberView>;
  election: ElectionView;
}

export type WatchdogEvent =
  /** A heartbeat from the bus (any node's, this one's included). */
  | { type: 'HEARTBEAT_RECEIVED'; message: HeartbeatMessage }
  /** Graceful shutdown: release the token if held, publish a leaving heartbeat, then stop. */
  | { type: 'LEAVE' }
  /** Start of a graceful shutdown: stop competing and release the token at once (heartbeats go on). */
  | { type: 'RESIGN' }
  /**
   * Give the token up (a coordinated service keeps failing or hangs) and sit
   * out `cooldownMs` (default `election.yieldCooldownMs`). Ignored unless
   * this node bears `term` (when given).
   */
  | { type: 'YIELD'; reason?: string; cooldownMs?: number; term?: number }
  /**
   * Internal: the holder announced it let the token go (a `leaving`
   * heartbeat, or one no longer saying `role: 'bearer'`): a standby tries to
   * acquire `term` at once (the compare-and-set decides).
   */
  | { type: 'ELECTION.HINT'; term: number }
  /** Internal: the bearer's local deadline. */
  | { type: 'ELECTION.DEADLINE' }
  /** Internal (from the renewer): renew `seq` answered; `ok: false` means the term is lost. */
  | { type: 'ELECTION.RENEWED'; seq: number; ok: boolean }
  /** Internal (from the renewer): renew `seq` failed (nothing known of whether it committed). */
  | { type: 'ELECTION.RENEW_FAILED'; seq: number; error: unknown };

/**
 * The acquire actor's answer: the port's, and when the port reported
 * sending its compare-and-set (`onCompareAndSet`), on the watchdog's clock
 * (`null`: it did not say).
 */
export type AcquireAnswer = AcquireResult & { readonly compareAndSetAt: number | null };

/** Sent to the renewer: send renew `seq` now. */
export interface RenewRequest {
  readonly type: 'RENEW';
  readonly seq: number;
}

export interface BeatInput {
  readonly context: WatchdogContext;
  readonly state: HeartbeatInfo['state'];
}

/** The heartbeat message of this node, with its role and term when the election runs. */
export function heartbeatMessage(
  context: WatchdogContext,
  state: HeartbeatInfo['state'],
): HeartbeatMessage {
  const { role, term } = context.election;
  return {
    state,
    ...context.load(),
    nodeId: context.nodeId,
    seq: context.seq,
    ...(role === null ? {} : { role }),
    ...(role === null || term === null ? {} : { term }),
  };
}

/** Writes `health_check` (must succeed) and publishes on the bus (a hint: a failure is only logged). */
export async function beat({ context, state }: BeatInput): Promise<void> {
  const message = heartbeatMessage(context, state);
  const info: HeartbeatInfo = {
    state,
    inFlight: message.inFlight,
    concurrency: message.concurrency,
  };
  const publish = context.bus
    .publish(context.subjects.heartbeat(context.nodeId), { ...message })
    .catch((error: unknown) =>
      context.logger.warn('heartbeat publish failed', { error: messageOf(error) }),
    );
  const { heartbeat } = context;
  const write =
    state === 'leaving' && heartbeat.leave
      ? heartbeat.leave(context.nodeId)
      : heartbeat.beat(context.nodeId, info);
  await Promise.all([write, publish]);
}

function statusOf(ctx: WatchdogContext, member: MemberView, now: number): MemberStatus {
  const silence = now - member.lastSeenAt;
  if (member.left || silence >= ctx.goneAfterMs) return 'gone';
  return silence >= ctx.suspectAfterMs ? 'suspect' : 'alive';
}

/** Recomputes every member's status at the clock's current time; forgets the long silent. */
export function evaluate(ctx: WatchdogContext, members = ctx.members): Record<string, MemberView> {
  const now = ctx.clock.now();
  const next: Record<string, MemberView> = {};
  for (const [id, m] of Object.entries(members)) {
    // The holder stays: the status tells how long it has been silent.
    if (now - m.lastSeenAt >= ctx.forgetAfterMs && id !== ctx.election.holder) continue;
    next[id] = { ...m, status: statusOf(ctx, m, now) };
  }
  return next;
}

/**
 * Reads the group's `health_check` rows, and starts deleting those silent for
 * `forgetAfterMs` when there are any (any node may: the delete is idempotent).
 * The delete is housekeeping, not awaited: the read does not wait for it, and
 * if it fails the next read tries again.
 */
export async function readMembers(input: {
  readonly heartbeat: HeartbeatPort;
  readonly forgetAfterMs: number;
}): Promise<readonly MemberRecord[]> {
  const { heartbeat, forgetAfterMs } = input;
  const records = await heartbeat.members();
  if (heartbeat.prune && records.some((r) => r.heartbeatAgeMs >= forgetAfterMs)) {
    void heartbeat.prune(forgetAfterMs).catch(() => 0);
  }
  return records;
}

export function mergeRecords(
  ctx: WatchdogContext,
  records: readonly MemberRecord[],
): Record<string, MemberView> {
  const now = ctx.clock.now();
  const members = { ...ctx.members };
  for (const r of records) {
    const seenAt = now - Math.max(0, r.heartbeatAgeMs);
    const known = members[r.nodeId];
    if (!known)
      members[r.nodeId] = { nodeId: r.nodeId, status: 'alive', lastSeenAt: seenAt, left: false };
    else if (seenAt > known.lastSeenAt)
      members[r.nodeId] = { ...known, lastSeenAt: seenAt, left: false };
  }
  return evaluate(ctx, members);
}

/** A heartbeat from the bearer this node saw, saying it let the token go: read the token now. */
export function holderLetGo(context: WatchdogContext, message: HeartbeatMessage): boolean {
  if (message.nodeId === context.nodeId) return false;
  // An explicit announcement: the term was released (committed) by its holder,
  // whoever this node last saw holding it.
  if (message.released !== undefined) return message.released >= (context.election.term ?? 0);
  // The holder leaving. A heartbeat merely saying "standby" is no release: a
  // bearer steps down (role standby) before its release commits, and an
  // acquire sent on that would lose, and miss the real announcement.
  const { holder } = context.election;
  return (
    holder !== null &&
    holder !== context.nodeId &&
    message.nodeId === holder &&
    message.state === 'leaving'
  );
}
