/**
 * Every validation error of the scheduling issue (#5), through the client
 * API a user calls (`node.client.scheduler`), with Ballerina's rules and
 * typed errors naming the field: a one-time time not in the future, a
 * `maxCount` neither -1 nor at least 1, a zero or negative interval, an end
 * before the start, an unknown job id on pause, resume and unschedule.
 * Nothing is written by a refused call.
 */
import { BatonError, createScheduleStore, createStore, InvalidArgumentError } from '@baton/store';
import { useTestDatabase } from '@baton/testkit';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scheduleCalendar, type BatonNode, type SchedulerApi } from '../src/index.js';
import { schedulerApi } from '../src/schedules.js';
import { testNode } from './nodes.js';

const db = useTestDatabase();
const group = `v${Math.random().toString(36).slice(2, 8)}`;
let node: BatonNode;
let api: SchedulerApi;
let pool: pg.Pool;

beforeAll(async () => {
  pool = db.pool({ max: 1 });
  node = testNode(db.url, { groupId: group, nodeId: 'v1' });
  await node.start();
  api = node.client.scheduler;
});
afterAll(async () => {
  await node?.shutdown(1000);
});

const job = { type: 'report.build' };
const hour = 3_600_000;
/** The call's outcome as a promise, whether it rejects or throws at once. */
const attempt = <T>(call: () => Promise<T>): Promise<T> => Promise.resolve().then(call);

async function expectInvalid(call: () => Promise<unknown>, field: string) {
  const error: unknown = await attempt(call).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error, `a refusal naming ${field}`).toBeInstanceOf(InvalidArgumentError);
  expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', field });
  expect((error as Error).message).toContain(field);
}

async function dbNow(): Promise<Date> {
  const { rows } = await pool.query<{ now: Date }>('select now()');
  return rows[0]!.now;
}

describe('scheduler API validation (Ballerina rules, typed errors naming the field)', () => {
  it('a one-time job: its time must be in the future (on PostgreSQL clock)', async () => {
    const now = await dbNow();
    await expectInvalid(
      () => api.scheduleOneTimeJob(job, new Date(now.getTime() - 1000)),
      'trigger.at',
    );
    await expectInvalid(
      () => api.scheduleOneTimeJob(job, new Date(now.getTime() - hour).toISOString()),
      'trigger.at',
    );
    await expectInvalid(() => api.scheduleOneTimeJob(job, 'not a date'), 'trigger.at');
    const ok = await api.scheduleOneTimeJob(job, new Date(now.getTime() + hour));
    expect(await api.getJob(ok)).toMatchObject({ state: 'active', trigger: { kind: 'once' } });
    await api.unscheduleJob(ok);
  });

  it('maxCount: -1 or at least 1 (interval and cron)', async () => {
    for (const maxCount of [0, -2, -100, 1.5]) {
      await expectInvalid(
        () => api.scheduleJobRecurByFrequency(job, 1, { maxCount }),
        'trigger.maxCount',
      );
      await expectInvalid(
        () => api.scheduleJobByCron(job, '* * * * *', { maxCount }),
        'trigger.maxCount',
      );
    }
    for (const maxCount of [-1, 1]) {
      const id = await api.scheduleJobRecurByFrequency(job, 1, { maxCount });
      expect((await api.getJob(id))!.trigger).toMatchObject({ kind: 'interval', maxCount });
      await api.unscheduleJob(id);
    }
  });

  it('the interval (seconds): positive and finite', async () => {
    for (const interval of [0, -1, -0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expectInvalid(() => api.scheduleJobRecurByFrequency(job, interval), 'interval');
    }
    // At most 100 years: a longer one would put the next due time past the last date.
    await expectInvalid(() => api.scheduleJobRecurByFrequency(job, 9e12), 'trigger.intervalMs');
    // Decimals are allowed (Ballerina's 2.5 s), stored in milliseconds.
    const id = await api.scheduleJobRecurByFrequency(job, 2.5);
    expect((await api.getJob(id))!.trigger).toMatchObject({ kind: 'interval', intervalMs: 2500 });
    await api.unscheduleJob(id);
  });

  it('the end must come after the start (and not be past)', async () => {
    const now = (await dbNow()).getTime();
    const startTime = new Date(now + hour);
    for (const endTime of [new Date(now + hour - 1), startTime]) {
      await expectInvalid(
        () => api.scheduleJobRecurByFrequency(job, 1, { startTime, endTime }),
        'trigger.endTime',
      );
      await expectInvalid(
        () => api.scheduleJobByCron(job, '*/5 * * * *', { startTime, endTime }),
        'trigger.endTime',
      );
    }
    await expectInvalid(
      () => api.scheduleJobRecurByFrequency(job, 1, { endTime: new Date(now - 1000) }),
      'trigger.endTime',
    );
    await expectInvalid(
      () => api.scheduleJobRecurByFrequency(job, 1, { startTime: 'soon' }),
      'trigger.startTime',
    );
  });

  it('a cron expression and a time zone that croner does not accept', async () => {
    await expectInvalid(() => api.scheduleJobByCron(job, '61 * * * *'), 'trigger.expression');
    await expectInvalid(() => api.scheduleJobByCron(job, ''), 'trigger.expression');
    await expectInvalid(
      () => api.scheduleJobByCron(job, '* * * * *', { timeZone: 'Mars/Olympus' }),
      'trigger.timeZone',
    );
  });

  it('a misspelled or misplaced option is refused by name, never dropped (callers may be JavaScript)', async () => {
    const at = new Date((await dbNow()).getTime() + hour);
    const refused = async (call: () => Promise<unknown>, field: string, message: string) => {
      await expectInvalid(call, field);
      await expect(attempt(call)).rejects.toThrow(message);
    };
    // croner's spelling, once dropped: the cron ran in UTC.
    await refused(
      () => api.scheduleJobByCron(job, '0 9 * * *', { timezone: 'Europe/Berlin' } as never),
      'options.timezone',
      'options.timezone: is not a known option, did you mean timeZone? (known: id, retryConfig, taskPolicy, maxCount, startTime, endTime, timeZone)',
    );
    // Once dropped: the job ran unlimited, with WAIT.
    await refused(
      () => api.scheduleJobRecurByFrequency(job, 1, { maxcount: 10 } as never),
      'options.maxcount',
      'did you mean maxCount?',
    );
    await refused(
      () => api.scheduleJobRecurByFrequency(job, 1, { waitingPolicy: 'IGNORE' } as never),
      'options.waitingPolicy',
      'did you mean taskPolicy.waitingPolicy?',
    );
    await refused(
      () => api.scheduleJobByCron(job, '* * * * *', { errorPolicy: 'CONTINUE' } as never),
      'options.errorPolicy',
      'did you mean taskPolicy.errorPolicy?',
    );
    await refused(
      () =>
        api.scheduleJobRecurByFrequency(job, 1, {
          taskPolicy: { waitingpolicy: 'IGNORE' },
        } as never),
      'options.taskPolicy.waitingpolicy',
      'did you mean waitingPolicy? (known: errorPolicy, waitingPolicy)',
    );
    await expectInvalid(
      () => api.scheduleJobRecurByFrequency(job, 1, { retryConfig: { retries: 3 } } as never),
      'options.retryConfig.retries',
    );
    await expectInvalid(
      () => api.scheduleJobRecurByFrequency(job, 1, { taskPolicy: null } as never),
      'options.taskPolicy',
    );
    // Task options a job does not take (a tick's task has its own due time and key).
    await refused(
      () => api.scheduleOneTimeJob({ ...job, runAt: at } as never, at),
      'job.runAt',
      'job.runAt: is not a known option (known: type, payload, queue, priority, maxAttempts)',
    );
    await expectInvalid(
      () => api.scheduleOneTimeJob({ ...job, idempotencyKey: 'k' } as never, at),
      'job.idempotencyKey',
    );
    await expectInvalid(() => api.scheduleOneTimeJob(null as never, at), 'job');
    // Options of another call: a one-time job has no window, an interval no time zone.
    await expectInvalid(
      () => api.scheduleOneTimeJob(job, at, { maxCount: 1 } as never),
      'options.maxCount',
    );
    await expectInvalid(
      () => api.scheduleJobRecurByFrequency(job, 1, { timeZone: 'Europe/Berlin' } as never),
      'options.timeZone',
    );
    await expectInvalid(() => api.scheduleJobRecurByFrequency(job, 1, null as never), 'options');
    // An empty time zone is refused, not read as UTC.
    await expectInvalid(
      () => api.scheduleJobByCron(job, '0 9 * * *', { timeZone: '' }),
      'trigger.timeZone',
    );
  });

  it('date strings: ISO 8601 with a time and an offset, and a real date', async () => {
    for (const at of [
      '2099-02-30T09:00:00Z', // would be 2 March
      'June 31, 2099', // would be 1 July
      '2099-06-01T09:00:00', // would be read in this process's zone
      '2099-06-01',
    ]) {
      await expectInvalid(() => api.scheduleOneTimeJob(job, at), 'trigger.at');
    }
    await expectInvalid(
      () => api.scheduleJobRecurByFrequency(job, 1, { startTime: '1' }), // would be 2001-01-01
      'trigger.startTime',
    );
    await expectInvalid(
      () => api.scheduleJobByCron(job, '0 9 * * *', { endTime: '2099-13-01T00:00:00Z' }),
      'trigger.endTime',
    );
    const id = await api.scheduleJobByCron(job, '0 9 * * *', {
      startTime: '2099-02-01T09:00:00.5+01:00',
      endTime: '2099-03-01T00:00:00Z',
    });
    expect((await api.getJob(id))!.trigger).toMatchObject({
      startTime: new Date('2099-02-01T08:00:00.500Z'),
      endTime: new Date('2099-03-01T00:00:00Z'),
    });
    await api.unscheduleJob(id);
  });

  it('an unknown job id on pause, resume and unschedule: SCHEDULE_NOT_FOUND naming the id', async () => {
    for (const call of [
      (id: string) => api.pauseJob(id),
      (id: string) => api.resumeJob(id),
      (id: string) => api.unscheduleJob(id),
    ]) {
      const error: unknown = await attempt(() => call('no-such-job')).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BatonError);
      expect(error).toMatchObject({ code: 'SCHEDULE_NOT_FOUND', fields: { id: 'no-such-job' } });
    }
    // An unscheduled job is unknown from then on.
    const id = await api.scheduleJobRecurByFrequency(job, 60);
    await api.unscheduleJob(id);
    await expect(api.pauseJob(id)).rejects.toMatchObject({ code: 'SCHEDULE_NOT_FOUND' });
    await expect(api.unscheduleJob(id)).rejects.toMatchObject({ code: 'SCHEDULE_NOT_FOUND' });
    expect(await api.getJob(id)).toBeNull();
  });

  it("another group's schedule is neither found, paused, resumed, unscheduled nor taken by its id", async () => {
    const other = schedulerApi(
      createScheduleStore(createStore({ pool }), scheduleCalendar),
      `${group}-other`,
      () => undefined,
    );
    const id = await other.scheduleJobRecurByFrequency(job, 60, { id: `shared-${group}` });
    try {
      expect(await api.getJob(id)).toBeNull();
      await expect(api.pauseJob(id)).rejects.toMatchObject({ code: 'SCHEDULE_NOT_FOUND' });
      await expect(api.resumeJob(id)).rejects.toMatchObject({ code: 'SCHEDULE_NOT_FOUND' });
      await expect(api.unscheduleJob(id)).rejects.toMatchObject({ code: 'SCHEDULE_NOT_FOUND' });
      // The same id for this group: refused by name, not the other group's schedule returned.
      await expect(api.scheduleJobRecurByFrequency(job, 60, { id })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        fields: { field: 'id' },
      });
      expect((await other.getJob(id))!).toMatchObject({ id, paused: false });
    } finally {
      await other.unscheduleJob(id);
    }
  });

  it('a refused call writes nothing', async () => {
    expect(await api.getRunningJobs()).toEqual([]);
    const { rows } = await pool.query<{ n: number }>(
      'select count(*)::int as n from baton.schedules where group_id = $1',
      [group],
    );
    expect(rows[0]!.n).toBe(0);
  });
});
