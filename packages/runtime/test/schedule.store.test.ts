import { createScheduleStore, createStore, type Store } from '@baton/store';
import { useTestDatabase } from '@baton/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scheduleCalendar } from '../src/schedule/spec.js';

const db = useTestDatabase();
let store: Store;
beforeAll(() => {
  store = createStore({ pool: db.pool({ max: 5 }) });
});
afterAll(async () => {
  await store.close();
});

describe('the store with the croner calendar', () => {
  it('rejects a bad cron expression or time zone, naming the field', async () => {
    const schedules = createScheduleStore(store, scheduleCalendar);
    const create = (expression: string, timeZone?: string) =>
      schedules.create({
        groupId: 'cron',
        task: { type: 'cron.run' },
        trigger: { kind: 'cron', expression, ...(timeZone ? { timeZone } : {}) },
      });
    await expect(create('61 * * * *')).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'trigger.expression',
    });
    await expect(create('* * * * *', 'Mars/Olympus')).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'trigger.timeZone',
    });
    await expect(create('0 0 30 2 *')).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'trigger',
    });
  });

  it('fires a zoned cron schedule on simulated time, across a DST change, each tick once', async () => {
    const schedules = createScheduleStore(store, scheduleCalendar);
    const dbNow = await store.now();
    // every day at 02:30 Berlin time, from the next Berlin spring-forward day onwards
    const year = dbNow.getUTCMonth() < 2 ? dbNow.getUTCFullYear() : dbNow.getUTCFullYear() + 1;
    const lastSunday = (y: number, month: number) => {
      const end = new Date(Date.UTC(y, month + 1, 0));
      return new Date(Date.UTC(y, month, end.getUTCDate() - end.getUTCDay()));
    };
    const springDay = lastSunday(year, 2);
    const start = new Date(springDay.getTime() - 2 * 86_400_000);
    const { schedule } = await schedules.create({
      id: 'berlin',
      groupId: 'cron',
      task: { type: 'cron.run' },
      trigger: {
        kind: 'cron',
        expression: '30 2 * * *',
        timeZone: 'Europe/Berlin',
        startTime: start,
        maxCount: 4,
      },
    });
    expect(schedule.nextDueAt).toEqual(new Date(start.getTime() + 90 * 60_000)); // 02:30 CET = 01:30Z
    const until = new Date(springDay.getTime() + 10 * 86_400_000);
    const outs = await Promise.all(
      [1, 2, 3].map(() => schedules.fireDue({ groupId: 'cron', now: until, limit: 10 })),
    );
    const fired = outs.flatMap((o) => (o.ok ? o.schedules.flatMap((s) => s.ticks) : []));
    const day = (offset: number, utcHour: number, min: number) =>
      new Date(
        springDay.getTime() + offset * 86_400_000 + utcHour * 3_600_000 + min * 60_000,
      ).toISOString();
    expect(fired.map((t) => t.dueAt.toISOString()).sort()).toEqual([
      day(-2, 1, 30),
      day(-1, 1, 30),
      day(0, 1, 0), // 03:00 CEST: 02:30 does not exist that day
      day(1, 0, 30), // 02:30 CEST
    ]);
    expect(await schedules.get('berlin')).toMatchObject({ state: 'finished', firedCount: 4 });
  });
});
