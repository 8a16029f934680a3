/**
 * JSON for jsonb columns. PostgreSQL's jsonb refuses two things that
 * JavaScript strings and JSON.stringify allow: the NUL character (\u0000) and
 * lone UTF-16 surrogates (JSON.stringify writes them as \ud800-style escapes,
 * which jsonb rejects). JSON.stringify also writes NaN and Infinity as null
 * without a word.
 *
 * - Input (a payload) is checked: what jsonb would refuse or JSON would
 *   change is an error naming the field, before anything is written.
 * - Output (a handler's result, an error's message and stack) is made
 *   storable: such characters become U+FFFD. One bad string must never fail
 *   the batch of completions it is written with.
 */

/** Why `s` cannot be stored as is in PostgreSQL text or jsonb, if it cannot. */
export function unstorableText(s: string): string | undefined {
  if (s.includes('\u0000')) return 'the NUL character (\\u0000)';
  if (!s.isWellFormed()) return 'a lone UTF-16 surrogate (not valid Unicode)';
  return undefined;
}

const storableString = (s: string) =>
  unstorableText(s) === undefined ? s : s.toWellFormed().replaceAll('\u0000', '\ufffd');

export class JsonValueError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path}: ${problem}`);
  }
}

/**
 * Serialises `value` for a jsonb column, refusing NUL characters, lone
 * surrogates (in strings and keys) and numbers that are not finite: throws
 * a JsonValueError whose path says where, from the root (`.items[2].name`;
 * empty for the root itself).
 */
export function strictJson(value: unknown): string | undefined {
  const paths = new WeakMap<object, string>();
  return JSON.stringify(value, function (this: unknown, key: string, v: unknown) {
    const parent = typeof this === 'object' && this !== null ? paths.get(this) : undefined;
    // The root's holder is JSON.stringify's wrapper, which has no path.
    const path =
      parent === undefined ? '' : Array.isArray(this) ? `${parent}[${key}]` : `${parent}.${key}`;
    if (!Array.isArray(this)) {
      const keyProblem = unstorableText(key);
      if (keyProblem) throw new JsonValueError(path, `a key must not contain ${keyProblem}`);
    }
    if (typeof v === 'string') {
      const problem = unstorableText(v);
      if (problem) throw new JsonValueError(path, `must not contain ${problem}`);
    } else if (typeof v === 'number' && !Number.isFinite(v)) {
      throw new JsonValueError(path, `must be a finite number, not ${String(v)}`);
    } else if (typeof v === 'object' && v !== null) {
      paths.set(v, path);
    }
    return v;
  });
}

/**
 * In JSON.stringify's output, the escapes of what jsonb refuses: \u0000 and
 * lone surrogates (a pair is written as is). An escaped backslash followed by
 * "u0000" matches too, which only costs the slow path.
 */
const REFUSED_ESCAPE = /\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/** Serialises `value` for a jsonb column, replacing what jsonb would refuse with U+FFFD. */
export function storableJson(value: unknown): string {
  if (value === undefined || value === null) return 'null';
  const plain = JSON.stringify(value);
  if (plain === undefined) return 'null';
  if (!REFUSED_ESCAPE.test(plain)) return plain;
  const json = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'string') return storableString(v);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
    const keys = Object.keys(v);
    if (keys.every((k) => unstorableText(k) === undefined)) return v;
    return Object.fromEntries(
      keys.map((k) => [storableString(k), (v as Record<string, unknown>)[k]]),
    );
  });
  return json ?? 'null';
}
