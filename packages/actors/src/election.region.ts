/**
 * The watchdog's `election` region: standby -> candidate -> bearer, and back.
 * See election.ts for the rules and docs/actors.md ("Election").
 */
import { config, lead, RENEWER_ID, stepDown, watchdogSetup } from './watchdog.setup.js';

/**
 * A release announcement (`ELECTION.HINT`): acquire the announced term at
 * once, without a read or jitter. The compare-and-set makes racing safe,
 * and a refusal answers with the token, like a read would.
 */
const acquireAnnounced = {
  target: '#watchdog.election.candidate.acquiring',
  actions: {
    type: 'observeRelease',
    params: ({ event }: { event: { type: 'ELECTION.HINT'; term: number } }) => event.term,
  },
} as const;

/**
 * The warm-backup election (docs/actors.md, "Election"). PostgreSQL
 * decides who bears the token; bus heartbeats only make a standby act
 * sooner. No database call is abandoned because it is slow: a late answer
 * is as good as a prompt one (the bearer's deadline is measured from the
 * renew's send time, or from the send of the grant's compare-and-set). The
 * bearer checks its local deadline before it trusts any event: a paused
 * and resumed process steps down before it renews.
 */
export const electionRegion = watchdogSetup.createStateConfig({
  initial: 'disabled',
  states: {
    disabled: {
      always: { guard: 'electionEnabled', target: 'standby' },
      on: { LEAVE: 'resigned', RESIGN: 'resigned' },
    },
    standby: {
      entry: { type: 'setRole', params: 'standby' },
      on: { LEAVE: 'resigned', RESIGN: 'resigned' },
      initial: 'reading',
      states: {
        reading: {
          entry: 'markReadStarted',
          // A slow read is waited for (it only delays detection), unless the holder announces a release.
          on: { 'ELECTION.HINT': acquireAnnounced },
          invoke: {
            src: 'readToken',
            input: ({ context }) => lead(context),
            onDone: [
              {
                guard: { type: 'ownLiveToken', params: ({ event }) => event.output },
                target: 'releasingStale',
                actions: { type: 'recordToken', params: ({ event }) => event.output },
              },
              {
                guard: { type: 'tokenFree', params: ({ event }) => event.output },
                target: '#watchdog.election.candidate',
                actions: { type: 'recordToken', params: ({ event }) => event.output },
              },
              {
                target: 'waiting',
                actions: { type: 'recordToken', params: ({ event }) => event.output },
              },
            ],
            onError: {
              target: 'waiting',
              actions: [
                'countReadFailure',
                {
                  type: 'logError',
                  params: ({ event }) => ({
                    message: 'reading the token failed',
                    error: event.error,
                  }),
                },
              ],
            },
          },
        },
        waiting: {
          after: { nextRead: 'reading' },
          on: { 'ELECTION.HINT': acquireAnnounced },
        },
        /** The token names this node with a live lease it does not know of: give it back. */
        releasingStale: {
          invoke: {
            src: 'release',
            input: ({ context }) => ({
              leadership: lead(context),
              request: { nodeId: context.nodeId, term: context.election.term ?? 0 },
            }),
            onDone: 'reading',
            onError: 'waiting',
          },
          after: { lease: 'reading' },
        },
        /** After a yield: not competing until the cool-down is over. */
        cooldown: { after: { cooldown: 'reading' } },
      },
    },
    candidate: {
      entry: { type: 'setRole', params: 'candidate' },
      on: { LEAVE: 'resigned', RESIGN: 'resigned' },
      initial: 'jitter',
      states: {
        jitter: {
          after: { jitter: 'acquiring' },
          on: { 'ELECTION.HINT': acquireAnnounced },
        },
        acquiring: {
          entry: 'markSent',
          // The answer must be heard even when shutting down: it may be a grant to release.
          // A release announced meanwhile is kept: if this acquire is refused (it
          // may have reached the database before the release), the next one goes at once.
          on: {
            LEAVE: { actions: 'markResigning' },
            RESIGN: { actions: 'markResigning' },
            'ELECTION.HINT': {
              actions: { type: 'noteHint', params: ({ event }) => event.term },
            },
          },
          invoke: {
            src: 'acquire',
            input: ({ context }) => ({
              leadership: lead(context),
              request: {
                nodeId: context.nodeId,
                observedTerm: context.election.observed?.term ?? 0,
                leaseMs: config(context).leaseMs,
                reason: context.election.observed?.reason ?? 'election',
              },
              clock: context.clock,
            }),
            onDone: [
              {
                // Granted while shutting down: never act on it, release it at once.
                guard: ({ context, event }) => context.election.resigning && event.output.ok,
                target: '#watchdog.election.resigning',
                actions: {
                  type: 'keepTermToRelease',
                  params: ({ event }) => (event.output.ok ? event.output.term : 0),
                },
              },
              {
                // Answered past the deadline it would have: never act on it, give it back.
                guard: { type: 'grantTooLate', params: ({ event }) => event.output },
                target: '#watchdog.election.standby.releasingStale',
                actions: [
                  {
                    type: 'keepTermToRelease',
                    params: ({ event }) => (event.output.ok ? event.output.term : 0),
                  },
                  'logLateGrant',
                ],
              },
              {
                guard: { type: 'acquired', params: ({ event }) => event.output },
                target: '#watchdog.election.bearer',
                actions: [
                  { type: 'grant', params: ({ event }) => event.output },
                  'scheduleDeadline',
                  'notifyBearer',
                ],
              },
              { guard: 'resigning', target: '#watchdog.election.resigned' },
              {
                guard: { type: 'hintStillCurrent', params: ({ event }) => event.output },
                target: '#watchdog.election.candidate.acquiring',
                reenter: true,
                actions: [
                  { type: 'lostRace', params: ({ event }) => event.output },
                  'acquireHinted',
                ],
              },
              {
                target: '#watchdog.election.standby.waiting',
                actions: { type: 'lostRace', params: ({ event }) => event.output },
              },
            ],
            onError: [
              { guard: 'resigning', target: '#watchdog.election.resigned' },
              {
                target: '#watchdog.election.standby.waiting',
                actions: [
                  'countReadFailure',
                  {
                    type: 'logError',
                    params: ({ event }) => ({ message: 'acquire failed', error: event.error }),
                  },
                ],
              },
            ],
          },
          // An acquire that hangs: give up (a late grant expires, or is released as stale).
          after: {
            lease: [
              { guard: 'resigning', target: '#watchdog.election.resigned' },
              { target: '#watchdog.election.standby.reading' },
            ],
          },
        },
      },
    },
    bearer: {
      /**
       * Sends the renews of this tenure and reports every answer, however
       * late (stopped, and its answers dropped, when the tenure ends).
       */
      invoke: {
        id: RENEWER_ID,
        src: 'renewer',
        input: ({ context }) => ({
          leadership: lead(context),
          request: {
            nodeId: context.nodeId,
            term: context.election.term ?? 0,
            leaseMs: config(context).leaseMs,
          },
        }),
      },
      // Whatever event arrives, the local deadline is checked first.
      always: {
        guard: 'pastDeadline',
        target: 'standby',
        actions: stepDown('lease_deadline'),
      },
      on: {
        // A timer may fire a little before the deadline on the election's clock
        // (Node truncates a fractional delay): then it is set again, never dropped.
        'ELECTION.DEADLINE': [
          {
            guard: 'pastDeadline',
            target: 'standby',
            actions: stepDown('lease_deadline'),
          },
          { actions: ['cancelDeadline', 'scheduleDeadline'] },
        ],
        'ELECTION.RENEWED': [
          {
            guard: 'pastDeadline',
            target: 'standby',
            actions: stepDown('lease_deadline'),
          },
          { guard: 'unknownRenew' },
          {
            // However late, within the deadline: extend it from this renew's send time.
            guard: 'renewOk',
            actions: ['acceptRenew', 'cancelDeadline', 'scheduleDeadline'],
          },
          {
            target: 'standby',
            actions: stepDown('term_lost'),
          },
        ],
        'ELECTION.RENEW_FAILED': [
          {
            guard: 'pastDeadline',
            target: 'standby',
            actions: stepDown('lease_deadline'),
          },
          { guard: 'unknownRenew' },
          {
            actions: [
              'dropRenew',
              {
                type: 'logError',
                params: ({ event }) => ({ message: 'renew failed', error: event.error }),
              },
            ],
          },
        ],
        RESIGN: {
          target: 'resigning',
          actions: stepDown('shutdown'),
        },
        LEAVE: {
          target: 'resigning',
          actions: stepDown('shutdown'),
        },
        YIELD: {
          guard: 'ownTerm',
          target: 'yielding',
          actions: stepDown('yielded'),
        },
      },
      initial: 'granted',
      states: {
        /**
         * The first renew goes at once: the grant's lease has been running
         * since its compare-and-set, possibly long before its answer (a
         * slow round trip, a wait for the fence lock), and a renew only a
         * heartbeat later could answer after the deadline.
         */
        granted: {
          always: { target: 'renewing', actions: ['markRenewSent', 'sendRenew'] },
        },
        /**
         * A renew every heartbeat, on a fixed cadence: whether or not the
         * previous ones answered (up to MAX_RENEWS_IN_FLIGHT unanswered).
         */
        renewing: {
          after: {
            electionHeartbeat: [
              {
                guard: 'pastDeadline',
                target: '#watchdog.election.standby',
                actions: stepDown('lease_deadline'),
              },
              {
                guard: 'renewSlotFree',
                target: 'renewing',
                reenter: true,
                actions: ['markRenewSent', 'sendRenew'],
              },
              { target: 'renewing', reenter: true, actions: 'countRenewHeldBack' },
            ],
          },
        },
      },
    },
    /** Gave the token up (a coordinated service failed): release it, then sit out. */
    yielding: {
      on: { LEAVE: 'resigned', RESIGN: 'resigned' },
      invoke: {
        src: 'release',
        input: ({ context }) => ({
          leadership: lead(context),
          request: { nodeId: context.nodeId, term: context.election.term ?? 0 },
        }),
        onDone: {
          target: '#watchdog.election.standby.cooldown',
          actions: 'announceRelease',
        },
        onError: {
          target: '#watchdog.election.standby.cooldown',
          actions: {
            type: 'logError',
            params: ({ event }) => ({ message: 'release failed', error: event.error }),
          },
        },
      },
      after: { lease: '#watchdog.election.standby.cooldown' },
    },
    /** Graceful shutdown: release the token at once and announce it, then stop. */
    resigning: {
      invoke: {
        src: 'release',
        input: ({ context }) => ({
          leadership: lead(context),
          request: { nodeId: context.nodeId, term: context.election.term ?? 0 },
        }),
        onDone: { target: 'resigned', actions: 'announceRelease' },
        onError: {
          target: 'resigned',
          actions: {
            type: 'logError',
            params: ({ event }) => ({ message: 'release failed', error: event.error }),
          },
        },
      },
      after: { lease: 'resigned' },
    },
    resigned: {
      type: 'final',
      entry: { type: 'setRole', params: null },
    },
  },
});
