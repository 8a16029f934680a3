import { InvalidArgumentError, type ScheduleCalendar } from '../src/index.js';

/**
 * A calendar for the store's tests: one-time and interval triggers (the
 * runtime's croner calendar is tested in packages/runtime). A cron trigger is
 * accepted only with the expression 'every-second', to exercise the port.
 */
export const testCalendar: ScheduleCalendar = {
  validate(t) {
    if (t.kind === 'cron' && t.expression !== 'every-second') {
      throw new InvalidArgumentError(
        'trigger.expression',
        'is not a valid cron expression',
        t.expression,
      );
    }
    if (t.kind === 'cron' && t.timeZone !== 'UTC') {
      throw new InvalidArgumentError(
        'trigger.timeZone',
        'is not a known IANA time zone',
        t.timeZone,
      );
    }
  },
  atOrAfter(t, anchor, from) {
    if (t.kind === 'once') return t.at >= from ? t.at : null;
    const i = t.kind === 'interval' ? t.intervalMs : 1000;
    const n = Math.max(0, Math.ceil((from.getTime() - anchor.getTime()) / i));
    return new Date(anchor.getTime() + n * i);
  },
  after(t, anchor, after) {
    if (t.kind === 'once') return after < t.at ? t.at : null;
    const i = t.kind === 'interval' ? t.intervalMs : 1000;
    const n = Math.floor((after.getTime() - anchor.getTime()) / i) + 1;
    return new Date(anchor.getTime() + Math.max(0, n) * i);
  },
  latest(t, anchor, from, until) {
    if (t.kind === 'once') return { due: from, passed: 0 };
    const i = t.kind === 'interval' ? t.intervalMs : 1000;
    const nFrom = Math.round((from.getTime() - anchor.getTime()) / i);
    const nUntil = Math.max(nFrom, Math.floor((until.getTime() - anchor.getTime()) / i));
    return { due: new Date(anchor.getTime() + nUntil * i), passed: nUntil - nFrom };
  },
};
