import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import {
  CoordinatedAbortedError,
  coordinatedServiceMachine,
  type CoordinatedRunContext,
  type CoordinatedService,
} from '../src/index.js';
import { flush } from './fakes.js';

/** A service whose runs wait until the test settles them. */
function gatedService(options: Partial<CoordinatedService> = {}) {
  const runs: { ctx: CoordinatedRunContext; resolve: () => void; reject: (e: Error) => void }[] =
    [];
  const service: CoordinatedService = {
    name: 'job',
    intervalMs: 1000,
    execute: (ctx) =>
      new Promise<void>((resolve, reject) => {
        runs.push({ ctx, resolve, reject });
      }),
    ...options,
  };
  return { service, runs };
}

function start(service: CoordinatedService, leaseHeld?: (term: number) => boolean) {
  const clock = new SimulatedClock();
  const actor = createActor(coordinatedServiceMachine, {
    clock,
    input: { service, clock, ...(leaseHeld ? { leaseHeld } : {}) },
  });
  const yields: unknown[] = [];
  actor.on('yield', (e) => yields.push(e));
  actor.start();
  const advance = async (ms: number) => {
    await flush();
    clock.increment(ms);
    await flush();
  };
  return { actor, advance, yields, stats: () => actor.getSnapshot().context.stats };
}

describe('coordinated service', () => {
  it('runs only while bearer, with the term, at once and then every interval', async () => {
    const { service, runs } = gatedService();
    const { actor, advance } = start(service);
    await advance(5000);
    expect(runs).toHaveLength(0);
    actor.send({ type: 'ELECTION.BEARER', term: 4 });
    await flush();
    expect(runs.map((r) => [r.ctx.term, r.ctx.run])).toEqual([[4, 1]]);
    await advance(400);
    runs[0]!.resolve(); // took 400 ms: the next run starts 1000 ms after the first began
    await advance(500);
    expect(runs).toHaveLength(1);
    await advance(100);
    expect(runs).toHaveLength(2);
  });

  it('leaves the signal of a run that ended alone: only a run cut short is aborted', async () => {
    const { service, runs } = gatedService();
    const { actor, advance, stats } = start(service);
    actor.send({ type: 'ELECTION.BEARER', term: 3 });
    await flush();
    runs[0]!.resolve();
    await advance(1000);
    runs[1]!.reject(new Error('boom'));
    await advance(1000);
    expect(runs.map((r) => r.ctx.signal.aborted)).toEqual([false, false, false]);
    actor.send({ type: 'ELECTION.STANDBY', term: 3, reason: 'lease_deadline' });
    expect(runs.map((r) => r.ctx.signal.aborted)).toEqual([false, false, true]);
    expect(stats()).toMatchObject({ runs: 3, succeeded: 1, failed: 1 });
  });

  it('aborts the run the moment the node steps down, and runs no more', async () => {
    const { service, runs } = gatedService();
    const { actor, advance, stats } = start(service);
    actor.send({ type: 'ELECTION.BEARER', term: 2 });
    await flush();
    const { signal } = runs[0]!.ctx;
    actor.send({ type: 'ELECTION.STANDBY', term: 2, reason: 'lease_deadline' });
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(CoordinatedAbortedError);
    expect(signal.reason).toMatchObject({ reason: 'stepped_down', term: 2, service: 'job' });
    await advance(5000);
    expect(runs).toHaveLength(1);
    expect(actor.getSnapshot().value).toBe('standby');
    expect(stats().runs).toBe(1);
  });

  it('makes the node yield after N failures in a row; a success resets the count (Ballerina flaw 4)', async () => {
    const { service, runs } = gatedService({ maxConsecutiveFailures: 3, yieldCooldownMs: 7000 });
    const { actor, advance, yields, stats } = start(service);
    actor.send({ type: 'ELECTION.BEARER', term: 1 });
    const fail = async () => {
      await flush();
      runs.at(-1)!.reject(new Error('boom'));
      await advance(1000);
    };
    await fail();
    await fail();
    runs.at(-1)!.resolve();
    await advance(1000);
    await fail();
    await fail();
    expect(yields).toEqual([]);
    await fail();
    expect(yields).toEqual([
      { type: 'yield', service: 'job', term: 1, reason: 'failing', cooldownMs: 7000 },
    ]);
    expect(stats()).toMatchObject({ failed: 5, succeeded: 1, yields: 1 });
    // It waits for the step-down; no more runs meanwhile.
    await advance(5000);
    expect(runs).toHaveLength(6);
    actor.send({ type: 'ELECTION.STANDBY', term: 1, reason: 'yielded' });
    actor.send({ type: 'ELECTION.BEARER', term: 2 });
    await flush();
    expect(runs.at(-1)!.ctx.term).toBe(2);
  });

  it('aborts a run that hangs past its bound and makes the node yield', async () => {
    const { service, runs } = gatedService({ hangTimeoutMs: 3000 });
    const { actor, advance, yields } = start(service);
    actor.send({ type: 'ELECTION.BEARER', term: 1 });
    await advance(2999);
    expect(yields).toEqual([]);
    await advance(1);
    expect(runs[0]!.ctx.signal.reason).toMatchObject({ reason: 'hung' });
    expect(yields).toMatchObject([{ reason: 'hung', term: 1 }]);
  });

  it('runs at once on acquisition (the grant is fresh), then skips runs while the lease is not held on the local clock', async () => {
    const { service, runs } = gatedService();
    let held = false;
    const { actor, advance, stats } = start(service, () => held);
    actor.send({ type: 'ELECTION.BEARER', term: 1 });
    await advance(0);
    expect(runs).toHaveLength(1);
    runs[0]!.resolve();
    await advance(1000);
    await advance(1000);
    expect(runs).toHaveLength(1);
    expect(stats().skipped).toBeGreaterThanOrEqual(2);
    held = true;
    await advance(1000);
    expect(runs).toHaveLength(2);
  });

  it('a service whose execute throws synchronously fails the run, not the actor', async () => {
    const { actor, advance, stats } = start({
      name: 'sync',
      intervalMs: 100,
      maxConsecutiveFailures: 0,
      execute: () => {
        throw new Error('sync');
      },
    });
    actor.send({ type: 'ELECTION.BEARER', term: 1 });
    await advance(100);
    await advance(100);
    expect(actor.getSnapshot().status).toBe('active');
    expect(stats().failed).toBe(3);
  });
});
