import { describe, expect, it } from 'vitest';
import { taskSql } from '../src/tasks.sql.js';
import { useStore } from './helpers.js';

const ctx = useStore();

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Relation Name'?: string;
  'Index Cond'?: string;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

async function genericPlan(sql: string, args: string): Promise<PlanNode[]> {
  const client = await ctx.store.pool.connect();
  try {
    await client.query('set plan_cache_mode = force_generic_plan');
    await client.query(`prepare p as ${sql}`);
    const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
      `explain (format json) execute p(${args})`,
    );
    await client.query('deallocate p');
    await client.query('reset plan_cache_mode');
    return nodes(rows[0]!['QUERY PLAN'][0].Plan);
  } finally {
    client.release();
  }
}

async function claimPlan(): Promise<PlanNode[]> {
  return genericPlan(taskSql('"baton"').claim, `'default', null, 50, 'n', 60000, true`);
}

function tasksAccess(plan: PlanNode[]): string[] {
  return plan
    .filter((n) => n['Relation Name'] === 'tasks' && n['Node Type'] !== 'ModifyTable')
    .map((n) => `${n['Node Type']}:${n['Index Name'] ?? ''}:${n['Index Cond'] ?? ''}`);
}

const CLAIMABLE_ONLY = new Set(['tasks_claim_idx', 'tasks_status_idx']);

/**
 * Every access to the tasks table goes through an index that holds only the
 * claimable rows' keys, or looks rows up by the ids found there.
 */
function expectClaimableOnly(access: string[]) {
  expect(access.length).toBeGreaterThan(0);
  for (const a of access) {
    const [type, index, cond] = a.split(':');
    expect(type, a).not.toBe('Seq Scan');
    const lookupById = index === 'tasks_pkey' && /id = ANY/.test(cond ?? '');
    expect(CLAIMABLE_ONLY.has(index!) || lookupById, a).toBe(true);
  }
}

describe('the claim query plan', () => {
  it('never walks the primary key or the whole table, whether all, half or almost none of the tasks are pending', async () => {
    const { tasks, pool } = ctx.store;
    const batch = Array.from({ length: 1000 }, (_, i) => ({ type: 'plan', payload: i }));
    for (let i = 0; i < 20; i++) await tasks.enqueueMany(batch);
    // The trap: statistics taken while every row is pending.
    await pool.query('analyze baton.tasks');
    const allPending = tasksAccess(await claimPlan());
    expectClaimableOnly(allPending);
    expect(allPending.some((a) => a.startsWith('Index Scan:tasks_claim_idx'))).toBe(true);

    const drain = async (n: number) => {
      for (let done = 0; done < n;) {
        const claimed = await tasks.claim({ owner: 'n', limit: 500, leaseMs: 60_000, start: true });
        if (claimed.length === 0) break;
        await tasks.completeMany(claimed);
        done += claimed.length;
      }
    };
    await drain(10_000);
    await pool.query('analyze baton.tasks');
    expectClaimableOnly(tasksAccess(await claimPlan()));

    const complete = tasksAccess(
      await genericPlan(taskSql('"baton"').complete, `'{1,2}', '{1,1}', '{null,null}'`),
    );
    expect(complete.filter((a) => a.startsWith('Seq Scan'))).toEqual([]);

    await drain(10_000);
    await tasks.enqueueMany(batch.slice(0, 10));
    await pool.query('analyze baton.tasks');
    expectClaimableOnly(tasksAccess(await claimPlan()));
  });
});

describe('the batch transition plans', () => {
  const sql = taskSql('"baton"');
  const statements: [string, string, string][] = [
    ['completeNoResults', sql.completeNoResults, `'{1,2}', '{1,1}'`],
    ['complete', sql.complete, `'{1,2}', '{1,1}', '{null,null}'`],
    ['markRunning', sql.markRunning, `'{1,2}', '{1,1}'`],
  ];

  /** Every access to tasks is a primary key probe per id of the batch. */
  async function expectLookupsById() {
    for (const [name, text, args] of statements) {
      const access = tasksAccess(await genericPlan(text, args));
      expect(access.length, name).toBeGreaterThan(0);
      for (const a of access) expect(a, name).toMatch(/^Index Scan:tasks_pkey:\(id = r\.id\)$/);
    }
  }

  it('look their rows up by primary key, not through every claimed or running row, whatever the statistics say', async () => {
    const { tasks, pool } = ctx.store;
    const batch = Array.from({ length: 1000 }, (_, i) => ({ type: 'plan', payload: i }));
    for (let i = 0; i < 5; i++) await tasks.enqueueMany(batch);
    // Statistics taken while nothing runs: a scan of the running rows looks free.
    await pool.query('analyze baton.tasks');
    await expectLookupsById();
    // And while most rows run.
    await tasks.claim({ owner: 'n', limit: 4000, leaseMs: 60_000, start: true });
    await pool.query('analyze baton.tasks');
    await expectLookupsById();
  });
});
