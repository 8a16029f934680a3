/**
 * Compiling actor options: raw input -> defaults -> a frozen, validated
 * object. A bad option fails at start with an error that names it.
 */

/** A bad actor option; `option` names it. */
export class ActorConfigError extends Error {
  override readonly name = 'ActorConfigError';
  readonly code = 'INVALID_ACTOR_OPTION';
  constructor(
    readonly option: string,
    message: string,
    readonly value: unknown,
  ) {
    super(`${option} ${message} (got ${String(value)})`);
  }
}

/** Largest delay a Node.js timer accepts; used for "never". */
export const NEVER_MS = 2_147_483_647;

/** `value ?? fallback`, checked to be an integer in `[min, NEVER_MS]`. */
export function intOption(
  option: string,
  value: number | undefined,
  fallback: number,
  min = 1,
): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min || v > NEVER_MS) {
    throw new ActorConfigError(option, `must be an integer between ${min} and ${NEVER_MS}`, v);
  }
  return v;
}

/** `value`, when given, checked like {@link intOption}; `undefined` otherwise. */
export function optionalInt(
  option: string,
  value: number | undefined,
  min = 1,
): number | undefined {
  return value === undefined ? undefined : intOption(option, value, value, min);
}

/** Exponential backoff: `baseMs * 2^(n-1)`, capped at `maxMs`; `n` counts from 1. */
export function exponentialMs(n: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(n - 1, 30)));
}

/** A readable message of anything thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
