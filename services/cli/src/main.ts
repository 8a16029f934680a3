#!/usr/bin/env -S node --import tsx
/**
 * `baton`: inspect and drive a Baton deployment from a shell, with the
 * nodes' own environment (DATABASE_URL, NATS_URL, BATON_GROUP, ...).
 * Exit codes: 0 done, 1 failed (a server unreachable, a task not found),
 * 2 a mistake in the command line or the environment.
 */
import { parseArgs } from 'node:util';
import { BatonError, connectClient } from '@baton/runtime';
import { EnvError, optionsFromEnv } from '@baton/node/env';
import { run, USAGE, UsageError, type Parsed } from './commands.js';

/** Longest a command may take, connecting included: a server that is down fails it. */
const TIMEOUT_MS = Number(process.env.BATON_CLI_TIMEOUT_MS ?? 15_000);

function parse(argv: readonly string[]): Parsed | undefined {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      node: { type: 'string' },
      status: { type: 'string' },
      type: { type: 'string' },
      queue: { type: 'string' },
      limit: { type: 'string' },
      key: { type: 'string' },
      priority: { type: 'string' },
      'max-attempts': { type: 'string' },
      'run-at': { type: 'string' },
      'delay-ms': { type: 'string' },
    },
  });
  const [command, ...args] = positionals;
  if (values.help || command === undefined || command === 'help') return undefined;
  return { command, args, options: values };
}

async function main(argv: readonly string[]): Promise<number> {
  let parsed: Parsed | undefined;
  let options;
  try {
    parsed = parse(argv);
    if (!parsed) {
      process.stdout.write(`${USAGE}\n`);
      return argv.length === 0 ? 2 : 0;
    }
    options = optionsFromEnv(process.env).options;
  } catch (error) {
    process.stderr.write(`baton: ${(error as Error).message}\n`);
    if (!(error instanceof EnvError)) process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const command = parsed;
  const { database, nats, groupId } = options;
  const work = (async () => {
    await using client = await connectClient({
      database: { ...database, poolSize: 2 },
      ...(nats ? { nats: { ...nats, jetstream: false } } : {}),
      ...(groupId ? { groupId } : {}),
      name: 'baton-cli',
    });
    return await run(client, command);
  })();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `no answer within ${TIMEOUT_MS} ms: are PostgreSQL (DATABASE_URL)${nats ? ' and NATS (NATS_URL)' : ''} up?`,
          ),
        ),
      TIMEOUT_MS,
    );
  });
  try {
    process.stdout.write(`${await Promise.race([work, timeout])}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`baton: ${(error as Error).message}\n`);
    if (
      error instanceof UsageError &&
      /^unknown command|^expected|^submit takes/.test(error.message)
    ) {
      process.stderr.write(`${USAGE}\n`);
    }
    return error instanceof UsageError ||
      (error instanceof BatonError && error.code === 'INVALID_ARGUMENT')
      ? 2
      : 1;
  } finally {
    clearTimeout(timer);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // A connection still closing must not keep a finished command waiting.
    setTimeout(() => process.exit(code), 1000).unref();
  },
  (error: unknown) => {
    process.stderr.write(
      `baton: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
