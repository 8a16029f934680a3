/**
 * A group of watchdogs for election tests. Each node has its own simulated
 * clock (so one node can be paused while the others and the database go on)
 * and its own connection to one {@link FakeTokenTable}, whose database time
 * is advanced with the nodes'. Heartbeats published by a node are delivered
 * to every running node, like the bus would.
 */
import { createActor, sendTo, setup, SimulatedClock, type AnyActorRef } from 'xstate';
import {
  watchdogMachine,
  type BusPayload,
  type ElectionNotice,
  type ElectionOptions,
  type HeartbeatMessage,
  type WatchdogContext,
  type WatchdogEvent,
  type WatchdogInput,
} from '../src/index.js';
import { FakeHeartbeat, FakeTokenTable, flush, subjects, type FakeLeadership } from './fakes.js';

export interface Notice {
  readonly notice: ElectionNotice;
  /** Database time when it was sent. */
  readonly at: number;
  /** The token in the database at that moment. */
  readonly token: ReturnType<FakeTokenTable['current']>;
}

/** A parent for the watchdog that records its election notices. */
const harness = setup({
  types: {
    input: {} as { watchdog: WatchdogInput; record: (notice: ElectionNotice) => void },
    context: {} as { watchdog: WatchdogInput; record: (notice: ElectionNotice) => void },
    events: {} as ElectionNotice | { type: 'TO_WATCHDOG'; event: WatchdogEvent },
  },
  actors: { watchdog: watchdogMachine },
}).createMachine({
  context: ({ input }) => input,
  invoke: { id: 'watchdog', src: 'watchdog', input: ({ context }) => context.watchdog },
  on: {
    'ELECTION.BEARER': { actions: ({ context, event }) => context.record(event) },
    'ELECTION.STANDBY': { actions: ({ context, event }) => context.record(event) },
    TO_WATCHDOG: { actions: sendTo('watchdog', ({ event }) => event.event) },
  },
});

export interface TestNode {
  readonly id: string;
  readonly sim: SimulatedClock;
  readonly port: FakeLeadership;
  readonly notices: Notice[];
  readonly actor: ReturnType<typeof createActor<typeof harness>>;
  /** The node's process is paused: its clock does not advance. */
  paused: boolean;
  stopped: boolean;
  /** The monotonic clock reads at least this (a resumed process, before its timers fire). */
  clockFloor: number;
  send(event: WatchdogEvent): void;
  context(): WatchdogContext;
  role(): WatchdogContext['election']['role'];
  /** Stops the node without a word (SIGKILL). */
  kill(): void;
}

export function electionGroup(election: ElectionOptions = {}, step = 50) {
  const table = new FakeTokenTable();
  const nodes: TestNode[] = [];
  const published: { from: string; message: BusPayload }[] = [];

  const running = () => nodes.filter((n) => !n.stopped);

  function add(id: string, options: { random?: number; election?: ElectionOptions } = {}) {
    const sim = new SimulatedClock();
    sim.set(table.now);
    const port = table.connect(id);
    const notices: Notice[] = [];
    const node: TestNode = {
      id,
      sim,
      port,
      notices,
      paused: false,
      stopped: false,
      clockFloor: 0,
      actor: undefined as never,
      send: (event) => watchdog().send(event),
      context: () => (watchdog().getSnapshot() as { context: WatchdogContext }).context,
      role: () => node.context().election.role,
      kill: () => {
        node.stopped = true;
        node.actor.stop();
      },
    };
    const watchdog = () => node.actor.getSnapshot().children.watchdog as AnyActorRef;
    const clock = { now: () => Math.max(sim.now(), node.clockFloor) };
    const bus = {
      publish: async (_subject: string, message: BusPayload) => {
        published.push({ from: id, message });
        if (node.paused || node.stopped) return;
        queueMicrotask(() => {
          for (const other of running()) {
            if (other.paused) continue;
            other.send({
              type: 'HEARTBEAT_RECEIVED',
              message: message as unknown as HeartbeatMessage,
            });
          }
        });
      },
    };
    const actor = createActor(harness, {
      clock: sim,
      input: {
        watchdog: {
          nodeId: id,
          heartbeat: new FakeHeartbeat(),
          bus,
          subjects,
          clock,
          heartbeatIntervalMs: 1000,
          livenessCheckIntervalMs: 5000,
          leadership: port,
          election: {
            leaseMs: 5000,
            heartbeatMs: 1000,
            random: () => options.random ?? 0,
            ...election,
            ...options.election,
          },
        },
        record: (notice) => notices.push({ notice, at: table.now, token: table.current() }),
      },
    });
    (node as { actor: typeof actor }).actor = actor;
    nodes.push(node);
    actor.start();
    return node;
  }

  /** Advances the database and every running, unpaused node by `ms`, in steps. */
  async function tick(ms: number, stepMs = step) {
    await flush();
    for (let t = 0; t < ms; t += stepMs) {
      const d = Math.min(stepMs, ms - t);
      table.advance(d);
      for (const n of running()) if (!n.paused) n.sim.increment(d);
      await flush();
    }
  }

  /** Ticks until `done()` or `limitMs` passed; returns the database time spent. */
  async function until(done: () => boolean, limitMs = 30_000, stepMs = step) {
    const start = table.now;
    await flush();
    while (!done()) {
      if (table.now - start > limitMs) throw new Error(`not done within ${limitMs} ms`);
      await tick(stepMs, stepMs);
    }
    return table.now - start;
  }

  /** Resumes a paused node: the database time it missed passes on its clock at once. */
  async function resume(node: TestNode) {
    node.paused = false;
    node.sim.set(table.now);
    await flush();
  }

  return { table, nodes, published, add, tick, until, resume };
}

export const writesBy = (table: FakeTokenTable, node: string, since = 0) =>
  table.log.slice(since).filter((e) => e.node === node && e.method !== 'current');
