/** Child process: one graphile-worker runner with the settings passed by `graphile.ts`. */
import { Logger, run } from 'graphile-worker';
import { handlerReporter, serveWorker, workerConfig, type WorkerMode } from './protocol.js';

export interface GraphileWorkerConfig {
  url: string;
  mode: WorkerMode;
  /** Merged into the preset's `worker` options. */
  options: GraphileConfig.WorkerOptions;
}

const config = workerConfig<GraphileWorkerConfig>();
const report = handlerReporter(config.mode);
// Warnings and errors only: info lines cost time on the hot path.
const logger = new Logger(() => (level, message) => {
  const severity: string = level; // a const enum of strings ('error', 'warning', ...)
  if (severity === 'error' || severity === 'warning') console.error(`[graphile-worker] ${message}`);
});

serveWorker({
  async start() {
    const runner = await run({
      noHandleSignals: true,
      taskList: {
        noop: async (_payload, helpers) => {
          report(helpers.job.id);
        },
      },
      preset: { worker: { connectionString: config.url, logger, ...config.options } },
    });
    return () => runner.stop();
  },
});
