import { describe, expect, it } from 'vitest';
import { backoffCeilingMs, backoffMs } from '../src/index.js';
import { useStore } from './helpers.js';

const policy = { baseMs: 100, maxMs: 5_000 };
const ctx = useStore({ backoff: policy });

describe('backoff with full jitter', () => {
  it('the ceiling doubles per attempt and is capped', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map((a) => backoffCeilingMs(a, policy))).toEqual([
      100, 200, 400, 800, 1600, 3200, 5000, 5000,
    ]);
  });

  it('delays are spread over [0, ceiling] and never outside it', () => {
    for (const attempt of [1, 3, 6, 10]) {
      const ceiling = backoffCeilingMs(attempt, policy);
      const samples = Array.from({ length: 2000 }, () => backoffMs(attempt, policy));
      expect(Math.min(...samples)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...samples)).toBeLessThanOrEqual(ceiling);
      // jittered: many distinct values, covering both halves of the range
      expect(new Set(samples).size).toBeGreaterThan(Math.min(ceiling, 2000) / 4);
      expect(samples.some((s) => s < ceiling / 2)).toBe(true);
      expect(samples.some((s) => s > ceiling / 2)).toBe(true);
    }
    expect(backoffMs(4, policy, () => 0)).toBe(0);
    expect(backoffMs(4, policy, () => 0.999999)).toBe(800);
  });

  it('a failed task is due again within its backoff bounds, on PostgreSQL time', async () => {
    const { tasks } = ctx.store;
    const { id } = await tasks.enqueue({ type: 't.bo', maxAttempts: 10 });
    for (let attempt = 1; attempt <= 4; attempt++) {
      await ctx.store.pool.query('update baton.tasks set run_at = now() where id = $1', [id]);
      const [t] = await tasks.claim({ owner: 'n', types: ['t.bo'], limit: 1, leaseMs: 60_000 });
      expect(t!.attempt).toBe(attempt);
      await tasks.markRunning([t!]);
      const before = await ctx.store.now();
      const out = await tasks.fail({ id, attempt, error: { message: 'e' } });
      const after = await ctx.store.now();
      if (!out.ok || out.status !== 'retry') throw new Error('expected a retry');
      const delay = out.runAt.getTime() - before.getTime();
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(out.runAt.getTime() - after.getTime()).toBeLessThanOrEqual(
        backoffCeilingMs(attempt, policy),
      );
    }
  });

  it('attempts never exceed the maximum: dead letter after the last', async () => {
    const { tasks } = ctx.store;
    const { id } = await tasks.enqueue({ type: 't.max', maxAttempts: 3 });
    const statuses: string[] = [];
    for (;;) {
      await ctx.store.pool.query(
        `update baton.tasks set run_at = now() where id = $1 and status = 'retry'`,
        [id],
      );
      const [t] = await tasks.claim({ owner: 'n', types: ['t.max'], limit: 1, leaseMs: 60_000 });
      if (!t) break;
      await tasks.markRunning([t]);
      const out = await tasks.fail({ id, attempt: t.attempt, error: { message: 'always' } });
      if (out.ok) statuses.push(out.status);
    }
    expect(statuses).toEqual(['retry', 'retry', 'dead_letter']);
    expect(await tasks.get(id)).toMatchObject({
      status: 'dead_letter',
      attempt: 3,
      maxAttempts: 3,
    });
    // the schema itself refuses an attempt beyond the maximum
    await expect(
      ctx.store.pool.query('update baton.tasks set attempt = max_attempts + 1 where id = $1', [id]),
    ).rejects.toMatchObject({ code: '23514' });
  });
});
