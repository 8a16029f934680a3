/**
 * Child process: one pg-boss instance with `workers` polling workers on the
 * queue `noop`. With `refetchWhenFull`, a handler that received a full batch
 * calls `notifyWorker` (documented: bypasses the polling interval for the
 * next iteration), so a worker keeps fetching while the queue is deep. With
 * `wakeChannel`, a LISTEN on that channel calls `notifyWorker` as well (the
 * wake-up pg-boss lacks: the parent installs a NOTIFY trigger on insert).
 */
import PgBoss from 'pg-boss';
import pg from 'pg';
import { handlerReporter, serveWorker, workerConfig, type WorkerMode } from './protocol.js';

export interface PgBossWorkerConfig {
  url: string;
  mode: WorkerMode;
  queue: string;
  /** work() calls (pg-boss 10 has no teamSize: each call adds a worker). */
  workers: number;
  batchSize: number;
  pollingIntervalSeconds: number;
  /** Pool size of the instance. */
  max: number;
  refetchWhenFull: boolean;
  wakeChannel?: string;
}

const config = workerConfig<PgBossWorkerConfig>();
const report = handlerReporter(config.mode);

serveWorker({
  async start() {
    const boss = new PgBoss({
      connectionString: config.url,
      max: config.max,
      migrate: false,
      supervise: false,
      schedule: false,
    });
    boss.on('error', (e) => console.error(`[pg-boss worker] ${e.message}`));
    await boss.start();
    const ids: string[] = [];
    for (let w = 0; w < config.workers; w++) {
      const slot: { id?: string } = {};
      slot.id = await boss.work<object>(
        config.queue,
        { batchSize: config.batchSize, pollingIntervalSeconds: config.pollingIntervalSeconds },
        async (jobs) => {
          for (const job of jobs) report(job.id);
          if (config.refetchWhenFull && jobs.length === config.batchSize && slot.id) {
            boss.notifyWorker(slot.id);
          }
        },
      );
      ids.push(slot.id);
    }
    let listener: pg.Client | undefined;
    if (config.wakeChannel) {
      listener = new pg.Client({ connectionString: config.url });
      await listener.connect();
      listener.on('notification', () => {
        for (const id of ids) boss.notifyWorker(id);
      });
      await listener.query(`listen ${config.wakeChannel}`);
    }
    return async () => {
      await listener?.end();
      await boss.stop({ graceful: true, wait: true, timeout: 2000 });
    };
  },
});
