/**
 * The watchdog's setup: its types, actors (promises over the ports), delays,
 * guards and actions. The states are in watchdog.machine.ts and
 * election.region.ts.
 */
import { assign, cancel, fromCallback, fromPromise, raise, sendTo, setup } from 'xstate';
import {
  grantedDeadline,
  holdsLease,
  MAX_RENEWS_IN_FLIGHT,
  nextReadMs,
  readToken,
  renewedDeadline,
  type ElectionNotice,
  type ElectionView,
  type StepDownReason,
} from './election.js';
import { messageOf } from './options.js';
import { notifyReady, toParent } from './parent.js';
import type {
  AcquireResult,
  ClockPort,
  HeartbeatPort,
  LeadershipPort,
  MemberRecord,
  TokenView,
} from './ports.js';
import {
  beat,
  evaluate,
  readMembers,
  heartbeatMessage,
  holderLetGo,
  type AcquireAnswer,
  type BeatInput,
  type MemberView,
  type RenewRequest,
  type WatchdogContext,
  type WatchdogEvent,
  type WatchdogInput,
} from './watchdog.types.js';

const DEADLINE_ID = 'election.deadline';
/** The bearer's renewer (invoked while bearer). */
export const RENEWER_ID = 'renewer';

/** What the renewer of one tenure sends: the same renew each time. */
export interface RenewerInput {
  readonly leadership: LeadershipPort;
  readonly request: Parameters<LeadershipPort['renew']>[0];
}

/** The leadership port; only called from the election's enabled states. */
export function lead(context: WatchdogContext): LeadershipPort {
  if (!context.leadership) throw new Error('the election is disabled');
  return context.leadership;
}

export function config(context: WatchdogContext) {
  if (!context.electionConfig) throw new Error('the election is disabled');
  return context.electionConfig;
}

/** The actions of a step-down: no deadline any more, role -> standby, tell the parent. */
export const stepDown = (reason: StepDownReason) =>
  ['cancelDeadline', { type: 'stepDown' as const, params: { reason } }, 'notifyStandby'] as const;

/** Tells the parent of a role change: `notice` logs it and returns the event. */
const tellParent = (notice: (context: WatchdogContext) => ElectionNotice | undefined) =>
  toParent<WatchdogContext>(notice);

/** The election's context after a read of the token (or an acquire's answer). */
function recordToken(context: WatchdogContext, token: TokenView | null): ElectionView {
  const reading = readToken(token, context.nodeId);
  return {
    ...context.election,
    holder: token?.holder ?? null,
    term: token?.term ?? context.election.term,
    leaseRemainingMs: token?.remainingMs ?? null,
    readAt: context.clock.now(),
    observed:
      reading.kind === 'free' ? { term: reading.observedTerm, reason: reading.reason } : null,
  };
}

export const watchdogSetup = setup({
  types: {
    input: {} as WatchdogInput,
    context: {} as WatchdogContext,
    events: {} as WatchdogEvent,
  },
  actors: {
    beat: fromPromise<void, BeatInput>(({ input }) => beat(input)),
    readMembers: fromPromise<
      readonly MemberRecord[],
      { heartbeat: HeartbeatPort; forgetAfterMs: number }
    >(({ input }) => readMembers(input)),
    readToken: fromPromise<TokenView | null, LeadershipPort>(({ input }) => input.current()),
    /** An acquire; notes when the port sends its compare-and-set (the grant's lease starts later). */
    acquire: fromPromise<
      AcquireAnswer,
      {
        leadership: LeadershipPort;
        request: Parameters<LeadershipPort['acquire']>[0];
        clock: ClockPort;
      }
    >(async ({ input }) => {
      let compareAndSetAt: number | null = null;
      const result = await input.leadership.acquire({
        ...input.request,
        onCompareAndSet: () => {
          compareAndSetAt ??= input.clock.now();
        },
      });
      return { ...result, compareAndSetAt };
    }),
    /**
     * The bearer's renews: `RENEW { seq }` sends one at once; every answer,
     * however late, comes back as `ELECTION.RENEWED` or
     * `ELECTION.RENEW_FAILED` with its `seq` (never abandoned). Stopped when
     * the tenure ends: answers after that are dropped.
     */
    renewer: fromCallback<RenewRequest, RenewerInput>(({ input, receive, sendBack }) => {
      let live = true;
      receive(({ seq }) => {
        new Promise<boolean>((resolve) => resolve(input.leadership.renew(input.request))).then(
          (ok) => {
            if (live) sendBack({ type: 'ELECTION.RENEWED', seq, ok });
          },
          (error: unknown) => {
            if (live) sendBack({ type: 'ELECTION.RENEW_FAILED', seq, error });
          },
        );
      });
      return () => {
        live = false;
      };
    }),
    release: fromPromise<
      boolean,
      { leadership: LeadershipPort; request: Parameters<LeadershipPort['release']>[0] }
    >(({ input }) => input.leadership.release(input.request)),
  },
  delays: {
    heartbeatInterval: ({ context }) => context.heartbeatIntervalMs,
    livenessCheckInterval: ({ context }) => context.livenessCheckIntervalMs,
    electionHeartbeat: ({ context }) => config(context).heartbeatMs,
    nextRead: ({ context }) => nextReadMs(config(context), context.election, context.clock.now()),
    jitter: ({ context }) => {
      const { jitterMs, random } = config(context);
      return Math.min(jitterMs, Math.floor(random() * (jitterMs + 1)));
    },
    lease: ({ context }) => config(context).leaseMs,
    cooldown: ({ context }) =>
      Math.max(0, (context.election.cooldownUntil ?? 0) - context.clock.now()),
  },
  guards: {
    firstBeat: ({ context }) => context.beats === 0,
    leaveRequested: ({ context }) => context.leaveRequested,
    electionEnabled: ({ context }) => context.electionConfig !== null,
    tokenFree: ({ context }, token: TokenView | null) =>
      readToken(token, context.nodeId).kind === 'free',
    ownLiveToken: ({ context }, token: TokenView | null) =>
      readToken(token, context.nodeId).kind === 'own',
    acquired: (_, result: AcquireResult) => result.ok,
    /** A grant that answered after the deadline it would have had: useless, give it back. */
    grantTooLate: ({ context }, answer: AcquireAnswer) =>
      answer.ok &&
      context.clock.now() >=
        grantedDeadline(config(context), context.election.sentAt ?? 0, answer.compareAndSetAt),
    renewSlotFree: ({ context }) => context.election.renews.length < MAX_RENEWS_IN_FLIGHT,
    /** A renew answer or failure of a renew this tenure does not wait for (none in practice). */
    unknownRenew: ({ context, event }) =>
      (event.type === 'ELECTION.RENEWED' || event.type === 'ELECTION.RENEW_FAILED') &&
      !context.election.renews.some((r) => r.seq === event.seq),
    renewOk: ({ event }) => event.type === 'ELECTION.RENEWED' && event.ok,
    resigning: ({ context }) => context.election.resigning,
    /** A release announced during a refused acquire, for a term no older than the refusal shows. */
    hintStillCurrent: ({ context }, result: AcquireResult) =>
      context.election.hinted !== null &&
      (result.ok || context.election.hinted >= (result.current?.term ?? 0)),
    /** The bearer's local deadline passed (monotonic clock): checked before anything else. */
    pastDeadline: ({ context }) =>
      context.election.role === 'bearer' && !holdsLease(context.election, context.clock.now()),
    holderLetGo: ({ context, event }) =>
      event.type === 'HEARTBEAT_RECEIVED' && holderLetGo(context, event.message),
    ownTerm: ({ context, event }) =>
      event.type === 'YIELD' && (event.term === undefined || event.term === context.election.term),
  },
  actions: {
    beatDone: assign(({ context }) => ({
      beats: context.beats + 1,
      seq: context.seq + 1,
      lastBeatAt: context.clock.now(),
      members: evaluate(context),
    })),
    beatFailed: assign(({ context }) => ({
      beatFailures: context.beatFailures + 1,
      seq: context.seq + 1,
      members: evaluate(context),
    })),
    logError: ({ context }, params: { message: string; error: unknown }) =>
      context.logger.error(params.message, {
        node: context.nodeId,
        error: messageOf(params.error),
      }),
    notifyReady: notifyReady('watchdog'),
    recordHeartbeat: assign({
      members: ({ context, event }) => {
        if (event.type !== 'HEARTBEAT_RECEIVED') return context.members;
        const m = event.message;
        const view: MemberView = {
          nodeId: m.nodeId,
          status: 'alive',
          lastSeenAt: context.clock.now(),
          left: m.state === 'leaving',
          inFlight: m.inFlight,
          concurrency: m.concurrency,
        };
        return evaluate(context, { ...context.members, [m.nodeId]: view });
      },
    }),
    /** The holder let the token go: the term to acquire is the newest one known. */
    hint: raise(({ context, event }) => ({
      type: 'ELECTION.HINT' as const,
      term: Math.max(
        event.type === 'HEARTBEAT_RECEIVED'
          ? (event.message.released ?? event.message.term ?? 0)
          : 0,
        context.election.term ?? 0,
      ),
    })),
    /** A release announcement: acquire `term` without a read (nor jitter). */
    observeRelease: assign({
      election: ({ context }, term: number) => ({
        ...context.election,
        observed: { term, reason: 'released' },
      }),
    }),
    setRole: assign({
      election: ({ context }, role: ElectionView['role']) => ({ ...context.election, role }),
    }),
    recordToken: assign({
      election: ({ context }, token: TokenView | null) => recordToken(context, token),
    }),
    countReadFailure: assign({
      election: ({ context }) => ({
        ...context.election,
        readFailures: context.election.readFailures + 1,
      }),
    }),
    /** An acquire is sent (its answer also serves as a read of the token). */
    markSent: assign({
      election: ({ context }) => {
        const now = context.clock.now();
        return { ...context.election, sentAt: now, readStartedAt: now, hinted: null };
      },
    }),
    /** A release announced while an acquire is in flight: kept for when it is refused. */
    noteHint: assign({
      election: ({ context }, term: number) => ({
        ...context.election,
        hinted: Math.max(term, context.election.hinted ?? 0),
      }),
    }),
    /** The refused acquire's announced release: acquire its term next. */
    acquireHinted: assign({
      election: ({ context }) => ({
        ...context.election,
        observed: { term: context.election.hinted ?? 0, reason: 'released' },
        hinted: null,
      }),
    }),
    markReadStarted: assign({
      election: ({ context }) => ({ ...context.election, readStartedAt: context.clock.now() }),
    }),
    markResigning: assign({
      election: ({ context }) => ({ ...context.election, resigning: true }),
    }),
    lostRace: assign({
      election: ({ context }, result: AcquireResult) => ({
        ...(result.ok ? context.election : recordToken(context, result.current)),
        lostRaces: context.election.lostRaces + 1,
      }),
    }),
    /** Acquired while shutting down: keep the term only to release it. */
    keepTermToRelease: assign({
      election: ({ context }, term: number) => ({ ...context.election, term }),
    }),
    logLateGrant: ({ context }) =>
      context.logger.warn('acquire answered past its deadline: releasing the grant', {
        node: context.nodeId,
        term: context.election.term,
      }),
    /** Granted: bearer, with the deadline counted from the compare-and-set (see `grantedDeadline`). */
    grant: assign({
      election: ({ context }, answer: AcquireAnswer) => ({
        ...context.election,
        role: 'bearer' as const,
        term: answer.ok ? answer.term : context.election.term,
        holder: context.nodeId,
        deadline: grantedDeadline(
          config(context),
          context.election.sentAt ?? 0,
          answer.compareAndSetAt,
        ),
        leaseRemainingMs: config(context).leaseMs,
        renews: [],
        observed: null,
        hinted: null,
        acquisitions: context.election.acquisitions + 1,
      }),
    }),
    notifyBearer: tellParent((context) => {
      const term = context.election.term ?? 0;
      context.logger.info('token acquired: bearer', { node: context.nodeId, term });
      return { type: 'ELECTION.BEARER', term };
    }),
    /** A renew is sent now: noted in flight, then handed to the renewer. */
    markRenewSent: assign({
      election: ({ context }) => {
        const seq = context.election.renewSeq + 1;
        return {
          ...context.election,
          renewSeq: seq,
          renews: [...context.election.renews, { seq, sentAt: context.clock.now() }],
        };
      },
    }),
    sendRenew: sendTo(RENEWER_ID, ({ context }): RenewRequest => ({
      type: 'RENEW',
      seq: context.election.renewSeq,
    })),
    countRenewHeldBack: assign({
      election: ({ context }) => ({
        ...context.election,
        renewsHeldBack: context.election.renewsHeldBack + 1,
      }),
    }),
    /**
     * A renew succeeded, however late: the deadline moves to its send time
     * (see `renewedDeadline`) + lease - margin, unless it already is later.
     */
    acceptRenew: assign({
      election: ({ context, event }) => {
        const { election } = context;
        if (event.type !== 'ELECTION.RENEWED') return election;
        const renewed = renewedDeadline(config(context), election.renews, event.seq);
        const renew = election.renews.find((r) => r.seq === event.seq);
        if (renewed === null || !renew) return election;
        const late = context.clock.now() - renew.sentAt > config(context).heartbeatMs;
        return {
          ...election,
          deadline: Math.max(election.deadline ?? renewed, renewed),
          leaseRemainingMs: config(context).leaseMs,
          renews: election.renews.filter((r) => r.seq !== event.seq),
          lateRenews: election.lateRenews + (late ? 1 : 0),
        };
      },
    }),
    /** A renew failed: no longer in flight; counted. The next one goes at the next heartbeat. */
    dropRenew: assign({
      election: ({ context, event }) => ({
        ...context.election,
        renews: context.election.renews.filter(
          (r) => event.type !== 'ELECTION.RENEW_FAILED' || r.seq !== event.seq,
        ),
        renewFailures: context.election.renewFailures + 1,
      }),
    }),
    scheduleDeadline: raise(
      { type: 'ELECTION.DEADLINE' },
      {
        id: DEADLINE_ID,
        // Rounded up: a timer set for a fraction of a millisecond fires early.
        delay: ({ context }) =>
          Math.max(0, Math.ceil((context.election.deadline ?? 0) - context.clock.now())),
      },
    ),
    cancelDeadline: cancel(DEADLINE_ID),
    /** Role -> standby at once (the parent then aborts coordinated work). */
    stepDown: assign({
      election: ({ context, event }, params: { reason: StepDownReason }) => {
        const term = context.election.term ?? 0;
        const cooldownMs =
          event.type === 'YIELD' && event.cooldownMs !== undefined
            ? event.cooldownMs
            : config(context).yieldCooldownMs;
        return {
          ...context.election,
          role: params.reason === 'shutdown' ? null : ('standby' as const),
          holder: null,
          deadline: null,
          // Renews still unanswered when the deadline passed count as failed.
          renews: [],
          renewFailures:
            context.election.renewFailures +
            (params.reason === 'lease_deadline' ? context.election.renews.length : 0),
          stepDowns: context.election.stepDowns + 1,
          lastStepDown: { term, reason: params.reason },
          cooldownUntil:
            params.reason === 'yielded'
              ? context.clock.now() + cooldownMs
              : context.election.cooldownUntil,
        };
      },
    }),
    notifyStandby: tellParent((context) => {
      const last = context.election.lastStepDown;
      if (!last) return undefined;
      context.logger.warn('stepped down', { node: context.nodeId, ...last });
      return { type: 'ELECTION.STANDBY', term: last.term, reason: last.reason };
    }),
    /** Tells the group at once that the token was released (a hint). */
    announceRelease: ({ context }) => {
      const { term } = context.election;
      void context.bus
        .publish(context.subjects.heartbeat(context.nodeId), {
          ...heartbeatMessage(context, 'alive'),
          role: 'standby',
          ...(term === null ? {} : { term, released: term }),
        })
        .catch((error: unknown) =>
          context.logger.warn('release announcement failed', { error: messageOf(error) }),
        );
    },
  },
});
