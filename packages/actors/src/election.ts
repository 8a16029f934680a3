/**
 * The warm-backup election's types, options and pure rules. The states
 * themselves are the watchdog's `election` region (watchdog.machine.ts);
 * see docs/actors.md.
 *
 * Time: the token's lease is measured by PostgreSQL (`remainingMs`, grants
 * at their statement's start, renewals at `now()`); the bearer additionally
 * keeps a **local deadline** on its own monotonic clock, `sentAt + leaseMs -
 * stepDownMarginMs` where `sentAt` is when a successful renew was *sent*, or
 * for a grant when its compare-and-set was sent (as the port reports it,
 * after any lock wait; else when the acquire was sent): see
 * {@link grantedDeadline}. The latest such deadline counts; see
 * {@link renewedDeadline} for renews that overlap. PostgreSQL's lease
 * started no earlier than that, so the local deadline always falls before
 * the lease can expire in PostgreSQL (clock rates aside), whatever the
 * network or a paused process did in between. That is also why a slow
 * renew is never abandoned: its late success is as good as a prompt one,
 * measured from its own send time.
 */
import { ActorConfigError, intOption } from './options.js';
import type { ElectionRole, TokenView } from './ports.js';

/** Options of the election (the watchdog's `election` input). Durations are milliseconds. */
export interface ElectionOptions {
  /**
   * The lease granted by each acquire and renew, on PostgreSQL's clock:
   * Ballerina's `livenessCheckInterval`. At least two `heartbeatMs`.
   * @default the watchdog's `livenessCheckIntervalMs`
   */
  readonly leaseMs?: number;
  /**
   * How often the bearer renews and a standby reads the token: Ballerina's
   * `heartbeatFrequency`.
   * @default the watchdog's `heartbeatIntervalMs`
   */
  readonly heartbeatMs?: number;
  /**
   * The bearer steps down this long before its lease could expire in
   * PostgreSQL: it covers the node's monotonic clock running slower than
   * PostgreSQL's (docs/actors.md, "Election"). Must be below
   * `leaseMs - heartbeatMs`.
   * @default max(20, leaseMs / 10), at most leaseMs / 5
   */
  readonly stepDownMarginMs?: number;
  /** Largest random delay of a candidate before it acquires. @default heartbeatMs / 4 */
  readonly jitterMs?: number;
  /** How long a node that yielded the token sits out. @default 2 × leaseMs */
  readonly yieldCooldownMs?: number;
  /** Random numbers in [0, 1) for the jitter. @default Math.random */
  readonly random?: () => number;
}

/** The compiled, validated election options. */
export interface ElectionConfig {
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  readonly stepDownMarginMs: number;
  readonly jitterMs: number;
  readonly yieldCooldownMs: number;
  readonly random: () => number;
}

/**
 * Renews the bearer may have in flight at once. It sends one every
 * heartbeat whether or not the previous one answered, so a slow round trip
 * does not delay the next; past this many unanswered ones it waits (a
 * database that slow gets no more load from it).
 */
export const MAX_RENEWS_IN_FLIGHT = 3;

/**
 * The default step-down margin: `max(20, leaseMs / 10)`, but never above
 * `leaseMs / 5` (so tiny test leases stay valid). It only has to cover the
 * node's monotonic clock running slower than PostgreSQL's over one lease
 * (at most hundreds of ppm): the deadline is measured from the renew's send
 * time, which precedes PostgreSQL's `now()` of that renew.
 */
export function defaultStepDownMarginMs(leaseMs: number): number {
  return Math.min(Math.floor(leaseMs / 5), Math.max(20, Math.floor(leaseMs / 10)));
}

/** Compiles the election options; a bad one fails at start with its name. */
export function compileElection(
  options: ElectionOptions,
  defaults: { heartbeatMs: number; leaseMs: number },
): ElectionConfig {
  const heartbeatMs = intOption('election.heartbeatMs', options.heartbeatMs, defaults.heartbeatMs);
  const leaseMs = intOption('election.leaseMs', options.leaseMs, defaults.leaseMs);
  if (leaseMs < 2 * heartbeatMs) {
    throw new ActorConfigError(
      'election.leaseMs',
      `(the liveness interval) must be at least two heartbeats (2 × ${heartbeatMs} ms)`,
      leaseMs,
    );
  }
  const stepDownMarginMs = intOption(
    'election.stepDownMarginMs',
    options.stepDownMarginMs,
    defaultStepDownMarginMs(leaseMs),
    0,
  );
  if (stepDownMarginMs >= leaseMs - heartbeatMs) {
    throw new ActorConfigError(
      'election.stepDownMarginMs',
      `must be below leaseMs - heartbeatMs (${leaseMs - heartbeatMs}), or the bearer steps down between two renewals`,
      stepDownMarginMs,
    );
  }
  return Object.freeze({
    leaseMs,
    heartbeatMs,
    stepDownMarginMs,
    jitterMs: intOption('election.jitterMs', options.jitterMs, Math.floor(heartbeatMs / 4), 0),
    yieldCooldownMs: intOption('election.yieldCooldownMs', options.yieldCooldownMs, 2 * leaseMs, 0),
    random: options.random ?? Math.random,
  });
}

/**
 * Why a bearer stopped being one.
 * - `lease_deadline`: its local deadline passed before a renewal succeeded
 *   (database unreachable or slow, or the process was paused);
 * - `term_lost`: a renewal said the term is no longer its own;
 * - `yielded`: a coordinated service failed or hung, so the node gave the token up;
 * - `shutdown`: graceful shutdown (the token was released);
 * - `watchdog_stopped`: (supervisor) the watchdog crashed or stopped while bearer.
 */
export type StepDownReason =
  'lease_deadline' | 'term_lost' | 'yielded' | 'shutdown' | 'watchdog_stopped';

/** The watchdog tells its parent it became the bearer of `term`. */
export interface ElectionBearerEvent {
  readonly type: 'ELECTION.BEARER';
  readonly term: number;
}

/** The watchdog tells its parent it stopped being the bearer of `term`: abort coordinated work now. */
export interface ElectionStandbyEvent {
  readonly type: 'ELECTION.STANDBY';
  readonly term: number;
  readonly reason: StepDownReason;
}

export type ElectionNotice = ElectionBearerEvent | ElectionStandbyEvent;

/** The election's part of the watchdog's context. */
export interface ElectionView {
  /** `null` while the election is disabled or after it resigned. */
  readonly role: ElectionRole | null;
  /** The term this node bears, else the last term it saw. */
  readonly term: number | null;
  /** The bearer seen in the last read of the token (this node when bearer). */
  readonly holder: string | null;
  /** The lease left at the last read, on PostgreSQL's clock. */
  readonly leaseRemainingMs: number | null;
  /** When the token was last read, on the watchdog's clock. */
  readonly readAt: number | null;
  /** Bearer: the local step-down deadline, on the watchdog's (monotonic) clock. */
  readonly deadline: number | null;
  /** When the acquire in flight (or that made this node bearer) was sent, on the watchdog's clock. */
  readonly sentAt: number | null;
  /** Bearer: the renews sent and not answered yet, oldest first (at most {@link MAX_RENEWS_IN_FLIGHT}). */
  readonly renews: readonly RenewInFlight[];
  /** Numbers the renews of this node (`RenewInFlight.seq`). */
  readonly renewSeq: number;
  /** Standby: when the read in flight (or the last one) was sent, on the watchdog's clock. */
  readonly readStartedAt: number | null;
  /** The term a candidate saw (0: never granted), and why it is free. */
  readonly observed: { readonly term: number; readonly reason: string } | null;
  /** A release announced while an acquire was in flight: the term to acquire at once if that one is refused. */
  readonly hinted: number | null;
  /** A yielding node sits out until then (watchdog's clock). */
  readonly cooldownUntil: number | null;
  /** Shutdown asked while an acquire was in flight: release whatever it wins. */
  readonly resigning: boolean;
  readonly acquisitions: number;
  readonly lostRaces: number;
  readonly stepDowns: number;
  /** Renews that failed, or were still unanswered when the tenure ended. */
  readonly renewFailures: number;
  /** Renews that succeeded more than a heartbeat after they were sent (kept the tenure all the same). */
  readonly lateRenews: number;
  /** Heartbeats at which no renew was sent because {@link MAX_RENEWS_IN_FLIGHT} were unanswered. */
  readonly renewsHeldBack: number;
  readonly readFailures: number;
  readonly lastStepDown: { readonly term: number; readonly reason: StepDownReason } | null;
}

/** A renew sent by the bearer and not answered yet. */
export interface RenewInFlight {
  readonly seq: number;
  /** When it was sent, on the watchdog's clock. */
  readonly sentAt: number;
}

export const initialElection: ElectionView = Object.freeze({
  role: null,
  term: null,
  holder: null,
  leaseRemainingMs: null,
  readAt: null,
  deadline: null,
  sentAt: null,
  renews: [],
  renewSeq: 0,
  readStartedAt: null,
  observed: null,
  hinted: null,
  cooldownUntil: null,
  resigning: false,
  acquisitions: 0,
  lostRaces: 0,
  stepDowns: 0,
  renewFailures: 0,
  lateRenews: 0,
  renewsHeldBack: 0,
  readFailures: 0,
  lastStepDown: null,
});

/** What a standby makes of a read of the token. */
export type TokenReading =
  | { readonly kind: 'free'; readonly observedTerm: number; readonly reason: string }
  | { readonly kind: 'own'; readonly term: number }
  | { readonly kind: 'held'; readonly holder: string; readonly remainingMs: number };

/**
 * Free when never granted, released, or its lease expired on PostgreSQL's
 * clock; `own` when this node holds a live lease it does not know of (a
 * restarted watchdog, or an acquire whose answer was lost).
 */
export function readToken(token: TokenView | null, nodeId: string): TokenReading {
  if (!token) return { kind: 'free', observedTerm: 0, reason: 'first_grant' };
  if (token.holder === null) return { kind: 'free', observedTerm: token.term, reason: 'released' };
  if (token.remainingMs <= 0)
    return { kind: 'free', observedTerm: token.term, reason: `lease_expired:${token.holder}` };
  if (token.holder === nodeId) return { kind: 'own', term: token.term };
  return { kind: 'held', holder: token.holder, remainingMs: token.remainingMs };
}

/** The bearer's local deadline after an acquire or renew sent at `sentAt` succeeded. */
export function deadlineAfter(config: ElectionConfig, sentAt: number): number {
  return sentAt + config.leaseMs - config.stepDownMarginMs;
}

/**
 * The deadline a grant gives: counted from when its compare-and-set was
 * sent (`compareAndSetAt`: reported by the port after any wait for the
 * fence lock and the round trips before it, and before the statement whose
 * start begins the lease), else, when the port does not report it, from
 * when the acquire was sent (`sentAt`). Both precede the lease's start in
 * PostgreSQL; the former is the later, so the deadline is as late as is
 * safe. (The store's acquire is three round trips, and may wait for fenced
 * work first: counted from the call, a grant could have run down most of
 * its deadline before it is even answered.)
 */
export function grantedDeadline(
  config: ElectionConfig,
  sentAt: number,
  compareAndSetAt: number | null,
): number {
  return deadlineAfter(config, compareAndSetAt ?? sentAt);
}

/**
 * The deadline after renew `seq` succeeded: measured from the send time of
 * the oldest renew still in flight that was sent no later than it (itself
 * included). A renew statement takes PostgreSQL's `now()` when it starts
 * and sets `lease_expires_at = now() + lease`; an older renew still in
 * flight may commit after this one and set the lease back to its own,
 * earlier start, never before its own send time. Renews answer in order in
 * practice, and then this is simply the renew's own send time.
 * `null` when `seq` is not in flight (an answer from before a step-down).
 */
export function renewedDeadline(
  config: ElectionConfig,
  renews: readonly RenewInFlight[],
  seq: number,
): number | null {
  const renew = renews.find((r) => r.seq === seq);
  if (!renew) return null;
  let from = renew.sentAt;
  for (const r of renews) if (r.seq < seq) from = Math.min(from, r.sentAt);
  return deadlineAfter(config, from);
}

/**
 * How long a standby waits before it reads the token again: a heartbeat
 * after the last read was *sent* (a slow read does not stretch the cadence;
 * at once if it took longer), or just after the bearer's lease runs out,
 * counted from the read's answer, if that is sooner (PostgreSQL still
 * decides).
 */
export function nextReadMs(config: ElectionConfig, election: ElectionView, now: number): number {
  const sinceSent = election.readStartedAt === null ? 0 : Math.max(0, now - election.readStartedAt);
  const cadence = Math.max(0, config.heartbeatMs - sinceSent);
  const remaining = election.holder === null ? null : election.leaseRemainingMs;
  if (remaining === null || remaining <= 0) return cadence;
  return Math.min(cadence, Math.max(1, remaining + 1));
}

/** Whether this node bears `term` and its local deadline has not passed at `now`. */
export function holdsLease(election: ElectionView, now: number, term?: number): boolean {
  return (
    election.role === 'bearer' &&
    election.deadline !== null &&
    now < election.deadline &&
    (term === undefined || election.term === term)
  );
}
