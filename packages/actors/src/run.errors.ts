/** The errors of a run, and how a handler's error is recorded. */
import type { FailRequest, TaskHandler } from './ports.js';

/** An error thrown when the worker has no handler for a claimed task's type. */
export class HandlerNotFoundError extends Error {
  override readonly name = 'HandlerNotFoundError';
  readonly code = 'HANDLER_NOT_FOUND';
}

/** The error a timed-out run is failed with. */
export class RunTimeoutError extends Error {
  override readonly name = 'RunTimeoutError';
  readonly code = 'RUN_TIMEOUT';
}

export function describeError(error: unknown): FailRequest['error'] {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      message: error.message,
      name: error.name,
      ...(error.stack !== undefined && { stack: error.stack }),
      ...(typeof code === 'string' && { code }),
    };
  }
  return { message: String(error), name: 'NonError' };
}

/** Handler option first, then `retryable: false` on the error, else retryable. */
export function isRetryable(handler: TaskHandler | undefined, error: unknown): boolean {
  if (handler?.retryable) return handler.retryable(error);
  return !(
    typeof error === 'object' &&
    error !== null &&
    (error as { retryable?: unknown }).retryable === false
  );
}
