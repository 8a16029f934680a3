/**
 * Child process: one Baton node (createNode, the same composition as
 * services/node) with a `noop` handler that reports its starts to the
 * harness. `BENCH_BATON_CPU_PROF=1` is honoured by starting the bench with
 * `node --cpu-prof` flags in BENCH_WORKER_EXEC_ARGV (see processes.ts).
 */
import pg from 'pg';
import { createNode, type BatonNode } from '@baton/runtime';
import { handlerReporter, serveWorker, workerConfig, type WorkerMode } from './protocol.js';

export interface BatonWorkerConfig {
  url: string;
  /** NATS server URL; null for the PostgreSQL LISTEN/NOTIFY bus. */
  nats: string | null;
  mode: WorkerMode;
  groupId: string;
  nodeId: string;
  concurrency: number;
  poolSize: number;
  completionFlushMs: number;
}

const config = workerConfig<BatonWorkerConfig>();

// BENCH_BATON_COUNT=1: count the statements the node sends, printed at stop.
const counts = new Map<string, number>();
const spent = new Map<string, number>();
if (process.env.BENCH_BATON_COUNT === '1') {
  for (const proto of [pg.Client.prototype, pg.Pool.prototype] as unknown as {
    query: (...args: unknown[]) => unknown;
  }[]) {
    const original = proto.query;
    const isPool = proto === (pg.Pool.prototype as unknown);
    proto.query = function (this: unknown, ...args: unknown[]) {
      const q = args[0] as string | { name?: string; text?: string };
      const key = typeof q === 'string' ? q : (q.name ?? q.text ?? '?');
      const k = (isPool ? 'pool ' : '') + key.replace(/\s+/g, ' ').trim().slice(0, 64);
      counts.set(k, (counts.get(k) ?? 0) + 1);
      const t0 = performance.now();
      const result = original.apply(this, args);
      if (result instanceof Promise) {
        void result
          .finally(() => spent.set(k, (spent.get(k) ?? 0) + performance.now() - t0))
          .catch(() => {});
      }
      return result;
    };
  }
}
const report = handlerReporter(config.mode);

serveWorker({
  async start() {
    const node: BatonNode = createNode({
      nodeId: config.nodeId,
      groupId: config.groupId,
      database: { url: config.url, poolSize: config.poolSize },
      ...(config.nats ? { nats: { servers: config.nats } } : {}),
      worker: {
        concurrency: config.concurrency,
        completionFlushMs: config.completionFlushMs,
      },
      http: false,
      logLevel: 'warn',
    });
    node.handle('noop', (ctx) => {
      report(ctx.taskId);
    });
    await node.start();
    const cpu0 = process.cpuUsage();
    return async () => {
      // BENCH_BATON_CPU=1: this process's CPU time from start to stop.
      if (process.env.BENCH_BATON_CPU === '1') {
        const { user, system } = process.cpuUsage(cpu0);
        console.error(`cpu: ${((user + system) / 1e6).toFixed(2)} s`);
      }
      await node.shutdown(5000);
      if (counts.size > 0) {
        const rows = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 25);
        console.error(
          rows
            .map(
              ([k, n]) =>
                `${String(n).padStart(7)} ${((spent.get(k) ?? 0) / n).toFixed(2).padStart(8)} ms ${k}`,
            )
            .join('\n'),
        );
      }
    };
  },
});
