/**
 * Structured JSON logs (pino). Every line carries the node and group ids;
 * loggers for a task attempt add `task` and `attempt` (and `type`), so one
 * task's history can be followed across nodes with a single filter.
 */
import { hostname } from 'node:os';
import { pino, type DestinationStream, type LevelWithSilent, type Logger } from 'pino';
import { ObservabilityConfigError } from './errors.js';

export type { Logger } from 'pino';

/** A log level; `silent` turns logging off. */
export type LogLevel = LevelWithSilent;

/** The accepted values of `log.level`, most to least verbose. */
export const LOG_LEVELS: readonly LogLevel[] = Object.freeze([
  'trace',
  'debug',
  'info',
  'warn',
  'error',
  'fatal',
  'silent',
]);

/**
 * Paths redacted by default: credentials that may appear in logged
 * configuration (PostgreSQL and NATS options).
 */
export const DEFAULT_REDACT_PATHS: readonly string[] = Object.freeze([
  'password',
  '*.password',
  '*.*.password',
  'pass',
  '*.pass',
  '*.*.pass',
  'connectionString',
  '*.connectionString',
  '*.*.connectionString',
]);

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /**
   * Minimum level written, one of {@link LOG_LEVELS}.
   * @default 'info'
   */
  readonly level?: string;
  /** The node's unique id (`taskId` in Ballerina's terms); every line has it as `node`. */
  readonly nodeId: string;
  /** The node's group; every line has it as `group`. */
  readonly groupId: string;
  /**
   * Where lines go, e.g. a stream that collects them in a test.
   * @default standard output
   */
  readonly destination?: DestinationStream;
  /**
   * Paths whose values are replaced by `[redacted]`.
   * @default DEFAULT_REDACT_PATHS
   */
  readonly redact?: readonly string[];
}

/**
 * Checks a level.
 *
 * @throws {ObservabilityConfigError} naming `log.level` when it is not one of {@link LOG_LEVELS}.
 */
export function parseLogLevel(level: unknown): LogLevel {
  if (typeof level === 'string' && (LOG_LEVELS as readonly string[]).includes(level)) {
    return level as LogLevel;
  }
  throw new ObservabilityConfigError('log.level', level, `must be one of ${LOG_LEVELS.join(', ')}`);
}

/**
 * Creates the node's root logger: JSON lines with an ISO `time`, the level
 * as a word, and `node`, `group`, `pid`, `hostname` on every line. Errors
 * logged as `err` are serialised with their stack, `code` and `cause`.
 *
 * @throws {ObservabilityConfigError} for an invalid level (`log.level`).
 * @example
 * const log = createLogger({ level: 'info', nodeId: 'n1', groupId: 'orders' });
 * log.info({ queue: 'default' }, 'worker started');
 * taskLogger(log, { id: '42', attempt: 1, type: 'email' }).warn('slow handler');
 */
export function createLogger(options: LoggerOptions): Logger {
  const level = parseLogLevel(options.level ?? 'info');
  return pino(
    {
      level,
      base: {
        node: options.nodeId,
        group: options.groupId,
        pid: process.pid,
        hostname: hostname(),
      },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...(options.redact ?? DEFAULT_REDACT_PATHS)], censor: '[redacted]' },
    },
    options.destination,
  );
}

/** The identity of a task attempt, as carried by {@link taskLogger}. */
export interface TaskLogFields {
  /** The task id. */
  readonly id: string;
  /** The attempt number (the fencing token of the run). */
  readonly attempt: number;
  /** The task type, when known. */
  readonly type?: string;
}

/**
 * A child logger for one attempt: its lines add `task`, `attempt` and `type`
 * to the parent's `node` and `group` (for embedders; a handler's `ctx.logger`
 * is its run's logger: `info(message, fields)`, with `taskId`, `attempt`, `type`).
 */
export function taskLogger(parent: Logger, task: TaskLogFields): Logger {
  return parent.child({
    task: task.id,
    attempt: task.attempt,
    ...(task.type !== undefined && { type: task.type }),
  });
}
