/**
 * `@baton/actors`: the four XState v5 machines of a Baton node (supervisor,
 * scheduler, worker, watchdog) and the ports they need. Pure: the machines
 * receive their ports as input and import no other package of ours.
 *
 * @example
 * import { createActor } from 'xstate';
 * import { supervisorMachine } from '@baton/actors';
 *
 * const node = createActor(supervisorMachine, {
 *   input: { nodeId: 'n1', store, handlers, heartbeat, bus, subjects },
 * });
 * node.start();
 * node.send({ type: 'SHUTDOWN', graceMs: 10_000 });
 */
export * from './ports.js';
export { ActorConfigError } from './options.js';
export type { ChildName, ChildReadyEvent } from './parent.js';
export type { RunOutcome, RunSettledEvent } from './run.machine.js';
export { planClaims, type ClaimCall, type ClaimPlan } from './claim.js';
export { workerMachine, summarizeWorker } from './worker.machine.js';
export {
  compileWorkerConfig,
  type WorkerInput,
  type WorkerConfig,
  type WorkerContext,
  type WorkerEvent,
  type WorkerStats,
  type RunEntry,
} from './worker.types.js';
export {
  schedulerMachine,
  summarizeScheduler,
  type SchedulerInput,
  type SchedulerContext,
  type SchedulerEvent,
  type SchedulerStats,
} from './scheduler.machine.js';
export { watchdogMachine, summarizeWatchdog } from './watchdog.machine.js';
export type {
  WatchdogInput,
  WatchdogContext,
  WatchdogEvent,
  MemberStatus,
  MemberView,
} from './watchdog.types.js';
export {
  compileElection,
  defaultStepDownMarginMs,
  grantedDeadline,
  holdsLease,
  MAX_RENEWS_IN_FLIGHT,
  readToken,
  renewedDeadline,
  type ElectionOptions,
  type RenewInFlight,
  type ElectionConfig,
  type ElectionView,
  type ElectionNotice,
  type ElectionBearerEvent,
  type ElectionStandbyEvent,
  type StepDownReason,
  type TokenReading,
} from './election.js';
export { supervisorMachine, summarizeSupervisor } from './supervisor.machine.js';
export {
  coordinatedServiceMachine,
  compileService,
  summarizeCoordinated,
  CoordinatedAbortedError,
  type CoordinatedService,
  type CoordinatedRunContext,
  type CoordinatedInput,
  type CoordinatedServiceContext,
  type CoordinatedEvent,
  type CoordinatedStats,
  type CoordinatedAbortReason,
  type ServiceYieldEvent,
} from './coordinated.js';
export type {
  RoleChange,
  SupervisorInput,
  SupervisorContext,
  SupervisorEvent,
  SupervisorOutput,
  RestartPolicy,
  ChildStatus,
} from './supervisor.types.js';
