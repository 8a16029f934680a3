import { InvalidArgumentError, planTicks, type ScheduleTrigger } from '@baton/store';
import { describe, expect, it } from 'vitest';
import {
  isTimeZone,
  MAX_CRON_CATCH_UP,
  parseCron,
  scheduleCalendar,
  upcoming,
} from '../src/schedule/spec.js';

const d = (iso: string) => new Date(iso);
const iso = (dates: readonly Date[]) => dates.map((x) => x.toISOString());
const cron = (expression: string, timeZone: string, extra: Partial<ScheduleTrigger> = {}) =>
  ({
    kind: 'cron',
    expression,
    timeZone,
    maxCount: -1,
    startTime: null,
    endTime: null,
    ...extra,
  }) as ScheduleTrigger;
const interval = (intervalMs: number, extra: object = {}) =>
  ({
    kind: 'interval',
    intervalMs,
    maxCount: -1,
    startTime: null,
    endTime: null,
    ...extra,
  }) as ScheduleTrigger;

/** Every due time in [from, to], walking the calendar. */
function walk(t: ScheduleTrigger, from: Date, to: Date): Date[] {
  const out: Date[] = [];
  let due = scheduleCalendar.atOrAfter(t, from, from);
  while (due && due <= to) {
    out.push(due);
    due = scheduleCalendar.after(t, from, due);
  }
  return out;
}

describe('interval calendar: due_n = anchor + n * interval', () => {
  const anchor = d('2025-01-01T00:00:00.000Z');
  const t = interval(250);

  it('first tick at the anchor; a later `from` lands on the next grid point', () => {
    expect(scheduleCalendar.atOrAfter(t, anchor, d('2024-12-31T00:00:00Z'))).toEqual(anchor);
    expect(scheduleCalendar.atOrAfter(t, anchor, anchor)).toEqual(anchor);
    expect(scheduleCalendar.atOrAfter(t, anchor, d('2025-01-01T00:00:00.001Z'))).toEqual(
      d('2025-01-01T00:00:00.250Z'),
    );
  });

  it('next is computed from the grid, not from when a run finished (no drift)', () => {
    // a firer that is late by 240 ms still gets the grid's next point
    expect(scheduleCalendar.after(t, anchor, d('2025-01-01T00:00:00.490Z'))).toEqual(
      d('2025-01-01T00:00:00.500Z'),
    );
    const ticks = walk(t, anchor, d('2025-01-01T00:01:00Z'));
    expect(ticks).toHaveLength(241);
    ticks.forEach((x, n) => expect(x.getTime() - anchor.getTime()).toBe(n * 250));
  });

  it('latest due time and the ticks it passes over (IGNORE catch-up), in O(1)', () => {
    const from = d('2025-01-01T00:00:01.000Z');
    expect(scheduleCalendar.latest(t, anchor, from, d('2025-01-01T00:00:02.600Z'))).toEqual({
      due: d('2025-01-01T00:00:02.500Z'),
      passed: 6,
    });
    expect(scheduleCalendar.latest(t, anchor, from, from)).toEqual({ due: from, passed: 0 });
    // a year-long outage at 250 ms is no loop
    const y = scheduleCalendar.latest(t, anchor, anchor, d('2026-01-01T00:00:00.100Z'));
    expect(y).toEqual({ due: d('2026-01-01T00:00:00.000Z'), passed: 365 * 24 * 3600 * 4 });
  });

  it('an hourly interval stays 3,600,000 ms apart across a DST change (intervals are absolute time)', () => {
    const a = d('2025-10-25T22:00:00Z');
    const ticks = walk(interval(3_600_000), a, d('2025-10-26T04:00:00Z'));
    expect(ticks.slice(1).map((x, i) => x.getTime() - ticks[i]!.getTime())).toEqual(
      Array(6).fill(3_600_000),
    );
  });
});

describe('one-time calendar', () => {
  const t: ScheduleTrigger = { kind: 'once', at: d('2025-06-01T12:00:00Z') };
  it('is due once, at its time', () => {
    expect(scheduleCalendar.atOrAfter(t, t.at, d('2025-06-01T00:00:00Z'))).toEqual(t.at);
    expect(scheduleCalendar.after(t, t.at, t.at)).toBeNull();
    expect(upcoming(t, t.at, d('2025-01-01T00:00:00Z'), 5)).toEqual([t.at]);
  });
});

describe('cron calendar (croner, with time zones)', () => {
  it('validates expressions and time zones, naming the field', () => {
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
    for (const [t, field] of [
      [cron('61 * * * *', 'UTC'), 'trigger.expression'],
      [cron('not cron', 'UTC'), 'trigger.expression'],
      [cron('* * * * *', 'Mars/Olympus'), 'trigger.timeZone'],
    ] as const) {
      let error: unknown;
      try {
        scheduleCalendar.validate(t);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error).toMatchObject({ field });
    }
    expect(() => scheduleCalendar.validate(cron('*/5 * * * *', 'America/New_York'))).not.toThrow();
    expect(parseCron('0 0 * * *', 'UTC')).toBe(parseCron('0 0 * * *', 'UTC')); // cached
  });

  it('first due at or after `from` includes an exact match; next is strictly after', () => {
    const t = cron('0 0 * * *', 'UTC');
    const midnight = d('2025-01-02T00:00:00Z');
    expect(scheduleCalendar.atOrAfter(t, d('2025-01-01T00:00:00Z'), midnight)).toEqual(midnight);
    expect(scheduleCalendar.after(t, d('2025-01-01T00:00:00Z'), midnight)).toEqual(
      d('2025-01-03T00:00:00Z'),
    );
    // startTime (the anchor) bounds the first tick
    expect(scheduleCalendar.atOrAfter(t, d('2025-02-01T00:00:00Z'), midnight)).toEqual(
      d('2025-02-01T00:00:00Z'),
    );
  });

  it('Europe/Berlin spring forward: a daily 02:30 fires once that day, at 03:00 CEST (not skipped, not doubled)', () => {
    const t = cron('30 2 * * *', 'Europe/Berlin');
    expect(iso(walk(t, d('2025-03-28T00:00:00Z'), d('2025-04-01T00:00:00Z')))).toEqual([
      '2025-03-28T01:30:00.000Z', // 02:30 CET
      '2025-03-29T01:30:00.000Z',
      '2025-03-30T01:00:00.000Z', // 02:30 does not exist: 03:00 CEST, once
      '2025-03-31T00:30:00.000Z', // 02:30 CEST
    ]);
  });

  it('Europe/Berlin fall back: a daily 02:30 fires once on the day 02:30 happens twice', () => {
    const t = cron('30 2 * * *', 'Europe/Berlin');
    expect(iso(walk(t, d('2025-10-25T00:00:00Z'), d('2025-10-28T00:00:00Z')))).toEqual([
      '2025-10-25T00:30:00.000Z', // 02:30 CEST
      '2025-10-26T00:30:00.000Z', // first 02:30 (CEST) only; 01:30Z (02:30 CET) not doubled
      '2025-10-27T01:30:00.000Z', // 02:30 CET
    ]);
  });

  it('Europe/Berlin: times given as lists or ranges are fixed wall-clock times too, never dropped or doubled', () => {
    const spring = [d('2027-03-27T23:00:00Z'), d('2027-03-28T21:59:59Z')] as const; // local 28 March
    const autumn = [d('2027-10-30T22:00:00Z'), d('2027-10-31T22:59:59Z')] as const; // local 31 October
    // 02:00 and 02:30 do not exist on 28 March: both move to 03:00 CEST, which fires once.
    expect(iso(walk(cron('0,30 2 * * *', 'Europe/Berlin'), ...spring))).toEqual([
      '2027-03-28T01:00:00.000Z',
    ]);
    expect(iso(walk(cron('0 2,14 * * *', 'Europe/Berlin'), ...spring))).toEqual([
      '2027-03-28T01:00:00.000Z', // 02:00 -> 03:00 CEST
      '2027-03-28T12:00:00.000Z', // 14:00 CEST
    ]);
    // 02:00 happens twice on 31 October: it fires once, at its first occurrence.
    expect(iso(walk(cron('0 1-3 * * *', 'Europe/Berlin'), ...autumn))).toEqual([
      '2027-10-30T23:00:00.000Z', // 01:00 CEST
      '2027-10-31T00:00:00.000Z', // 02:00 CEST (not again at 02:00 CET)
      '2027-10-31T02:00:00.000Z', // 03:00 CET
    ]);
  });

  it('Europe/Berlin hourly: 23 ticks on the spring day, 25 on the autumn day, each one real hour apart', () => {
    const t = cron('0 * * * *', 'Europe/Berlin');
    const spring = walk(t, d('2025-03-29T23:00:00Z'), d('2025-03-30T21:59:59Z')); // local 30 March
    const autumn = walk(t, d('2025-10-25T22:00:00Z'), d('2025-10-26T22:59:59Z')); // local 26 October
    expect(spring).toHaveLength(23);
    expect(autumn).toHaveLength(25);
    for (const ticks of [spring, autumn]) {
      expect(ticks.slice(1).map((x, i) => x.getTime() - ticks[i]!.getTime())).toEqual(
        Array(ticks.length - 1).fill(3_600_000),
      );
    }
  });

  it('America/New_York fall back: a daily 01:30 fires once on 2 November 2025', () => {
    const t = cron('30 1 * * *', 'America/New_York');
    expect(iso(walk(t, d('2025-11-01T12:00:00Z'), d('2025-11-04T12:00:00Z')))).toEqual([
      '2025-11-02T05:30:00.000Z', // 01:30 EDT; 06:30Z (01:30 EST) not doubled
      '2025-11-03T06:30:00.000Z',
      '2025-11-04T06:30:00.000Z',
    ]);
  });

  it('latest (IGNORE catch-up) over a long outage of a per-second cron lands on the last tick', () => {
    const t = cron('* * * * * *', 'UTC');
    const from = d('2025-01-01T00:00:00Z');
    const until = d('2025-01-03T00:00:00.500Z'); // two days: 172,800 ticks missed
    const { due, passed } = scheduleCalendar.latest(t, from, from, until);
    expect(due).toEqual(d('2025-01-03T00:00:00Z'));
    expect(passed).toBe(MAX_CRON_CATCH_UP); // a lower bound past the catch-up limit
  });

  it('latest (IGNORE catch-up) across a DST change counts the passed ticks exactly', () => {
    const t = cron('0 * * * *', 'Europe/Berlin');
    const from = d('2025-10-25T22:00:00Z');
    expect(scheduleCalendar.latest(t, from, from, d('2025-10-26T22:30:00Z'))).toEqual({
      due: d('2025-10-26T22:00:00Z'),
      passed: 24,
    });
  });

  it('with planTicks: WAIT fires every missed cron tick, IGNORE the latest; maxCount and endTime end it', () => {
    const base = {
      anchorAt: d('2025-10-25T22:00:00Z'),
      firedCount: 0,
      nextDueAt: d('2025-10-25T22:00:00Z'),
    };
    const t = cron('0 * * * *', 'Europe/Berlin', { maxCount: 10 });
    const until = d('2025-10-26T04:10:00Z');
    const wait = planTicks(
      { ...base, trigger: t, taskPolicy: { errorPolicy: 'CONTINUE', waitingPolicy: 'WAIT' } },
      until,
      scheduleCalendar,
      100,
    );
    expect(wait.dueTimes).toHaveLength(7);
    expect(wait).toMatchObject({ skipped: 0, nextDueAt: d('2025-10-26T05:00:00Z') });
    const ignore = planTicks(
      { ...base, trigger: t, taskPolicy: { errorPolicy: 'CONTINUE', waitingPolicy: 'IGNORE' } },
      until,
      scheduleCalendar,
      100,
    );
    expect(ignore).toEqual({
      dueTimes: [d('2025-10-26T04:00:00Z')],
      skipped: 6,
      nextDueAt: d('2025-10-26T05:00:00Z'),
    });
    const capped = planTicks(
      {
        ...base,
        firedCount: 8,
        trigger: t,
        taskPolicy: { errorPolicy: 'CONTINUE', waitingPolicy: 'WAIT' },
      },
      until,
      scheduleCalendar,
      100,
    );
    expect(capped).toMatchObject({ skipped: 0, nextDueAt: null });
    expect(capped.dueTimes).toHaveLength(2);
    const ended = planTicks(
      {
        ...base,
        trigger: cron('0 * * * *', 'Europe/Berlin', { endTime: d('2025-10-26T01:30:00Z') }),
        taskPolicy: { errorPolicy: 'CONTINUE', waitingPolicy: 'WAIT' },
      },
      until,
      scheduleCalendar,
      100,
    );
    expect(ended).toMatchObject({ nextDueAt: null });
    expect(iso(ended.dueTimes)).toEqual([
      '2025-10-25T22:00:00.000Z',
      '2025-10-25T23:00:00.000Z',
      '2025-10-26T00:00:00.000Z',
      '2025-10-26T01:00:00.000Z',
    ]);
  });

  it('upcoming applies maxCount and endTime', () => {
    const t = cron('*/15 * * * *', 'UTC', { maxCount: 3 });
    expect(iso(upcoming(t, d('2025-01-01T00:00:00Z'), d('2025-01-01T00:00:00Z'), 10))).toEqual([
      '2025-01-01T00:00:00.000Z',
      '2025-01-01T00:15:00.000Z',
      '2025-01-01T00:30:00.000Z',
    ]);
  });
});
