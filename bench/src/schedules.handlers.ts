/**
 * The handler the `schedules` benchmark loads into its node processes
 * (BATON_HANDLERS): it notes the instant it starts and writes it, with the
 * task id and the node, through the completion transaction into
 * `bench_schedule_runs` (at most once per task).
 */
import type { TaskContext } from '@baton/runtime';

const node = process.env.BATON_NODE_ID ?? 'unknown';

export const handlers = {
  'bench.tick': (ctx: TaskContext) => {
    const startedAt = new Date();
    ctx.onComplete((tx) =>
      tx.query('insert into bench_schedule_runs (task_id, node, started_at) values ($1, $2, $3)', [
        ctx.taskId,
        node,
        startedAt,
      ]),
    );
  },
};
