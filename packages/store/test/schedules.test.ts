import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  ScheduleNotFoundError,
  createScheduleStore,
  type ScheduleInput,
  type ScheduleStore,
} from '../src/index.js';
import { useStore } from './helpers.js';
import { testCalendar } from './schedules.calendar.js';

const ctx = useStore();
let cached: ScheduleStore | undefined;
const schedules = () => (cached ??= createScheduleStore(ctx.store, testCalendar));

const HOUR = 3_600_000;
const future = (ms: number) => new Date(Date.now() + ms);

function input(over: Partial<ScheduleInput> = {}): ScheduleInput {
  return {
    groupId: 'g',
    task: { type: 'report.build', payload: { n: 1 } },
    trigger: { kind: 'interval', intervalMs: 1000 },
    ...over,
  };
}

async function rejects(i: ScheduleInput, field: string): Promise<void> {
  const error = await schedules()
    .create(i)
    .then(
      () => null,
      (e: unknown) => e,
    );
  expect(error).toBeInstanceOf(InvalidArgumentError);
  expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', field });
}

describe('schedule validation (Ballerina rules, typed errors naming the field)', () => {
  it('a one-time time not in the future, on PostgreSQL clock', async () => {
    const dbNow = await ctx.store.now();
    await rejects(
      input({ trigger: { kind: 'once', at: new Date(dbNow.getTime() - 1) } }),
      'trigger.at',
    );
    await rejects(input({ trigger: { kind: 'once', at: dbNow } }), 'trigger.at');
    await rejects(input({ trigger: { kind: 'once', at: 'not a date' } }), 'trigger.at');
  });

  it('a date string that is not ISO 8601 with a time and an offset, or not a real date', async () => {
    const interval = (startTime: string) =>
      input({ trigger: { kind: 'interval', intervalMs: 1000, startTime } });
    for (const s of [
      '2099-02-30T09:00:00Z', // new Date(): 2 March
      '2100-02-29T09:00:00Z', // not a leap year
      '2099-06-01T24:00:00Z',
      '2099-06-01T09:60:00Z',
      '2099-06-01T09:00:00+24:00',
      'June 31, 2099', // new Date(): 1 July
      '1', // new Date(): 2001-01-01, local time
      '2099-06-01T09:00:00', // new Date(): local time
      '2099-06-01', // no time
      '2099-06-01 09:00:00Z',
      '',
    ]) {
      await rejects(interval(s), 'trigger.startTime');
    }
    await expect(schedules().create(interval('2099-02-30T09:00:00Z'))).rejects.toThrow(
      'trigger.startTime: is not a real date and time',
    );
    await expect(schedules().create(interval('June 31, 2099'))).rejects.toThrow(
      'trigger.startTime: must be a Date or an ISO 8601 date and time with a Z or numeric offset (e.g. 2027-02-01T09:00:00Z, 2027-02-01T09:00:00.5+01:00)',
    );
    await rejects(input({ trigger: { kind: 'once', at: '2099-04-31T00:00:00Z' } }), 'trigger.at');
    await rejects(input({ trigger: { kind: 'once', at: new Date(Number.NaN) } }), 'trigger.at');
  });

  it('date strings with a Z or a numeric offset are the instants they name', async () => {
    const cases: [string, string][] = [
      ['2099-02-01T09:00:00Z', '2099-02-01T09:00:00.000Z'],
      ['2099-02-01T09:00:00.5+01:00', '2099-02-01T08:00:00.500Z'],
      ['2099-02-01T09:00-05:30', '2099-02-01T14:30:00.000Z'],
      ['2099-02-01T09:00:00.123456+0100', '2099-02-01T08:00:00.123Z'],
      ['2096-02-29T23:59:59.999Z', '2096-02-29T23:59:59.999Z'],
    ];
    for (const [given, instant] of cases) {
      const { schedule } = await schedules().create(
        input({ groupId: 'dates', trigger: { kind: 'once', at: given } }),
      );
      expect(schedule.trigger).toEqual({ kind: 'once', at: new Date(instant) });
    }
  });

  it('maxCount neither -1 nor at least 1', async () => {
    for (const maxCount of [0, -2, 1.5]) {
      await rejects(
        input({ trigger: { kind: 'interval', intervalMs: 1000, maxCount } }),
        'trigger.maxCount',
      );
    }
  });

  it('a zero, negative or fractional interval', async () => {
    for (const intervalMs of [0, -5, 0.5]) {
      await rejects(input({ trigger: { kind: 'interval', intervalMs } }), 'trigger.intervalMs');
    }
  });

  it('an end before (or at) the start, or in the past', async () => {
    const start = future(HOUR);
    await rejects(
      input({
        trigger: {
          kind: 'interval',
          intervalMs: 1000,
          startTime: start,
          endTime: new Date(start.getTime() - 1),
        },
      }),
      'trigger.endTime',
    );
    await rejects(
      input({ trigger: { kind: 'interval', intervalMs: 1000, startTime: start, endTime: start } }),
      'trigger.endTime',
    );
    await rejects(
      input({
        trigger: { kind: 'interval', intervalMs: 1000, endTime: new Date(Date.now() - HOUR) },
      }),
      'trigger.endTime',
    );
  });

  it('a bad cron expression or time zone (as the calendar reports it)', async () => {
    await rejects(
      input({ trigger: { kind: 'cron', expression: '61 * * * *' } }),
      'trigger.expression',
    );
    await rejects(
      input({ trigger: { kind: 'cron', expression: 'every-second', timeZone: 'Mars/Olympus' } }),
      'trigger.timeZone',
    );
    await rejects(input({ trigger: { kind: 'cron', expression: '' } }), 'trigger.expression');
  });

  it('bad policies, retry config, task fields and unknown options', async () => {
    await rejects(
      input({ taskPolicy: { errorPolicy: 'EXPLODE' as never } }),
      'taskPolicy.errorPolicy',
    );
    await rejects(
      input({ taskPolicy: { waitingPolicy: 'MAYBE' as never } }),
      'taskPolicy.waitingPolicy',
    );
    await rejects(
      input({ retryConfig: { backoffStrategy: 'RANDOM' as never } }),
      'retryConfig.backoffStrategy',
    );
    await rejects(
      input({ retryConfig: { retryIntervalMs: 5000, maxIntervalMs: 1000 } }),
      'retryConfig.maxIntervalMs',
    );
    await rejects(
      input({ task: { type: 'x', maxAttempts: 3 }, retryConfig: { maxAttempts: 2 } }),
      'retryConfig.maxAttempts',
    );
    await rejects(input({ task: { type: 'bad type!' } }), 'task.type');
    await rejects(input({ task: { type: 'x', runAt: new Date() } as never }), 'task.runAt');
    await rejects(
      input({ trigger: { kind: 'interval', intervalMs: 1000, every: 2 } as never }),
      'trigger.every',
    );
    await expect(
      schedules().create(
        input({ trigger: { kind: 'cron', expression: '0 9 * * *', timezone: 'UTC' } as never }),
      ),
    ).rejects.toThrow(
      'trigger.timezone: is not a known option, did you mean timeZone? (known: kind, expression, timeZone, maxCount, startTime, endTime)',
    );
    await expect(
      schedules().create(input({ taskPolicy: { waitingpolicy: 'IGNORE' } as never })),
    ).rejects.toThrow(
      'taskPolicy.waitingpolicy: is not a known option, did you mean waitingPolicy? (known: errorPolicy, waitingPolicy)',
    );
    await rejects(input({ trigger: { kind: 'weekly' } as never }), 'trigger.kind');
    await rejects(input({ id: 'has space' }), 'id');
    await rejects(input({ groupId: '' }), 'groupId');
  });

  it('an unknown id on pause, resume and unschedule: SCHEDULE_NOT_FOUND', async () => {
    for (const op of [
      () => schedules().pause('nope'),
      () => schedules().resume('nope'),
      () => schedules().unschedule('nope'),
    ]) {
      const error = await op().then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ScheduleNotFoundError);
      expect(error).toMatchObject({ code: 'SCHEDULE_NOT_FOUND', fields: { id: 'nope' } });
    }
  });
});

describe('schedule lifecycle (durable)', () => {
  it('creates with a generated id, or idempotently with a given one', async () => {
    const a = await schedules().create(input({ groupId: 'life' }));
    expect(a.created).toBe(true);
    expect(a.schedule.id).toMatch(/^[0-9a-f-]{36}$/);
    const given = input({
      id: 'daily-report',
      groupId: 'life',
      retryConfig: { maxAttempts: 2, backoffStrategy: 'EXPONENTIAL' },
    });
    const b = await schedules().create(given);
    expect(b).toMatchObject({
      created: true,
      schedule: {
        id: 'daily-report',
        state: 'active',
        firedCount: 0,
        task: { type: 'report.build', queue: 'default', payload: { n: 1 }, maxAttempts: 3 },
        retryConfig: {
          maxAttempts: 2,
          retryIntervalMs: 1000,
          backoffStrategy: 'EXPONENTIAL',
          maxIntervalMs: 60_000,
        },
        taskPolicy: { errorPolicy: 'LOG_AND_TERMINATE', waitingPolicy: 'WAIT' },
        trigger: {
          kind: 'interval',
          intervalMs: 1000,
          maxCount: -1,
          startTime: null,
          endTime: null,
        },
      },
    });
    // interval with no start: anchored at creation (PostgreSQL's clock), first tick at the anchor
    expect(b.schedule.nextDueAt).toEqual(b.schedule.anchorAt);
    const again = await schedules().create({ ...given, task: { type: 'other.type' } });
    expect(again.created).toBe(false);
    expect(again.schedule.task.type).toBe('report.build');
    // concurrent creates of one id: one row, one creator
    const racers = await Promise.all(
      Array.from({ length: 5 }, () => schedules().create(input({ id: 'race', groupId: 'life' }))),
    );
    expect(racers.filter((r) => r.created)).toHaveLength(1);
  });

  it('pause and resume are durable (seen by another store) and listed by state', async () => {
    const { schedule } = await schedules().create(input({ id: 'p1', groupId: 'pr' }));
    await schedules().create(input({ id: 'p2', groupId: 'pr' }));
    await schedules().create(
      input({ id: 'p3', groupId: 'pr', trigger: { kind: 'once', at: future(HOUR) } }),
    );
    expect((await schedules().pause(schedule.id)).state).toBe('paused');
    const other = createScheduleStore(ctx.store, testCalendar); // another node, same database
    expect((await other.get('p1'))?.paused).toBe(true);
    expect((await other.getRunningJobs('pr')).map((s) => s.id)).toEqual(['p2', 'p3']);
    expect((await other.list('pr', { state: 'paused' })).map((s) => s.id)).toEqual(['p1']);
    expect((await other.resume('p1')).state).toBe('active');
    expect(await other.pauseAll('pr')).toBe(3);
    expect(await other.getRunningJobs('pr')).toEqual([]);
    expect(await other.resumeAll('pr')).toBe(3);
    expect((await other.list('pr')).map((s) => s.state)).toEqual(['active', 'active', 'active']);
  });

  it('unschedule removes the schedule; a second unschedule is SCHEDULE_NOT_FOUND', async () => {
    await schedules().create(input({ id: 'u1', groupId: 'un' }));
    await schedules().unschedule('u1');
    expect(await schedules().get('u1')).toBeNull();
    await expect(schedules().unschedule('u1')).rejects.toMatchObject({
      code: 'SCHEDULE_NOT_FOUND',
    });
  });

  it('a start time in the past anchors the grid without a backlog: the first tick is the next grid point', async () => {
    const dbNow = await ctx.store.now();
    const start = new Date(dbNow.getTime() - 10_500);
    const { schedule } = await schedules().create(
      input({
        groupId: 'anchor',
        trigger: { kind: 'interval', intervalMs: 1000, startTime: start },
      }),
    );
    const offset = schedule.nextDueAt!.getTime() - start.getTime();
    expect(offset % 1000).toBe(0);
    expect(schedule.nextDueAt!.getTime()).toBeGreaterThanOrEqual(dbNow.getTime());
    expect(schedule.nextDueAt!.getTime() - dbNow.getTime()).toBeLessThanOrEqual(1000);
  });
});
