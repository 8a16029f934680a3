import { describe, expect, it } from 'vitest';
import { createActor, setup, SimulatedClock, type AnyActorRef } from 'xstate';
import {
  supervisorMachine,
  type schedulerMachine,
  type watchdogMachine,
  type SupervisorInput,
  type TaskHandler,
} from '../src/index.js';
import {
  FakeBus,
  FakeHeartbeat,
  FakeStore,
  flush,
  GatedHandler,
  registry,
  subjects,
} from './fakes.js';

function startNode(
  handlers: Record<string, TaskHandler>,
  options: Partial<SupervisorInput> = {},
  machine = supervisorMachine,
  prepare: (ports: { heartbeat: FakeHeartbeat; bus: FakeBus }) => void = () => undefined,
) {
  const clock = new SimulatedClock();
  const store = new FakeStore();
  const bus = new FakeBus();
  const heartbeat = new FakeHeartbeat();
  prepare({ heartbeat, bus });
  const actor = createActor(machine, {
    clock,
    input: {
      nodeId: 'n1',
      store,
      bus,
      subjects,
      heartbeat,
      handlers: registry(handlers),
      clock,
      worker: { pollIntervalMs: 1000, completionFlushMs: 10 },
      ...options,
    },
  });
  const states: string[] = [];
  actor.subscribe((s) => {
    const value = typeof s.value === 'string' ? s.value : Object.keys(s.value)[0]!;
    if (states.at(-1) !== value) states.push(value);
  });
  actor.start();
  const advance = async (ms: number) => {
    await flush();
    clock.increment(ms);
    await flush();
  };
  const child = (id: string) => actor.getSnapshot().children[id] as AnyActorRef | undefined;
  return { actor, clock, store, bus, heartbeat, advance, states, child };
}

/** A scheduler stand-in that reports ready, then crashes after 100 ms, every time it is started. */
const crashingScheduler = setup({}).createMachine({
  entry: ({ self }) => self._parent?.send({ type: 'CHILD.READY', child: 'scheduler' }),
  after: {
    100: {
      actions: () => {
        throw new Error('scheduler bug');
      },
    },
  },
});
const withCrashingScheduler = supervisorMachine.provide({
  actors: { scheduler: crashingScheduler as unknown as typeof schedulerMachine },
});

/** A watchdog stand-in that reports ready, then crashes when a drain asks it to resign. */
const crashingWatchdog = setup({}).createMachine({
  entry: ({ self }) => self._parent?.send({ type: 'CHILD.READY', child: 'watchdog' }),
  on: {
    RESIGN: {
      actions: () => {
        throw new Error('watchdog bug');
      },
    },
  },
});
const withCrashingWatchdog = supervisorMachine.provide({
  actors: { watchdog: crashingWatchdog as unknown as typeof watchdogMachine },
});

describe('supervisor', () => {
  it('starts the watchdog, then the worker, then the scheduler, and runs', async () => {
    const { actor, heartbeat, store, states } = startNode({ t: { run: async () => null } });
    expect(actor.getSnapshot().value).toEqual({ starting: 'watchdog' });
    expect(actor.getSnapshot().children.worker).toBeUndefined();
    await flush();
    expect(heartbeat.beats).toHaveLength(1);
    expect(actor.getSnapshot().value).toBe('running');
    expect(states).toEqual(['starting', 'running']);
    expect(actor.getSnapshot().context.children).toEqual({
      watchdog: 'up',
      worker: 'up',
      scheduler: 'up',
    });
    expect(store.calls.claim).toHaveLength(1);
  });

  it("reports the worker's runs in flight and its concurrency in every heartbeat", async () => {
    const gated = new GatedHandler();
    const { store, bus, heartbeat, advance } = startNode(
      { t: gated },
      { watchdog: { heartbeatIntervalMs: 1000 }, worker: { concurrency: 4, pollIntervalMs: 1000 } },
    );
    await flush();
    const ids = store.add(3);
    await advance(1000); // the poll claims them, and the next beat goes out
    expect(gated.started).toHaveLength(3);
    await advance(1000);
    expect(heartbeat.beats.at(-1)?.info).toMatchObject({ inFlight: 3, concurrency: 4 });
    const sent = bus.published.filter((p) => p.subject === subjects.heartbeat('n1')).at(-1);
    expect(sent?.message).toMatchObject({ inFlight: 3, concurrency: 4 });
    for (const id of ids) gated.succeed(id);
    await advance(1000);
    expect(heartbeat.beats.at(-1)?.info).toMatchObject({ inFlight: 0 });
  });

  it('fails when a child does not come up within the start timeout', async () => {
    const { actor, advance } = startNode(
      {},
      { startTimeoutMs: 5000 },
      supervisorMachine,
      ({ heartbeat }) => {
        heartbeat.failBeats = true;
      },
    );
    await advance(4999);
    expect(actor.getSnapshot().value).toEqual({ starting: 'watchdog' });
    await advance(1);
    expect(actor.getSnapshot().status).toBe('done');
    expect(actor.getSnapshot().output?.status).toBe('failed');
    expect(actor.getSnapshot().output?.reason).toMatch(/start timed out/);
  });

  it('routes bus hints to its children and drops malformed ones', async () => {
    const gated = new GatedHandler();
    const { actor, bus, store } = startNode({ t: gated });
    await flush();
    const [id] = store.add(1);
    bus.deliver('baton.g.dispatch.default', { queue: 'default', reason: 'submitted', from: 'n2' });
    await flush();
    expect(gated.started.map((c) => c.taskId)).toEqual([id]);
    bus.deliver('baton.g.cancel', { taskId: id });
    await flush();
    expect(store.status(id!)).toBe('cancelled');
    bus.deliver(
      'baton.g.hb.*',
      { nodeId: 'n2', seq: 4, state: 'alive', inFlight: 1, concurrency: 4 },
      'baton.g.hb.n2',
    );
    bus.deliver('baton.g.hb.*', { nodeId: 'n3', seq: 'x' }, 'baton.g.hb.n3');
    bus.deliver('baton.g.cancel', { taskId: 'drop table' });
    await flush();
    const watchdog = actor.getSnapshot().children.watchdog as AnyActorRef;
    expect(
      Object.keys((watchdog.getSnapshot() as { context: { members: object } }).context.members),
    ).toContain('n2');
    expect(actor.getSnapshot().context.droppedHints).toBe(2);
    actor.send({ type: 'TASKS_SUBMITTED', queue: 'default' });
    await flush();
    expect(
      bus.published.some(
        (p) => p.subject === 'baton.g.dispatch.default' && p.message.reason === 'submitted',
      ),
    ).toBe(true);
  });

  it('keeps running, on the fallback poll, when the bus subscriptions fail', async () => {
    const { actor, store, advance } = startNode(
      { t: { run: async () => null } },
      {},
      supervisorMachine,
      ({ bus }) => {
        bus.subscribe = () => {
          throw new Error('not connected');
        };
      },
    );
    await flush();
    expect(actor.getSnapshot().status).toBe('active');
    expect(actor.getSnapshot().value).toBe('running');
    const [id] = store.add(1);
    await advance(1000);
    await advance(10);
    expect(store.status(id!)).toBe('completed');
  });

  it('restarts a crashed child with exponential backoff', async () => {
    const { actor, advance, child } = startNode(
      {},
      { restart: { maxRestarts: 5, withinMs: 60_000, baseDelayMs: 200 } },
      withCrashingScheduler,
    );
    await flush();
    const first = child('scheduler');
    await advance(100); // crash 1
    expect(actor.getSnapshot().context.children.scheduler).toBe('restarting');
    await advance(199);
    expect(child('scheduler')).toBe(first);
    await advance(1); // restarted after 200 ms
    expect(child('scheduler')).not.toBe(first);
    expect(actor.getSnapshot().context.children.scheduler).toBe('up');
    await advance(100); // crash 2
    const second = child('scheduler');
    await advance(399);
    expect(child('scheduler')).toBe(second);
    await advance(1); // restarted after 400 ms
    expect(child('scheduler')).not.toBe(second);
    expect(actor.getSnapshot().value).toBe('running');
    expect(actor.getSnapshot().context.restarts).toHaveLength(2);
  });

  it('goes failed when crashes exceed the restart intensity', async () => {
    const { actor, advance, states } = startNode(
      {},
      { restart: { maxRestarts: 2, withinMs: 60_000, baseDelayMs: 10 } },
      withCrashingScheduler,
    );
    await flush();
    for (let i = 0; i < 10 && actor.getSnapshot().status === 'active'; i++) await advance(100);
    expect(actor.getSnapshot().context.restarts).toHaveLength(2);
    expect(states.at(-1)).toBe('failed');
    expect(actor.getSnapshot().output?.status).toBe('failed');
    expect(actor.getSnapshot().output?.reason).toMatch(
      /scheduler crashed beyond the restart limit: scheduler bug/,
    );
  });

  it('forgets restarts older than the intensity window', async () => {
    const { actor, advance } = startNode(
      {},
      { restart: { maxRestarts: 2, withinMs: 250, baseDelayMs: 10, maxDelayMs: 10 } },
      withCrashingScheduler,
    );
    await flush();
    for (let i = 0; i < 10; i++) await advance(110);
    expect(actor.getSnapshot().value).toBe('running');
  });

  it('on SHUTDOWN drains the worker, releases what did not finish, says goodbye and stops', async () => {
    const gated = new GatedHandler();
    const { actor, store, heartbeat, bus, advance, states } = startNode({ t: gated });
    const [done, stuck] = store.add(2);
    actor.send({ type: 'WAKE' });
    await flush();
    expect(gated.started).toHaveLength(2);
    actor.send({ type: 'SHUTDOWN', graceMs: 1000 });
    await flush();
    expect(actor.getSnapshot().value).toEqual({ draining: 'worker' });
    expect(actor.getSnapshot().children.scheduler).toBeUndefined();
    expect(actor.getSnapshot().context.children.scheduler).toBe('stopped');
    gated.succeed(done!);
    await advance(1000);
    expect(store.status(done!)).toBe('completed');
    expect(store.status(stuck!)).toBe('pending');
    expect(heartbeat.beats.at(-1)?.info.state).toBe('leaving');
    expect(bus.published.at(-1)?.message).toMatchObject({ nodeId: 'n1', state: 'leaving' });
    expect(states).toEqual(['starting', 'running', 'draining', 'stopped']);
    expect(actor.getSnapshot().output).toEqual({ status: 'stopped', reason: null });
    expect(bus.subscriptions.size).toBe(0);
  });

  it('a watchdog that crashes during the drain is not waited for: the node stops once the worker has drained', async () => {
    const gated = new GatedHandler();
    const { actor, store, advance } = startNode({ t: gated }, {}, withCrashingWatchdog);
    const [id] = store.add(1);
    actor.send({ type: 'WAKE' });
    await flush();
    actor.send({ type: 'SHUTDOWN', graceMs: 1000 });
    await flush();
    expect(actor.getSnapshot().context.children.watchdog).toBe('stopped');
    gated.succeed(id!);
    await advance(10);
    // Stopped now, not after the leave timeout (5 s) spent waiting for a dead watchdog.
    expect(actor.getSnapshot().value).toBe('stopped');
    expect(store.status(id!)).toBe('completed');
  });
});
