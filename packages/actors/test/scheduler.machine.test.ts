import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import { schedulerMachine, type SchedulerInput } from '../src/index.js';
import { FakeBus, FakeStore, flush, subjects } from './fakes.js';

function startScheduler(options: Partial<SchedulerInput> = {}) {
  const clock = new SimulatedClock();
  const store = new FakeStore();
  const bus = new FakeBus();
  const actor = createActor(schedulerMachine, {
    clock,
    input: {
      nodeId: 'n1',
      store,
      bus,
      subjects,
      dueIntervalMs: 1000,
      rescueIntervalMs: 5000,
      ...options,
    },
  });
  actor.start();
  const advance = async (ms: number) => {
    await flush();
    clock.increment(ms);
    await flush();
  };
  return { actor, store, bus, advance };
}

describe('scheduler', () => {
  it('publishes a dispatch wake-up at once when tasks are submitted', async () => {
    const { actor, bus } = startScheduler();
    actor.send({ type: 'TASKS_SUBMITTED', queue: 'emails', count: 3 });
    await flush();
    expect(bus.published).toEqual([
      {
        subject: 'baton.g.dispatch.emails',
        message: { queue: 'emails', reason: 'submitted', from: 'n1' },
      },
    ]);
  });

  it('coalesces submissions that arrive while a wake-up is being published', async () => {
    const { actor, bus } = startScheduler();
    actor.send({ type: 'TASKS_SUBMITTED' });
    actor.send({ type: 'TASKS_SUBMITTED' });
    actor.send({ type: 'TASKS_SUBMITTED' });
    await flush();
    expect(bus.published.map((p) => p.message.reason)).toEqual(['submitted', 'submitted']);
    expect(actor.getSnapshot().context.stats.wakeUps).toBe(2);
  });

  it('publishes a wake-up for due work on every interval', async () => {
    const { bus, advance } = startScheduler({ queues: ['a', 'b'] });
    await advance(999);
    expect(bus.published).toHaveLength(0);
    await advance(1);
    expect(bus.published.map((p) => [p.subject, p.message.reason])).toEqual([
      ['baton.g.dispatch.a', 'due'],
      ['baton.g.dispatch.b', 'due'],
    ]);
  });

  it('counts a failed publish and keeps going', async () => {
    const { bus, advance, actor } = startScheduler();
    bus.failPublish = true;
    await advance(1000);
    expect(actor.getSnapshot().context.stats.publishErrors).toBe(1);
    bus.failPublish = false;
    await advance(1000);
    expect(bus.published).toHaveLength(1);
  });

  it('rescues expired leases periodically and wakes the workers only when it rescued something', async () => {
    const { store, bus, advance, actor } = startScheduler({ dueIntervalMs: 60_000 });
    store.rescueResults = [0, 2];
    await advance(5000);
    expect(store.calls.rescueExpired).toBe(1);
    expect(bus.published).toHaveLength(0);
    await advance(5000);
    expect(store.calls.rescueExpired).toBe(2);
    expect(bus.published.map((p) => p.message.reason)).toEqual(['rescued']);
    expect(actor.getSnapshot().context.stats.rescued).toBe(2);
  });

  it('rescues again at once when a rescue filled its limit', async () => {
    const { store, advance } = startScheduler({ rescueLimit: 2 });
    store.rescueResults = [2, 2, 1];
    await advance(5000);
    expect(store.calls.rescueExpired).toBe(3);
  });

  it('survives a failed rescue and tries again on the next interval', async () => {
    const { store, advance, actor } = startScheduler();
    store.failNext.set('rescueExpired', new Error('database down'));
    await advance(5000);
    expect(actor.getSnapshot().context.stats.rescueErrors).toBe(1);
    await advance(5000);
    expect(store.calls.rescueExpired).toBe(2);
    expect(actor.getSnapshot().status).toBe('active');
  });
});
