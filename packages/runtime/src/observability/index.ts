/**
 * The observability layer: metrics (prom-client), the health model, the
 * HTTP endpoint (`/health`, `/ready`, `/metrics`, dashboard routes) and
 * structured logs (pino). Re-exported by the package's `src/index.ts`.
 */
export { BatchHistogram, type HistogramSeries } from './batch-histogram.js';
export { HttpListenError, ObservabilityConfigError } from './errors.js';
export {
  CLAIM_DURATION_BUCKETS,
  TASK_DURATION_BUCKETS,
  createMetrics,
  isTaskOutcome,
  type BatonMetrics,
  type MemberState,
  type MetricsOptions,
  type NodeInfo,
  type NodeSample,
  type NodeSampler,
  type StaleWriteKind,
  type TaskOutcome,
} from './metrics.js';
export {
  TaskCountsCache,
  type TaskCounts,
  type TaskCountsCacheOptions,
  type TaskCountsReading,
  type TaskCountsSource,
} from './task-counts.js';
export {
  LoopMonitor,
  createHealthCheck,
  type BusCheck,
  type BusProbeResult,
  type DatabaseCheck,
  type DatabaseProbe,
  type HealthCheckName,
  type HealthCheckOptions,
  type HealthReport,
  type HealthStatus,
  type LoopMonitorOptions,
  type WorkerCheck,
} from './health.js';
export {
  startHttpServer,
  type HttpServerHandle,
  type HttpServerOptions,
  type RouteHandler,
  type RouteResult,
} from './http.js';
export {
  DEFAULT_REDACT_PATHS,
  LOG_LEVELS,
  createLogger,
  parseLogLevel,
  taskLogger,
  type LogLevel,
  type Logger,
  type LoggerOptions,
  type TaskLogFields,
} from './logger.js';
