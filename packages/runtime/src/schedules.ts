/**
 * Scheduling with Ballerina's names (seed 001), cluster-wide and durable: a
 * job is a task type plus payload, so each tick becomes a task with all of a
 * task's guarantees. Intervals are seconds (decimals allowed), as in
 * Ballerina. Ticks are fired by the group's token bearer only.
 */
import {
  InvalidArgumentError,
  POLICY_FIELDS,
  RETRY_FIELDS,
  TASK_FIELDS,
  unknownOption,
  type RetryConfig,
  type Schedule,
  type ScheduleStore,
  type TaskPolicy,
} from '@baton/store';

/** What a tick runs: a task type and its payload and options. */
export interface Job {
  readonly type: string;
  readonly payload?: unknown;
  readonly queue?: string;
  readonly priority?: number;
  readonly maxAttempts?: number;
}

export interface JobOptions {
  /** The job id (Ballerina's JobId). Scheduling an existing id returns it unchanged. @default a UUID */
  readonly id?: string;
  readonly retryConfig?: Partial<RetryConfig>;
  readonly taskPolicy?: Partial<TaskPolicy>;
}

export interface RecurOptions extends JobOptions {
  /** -1: unlimited. @default -1 */
  readonly maxCount?: number;
  /** A `Date` or an ISO 8601 string with a time and an offset: `2027-02-01T09:00:00+01:00`. */
  readonly startTime?: Date | string;
  /** As `startTime`. */
  readonly endTime?: Date | string;
}

export interface CronOptions extends RecurOptions {
  /** An IANA time zone. @default 'UTC' */
  readonly timeZone?: string;
}

export interface SchedulerApi {
  /**
   * Runs `job` once at `at` (which must be in the future): a `Date` or an
   * ISO 8601 string with a time and an offset (`2027-02-01T09:00:00Z`).
   * Returns the job id.
   */
  scheduleOneTimeJob(job: Job, at: Date | string, options?: JobOptions): Promise<string>;
  /**
   * Runs `job` every `interval` seconds (decimals allowed), from `startTime`
   * (or now), at most `maxCount` times, until `endTime`.
   *
   * @example
   * await client.scheduler.scheduleJobRecurByFrequency({ type: 'report.build' }, 2.5, { maxCount: 10 });
   */
  scheduleJobRecurByFrequency(job: Job, interval: number, options?: RecurOptions): Promise<string>;
  /** Runs `job` on a cron expression (five fields, or six with seconds), in a time zone. */
  scheduleJobByCron(job: Job, expression: string, options?: CronOptions): Promise<string>;
  unscheduleJob(id: string): Promise<void>;
  pauseJob(id: string): Promise<void>;
  resumeJob(id: string): Promise<void>;
  pauseAllJobs(): Promise<number>;
  resumeAllJobs(): Promise<number>;
  /** The active jobs of the group (not paused, not finished). */
  getRunningJobs(): Promise<Schedule[]>;
  getJob(id: string): Promise<Schedule | null>;
}

/** The options each call takes; anything else is refused by name (callers may be JavaScript). */
const JOB_OPTIONS: ReadonlySet<string> = new Set(['id', 'retryConfig', 'taskPolicy']);
const RECUR_OPTIONS: ReadonlySet<string> = new Set([
  ...JOB_OPTIONS,
  'maxCount',
  'startTime',
  'endTime',
]);
const CRON_OPTIONS: ReadonlySet<string> = new Set([...RECUR_OPTIONS, 'timeZone']);
/** The objects an option belongs in, to point a key given one level too high there. */
const NESTED: Readonly<Record<string, ReadonlySet<string>>> = {
  taskPolicy: POLICY_FIELDS,
  retryConfig: RETRY_FIELDS,
};

/**
 * Refuses anything but an object with only `allowed` keys (or, for an
 * options object, nested ones with only theirs), naming the field: a
 * misspelled or misplaced option is an error, never silently dropped.
 */
function known(
  field: string,
  value: unknown,
  allowed: ReadonlySet<string>,
  nested: Readonly<Record<string, ReadonlySet<string>>> = {},
): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(field, 'must be an object', value);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) throw unknownOption(field, key, allowed, nested);
  }
  for (const [name, keys] of Object.entries(nested)) {
    const inner = (value as Record<string, unknown>)[name];
    if (inner !== undefined) known(`${field}.${name}`, inner, keys);
  }
}

function task(job: Job) {
  known('job', job, TASK_FIELDS);
  return {
    type: job.type,
    ...(job.payload !== undefined ? { payload: job.payload } : {}),
    ...(job.queue !== undefined ? { queue: job.queue } : {}),
    ...(job.priority !== undefined ? { priority: job.priority } : {}),
    ...(job.maxAttempts !== undefined ? { maxAttempts: job.maxAttempts } : {}),
  } as Parameters<ScheduleStore['create']>[0]['task'];
}

/** The options common to every call, after checking `options` has only `allowed` keys. */
function common(options: JobOptions, allowed: ReadonlySet<string>) {
  known('options', options, allowed, NESTED);
  return {
    ...(options.id !== undefined ? { id: options.id } : {}),
    ...(options.retryConfig !== undefined ? { retryConfig: options.retryConfig } : {}),
    ...(options.taskPolicy !== undefined ? { taskPolicy: options.taskPolicy } : {}),
  };
}

function window(options: RecurOptions) {
  return {
    ...(options.maxCount !== undefined ? { maxCount: options.maxCount } : {}),
    ...(options.startTime !== undefined ? { startTime: options.startTime } : {}),
    ...(options.endTime !== undefined ? { endTime: options.endTime } : {}),
  };
}

/** The scheduling API of a group over the schedule store; `poke` wakes the firer. */
export function schedulerApi(
  schedules: ScheduleStore,
  groupId: string,
  poke: () => void,
): SchedulerApi {
  const created = async (input: Parameters<ScheduleStore['create']>[0]) => {
    const { schedule } = await schedules.create(input);
    poke();
    return schedule.id;
  };
  return {
    async scheduleOneTimeJob(job, at, options = {}) {
      const rest = common(options, JOB_OPTIONS);
      return created({ groupId, task: task(job), trigger: { kind: 'once', at }, ...rest });
    },
    async scheduleJobRecurByFrequency(job, interval, options = {}) {
      const rest = common(options, RECUR_OPTIONS);
      if (typeof interval !== 'number' || !Number.isFinite(interval) || interval < 0.001) {
        throw new InvalidArgumentError(
          'interval',
          'must be a number of seconds, at least 0.001',
          interval,
        );
      }
      return created({
        groupId,
        task: task(job),
        trigger: { kind: 'interval', intervalMs: Math.round(interval * 1000), ...window(options) },
        ...rest,
      });
    },
    async scheduleJobByCron(job, expression, options = {}) {
      const rest = common(options, CRON_OPTIONS);
      return created({
        groupId,
        task: task(job),
        trigger: {
          kind: 'cron',
          expression,
          // '' too: the store refuses it by name rather than reading it as UTC.
          ...(options.timeZone !== undefined ? { timeZone: options.timeZone } : {}),
          ...window(options),
        },
        ...rest,
      });
    },
    unscheduleJob: (id) => schedules.unschedule(id, groupId),
    pauseJob: async (id) => void (await schedules.pause(id, groupId)),
    resumeJob: async (id) => {
      await schedules.resume(id, groupId);
      poke();
    },
    pauseAllJobs: () => schedules.pauseAll(groupId),
    resumeAllJobs: async () => {
      const n = await schedules.resumeAll(groupId);
      poke();
      return n;
    },
    getRunningJobs: () => schedules.getRunningJobs(groupId),
    getJob: (id) => schedules.get(id, groupId),
  };
}
