import { describe, expect, it } from 'vitest';
import {
  errorPolicyAction,
  retryDelayMs,
  scheduleIdOfKey,
  waitingPolicyAction,
} from '../src/schedule/policies.js';

describe('schedule policies (Ballerina meanings)', () => {
  it('error policies: terminate and/or log', () => {
    expect(errorPolicyAction('LOG_AND_TERMINATE')).toEqual({ terminate: true, log: true });
    expect(errorPolicyAction('LOG_AND_CONTINUE')).toEqual({ terminate: false, log: true });
    expect(errorPolicyAction('TERMINATE')).toEqual({ terminate: true, log: false });
    expect(errorPolicyAction('CONTINUE')).toEqual({ terminate: false, log: false });
  });

  it('waiting policies: fire the missed ticks and/or log', () => {
    expect(waitingPolicyAction('WAIT')).toEqual({ fireMissed: true, log: false });
    expect(waitingPolicyAction('IGNORE')).toEqual({ fireMissed: false, log: false });
    expect(waitingPolicyAction('LOG_AND_IGNORE')).toEqual({ fireMissed: false, log: true });
  });

  it('retry delays: FIXED, and EXPONENTIAL capped at maxIntervalMs', () => {
    const base = { maxAttempts: 5, retryIntervalMs: 1000, maxIntervalMs: 5000 };
    expect([1, 2, 3].map((k) => retryDelayMs({ ...base, backoffStrategy: 'FIXED' }, k))).toEqual([
      1000, 1000, 1000,
    ]);
    expect(
      [1, 2, 3, 4, 60].map((k) => retryDelayMs({ ...base, backoffStrategy: 'EXPONENTIAL' }, k)),
    ).toEqual([1000, 2000, 4000, 5000, 5000]);
  });

  it('the schedule id of a tick task, from its idempotency key', () => {
    expect(scheduleIdOfKey('schedule:daily:report:2025-01-01T00:00:00.000Z')).toBe('daily:report');
    expect(scheduleIdOfKey('order-42')).toBeNull();
    expect(scheduleIdOfKey(null)).toBeNull();
  });
});
