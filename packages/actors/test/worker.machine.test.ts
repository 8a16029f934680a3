import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock, type InspectionEvent } from 'xstate';
import {
  RunAbortedError,
  workerMachine,
  type TaskHandler,
  type WorkerInput,
} from '../src/index.js';
import { FakeStore, flush, GatedHandler, registry } from './fakes.js';
import { ChildIds } from '../src/worker.types.js';

function startWorker(
  store: FakeStore,
  handlers: Record<string, TaskHandler>,
  options: Partial<WorkerInput> = {},
  inspect?: (event: InspectionEvent) => void,
) {
  const clock = new SimulatedClock();
  const actor = createActor(workerMachine, {
    clock,
    ...(inspect && { inspect }),
    input: {
      nodeId: 'n1',
      store,
      handlers: registry(handlers),
      pollIntervalMs: 1000,
      completionFlushMs: 10,
      now: () => clock.now(),
      ...options,
    },
  });
  actor.start();
  const advance = async (ms: number) => {
    await flush();
    clock.increment(ms);
    await flush();
  };
  return { actor, clock, advance, stats: () => actor.getSnapshot().context.stats };
}

/** Stores a task running and leased to n1, as a direct-start insert does. */
function storeRunning(store: FakeStore, type = 't') {
  const [id] = store.add(1, type);
  const t = store.tasks.get(id!)!;
  t.status = 'running';
  t.attempt = 1;
  return { id: t.id, type, queue: t.queue, payload: t.payload, attempt: 1, maxAttempts: 3 };
}

const quick: TaskHandler = { run: async (ctx) => ({ done: ctx.taskId }) };

describe('worker: claiming', () => {
  it('claims on the fallback poll after the poll interval, without any wake-up', async () => {
    const store = new FakeStore();
    const { advance } = startWorker(store, { t: quick });
    await flush();
    expect(store.calls.claim).toHaveLength(1); // the claim at start found nothing
    const [id] = store.add(1);
    await advance(999);
    expect(store.calls.claim).toHaveLength(1);
    await advance(1);
    expect(store.calls.claim).toHaveLength(2);
    await advance(10);
    expect(store.status(id!)).toBe('completed');
  });

  it('claims at once on WAKE, and ignores a wake-up for another queue', async () => {
    const store = new FakeStore();
    const { actor } = startWorker(store, { t: quick });
    await flush();
    store.add(1);
    actor.send({ type: 'WAKE', queue: 'other' });
    await flush();
    expect(store.calls.claim).toHaveLength(1);
    actor.send({ type: 'WAKE', queue: 'default' });
    await flush();
    expect(store.calls.claim).toHaveLength(2);
    expect(store.calls.claim[1]).toMatchObject({
      owner: 'n1',
      queue: 'default',
      types: ['t'],
      limit: 10,
    });
  });

  it('never has more runs in flight than its concurrency, and claims only up to free capacity', async () => {
    const store = new FakeStore();
    const ids = store.add(10);
    const gated = new GatedHandler();
    const { actor, advance } = startWorker(store, { t: gated }, { concurrency: 3 });
    await flush();
    expect(gated.started).toHaveLength(3);
    expect(store.calls.claim[0]!.limit).toBe(3);
    for (const id of ids) {
      gated.succeed(id);
      await advance(10);
      actor.send({ type: 'WAKE' });
      await flush();
    }
    await advance(10);
    expect(gated.maxRunning).toBe(3);
    expect(gated.started).toHaveLength(10);
    expect(ids.map((id) => store.status(id))).toEqual(ids.map(() => 'completed'));
    expect(Math.max(...store.calls.claim.map((c) => c.limit))).toBeLessThanOrEqual(3);
  });

  it('keeps each type within its own limit', async () => {
    const store = new FakeStore();
    const slow = new GatedHandler({ concurrency: 1 });
    const other = new GatedHandler();
    store.add(3, 'slow');
    store.add(3, 'other');
    startWorker(store, { slow, other }, { concurrency: 4 });
    await flush();
    expect(slow.started).toHaveLength(1);
    expect(other.started).toHaveLength(3);
    expect(store.calls.claim.slice(0, 2)).toMatchObject([
      { types: ['slow'], limit: 1 },
      { types: ['other'], limit: 3 },
    ]);
  });

  it('runs what the earlier calls of a round claimed when a later call fails, and counts the error', async () => {
    const store = new FakeStore();
    const slow = new GatedHandler({ concurrency: 1 });
    const other = new GatedHandler();
    const [s] = store.add(1, 'slow');
    const [o] = store.add(1, 'other');
    store.failClaimCall.set(2, new Error('connection reset'));
    const { actor, advance } = startWorker(store, { slow, other }, { concurrency: 4 });
    await flush();
    // The round's first call claimed the slow task (leased to this node): it runs.
    expect(store.calls.claim.slice(0, 2)).toMatchObject([
      { types: ['slow'] },
      { types: ['other'] },
    ]);
    expect(slow.started.map((c) => c.taskId)).toEqual([s]);
    expect(actor.getSnapshot().context.stats.claimErrors).toBe(1);
    expect(actor.getSnapshot().matches({ intake: { accepting: 'idle' } })).toBe(true);
    // The other one is claimed by the next round (the fallback poll here).
    await advance(1000);
    expect(other.started.map((c) => c.taskId)).toEqual([o]);
  });

  it('backs off after a failed claim and claims again', async () => {
    const store = new FakeStore();
    store.failNext.set('claim', new Error('connection refused'));
    const { actor, advance } = startWorker(store, { t: quick }, { claimRetryMs: 100 });
    await flush();
    expect(actor.getSnapshot().matches({ intake: { accepting: 'backoff' } })).toBe(true);
    expect(actor.getSnapshot().context.stats.claimErrors).toBe(1);
    store.add(1);
    await advance(100);
    expect(store.calls.claim).toHaveLength(2);
    expect(actor.getSnapshot().context.stats.claimed).toBe(1);
  });
});

describe('worker: finishing runs', () => {
  it('completes runs in one completeMany after the flush delay', async () => {
    const store = new FakeStore();
    const ids = store.add(5);
    const { advance, stats } = startWorker(store, { t: quick });
    await flush();
    expect(store.calls.markRunning.map((batch) => batch.map((r) => [r.id, r.attempt]))).toEqual([
      ids.map((id) => [id, 1]),
    ]);
    expect(store.calls.completeMany).toHaveLength(0);
    await advance(10);
    expect(store.calls.completeMany).toHaveLength(1);
    expect(store.calls.completeMany[0]!.map((r) => r.id)).toEqual(ids);
    expect(store.calls.completeMany[0]![0]!.result).toEqual({ done: ids[0] });
    expect(stats()).toMatchObject({ claimed: 5, completed: 5, stale: 0 });
  });

  it('flushes at once when the batch is full', async () => {
    const store = new FakeStore();
    store.add(4);
    startWorker(store, { t: quick }, { completionBatchSize: 2 });
    await flush();
    expect(store.calls.completeMany.map((b) => b.length)).toEqual([2, 2]);
  });

  it('writes up to completionWriters batches at once, and pauses claims while a full batch per writer waits', async () => {
    const store = new FakeStore();
    const ids = store.add(20);
    let open!: () => void;
    store.completeGate = new Promise((resolve) => (open = resolve));
    const { actor, advance, stats } = startWorker(
      store,
      { t: quick },
      { concurrency: 2, completionBatchSize: 2, completionWriters: 2 },
    );
    await advance(10);
    await advance(10);
    // Two writes in flight, two full batches queued behind them: no more claims.
    expect(store.calls.completeMany.map((b) => b.length)).toEqual([2, 2]);
    const claimed = stats().claimed;
    expect(claimed).toBe(8);
    expect(actor.getSnapshot().context.queuedCompletions).toHaveLength(4);
    await advance(1000); // even the fallback poll does not claim
    expect(stats().claimed).toBe(claimed);
    store.completeGate = undefined;
    open();
    for (let i = 0; i < 20 && stats().completed < 20; i++) await advance(10);
    expect(ids.map((id) => store.status(id))).toEqual(ids.map(() => 'completed'));
    expect(stats()).toMatchObject({ claimed: 20, completed: 20, writeErrors: 0 });
    // Finished writers do not stay on as children.
    expect(Object.keys(actor.getSnapshot().children)).toEqual([]);
  });

  it('a failed completion write goes back to the queue and is written on the retry: nothing lost', async () => {
    const store = new FakeStore();
    const ids = store.add(3);
    store.failNext.set('completeMany', new Error('connection reset'));
    const { actor, advance, stats } = startWorker(store, { t: quick });
    await advance(10);
    expect(store.calls.completeMany).toHaveLength(1);
    expect(stats()).toMatchObject({ completed: 0, writeErrors: 1 });
    await advance(100); // the retry delay
    await advance(10);
    expect(store.calls.completeMany.map((b) => b.map((r) => r.id))).toEqual([ids, ids]);
    expect(stats()).toMatchObject({ completed: 3, writeErrors: 1 });
    expect(Object.keys(actor.getSnapshot().children)).toEqual([]);
  });

  it('counts a completion refused as stale', async () => {
    const store = new FakeStore();
    const [id] = store.add(1);
    const gated = new GatedHandler();
    const { advance, stats } = startWorker(store, { t: gated });
    await flush();
    store.tasks.get(id!)!.attempt = 2; // rescued and claimed again elsewhere
    gated.succeed(id!);
    await advance(10);
    expect(stats()).toMatchObject({ completed: 0, stale: 1 });
  });

  it('fails a run whose handler throws; an error with retryable: false dead-letters it', async () => {
    const store = new FakeStore();
    const [a, b] = store.add(2);
    const gated = new GatedHandler();
    const { stats } = startWorker(store, { t: gated });
    await flush();
    gated.reject(a!, new Error('flaky'));
    gated.reject(b!, Object.assign(new Error('bad input'), { retryable: false, code: 'BAD' }));
    await flush();
    expect(store.calls.fail).toMatchObject([
      { id: a, attempt: 1, retryable: true, error: { message: 'flaky', name: 'Error' } },
      { id: b, attempt: 1, retryable: false, error: { message: 'bad input', code: 'BAD' } },
    ]);
    expect(store.status(a!)).toBe('retry');
    expect(store.status(b!)).toBe('dead_letter');
    expect(stats()).toMatchObject({ failed: 2, deadLettered: 1 });
  });

  it('retries a failed store write, then reports it', async () => {
    const store = new FakeStore();
    const [id] = store.add(1);
    const gated = new GatedHandler();
    const { advance } = startWorker(store, { t: gated }, { writeRetryMs: 50 });
    await flush();
    store.failNext.set('fail', new Error('connection reset'));
    gated.reject(id!, new Error('flaky'));
    await flush();
    expect(store.calls.fail).toHaveLength(1);
    await advance(50);
    expect(store.calls.fail).toHaveLength(2);
    expect(store.status(id!)).toBe('retry');
    expect(store.calls.forget).toEqual([]); // written in the end
  });

  it('aborts the signal when the handler times out and fails the task as retryable', async () => {
    const store = new FakeStore();
    const [id] = store.add(1);
    const gated = new GatedHandler({ timeoutMs: 500 });
    const { advance, stats } = startWorker(store, { t: gated });
    await flush();
    const { signal } = gated.started[0]!;
    await advance(499);
    expect(signal.aborted).toBe(false);
    await advance(1);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(RunAbortedError);
    expect((signal.reason as RunAbortedError).reason).toBe('timeout');
    expect(store.calls.fail).toMatchObject([
      { id, retryable: true, error: { code: 'RUN_TIMEOUT' } },
    ]);
    expect(stats()).toMatchObject({ failed: 1, timedOut: 1 });
  });

  it('ends a run cancelled by a CANCEL event with finishCancelled', async () => {
    const store = new FakeStore();
    const [id] = store.add(1);
    const gated = new GatedHandler();
    const { actor, stats } = startWorker(store, { t: gated });
    await flush();
    actor.send({ type: 'CANCEL', taskId: id! });
    await flush();
    expect((gated.started[0]!.signal.reason as RunAbortedError).reason).toBe('cancelled');
    expect(store.calls.finishCancelled).toEqual([{ id, attempt: 1 }]);
    expect(store.status(id!)).toBe('cancelled');
    expect(stats().cancelled).toBe(1);
    expect(actor.getSnapshot().context.runs.size).toBe(0);
  });

  it('sends CANCEL to the right run actor after other runs have ended and their ids been reused', async () => {
    for (const inlineRuns of [true, false]) {
      const store = new FakeStore();
      const first = store.add(3);
      const gated = new GatedHandler();
      const { actor, advance } = startWorker(
        store,
        { t: gated },
        { inlineRuns, leaseMs: 3000, concurrency: 3 },
      );
      await flush();
      await advance(500); // inline runs get their actors at their check
      gated.succeed(first[0]!);
      gated.succeed(first[1]!);
      await advance(10);
      const second = store.add(2);
      actor.send({ type: 'WAKE' });
      await advance(500);
      expect(
        Object.keys(actor.getSnapshot().children).filter((c) => c.startsWith('run.')),
      ).toHaveLength(3);
      actor.send({ type: 'CANCEL', taskId: first[2]! });
      await flush();
      const reason = (id: string) =>
        (gated.started.find((c) => c.taskId === id)!.signal.reason as RunAbortedError | undefined)
          ?.reason;
      expect(reason(first[2]!)).toBe('cancelled');
      expect(second.map(reason)).toEqual([undefined, undefined]);
      expect(store.status(first[2]!)).toBe('cancelled');
      expect(second.map((id) => store.status(id))).toEqual(['running', 'running']);
    }
  });

  it('extends the lease every lease/3 and aborts when the extension reports a cancellation', async () => {
    const store = new FakeStore();
    const [id] = store.add(1);
    const gated = new GatedHandler();
    const { advance } = startWorker(store, { t: gated }, { leaseMs: 3000 });
    await flush();
    await advance(1000);
    expect(store.calls.extendLease).toHaveLength(1);
    await advance(1000);
    expect(store.calls.extendLease).toHaveLength(2);
    expect(gated.started[0]!.signal.aborted).toBe(false);
    store.tasks.get(id!)!.cancelRequested = true;
    await advance(1000);
    expect(gated.started[0]!.signal.aborted).toBe(true);
    expect(store.status(id!)).toBe('cancelled');
  });

  it('aborts a run whose lease extension is refused as stale, without writing', async () => {
    const store = new FakeStore();
    const [id] = store.add(1);
    const gated = new GatedHandler();
    const { advance, stats } = startWorker(store, { t: gated }, { leaseMs: 3000 });
    await flush();
    store.tasks.get(id!)!.attempt = 2;
    await advance(1000);
    expect((gated.started[0]!.signal.reason as RunAbortedError).reason).toBe('lease_lost');
    expect(store.calls.fail).toHaveLength(0);
    expect(stats().stale).toBe(1);
    // It ended without a write: the store may drop what it kept for the run.
    expect(store.calls.forget).toEqual([{ id, attempt: 1 }]);
  });

  it('completes a run that registered transaction work on its own, through complete', async () => {
    const store = new FakeStore();
    const [id] = store.add(1);
    const effects: string[] = [];
    const handler: TaskHandler = {
      run: async (ctx) => {
        ctx.onComplete(async () => void effects.push(ctx.taskId));
        return 'r';
      },
    };
    const { advance, stats } = startWorker(store, { t: handler });
    await advance(10);
    expect(store.calls.complete).toHaveLength(1);
    expect(store.calls.completeMany).toHaveLength(0);
    expect(effects).toEqual([id]);
    expect(stats().completed).toBe(1);
  });
});

describe('worker: lease extensions while the store is unreachable', () => {
  /**
   * A worker at the default 30 s lease running one task that does not end on
   * its own, and the times of its lease extension calls. `until(t)` advances
   * the clock to `t` in 100 ms steps, so each timer fires on time.
   */
  async function leasedRun(inlineRuns: boolean) {
    const store = new FakeStore();
    const [id] = store.add(1);
    const gated = new GatedHandler();
    const worker = startWorker(store, { t: gated }, { inlineRuns });
    const attempts: number[] = [];
    const extend = store.extendLease.bind(store);
    store.extendLease = (ref) => {
      attempts.push(worker.clock.now());
      return extend(ref);
    };
    await flush();
    const until = async (t: number) => {
      while (worker.clock.now() < t) await worker.advance(Math.min(100, t - worker.clock.now()));
    };
    const signal = () => gated.started[0]!.signal;
    return { ...worker, store, id: id!, gated, attempts, until, signal };
  }

  for (const inlineRuns of [true, false]) {
    describe(`inlineRuns: ${inlineRuns}`, () => {
      it('retries a failed extension after a short backoff, and a success keeps the run past the lease', async () => {
        const run = await leasedRun(inlineRuns);
        await run.until(9_500);
        run.store.unreachable.add('extendLease'); // 11 s, over the 10 s and 20 s renewals
        await run.until(20_500);
        run.store.unreachable.delete('extendLease');
        await run.until(45_000);
        // 1 s doubling, at most lease/6, then every lease/3 again from the success.
        expect(run.attempts).toEqual([10_000, 11_000, 13_000, 17_000, 22_000, 32_000, 42_000]);
        expect(run.signal().aborted).toBe(false);
        expect(run.store.status(run.id)).toBe('running');
        run.gated.succeed(run.id);
        await run.advance(10);
        expect(run.store.status(run.id)).toBe('completed');
        expect(run.stats()).toMatchObject({ completed: 1, stale: 0 });
      });

      it('aborts the handler with lease_lost once the lease runs out with no extension, and writes nothing', async () => {
        const run = await leasedRun(inlineRuns);
        run.store.unreachable.add('extendLease');
        await run.until(26_900);
        expect(run.attempts).toEqual([10_000, 11_000, 13_000, 17_000, 22_000]);
        expect(run.signal().aborted).toBe(false);
        // Given up a tenth of the lease before its end, by the run's own clock.
        await run.until(27_000);
        expect(run.signal().reason).toBeInstanceOf(RunAbortedError);
        expect((run.signal().reason as RunAbortedError).reason).toBe('lease_lost');
        expect(run.stats()).toMatchObject({ stale: 1, completed: 0, failed: 0 });
        expect(run.actor.getSnapshot().context.runs.size).toBe(0);
        // The handler ending afterwards writes nothing either, and no extension is tried.
        run.gated.succeed(run.id);
        await run.until(45_000);
        expect(run.store.calls).toMatchObject({
          complete: [],
          completeMany: [],
          fail: [],
          finishCancelled: [],
        });
        expect(run.store.calls.forget).toEqual([{ id: run.id, attempt: 1 }]);
        expect(run.attempts).toHaveLength(5);
      });

      it('counts the lease from an extension the handler asked for, inline or not', async () => {
        const run = await leasedRun(inlineRuns);
        await run.until(4_000);
        await run.gated.started[0]!.extendLease(); // the handler's own, before any renewal
        await run.until(4_500);
        run.store.unreachable.add('extendLease');
        // Held until 0.9 x 30 s after that extension (31 s), not after the start (27 s).
        await run.until(30_500);
        expect(run.signal().aborted).toBe(false);
        await run.until(31_100);
        expect((run.signal().reason as RunAbortedError).reason).toBe('lease_lost');
      });

      it('gives the run up as lost when an extension hangs until the lease runs out', async () => {
        const run = await leasedRun(inlineRuns);
        run.store.extendGate = new Promise<void>(() => undefined);
        await run.until(26_900);
        expect(run.attempts).toEqual([10_000]);
        expect(run.signal().aborted).toBe(false);
        await run.until(27_000);
        expect((run.signal().reason as RunAbortedError).reason).toBe('lease_lost');
        expect(run.stats()).toMatchObject({ stale: 1 });
        expect(run.store.calls.fail).toEqual([]);
      });
    });
  }
});

describe('worker: the handler context', () => {
  it('has the task fields, a logger carrying the task, and methods that work destructured', async () => {
    const store = new FakeStore();
    const [id] = store.add(1);
    const lines: { message: string; fields: Record<string, unknown> | undefined }[] = [];
    const logger = {
      info: (message: string, fields?: Record<string, unknown>) => lines.push({ message, fields }),
      warn: () => undefined,
      error: () => undefined,
    };
    const effects: string[] = [];
    let seen: unknown;
    const handler: TaskHandler = {
      run: async (ctx) => {
        const { onComplete, extendLease, logger: log, taskId, attempt, type, queue, payload } = ctx;
        seen = { taskId, attempt, type, queue, payload, maxAttempts: ctx.maxAttempts };
        log.info('working', { step: 1 });
        await extendLease();
        onComplete(async () => void effects.push(taskId));
        return null;
      },
    };
    const { advance } = startWorker(store, { t: handler }, { logger });
    await advance(10);
    expect(seen).toEqual({
      taskId: id,
      attempt: 1,
      type: 't',
      queue: 'default',
      payload: { n: 0 },
      maxAttempts: 3,
    });
    expect(lines).toContainEqual({
      message: 'working',
      fields: { taskId: id, attempt: 1, type: 't', step: 1 },
    });
    expect(store.calls.extendLease).toEqual([{ id, attempt: 1 }]);
    expect(effects).toEqual([id]);
    expect(store.status(id!)).toBe('completed');
  });
});

describe('worker: drain', () => {
  it('stops claiming, waits for runs within the grace, then aborts and releases the rest', async () => {
    const store = new FakeStore();
    const [fast, slow] = store.add(2);
    const gated = new GatedHandler();
    const { actor, advance } = startWorker(store, { t: gated });
    await flush();
    actor.send({ type: 'DRAIN', graceMs: 1000 });
    store.add(3);
    actor.send({ type: 'WAKE' });
    await advance(500);
    expect(store.calls.claim).toHaveLength(1);
    gated.succeed(fast!);
    await advance(499);
    expect(store.status(fast!)).toBe('completed');
    expect(gated.started[1]!.signal.aborted).toBe(false);
    expect(actor.getSnapshot().status).toBe('active');
    await advance(1);
    expect((gated.started[1]!.signal.reason as RunAbortedError).reason).toBe('shutdown');
    expect(store.calls.release).toEqual([[{ id: slow, attempt: 1 }]]);
    expect(store.status(slow!)).toBe('pending');
    expect(actor.getSnapshot().status).toBe('done');
    expect(actor.getSnapshot().output).toMatchObject({ claimed: 2, completed: 1, released: 1 });
  });

  it('ends before the grace when every run finishes, with nothing to release', async () => {
    const store = new FakeStore();
    const [id] = store.add(1);
    const gated = new GatedHandler();
    const { actor, advance } = startWorker(store, { t: gated });
    await flush();
    actor.send({ type: 'DRAIN', graceMs: 60_000 });
    gated.succeed(id!);
    await advance(10);
    expect(actor.getSnapshot().status).toBe('done');
    expect(store.calls.release).toHaveLength(0);
    expect(store.status(id!)).toBe('completed');
  });

  it('waits for a slot held for a direct start, and runs the task when it comes within the grace', async () => {
    const store = new FakeStore();
    const gated = new GatedHandler();
    const { actor, advance } = startWorker(store, { t: gated });
    await flush();
    actor.send({ type: 'DIRECT.RESERVE', key: 'k', taskType: 't' });
    actor.send({ type: 'DRAIN', graceMs: 1000 });
    await flush();
    // No run yet, but the write of a direct start is in flight: not done.
    expect(actor.getSnapshot().matches({ intake: { draining: 'waiting' } })).toBe(true);
    const task = storeRunning(store);
    const id = task.id;
    actor.send({ type: 'DIRECT.STARTED', key: 'k', task });
    await flush();
    expect(gated.started.map((c) => c.taskId)).toEqual([id]);
    gated.succeed(id);
    await advance(10);
    expect(store.status(id)).toBe('completed');
    expect(actor.getSnapshot().status).toBe('done');
  });

  it('gives back, uncharged, a direct start that comes after the grace, with the aborted runs', async () => {
    const store = new FakeStore();
    const [claimed] = store.add(1);
    const gated = new GatedHandler();
    const { actor, advance } = startWorker(store, { t: gated });
    await flush();
    actor.send({ type: 'DIRECT.RESERVE', key: 'k', taskType: 't' });
    actor.send({ type: 'DRAIN', graceMs: 100 });
    await advance(100);
    // The claimed run was aborted; the held slot still waits for its write.
    expect(actor.getSnapshot().matches({ intake: { draining: 'aborting' } })).toBe(true);
    const task = storeRunning(store);
    const id = task.id;
    actor.send({ type: 'DIRECT.STARTED', key: 'k', task });
    await advance(10);
    expect(gated.started.map((c) => c.taskId)).toEqual([claimed]);
    expect(store.calls.release).toEqual([
      [
        { id: claimed, attempt: 1 },
        { id, attempt: 1 },
      ],
    ]);
    expect(store.status(id)).toBe('pending');
    expect(actor.getSnapshot().status).toBe('done');
    expect(actor.getSnapshot().output).toMatchObject({ claimed: 2, released: 2 });
  });

  it('a drain requested during a claim starts the claimed runs and drains them', async () => {
    const store = new FakeStore();
    store.add(1);
    const gated = new GatedHandler();
    const { actor, advance } = startWorker(store, { t: gated });
    actor.send({ type: 'DRAIN', graceMs: 100 }); // the first claim is in flight
    await flush();
    expect(gated.started).toHaveLength(1);
    await advance(100);
    expect(store.calls.release).toHaveLength(1);
    expect(actor.getSnapshot().status).toBe('done');
  });
});

describe('worker: inline runs', () => {
  /** The run actors among the children, as `run:<task>:<attempt>` (`orphan:<id>` for one without a run). */
  const runActors = (actor: ReturnType<typeof startWorker>['actor']) => {
    const { children, context } = actor.getSnapshot();
    const runs = [...context.runs.values()];
    return Object.keys(children)
      .filter((id) => id.startsWith('run.'))
      .map((id) => {
        const run = runs.find((r) => (r.lane ? r.lane.actorId : r.actorId) === id);
        return run ? `run:${run.id}:${run.attempt}` : `orphan:${id}`;
      });
  };

  it('runs short handlers without run actors and completes them in one batch', async () => {
    const store = new FakeStore();
    const ids = store.add(3);
    const { actor, advance, stats } = startWorker(store, { t: quick });
    await flush();
    expect(runActors(actor)).toEqual([]);
    expect(actor.getSnapshot().context.runs.size).toBe(0);
    await advance(10);
    expect(store.calls.completeMany.map((b) => b.map((r) => r.id))).toEqual([ids]);
    expect(stats()).toMatchObject({ claimed: 3, completed: 3 });
  });

  it('gives a run still going at its batch check a run actor, which then owns it', async () => {
    const store = new FakeStore();
    const [id] = store.add(1);
    const gated = new GatedHandler();
    const { actor, advance, stats } = startWorker(store, { t: gated }, { leaseMs: 3000 });
    await flush();
    expect(runActors(actor)).toEqual([]);
    await advance(500); // half of lease/3
    expect(runActors(actor)).toEqual([`run:${id}:1`]);
    gated.succeed(id!);
    await advance(10);
    expect(store.calls.completeMany.map((b) => b.map((r) => r.id))).toEqual([[id]]);
    expect(stats()).toMatchObject({ completed: 1 });
    expect(runActors(actor)).toEqual([]);
  });

  it('checks each inline run at its own time with one timer, however many batches started', async () => {
    const store = new FakeStore();
    const gated = new GatedHandler();
    const { actor, advance } = startWorker(store, { t: gated }, { leaseMs: 3000 });
    await flush();
    const [first] = store.add(1);
    actor.send({ type: 'WAKE' });
    await flush();
    await advance(300);
    const [second] = store.add(1);
    actor.send({ type: 'WAKE' });
    await flush();
    expect(actor.getSnapshot().context.laneCheckAt).toBe(500);
    await advance(200); // t = 500: the first run's check (half of lease/3)
    expect(runActors(actor)).toEqual([`run:${first}:1`]);
    expect(actor.getSnapshot().context.laneCheckAt).toBe(800);
    await advance(300); // t = 800: the second's
    expect(runActors(actor).sort()).toEqual([`run:${first}:1`, `run:${second}:1`].sort());
    expect(actor.getSnapshot().context.laneCheckAt).toBeUndefined();
  });

  it('leaves no check timer set once every inline run has ended', async () => {
    const store = new FakeStore();
    store.add(2);
    const { actor, advance, stats } = startWorker(store, { t: quick }, { leaseMs: 3000 });
    await flush();
    await advance(10);
    expect(stats()).toMatchObject({ completed: 2 });
    await advance(1000);
    expect(runActors(actor)).toEqual([]);
    expect(actor.getSnapshot().context.laneCheckAt).toBeUndefined();
  });

  it('with inlineRuns: false, spawns a run actor per task', async () => {
    const store = new FakeStore();
    const ids = store.add(2);
    const gated = new GatedHandler();
    const { actor } = startWorker(store, { t: gated }, { inlineRuns: false });
    await flush();
    expect(runActors(actor).sort()).toEqual(ids.map((id) => `run:${id}:1`).sort());
  });
});

describe('worker: the event types it receives', () => {
  /*
   * XState caches each state node's candidate transitions per event type, for
   * the life of the process, and a child's done and error events are typed
   * after its id (`xstate.done.actor.<id>`). A child id made unique per run or
   * per completion batch therefore grew that cache by one entry per child:
   * about 60 bytes a task, never freed.
   */
  async function typesAfter(batches: number, options: Partial<WorkerInput>) {
    const types = new Set<string>();
    const store = new FakeStore();
    const { actor, advance, stats } = startWorker(store, { t: quick }, options, (e) => {
      if (e.type === '@xstate.event' && e.actorRef.sessionId === e.rootId) types.add(e.event.type);
    });
    await flush();
    for (let i = 0; i < batches; i++) {
      store.add(2);
      actor.send({ type: 'WAKE' });
      await advance(10); // each batch is its own completion write
    }
    expect(stats()).toMatchObject({ completed: 2 * batches });
    expect(store.calls.completeMany.length).toBeGreaterThanOrEqual(batches);
    return [...types].sort();
  }

  it('reuses a child id as late as possible, and a second give is harmless', () => {
    const ids = new ChildIds('run.');
    expect([ids.take(), ids.take(), ids.take()]).toEqual(['run.0', 'run.1', 'run.2']);
    ids.give('run.1');
    ids.give('run.0');
    ids.give('run.1');
    ids.give('run.7'); // never taken
    expect([ids.take(), ids.take(), ids.take()]).toEqual(['run.1', 'run.0', 'run.3']);
  });

  it('is the same few types however many runs and completion batches it finishes', async () => {
    for (const inlineRuns of [true, false]) {
      const few = await typesAfter(3, { inlineRuns });
      const many = await typesAfter(30, { inlineRuns });
      expect(many).toEqual(few);
      expect(many.length).toBeLessThan(20);
    }
  });
});

describe('worker: direct starts (a task stored running by the node it was submitted to)', () => {
  it('holds a slot on DIRECT.RESERVE, runs the task on DIRECT.STARTED, and completes it in a batch', async () => {
    const store = new FakeStore();
    const { actor, advance, stats } = startWorker(store, { t: quick });
    await flush();
    actor.send({ type: 'DIRECT.RESERVE', key: 'k1', taskType: 't' });
    expect([...actor.getSnapshot().context.reserved]).toEqual([['k1', 't']]);
    const task = storeRunning(store);
    actor.send({ type: 'DIRECT.STARTED', key: 'k1', task });
    expect(actor.getSnapshot().context.reserved.size).toBe(0);
    await advance(10);
    expect(store.status(task.id)).toBe('completed');
    expect(store.calls.completeMany.map((b) => b.map((r) => r.id))).toEqual([[task.id]]);
    expect(stats()).toMatchObject({ claimed: 1, completed: 1 });
  });

  it('counts what the claim round in flight may bring: a reservation never takes a slot or a type limit it needs', async () => {
    const store = new FakeStore();
    const t = new GatedHandler();
    const limited = new GatedHandler({ concurrency: 1 });
    const { actor } = startWorker(store, { t, limited }, { concurrency: 4, claimBatchSize: 2 });
    await flush(); // the first claim found nothing
    store.add(2, 't');
    store.add(1, 'limited');
    let open!: () => void;
    store.claimGate = new Promise((resolve) => (open = resolve));
    actor.send({ type: 'WAKE' });
    await flush();
    expect(actor.getSnapshot().matches({ intake: { accepting: 'claiming' } })).toBe(true);
    const reserve = (key: string, taskType: string) => {
      actor.send({ type: 'DIRECT.RESERVE', key, taskType });
      return actor.getSnapshot().context.reserved.has(key);
    };
    // The round may bring 2 (one of them limited): 2 slots are free, none for limited.
    expect(reserve('l', 'limited')).toBe(false);
    expect(reserve('a', 't')).toBe(true);
    expect(reserve('b', 't')).toBe(true);
    expect(reserve('c', 't')).toBe(false);
    store.claimGate = undefined;
    open();
    await flush();
    for (const key of ['a', 'b']) {
      actor.send({ type: 'DIRECT.STARTED', key, task: storeRunning(store) });
    }
    await flush();
    expect(actor.getSnapshot().context.runs.size).toBe(4);
    expect(t.maxRunning + limited.maxRunning).toBeLessThanOrEqual(4);
    expect(limited.maxRunning).toBe(1);
  });

  it('refuses a reservation without a free slot, over the type limit, for an unknown type, or while draining', async () => {
    const store = new FakeStore();
    const limited = new GatedHandler({ concurrency: 1 });
    const { actor } = startWorker(store, { t: quick, limited }, { concurrency: 2 });
    await flush();
    const reserve = (key: string, taskType: string) => {
      actor.send({ type: 'DIRECT.RESERVE', key, taskType });
      return actor.getSnapshot().context.reserved.has(key);
    };
    expect(reserve('a', 'limited')).toBe(true);
    expect(reserve('b', 'limited')).toBe(false); // its own limit
    expect(reserve('c', 'nobody-handles-this')).toBe(false);
    expect(reserve('d', 't')).toBe(true);
    expect(reserve('e', 't')).toBe(false); // concurrency 2: both slots held
    actor.send({ type: 'DIRECT.RELEASE', key: 'd' });
    expect(reserve('f', 't')).toBe(true);
    actor.send({ type: 'DIRECT.RELEASE', key: 'f' });
    actor.send({ type: 'DRAIN' });
    expect(reserve('g', 't')).toBe(false);
  });

  it('claims only what held slots leave free', async () => {
    const store = new FakeStore();
    const gated = new GatedHandler();
    const { actor } = startWorker(store, { t: gated }, { concurrency: 3 });
    await flush();
    actor.send({ type: 'DIRECT.RESERVE', key: 'k', taskType: 't' });
    store.add(5);
    actor.send({ type: 'WAKE' });
    await flush();
    expect(store.calls.claim.at(-1)!.limit).toBe(2);
    expect(gated.started).toHaveLength(2);
    actor.send({ type: 'DIRECT.STARTED', key: 'k', task: storeRunning(store) });
    await flush();
    expect(gated.started).toHaveLength(3);
    expect(gated.maxRunning).toBe(3);
  });
});
