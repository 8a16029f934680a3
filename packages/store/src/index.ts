export { createStore, type Store, type StoreOptions } from './store.js';
export { migrate, loadMigrations, type Migration, type MigrateResult } from './migrate.js';
export {
  TaskStore,
  type Queryable,
  type StoreStats,
  type CompleteOptions,
  type CompletionRef,
  type BatchOutcome,
  type Fence,
} from './tasks.js';
export { backoffMs, backoffCeilingMs, DEFAULT_BACKOFF } from './backoff.js';
export {
  TYPE_NAME,
  QUEUE_NAME,
  ENQUEUE_FIELDS,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  unknownOption,
} from './validate.js';
export { storableJson, strictJson, unstorableText } from './json.js';
export { quoteSchema } from './schema.js';
export * from './errors.js';
export * from './types.js';
export { NodeStore, type NodeRow, type PreviousBeat } from './nodes.js';
export {
  LeadershipStore,
  type TokenState,
  type Grant,
  type AcquireOutcome,
  type FencedOutcome,
} from './leadership.js';
export {
  NotifyStore,
  MAX_CHANNEL_BYTES,
  MAX_NOTIFY_PAYLOAD_BYTES,
  quoteChannel,
  validateChannel,
  type ListenConnection,
  type SweepResult,
} from './notify.js';
export {
  ScheduleStore,
  ScheduleNotFoundError,
  createScheduleStore,
  type ScheduleStoreDeps,
} from './schedules.js';
export { planTicks, tickKey, type LatestDue, type ScheduleCalendar } from './schedules.plan.js';
export { POLICY_FIELDS, RETRY_FIELDS, TASK_FIELDS, validateTrigger } from './schedules.validate.js';
export type {
  BackoffStrategy,
  ErrorPolicy,
  FireOptions,
  FireOutcome,
  FiredSchedule,
  FiredTick,
  RetryConfig,
  Schedule,
  ScheduleInput,
  ScheduleKind,
  ScheduleState,
  ScheduleTaskInput,
  ScheduleTrigger,
  ScheduleTriggerInput,
  TaskPolicy,
  TickFailedOutcome,
  WaitingPolicy,
} from './schedules.types.js';
export { ServiceRunStore, type ServiceRun, type RecordRunOutcome } from './services.js';
