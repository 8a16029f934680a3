import type { BackoffPolicy } from './types.js';

export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({ baseMs: 1000, maxMs: 3_600_000 });

/** The ceiling of the retry delay after `attempt` failed attempts: base * 2^(attempt-1), capped. */
export function backoffCeilingMs(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  const exp = Math.min(Math.max(attempt - 1, 0), 52);
  return Math.min(policy.maxMs, policy.baseMs * 2 ** exp);
}

/**
 * "Full jitter" backoff: a uniformly random delay in [0, ceiling], so retries
 * of many tasks that failed together spread out instead of stampeding.
 */
export function backoffMs(
  attempt: number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  return Math.floor(random() * (backoffCeilingMs(attempt, policy) + 1));
}
