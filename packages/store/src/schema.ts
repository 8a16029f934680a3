import { InvalidArgumentError } from './errors.js';

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/** Validates a schema name and returns it quoted for use in SQL text. */
export function quoteSchema(schema: string): string {
  if (!IDENTIFIER.test(schema)) {
    throw new InvalidArgumentError(
      'schema',
      'must be a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)',
      schema,
    );
  }
  return `"${schema}"`;
}
