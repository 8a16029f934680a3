import { createScheduleStore, createStore, type Store } from '@baton/store';
import { useTestDatabase } from '@baton/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { scheduleCalendar } from '../src/schedule/spec.js';

const db = useTestDatabase();
let store: Store;
beforeAll(() => {
  store = createStore({ pool: db.pool({ max: 4 }) });
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
