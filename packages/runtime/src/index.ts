/**
 * `@baton/runtime`: composes a node (config, bus adapters, codec, handlers,
 * client, metrics, HTTP, status subject) from the store and the actors.
 */
export {
  createNode,
  BatonNode,
  VERSION,
  type NodeDeps,
  type NodeExit,
  type NodeLifecycle,
} from './node.js';
export { createClient, type BatonClient } from './client.js';
export { connectClient, type ClientOptions, type ConnectedClient } from './connect.js';
export { type ServiceDefinition, type ServiceContext } from './coordination.js';
export {
  type SchedulerApi,
  type Job,
  type JobOptions,
  type RecurOptions,
  type CronOptions,
} from './schedules.js';
export { Handlers, type HandlerFn, type HandlerOptions, type TaskContext } from './handlers.js';
export { nodeStatus, type NodeStatus, type ActorStatus, type SubmitStreamState } from './status.js';
export {
  handleSubmission,
  submissionInput,
  SUBMISSION_FIELDS,
  type SubmitReply,
} from './submit.js';
export type { TaskEventMessage, TaskEventItem } from './tracked-store.js';
export {
  compileConfig,
  ConfigError,
  type CompiledConfig,
  type NodeOptions,
  type DatabaseOptions,
  type NatsOptions,
  type NatsJetStream,
  type WarmBackupOptions,
  type WorkerOptions,
  type RetentionOptions,
  type TlsOptions,
} from './config.js';
export * from './bus/index.js';
/** The base of every typed Baton error: a stable `code` and the `fields` it names. */
export { BatonError } from '@baton/store';
export * from './observability/index.js';
export {
  scheduleCalendar,
  parseCron,
  isTimeZone,
  upcoming,
  MAX_CRON_CATCH_UP,
} from './schedule/spec.js';
export {
  errorPolicyAction,
  waitingPolicyAction,
  retryDelayMs,
  scheduleIdOfKey,
} from './schedule/policies.js';
