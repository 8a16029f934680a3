/**
 * The watchdog: heartbeats on the bus and in `health_check` (PostgreSQL
 * time), a view of the group's members (alive / suspect / gone), and the
 * warm-backup election (standby -> candidate -> bearer on a compare-and-set
 * of the term, stepping down early on the monotonic clock). See
 * docs/actors.md.
 */
import { assign } from 'xstate';
import { electionRegion } from './election.region.js';
import { compileElection, initialElection } from './election.js';
import { ActorConfigError, intOption } from './options.js';
import { silentLogger } from './ports.js';
import { watchdogSetup } from './watchdog.setup.js';
import { mergeRecords, type WatchdogContext } from './watchdog.types.js';

export const watchdogMachine = watchdogSetup.createMachine({
  id: 'watchdog',
  context: ({ input }) => {
    const heartbeatIntervalMs = intOption('heartbeatIntervalMs', input.heartbeatIntervalMs, 1000);
    const livenessCheckIntervalMs = intOption(
      'livenessCheckIntervalMs',
      input.livenessCheckIntervalMs,
      5000,
    );
    const suspectAfterMs = intOption(
      'suspectAfterMs',
      input.suspectAfterMs,
      3 * heartbeatIntervalMs,
    );
    const goneAfterMs = intOption('goneAfterMs', input.goneAfterMs, 10 * heartbeatIntervalMs);
    if (goneAfterMs <= suspectAfterMs) {
      throw new ActorConfigError(
        'goneAfterMs',
        `must be greater than suspectAfterMs (${suspectAfterMs})`,
        goneAfterMs,
      );
    }
    const forgetAfterMs = intOption(
      'forgetAfterMs',
      input.forgetAfterMs,
      Math.max(300_000, 3 * goneAfterMs),
    );
    if (forgetAfterMs <= goneAfterMs) {
      throw new ActorConfigError(
        'forgetAfterMs',
        `must be greater than goneAfterMs (${goneAfterMs})`,
        forgetAfterMs,
      );
    }
    if (input.election && !input.leadership) {
      throw new ActorConfigError('leadership', 'is required when the election runs', undefined);
    }
    const electionConfig = input.election
      ? compileElection(input.election, {
          heartbeatMs: heartbeatIntervalMs,
          leaseMs: livenessCheckIntervalMs,
        })
      : null;
    return {
      nodeId: input.nodeId,
      heartbeat: input.heartbeat,
      bus: input.bus,
      subjects: input.subjects,
      clock: input.clock ?? performance,
      logger: input.logger ?? silentLogger,
      heartbeatIntervalMs,
      livenessCheckIntervalMs,
      suspectAfterMs,
      goneAfterMs,
      forgetAfterMs,
      load: input.load ?? (() => ({ inFlight: 0, concurrency: 0 })),
      leadership: electionConfig ? (input.leadership ?? null) : null,
      electionConfig,
      seq: 0,
      beats: 0,
      beatFailures: 0,
      leaveRequested: false,
      lastBeatAt: null,
      members: {},
      election: initialElection,
    };
  },
  type: 'parallel',
  on: {
    HEARTBEAT_RECEIVED: [
      { guard: 'holderLetGo', actions: ['recordHeartbeat', 'hint'] },
      { actions: 'recordHeartbeat' },
    ],
  },
  states: {
    heartbeat: {
      initial: 'beating',
      on: { LEAVE: '.leaving' },
      states: {
        beating: {
          // A beat being written is let finish before the leave: its upsert,
          // committing after the leave's delete, would put the row back.
          on: { LEAVE: { actions: assign({ leaveRequested: true }) } },
          invoke: {
            src: 'beat',
            input: ({ context }) => ({ context, state: 'alive' as const }),
            onDone: [
              { guard: 'leaveRequested', target: 'leaving', actions: 'beatDone' },
              { guard: 'firstBeat', target: 'waiting', actions: ['beatDone', 'notifyReady'] },
              { target: 'waiting', actions: 'beatDone' },
            ],
            onError: [
              { guard: 'leaveRequested', target: 'leaving', actions: 'beatFailed' },
              {
                target: 'waiting',
                actions: [
                  'beatFailed',
                  {
                    type: 'logError',
                    params: ({ event }) => ({ message: 'heartbeat failed', error: event.error }),
                  },
                ],
              },
            ],
          },
        },
        waiting: { after: { heartbeatInterval: 'beating' } },
        leaving: {
          invoke: {
            src: 'beat',
            input: ({ context }) => ({ context, state: 'leaving' as const }),
            onDone: 'left',
            onError: {
              target: 'left',
              actions: {
                type: 'logError',
                params: ({ event }) => ({
                  message: 'leaving heartbeat failed',
                  error: event.error,
                }),
              },
            },
          },
        },
        left: { type: 'final' },
      },
    },
    membership: {
      initial: 'reading',
      on: { LEAVE: '.closed' },
      states: {
        reading: {
          invoke: {
            src: 'readMembers',
            input: ({ context }) => ({
              heartbeat: context.heartbeat,
              forgetAfterMs: context.forgetAfterMs,
            }),
            onDone: {
              target: 'watching',
              actions: assign({
                members: ({ context, event }) => mergeRecords(context, event.output),
              }),
            },
            onError: {
              target: 'watching',
              actions: {
                type: 'logError',
                params: ({ event }) => ({ message: 'reading members failed', error: event.error }),
              },
            },
          },
        },
        watching: { after: { livenessCheckInterval: 'reading' } },
        closed: { type: 'final' },
      },
    },
    election: electionRegion,
  },
});

/** A status summary of a watchdog snapshot's context. */
export function summarizeWatchdog(context: WatchdogContext) {
  const members = Object.values(context.members);
  const { election } = context;
  const now = context.clock.now();
  const holder = election.holder;
  const bearerSeenAt =
    holder === null
      ? null
      : holder === context.nodeId
        ? context.lastBeatAt
        : (context.members[holder]?.lastSeenAt ?? null);
  return {
    members: members.map(({ nodeId, status }) => ({ nodeId, status })),
    alive: members.filter((m) => m.status === 'alive').length,
    beats: context.beats,
    beatFailures: context.beatFailures,
    lastBeatAt: context.lastBeatAt,
    role: election.role,
    term: election.term,
    holder,
    /** Since the bearer was last heard of (bus heartbeat or `health_check`), on this node's clock. */
    bearerHeartbeatAgeMs: bearerSeenAt === null ? null : Math.max(0, now - bearerSeenAt),
    leaseRemainingMs: election.leaseRemainingMs,
    /** Bearer: time left before it steps down unless a renewal succeeds. */
    deadlineInMs: election.deadline === null ? null : election.deadline - now,
    acquisitions: election.acquisitions,
    lostRaces: election.lostRaces,
    stepDowns: election.stepDowns,
    renewFailures: election.renewFailures,
    /** Renews that kept the tenure although they answered more than a heartbeat after being sent. */
    lateRenews: election.lateRenews,
    renewsInFlight: election.renews.length,
    renewsHeldBack: election.renewsHeldBack,
    lastStepDown: election.lastStepDown,
  };
}
