import { createScheduleStore, createStore, tickKey, type Store } from '@baton/store';
import { useTestDatabase } from '@baton/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { scheduleCalendar } from '../src/schedule/spec.js';

const db = useTestDatabase();
let store: Store;
beforeAll(() => {
  store = createStore({ pool: db.pool({ max: 8 }) });
});
afterAll(async () => {
  await store.close();
});

it('a day of missed ticks on 100 IGNORE cron schedules: each firing round stays short, and every schedule catches up', async () => {
  const schedules = createScheduleStore(store, scheduleCalendar);
  const group = 'catch-up';
  for (let i = 0; i < 100; i++) {
    await schedules.create({
      id: `ignore-${i}`,
      groupId: group,
      task: { type: 'catch.up' },
      trigger: { kind: 'cron', expression: '* * * * *' },
      taskPolicy: { waitingPolicy: 'IGNORE' },
    });
  }
  // As after a day with no bearer (an outage, or pauseAll then resumeAll).
  await store.pool.query(
    `update baton.schedules set next_due_at = next_due_at - interval '1 day',
            anchor_at = anchor_at - interval '1 day' where group_id = $1`,
    [group],
  );
  const won = await store.leadership.acquire({
    groupId: group,
    nodeId: 'n1',
    observedTerm: 0,
    leaseMs: 60_000,
  });
  if (!won.ok) throw new Error('no term');
  const fence = { groupId: group, term: won.term };
  let longest = 0;
  let rounds = 0;
  for (let more = true; more && rounds < 50; rounds++) {
    const t0 = performance.now();
    const out = await schedules.fireDue({ groupId: group, limit: 100, fence });
    longest = Math.max(longest, performance.now() - t0);
    if (!out.ok) throw new Error('fence refused');
    more = out.more;
  }
  // Before: 1,000 catch-up steps a schedule made one round 4 s long, past the
  // fenced transaction's idle limit: it failed every time and nothing fired.
  expect(longest).toBeLessThan(1500);
  const { rows } = await store.pool.query<{ n: number }>(
    `select count(distinct schedule_id)::int as n from baton.schedule_ticks
      where schedule_id like 'ignore-%'`,
  );
  expect(rows[0]!.n).toBe(100);
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it('an unschedule that waits for a firing deletes the ticks that firing wrote: a later schedule of the same id never sees them', async () => {
  const schedules = createScheduleStore(store, scheduleCalendar);
  const start = new Date((await store.now()).getTime() + 300);
  await schedules.create({
    id: 'race',
    groupId: 'g',
    task: { type: 'race.run', maxAttempts: 1 },
    trigger: { kind: 'interval', intervalMs: 60_000, startTime: start },
    taskPolicy: { errorPolicy: 'CONTINUE' },
  });
  await sleep(500);
  // A slow firing: its tick's task waits on another transaction's insert of the same key.
  const blocker = await store.pool.connect();
  await blocker.query('begin');
  await blocker.query(
    `insert into baton.tasks (type, queue, payload, priority, run_at, max_attempts, idempotency_key)
     values ('x', 'default', 'null', 0, now(), 1, $1)`,
    [tickKey('race', start)],
  );
  const firing = schedules.fireDue({ groupId: 'g', limit: 10 });
  await sleep(300);
  const unscheduling = schedules.unschedule('race', 'g'); // waits for the firing's row lock
  await sleep(300);
  await blocker.query('rollback');
  blocker.release();
  const fired = await firing;
  await unscheduling;
  expect(fired.ok && fired.fired).toBe(1);
  const left = await store.pool.query(
    `select 1 from baton.schedule_ticks where schedule_id = 'race'`,
  );
  expect(left.rowCount).toBe(0);

  // A new schedule under the same id; the old tick's task fails for good.
  await schedules.create({
    id: 'race',
    groupId: 'g',
    task: { type: 'other.run' },
    trigger: { kind: 'cron', expression: '0 0 1 1 *' },
    taskPolicy: { errorPolicy: 'TERMINATE' },
  });
  const [claimed] = await store.tasks.claim({
    owner: 'n',
    limit: 1,
    leaseMs: 30_000,
    start: true,
    types: ['race.run'],
  });
  expect(await schedules.forTask(claimed!.id)).toBeNull();
  await store.tasks.fail({
    id: claimed!.id,
    attempt: claimed!.attempt,
    error: { message: 'boom' },
  });
  expect((await schedules.get('race'))?.state).toBe('active');
});
