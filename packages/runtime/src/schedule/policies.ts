/**
 * Ballerina's task policies (seed 001), as pure decisions the scheduler and
 * the worker apply. The durable halves live in `@baton/store`
 * (`ScheduleStore.fireDue` for waiting policies, `onTickFailed` for error
 * policies); these say what a node does around them.
 */
import type { ErrorPolicy, RetryConfig, WaitingPolicy } from '@baton/store';

/**
 * After a tick's task ended in dead_letter (its retries spent):
 * `terminate` ends the schedule, `log` asks the node to log the failure.
 *
 * - LOG_AND_TERMINATE: log, end the schedule (Ballerina's default).
 * - LOG_AND_CONTINUE: log, keep firing.
 * - TERMINATE: end the schedule silently.
 * - CONTINUE: keep firing silently.
 */
export function errorPolicyAction(policy: ErrorPolicy): { terminate: boolean; log: boolean } {
  return {
    terminate: policy === 'LOG_AND_TERMINATE' || policy === 'TERMINATE',
    log: policy === 'LOG_AND_TERMINATE' || policy === 'LOG_AND_CONTINUE',
  };
}

/**
 * Ticks missed while no node could fire (outage, failover, pause):
 * `fireMissed` fires every one of them (WAIT); otherwise only the latest due
 * tick fires and the rest are skipped, `log`ged under LOG_AND_IGNORE.
 */
export function waitingPolicyAction(policy: WaitingPolicy): { fireMissed: boolean; log: boolean } {
  return { fireMissed: policy === 'WAIT', log: policy === 'LOG_AND_IGNORE' };
}

/**
 * The delay before retry number `retry` (1 = the first retry, after attempt
 * 1 failed) of a tick's task: FIXED waits `retryIntervalMs` each time;
 * EXPONENTIAL doubles it per retry, capped at `maxIntervalMs`. Pass it as
 * `retryInMs` to `TaskStore.fail`.
 *
 * @example
 * retryDelayMs({ maxAttempts: 5, retryIntervalMs: 1000, backoffStrategy: 'EXPONENTIAL', maxIntervalMs: 5000 }, 3); // 4000
 */
export function retryDelayMs(config: RetryConfig, retry: number): number {
  if (config.backoffStrategy === 'FIXED') return config.retryIntervalMs;
  const exp = Math.min(Math.max(retry - 1, 0), 52);
  return Math.min(config.maxIntervalMs, config.retryIntervalMs * 2 ** exp);
}

/** The schedule id encoded in a tick task's idempotency key (`schedule:<id>:<due ISO>`), or null. */
export function scheduleIdOfKey(idempotencyKey: string | null): string | null {
  if (idempotencyKey === null) return null;
  const m = /^schedule:(.+):\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.exec(idempotencyKey);
  return m ? m[1]! : null;
}
