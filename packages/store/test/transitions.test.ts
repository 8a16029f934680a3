import { describe, expect, it } from 'vitest';
import { IllegalTransitionError, TaskNotFoundError, type TaskStatus } from '../src/index.js';
import { taskSql } from '../src/tasks.sql.js';
import { useStore } from './helpers.js';

const ctx = useStore({ backoff: { baseMs: 10, maxMs: 20 } });
const owner = 'node-a';

async function claimOne(type: string) {
  const [task] = await ctx.store.tasks.claim({ owner, types: [type], limit: 1, leaseMs: 30_000 });
  if (!task) throw new Error(`no ${type} task to claim`);
  return task;
}

async function statusOf(id: string): Promise<TaskStatus> {
  return (await ctx.store.tasks.get(id))!.status;
}

describe('legal transitions', () => {
  it('pending -> claimed -> running -> completed, with times on the row and the whole history readable', async () => {
    const { tasks } = ctx.store;
    const { id } = await tasks.enqueue({ type: 't.happy', payload: { n: 1 } });
    expect(await statusOf(id)).toBe('pending');

    const claimed = await claimOne('t.happy');
    expect(claimed).toMatchObject({ id, status: 'claimed', attempt: 1, leaseOwner: owner });
    expect(claimed.leaseExpiresAt!.getTime()).toBeGreaterThan(claimed.claimedAt!.getTime());

    expect(await tasks.markRunning([{ id, attempt: 1 }])).toEqual([{ ok: true }]);
    expect(await statusOf(id)).toBe('running');

    expect(await tasks.complete({ id, attempt: 1 }, { result: { ok: 1 } })).toEqual({ ok: true });
    const done = (await tasks.get(id))!;
    expect(done).toMatchObject({ status: 'completed', result: { ok: 1 }, attempt: 1 });
    expect(done.finishedAt).toBeInstanceOf(Date);

    const history = await tasks.history(id);
    expect(history.map((h) => [h.from, h.to, h.attempt])).toEqual([
      [null, 'pending', 0],
      ['pending', 'claimed', 1],
      ['claimed', 'running', 1],
      ['running', 'completed', 1],
    ]);
    expect(history[1]!.node).toBe(owner);
  });

  it('running -> retry -> claimed again -> dead_letter when attempts are spent, all recorded', async () => {
    const { tasks } = ctx.store;
    const { id } = await tasks.enqueue({ type: 't.retry', maxAttempts: 2 });
    let t = await claimOne('t.retry');
    await tasks.markRunning([{ id, attempt: t.attempt }]);
    const first = await tasks.fail({ id, attempt: 1, error: { message: 'boom' }, retryInMs: 0 });
    expect(first).toMatchObject({ ok: true, status: 'retry' });

    t = await claimOne('t.retry');
    expect(t.attempt).toBe(2);
    await tasks.markRunning([{ id, attempt: 2 }]);
    const second = await tasks.fail({ id, attempt: 2, error: { message: 'boom again' } });
    expect(second).toMatchObject({ ok: true, status: 'dead_letter' });
    expect((await tasks.get(id))!.lastError).toMatchObject({ message: 'boom again', attempt: 2 });

    const history = await tasks.history(id);
    expect(history.map((h) => `${h.from ?? ''}>${h.to}@${h.attempt}`)).toEqual([
      '>pending@0',
      'running>retry@1',
      'retry>claimed@2',
      'claimed>running@2',
      'running>dead_letter@2',
    ]);
    // Each failed attempt keeps its start: the row's started_at is the last attempt's.
    const started = history.filter((h) => h.to === 'retry' || h.to === 'dead_letter');
    const starts = started.map((h) => (h.detail as { startedAt: string }).startedAt);
    expect(starts.every((at) => !Number.isNaN(Date.parse(at)))).toBe(true);
    expect(Date.parse(starts[0]!)).toBeLessThan(Date.parse(starts[1]!));
    expect(new Date(starts[1]!)).toEqual((await tasks.get(id))!.startedAt);
  });

  it('claim-and-start makes both transitions in one statement, and records them on a re-claim', async () => {
    const { tasks } = ctx.store;
    const { id } = await tasks.enqueue({ type: 't.start', maxAttempts: 3 });
    const [first] = await tasks.claim({
      owner,
      types: ['t.start'],
      limit: 1,
      leaseMs: 30_000,
      start: true,
    });
    expect(first).toMatchObject({ id, status: 'running', attempt: 1 });
    expect(first!.startedAt).toEqual(first!.claimedAt);
    await tasks.fail({ id, attempt: 1, error: { message: 'again' }, retryInMs: 0 });
    const [second] = await tasks.claim({
      owner,
      types: ['t.start'],
      limit: 1,
      leaseMs: 30_000,
      start: true,
    });
    expect(second).toMatchObject({ id, status: 'running', attempt: 2 });
    expect(await tasks.complete({ id, attempt: 2 })).toEqual({ ok: true });
    expect((await tasks.history(id)).map((h) => `${h.from ?? ''}>${h.to}@${h.attempt}`)).toEqual([
      '>pending@0',
      'running>retry@1',
      'retry>claimed@2',
      'claimed>running@2',
      'running>completed@2',
    ]);
  });

  it("the worker's claim (claimRuns) records a re-claim's two transitions, with the node", async () => {
    const { tasks } = ctx.store;
    const { id } = await tasks.enqueue({ type: 't.reruns', maxAttempts: 3 });
    const claim = () => tasks.claimRuns({ owner, types: ['t.reruns'], limit: 1, leaseMs: 30_000 });
    expect(await claim()).toMatchObject([{ id, attempt: 1 }]);
    await tasks.fail({ id, attempt: 1, error: { message: 'again' }, retryInMs: 0 });
    expect(await claim()).toMatchObject([{ id, attempt: 2, status: 'running' }]);
    const history = (await tasks.history(id)).slice(-2);
    expect(history.map((h) => `${h.from ?? ''}>${h.to}@${h.attempt} ${h.node}`)).toEqual([
      `retry>claimed@2 ${owner}`,
      `claimed>running@2 ${owner}`,
    ]);
  });

  it("the worker's claim (claimRuns) starts the runs and returns what they need; completeMany writes results, or none", async () => {
    const { tasks } = ctx.store;
    const a = await tasks.enqueue({ type: 't.runs', payload: { n: 1 }, maxAttempts: 4 });
    const b = await tasks.enqueue({ type: 't.runs', payload: { n: 2 }, idempotencyKey: 'k-runs' });
    const c = await tasks.enqueue({ type: 't.runs', payload: { n: 3 } });
    const claimed = await tasks.claimRuns({ owner, types: ['t.runs'], limit: 3, leaseMs: 30_000 });
    expect(claimed.sort((x, y) => Number(x.id) - Number(y.id))).toEqual([
      {
        id: a.id,
        type: 't.runs',
        queue: 'default',
        payload: { n: 1 },
        attempt: 1,
        maxAttempts: 4,
        idempotencyKey: null,
        status: 'running',
      },
      {
        id: b.id,
        type: 't.runs',
        queue: 'default',
        payload: { n: 2 },
        attempt: 1,
        maxAttempts: 5,
        idempotencyKey: 'k-runs',
        status: 'running',
      },
      {
        id: c.id,
        type: 't.runs',
        queue: 'default',
        payload: { n: 3 },
        attempt: 1,
        maxAttempts: 5,
        idempotencyKey: null,
        status: 'running',
      },
    ]);
    const row = (await tasks.get(a.id))!;
    expect(row).toMatchObject({ status: 'running', leaseOwner: owner });
    expect(row.startedAt).toEqual(row.claimedAt);
    // A batch without results, then one with a result and a repeated (stale) completion.
    expect(
      await tasks.completeMany([
        { id: a.id, attempt: 1 },
        { id: b.id, attempt: 1, result: null },
      ]),
    ).toEqual([{ ok: true }, { ok: true }]);
    expect(
      await tasks.completeMany([
        { id: c.id, attempt: 1, result: { n: 30 } },
        { id: a.id, attempt: 1 },
      ]),
    ).toEqual([{ ok: true }, { ok: false, reason: 'stale' }]);
    const done = await Promise.all([a, b, c].map((t) => tasks.get(t.id)));
    expect(done.map((t) => [t!.status, t!.result])).toEqual([
      ['completed', null],
      ['completed', null],
      ['completed', { n: 30 }],
    ]);
  });

  it('a batch completion sends back one row: the count, and the ids only when some run was not completed', async () => {
    const { tasks } = ctx.store;
    for (let n = 0; n < 3; n++) await tasks.enqueue({ type: 't.written', payload: { n } });
    const [x, y, z] = (
      await tasks.claimRuns({ owner, types: ['t.written'], limit: 3, leaseMs: 30_000 })
    ).sort((p, q) => Number(p.id) - Number(q.id));
    const sql = taskSql('baton');
    const run = async (refs: { id: string; attempt: number }[]) =>
      (
        await ctx.store.pool.query<{ n: number; ids: string[] | null }>(sql.completeNoResults, [
          refs.map((r) => r.id),
          refs.map((r) => r.attempt),
        ])
      ).rows;
    expect(await run([x!, y!])).toEqual([{ n: 2, ids: null }]);
    // y again (already completed) and z at an attempt it never had change nothing.
    expect(await run([y!, { id: z!.id, attempt: 2 }])).toEqual([{ n: 0, ids: null }]);
    expect(await run([{ id: z!.id, attempt: 2 }, z!])).toEqual([{ n: 1, ids: [z!.id] }]);
    expect(await tasks.completeMany([{ id: x!.id, attempt: 1 }])).toEqual([
      { ok: false, reason: 'stale' },
    ]);
  });

  it('completeMany takes only plain integer ids: a crafted id cannot reach another task', async () => {
    const { tasks } = ctx.store;
    await tasks.enqueue({ type: 't.crafted', payload: {} });
    await tasks.enqueue({ type: 't.crafted', payload: {} });
    const [x, y] = (
      await tasks.claimRuns({ owner, types: ['t.crafted'], limit: 2, leaseMs: 30_000 })
    ).sort((p, q) => Number(p.id) - Number(q.id));
    // As an array literal, "x,y" would have named both tasks; as an element it is no id.
    await expect(tasks.completeMany([{ id: `${x!.id},${y!.id}`, attempt: 1 }])).rejects.toThrow();
    expect((await tasks.get(x!.id))!.status).toBe('running');
    expect((await tasks.get(y!.id))!.status).toBe('running');
    expect(
      await tasks.completeMany([
        { id: x!.id, attempt: 1 },
        { id: y!.id, attempt: 1 },
      ]),
    ).toEqual([{ ok: true }, { ok: true }]);
  });

  it('enqueueAndStart stores eligible tasks running on the submitting node, unless the queue has a backlog', async () => {
    const { tasks } = ctx.store;
    const start = (n: number, eligible: boolean[] = Array.from({ length: n }, () => true)) => ({
      owner,
      leaseMs: 30_000,
      queue: 'q_direct',
      types: ['t.direct'],
      eligible,
    });
    const [a, b, c, d] = await tasks.enqueueAndStart(
      [
        { type: 't.direct', queue: 'q_direct', payload: { n: 1 } },
        { type: 't.direct', queue: 'q_direct', payload: { n: 2 } },
        { type: 't.direct', queue: 'q_direct', runAt: new Date(Date.now() + 60_000) },
        { type: 't.direct', queue: 'q_other' },
      ],
      start(4, [true, false, true, true]),
    );
    expect(a!.started).toEqual({
      id: a!.id,
      type: 't.direct',
      queue: 'q_direct',
      payload: { n: 1 },
      attempt: 1,
      maxAttempts: 5,
      idempotencyKey: null,
      status: 'running',
    });
    // Not eligible, due later, or another queue: stored pending.
    expect([b, c, d].map((r) => r!.started)).toEqual([null, null, null]);
    const row = (await tasks.get(a!.id))!;
    expect(row).toMatchObject({ status: 'running', attempt: 1, leaseOwner: owner });
    expect(row.startedAt).toEqual(row.createdAt);
    expect((await tasks.history(a!.id)).map((h) => `${h.from ?? ''}>${h.to}@${h.attempt}`)).toEqual(
      ['>pending@0', 'pending>claimed@1', 'claimed>running@1'],
    );
    expect(await statusOf(b!.id)).toBe('pending');
    // b waits in q_direct: the next eligible task queues behind it.
    const [e] = await tasks.enqueueAndStart([{ type: 't.direct', queue: 'q_direct' }], start(1));
    expect(e!.started).toBeNull();
    expect(await statusOf(e!.id)).toBe('pending');
    // A duplicate starts nothing.
    const [k] = await tasks.enqueueAndStart(
      [{ type: 't.direct', queue: 'q_empty', idempotencyKey: 'k-direct' }],
      { ...start(1), queue: 'q_empty' },
    );
    expect(k!.started).not.toBeNull();
    const [again] = await tasks.enqueueAndStart(
      [{ type: 't.direct', queue: 'q_empty', idempotencyKey: 'k-direct' }],
      { ...start(1), queue: 'q_empty' },
    );
    expect(again).toEqual({ id: k!.id, duplicate: true, started: null });
    await expect(tasks.enqueueAndStart([{ type: 't.direct' }], start(2))).rejects.toThrow(
      /start.eligible/,
    );
  });

  it('a waiting task of a type the submitting node does not handle is not its backlog', async () => {
    const { tasks } = ctx.store;
    const start = { owner, leaseMs: 30_000, queue: 'q_types', types: ['t.mine'], eligible: [true] };
    // Nobody here runs t.orphan: it must not turn direct starts off for the queue.
    const [orphan] = await tasks.enqueueMany([{ type: 't.orphan', queue: 'q_types' }]);
    const [a] = await tasks.enqueueAndStart([{ type: 't.mine', queue: 'q_types' }], start);
    expect(a!.started).not.toBeNull();
    expect(await statusOf(orphan!.id)).toBe('pending');
    // A waiting task of one of its types is: the next submission queues behind it.
    const [waiting] = await tasks.enqueueMany([{ type: 't.mine', queue: 'q_types' }]);
    const [b] = await tasks.enqueueAndStart([{ type: 't.mine', queue: 'q_types' }], start);
    expect(b!.started).toBeNull();
    expect(await statusOf(waiting!.id)).toBe('pending');
  });

  it('a non-retryable error dead-letters at once', async () => {
    const { tasks } = ctx.store;
    const { id } = await tasks.enqueue({ type: 't.fatal', maxAttempts: 5 });
    await claimOne('t.fatal');
    await tasks.markRunning([{ id, attempt: 1 }]);
    expect(
      await tasks.fail({ id, attempt: 1, error: { message: 'bad' }, retryable: false }),
    ).toMatchObject({
      ok: true,
      status: 'dead_letter',
    });
  });

  it('pending -> cancelled at once; running -> cancel requested, then cancelled by its worker', async () => {
    const { tasks } = ctx.store;
    const a = await tasks.enqueue({ type: 't.cancel' });
    expect(await tasks.cancel(a.id, 'cli')).toEqual({ ok: true, status: 'cancelled' });
    expect(await statusOf(a.id)).toBe('cancelled');

    const b = await tasks.enqueue({ type: 't.cancel' });
    await claimOne('t.cancel');
    await tasks.markRunning([{ id: b.id, attempt: 1 }]);
    expect(await tasks.cancel(b.id, 'cli')).toEqual({ ok: true, status: 'cancel_requested' });
    const ext = await tasks.extendLease({ id: b.id, attempt: 1 }, 30_000);
    expect(ext).toMatchObject({ ok: true, cancelRequested: true });
    expect(await tasks.finishCancelled({ id: b.id, attempt: 1 })).toEqual({ ok: true });
    expect(await statusOf(b.id)).toBe('cancelled');
    expect((await tasks.history(b.id)).at(-1)).toMatchObject({ from: 'running', to: 'cancelled' });
  });

  it('dead_letter -> pending by an explicit redrive, which grants a new attempt and is recorded', async () => {
    const { tasks } = ctx.store;
    const { id } = await tasks.enqueue({ type: 't.redrive', maxAttempts: 1 });
    await claimOne('t.redrive');
    await tasks.markRunning([{ id, attempt: 1 }]);
    await tasks.fail({ id, attempt: 1, error: { message: 'x' } });
    expect(await statusOf(id)).toBe('dead_letter');
    await tasks.redrive(id, { node: 'cli' });
    expect(await tasks.get(id)).toMatchObject({ status: 'pending', maxAttempts: 2, attempt: 1 });
    const t = await claimOne('t.redrive');
    expect(t.attempt).toBe(2);
    expect(
      (await tasks.history(id)).some((h) => h.from === 'dead_letter' && h.to === 'pending'),
    ).toBe(true);
  });

  it('graceful release gives a task back to pending without charging the attempt', async () => {
    const { tasks } = ctx.store;
    const { id } = await tasks.enqueue({ type: 't.release', maxAttempts: 3 });
    await claimOne('t.release');
    await tasks.markRunning([{ id, attempt: 1 }]);
    expect(await tasks.release([{ id, attempt: 1 }], owner)).toBe(1);
    // The attempt number stays (a fencing token only grows); one more try makes up for it.
    expect(await tasks.get(id)).toMatchObject({
      status: 'pending',
      attempt: 1,
      maxAttempts: 4,
      leaseOwner: null,
    });
    const again = await claimOne('t.release');
    expect(again.attempt).toBe(2);
    await tasks.markRunning([again]);
    // The released run's late write is refused: its attempt is not the current one.
    expect(await tasks.complete({ id, attempt: 1 })).toEqual({ ok: false, reason: 'stale' });
    expect(await tasks.complete(again)).toEqual({ ok: true });
    const history = await tasks.history(id);
    expect(history.find((h) => h.to === 'pending' && h.from === 'running')).toMatchObject({
      attempt: 1,
      detail: { reason: 'released' },
    });
    // The re-claim is recorded from where the task was: pending, not retry.
    expect(history.find((h) => h.to === 'claimed' && h.attempt === 2)).toMatchObject({
      from: 'pending',
    });
  });
});

describe('illegal transitions are refused', () => {
  it('no terminal state is left: completing, failing or cancelling a completed task changes nothing', async () => {
    const { tasks } = ctx.store;
    const { id } = await tasks.enqueue({ type: 't.final' });
    await claimOne('t.final');
    await tasks.markRunning([{ id, attempt: 1 }]);
    await tasks.complete({ id, attempt: 1 });
    const staleBefore = tasks.stats.staleAttempts;
    expect(await tasks.complete({ id, attempt: 1 })).toEqual({ ok: false, reason: 'stale' });
    expect(await tasks.fail({ id, attempt: 1, error: { message: 'late' } })).toEqual({
      ok: false,
      reason: 'stale',
    });
    expect(tasks.stats.staleAttempts).toBe(staleBefore + 2);
    expect(await tasks.cancel(id)).toEqual({
      ok: false,
      reason: 'already_final',
      status: 'completed',
    });
    expect(await statusOf(id)).toBe('completed');
    await expect(tasks.redrive(id)).rejects.toBeInstanceOf(IllegalTransitionError);
    await expect(tasks.redrive(id)).rejects.toMatchObject({ code: 'ILLEGAL_TRANSITION' });
  });

  it('completing a task that was never claimed, or with an attempt that never existed, is an illegal transition', async () => {
    const { tasks } = ctx.store;
    const { id } = await tasks.enqueue({ type: 't.never' });
    await expect(tasks.complete({ id, attempt: 1 })).rejects.toMatchObject({
      code: 'ILLEGAL_TRANSITION',
    });
    await expect(tasks.complete({ id, attempt: 0 })).rejects.toMatchObject({
      code: 'ILLEGAL_TRANSITION',
    });
    await claimOne('t.never');
    await expect(tasks.complete({ id, attempt: 7 })).rejects.toMatchObject({
      code: 'ILLEGAL_TRANSITION',
    });
    // claimed but not yet running: completion skips a state
    await expect(tasks.complete({ id, attempt: 1 })).rejects.toMatchObject({
      code: 'ILLEGAL_TRANSITION',
    });
    expect(await statusOf(id)).toBe('claimed');
  });

  it('a cancelled task cannot be claimed, completed or redriven', async () => {
    const { tasks } = ctx.store;
    const { id } = await tasks.enqueue({ type: 't.cancelled' });
    await tasks.cancel(id);
    expect(await tasks.claim({ owner, types: ['t.cancelled'], limit: 10, leaseMs: 1000 })).toEqual(
      [],
    );
    await expect(tasks.redrive(id)).rejects.toMatchObject({ code: 'ILLEGAL_TRANSITION' });
    expect(await statusOf(id)).toBe('cancelled');
  });

  it('unknown tasks are reported as not found', async () => {
    await expect(ctx.store.tasks.cancel('999999999')).rejects.toBeInstanceOf(TaskNotFoundError);
    expect(await ctx.store.tasks.get('999999999')).toBeNull();
  });
});

describe('claim order and reading back', () => {
  it('claims by priority, then due time, then age; skips tasks not yet due', async () => {
    const { tasks } = ctx.store;
    const low = await tasks.enqueue({ type: 't.order', priority: 0 });
    const high = await tasks.enqueue({ type: 't.order', priority: 10 });
    const later = await tasks.enqueue({ type: 't.order', priority: 100, delayMs: 60_000 });
    const low2 = await tasks.enqueue({ type: 't.order', priority: 0 });
    const claimed = await tasks.claim({ owner, types: ['t.order'], limit: 10, leaseMs: 1000 });
    expect(claimed.map((t) => t.id)).toEqual([high.id, low.id, low2.id]);
    expect(await statusOf(later.id)).toBe('pending');
  });

  it('claims only from the asked queue', async () => {
    const { tasks } = ctx.store;
    const a = await tasks.enqueue({ type: 't.queue', queue: 'emails' });
    await tasks.enqueue({ type: 't.queue', queue: 'reports' });
    const claimed = await tasks.claim({ owner, queue: 'emails', limit: 10, leaseMs: 1000 });
    expect(claimed.map((t) => t.id)).toEqual([a.id]);
  });

  it('lists newest first with keyset pagination and counts by status', async () => {
    const { tasks } = ctx.store;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await tasks.enqueue({ type: 't.list', payload: i })).id);
    const page1 = await tasks.list({ type: 't.list', limit: 2 });
    const page2 = await tasks.list({ type: 't.list', limit: 2, cursor: page1.nextCursor! });
    const page3 = await tasks.list({ type: 't.list', limit: 2, cursor: page2.nextCursor! });
    expect([...page1.tasks, ...page2.tasks, ...page3.tasks].map((t) => t.id)).toEqual(
      ids.reverse(),
    );
    expect(page3.nextCursor).toBeNull();
    const counts = await tasks.counts();
    expect(counts.pending).toBeGreaterThanOrEqual(5);
    expect(Object.keys(counts).sort()).toEqual([
      'cancelled',
      'claimed',
      'completed',
      'dead_letter',
      'pending',
      'retry',
      'running',
    ]);
  });
});

describe('what jsonb refuses, in what handlers return', () => {
  it('a result or error text with NUL or a lone surrogate is stored with U+FFFD, and its batch completes', async () => {
    const { tasks } = ctx.store;
    await tasks.enqueueMany(Array.from({ length: 4 }, (_, i) => ({ type: 't.odd', payload: i })));
    const claimed = await tasks.claim({
      owner,
      types: ['t.odd'],
      limit: 4,
      leaseMs: 30_000,
      start: true,
    });
    expect(claimed).toHaveLength(4);
    const [a, b, c, d] = claimed as [
      (typeof claimed)[0],
      (typeof claimed)[0],
      (typeof claimed)[0],
      (typeof claimed)[0],
    ];
    const outcomes = await tasks.completeMany([
      { id: a.id, attempt: 1, result: { text: 'bad\u0000byte' } },
      { id: b.id, attempt: 1, result: { ['k\ud800']: 'x\udc00' } },
      { id: c.id, attempt: 1, result: { fine: true } },
    ]);
    expect(outcomes).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    expect((await tasks.get(a.id))!.result).toEqual({ text: 'bad\ufffdbyte' });
    expect((await tasks.get(b.id))!.result).toEqual({ ['k\ufffd']: 'x\ufffd' });
    expect((await tasks.get(c.id))!).toMatchObject({ status: 'completed', result: { fine: true } });

    // An error message from parsing binary input holds a raw NUL: the failure is still recorded.
    const failed = await tasks.fail({
      id: d.id,
      attempt: 1,
      error: { message: 'Unexpected token \u0000 in JSON', name: 'SyntaxError' },
      retryable: false,
    });
    expect(failed).toMatchObject({ ok: true, status: 'dead_letter' });
    expect((await tasks.get(d.id))!.lastError).toMatchObject({
      message: 'Unexpected token \ufffd in JSON',
    });
  });
});
