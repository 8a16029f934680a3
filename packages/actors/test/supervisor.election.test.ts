import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import {
  CoordinatedAbortedError,
  summarizeSupervisor,
  supervisorMachine,
  type CoordinatedRunContext,
  type CoordinatedService,
  type RoleChange,
  type SupervisorInput,
} from '../src/index.js';
import {
  FakeBus,
  FakeHeartbeat,
  FakeStore,
  FakeTokenTable,
  flush,
  GatedHandler,
  registry,
  subjects,
} from './fakes.js';

function startNode(table: FakeTokenTable, options: Partial<SupervisorInput> = {}) {
  const clock = new SimulatedClock();
  clock.set(table.now);
  const store = new FakeStore();
  const changes: RoleChange[] = [];
  const gate = new GatedHandler();
  const actor = createActor(supervisorMachine, {
    clock,
    input: {
      nodeId: 'n1',
      store,
      bus: new FakeBus(),
      subjects,
      heartbeat: new FakeHeartbeat(),
      handlers: registry({ t: gate }),
      clock,
      leadership: table.connect('n1'),
      watchdog: { heartbeatIntervalMs: 1000, election: { leaseMs: 5000, random: () => 0 } },
      worker: { pollIntervalMs: 1000, completionFlushMs: 10 },
      onRoleChange: (change) => changes.push(change),
      ...options,
    },
  });
  actor.start();
  const advance = async (ms: number, step = 50) => {
    for (let t = 0; t < ms; t += step) {
      await flush();
      table.advance(step);
      clock.increment(step);
    }
    await flush();
  };
  return { actor, advance, changes, store, gate };
}

/** A coordinated service recording its runs; `failing` makes them reject. */
function recordingService(options: Partial<CoordinatedService> = {}) {
  const runs: CoordinatedRunContext[] = [];
  const state = { failing: false, hang: false };
  const service: CoordinatedService = {
    name: 'job',
    intervalMs: 200,
    execute: async (ctx) => {
      runs.push(ctx);
      if (state.failing) throw new Error('job failed');
      if (state.hang) await new Promise(() => undefined);
    },
    ...options,
  };
  return { service, runs, state };
}

describe('supervisor and the election', () => {
  it('reports role changes to the hook with strictly increasing terms, and keeps role and term', async () => {
    const table = new FakeTokenTable();
    const { actor, advance, changes } = startNode(table);
    await advance(200);
    expect(summarizeSupervisor(actor.getSnapshot().context)).toMatchObject({
      role: 'bearer',
      term: 1,
    });
    // A newer term elsewhere: the next renew is refused.
    table.row = { holder: 'n9', term: 2, expiresAt: table.now + 3000 };
    await advance(5000);
    actor.send({ type: 'SHUTDOWN', graceMs: 100 });
    await advance(500);
    expect(changes).toEqual([
      { role: 'bearer', term: 1, reason: 'acquired' },
      { role: 'standby', term: 1, reason: 'term_lost' },
      { role: 'bearer', term: 3, reason: 'acquired' },
      { role: 'standby', term: 3, reason: 'shutdown' },
    ]);
    const bearerTerms = changes.filter((c) => c.role === 'bearer').map((c) => c.term);
    expect(bearerTerms).toEqual([...bearerTerms].sort((a, b) => a - b));
    expect(new Set(bearerTerms).size).toBe(bearerTerms.length);
    expect(actor.getSnapshot().status).toBe('done');
  });

  it('a hook that throws is logged and ignored', async () => {
    const table = new FakeTokenTable();
    const errors: string[] = [];
    const { actor, advance } = startNode(table, {
      onRoleChange: () => {
        throw new Error('hook bug');
      },
      logger: { info: () => undefined, warn: () => undefined, error: (m) => errors.push(m) },
    });
    await advance(200);
    expect(actor.getSnapshot().value).toBe('running');
    expect(actor.getSnapshot().context.election).toEqual({ role: 'bearer', term: 1 });
    expect(errors).toContain('onRoleChange hook threw');
  });

  it('runs a coordinated service with the term while bearer and aborts it on step-down', async () => {
    const table = new FakeTokenTable();
    const job = recordingService();
    job.state.hang = true;
    const { advance } = startNode(table, { services: [job.service] });
    await advance(300);
    expect(job.runs.map((r) => r.term)).toEqual([1]);
    const { signal } = job.runs[0]!;
    // A newer term elsewhere: the next renew is refused, and the run is aborted at once.
    table.row = { holder: 'n9', term: 2, expiresAt: table.now + 60_000 };
    await advance(1100);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(CoordinatedAbortedError);
    expect(signal.reason).toMatchObject({ reason: 'stepped_down', term: 1 });
    await advance(3000);
    expect(job.runs).toHaveLength(1);
  });

  it('a service failing N times in a row makes the node release the token and sit out', async () => {
    const table = new FakeTokenTable();
    const job = recordingService({ maxConsecutiveFailures: 3, yieldCooldownMs: 4000 });
    job.state.failing = true;
    const { advance, changes } = startNode(table, { services: [job.service] });
    await advance(700);
    expect(job.runs.length).toBe(3);
    expect(table.row).toMatchObject({ holder: null, term: 1 }); // released at once
    expect(changes.at(-1)).toEqual({ role: 'standby', term: 1, reason: 'yielded' });
    job.state.failing = false;
    await advance(3000);
    expect(table.grants.map((g) => g.term)).toEqual([1]); // still sitting out
    await advance(1500);
    expect(table.grants.map((g) => [g.term, g.holder])).toEqual([
      [1, 'n1'],
      [2, 'n1'],
    ]);
    expect(job.runs.at(-1)!.term).toBe(2);
  });

  it('on SHUTDOWN the bearer releases the token before the worker has drained', async () => {
    const table = new FakeTokenTable();
    const { actor, advance, store, gate, changes } = startNode(table);
    store.add(1);
    await advance(1200);
    expect(gate.running).toBe(1);
    actor.send({ type: 'SHUTDOWN', graceMs: 10_000 });
    await advance(100);
    expect(actor.getSnapshot().value).toMatchObject({ draining: 'worker' });
    expect(table.row).toMatchObject({ holder: null, term: 1 });
    expect(changes.at(-1)).toEqual({ role: 'standby', term: 1, reason: 'shutdown' });
  });

  it('refuses services without an election, naming the option', () => {
    const table = new FakeTokenTable();
    const { actor } = (() => {
      const a = createActor(supervisorMachine, {
        input: {
          nodeId: 'n1',
          store: new FakeStore(),
          bus: new FakeBus(),
          subjects,
          heartbeat: new FakeHeartbeat(),
          handlers: registry({}),
          leadership: table.connect('n1'),
          services: [recordingService().service],
        },
      });
      a.subscribe({ error: () => undefined });
      a.start();
      return { actor: a };
    })();
    expect(String(actor.getSnapshot().error)).toMatch(/services.*watchdog\.election/);
  });
});
