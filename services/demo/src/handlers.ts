/**
 * The demo's handler module, loaded by each node process (BATON_HANDLERS):
 * a quick task that sometimes fails (and is retried), a slow one, one that
 * always fails for good (dead letters), the recurring job's task, and a
 * coordinated service that only the token bearer runs.
 */
import { setTimeout } from 'node:timers/promises';
import type { ServiceContext, TaskContext } from '@baton/runtime';

/** Waits `ms`, rejecting as soon as the run's signal aborts. */
const sleep = (ms: number, signal: AbortSignal) => setTimeout(ms, undefined, { signal });

export const handlers = {
  /** 5-25 ms of work; fails one time in ten (then retried with backoff). */
  'demo.resize': async (ctx: TaskContext<{ n: number }>) => {
    await sleep(5 + Math.random() * 20, ctx.signal);
    if (Math.random() < 0.1) throw new Error('transient failure (resize service busy)');
    return { n: ctx.payload.n, size: 'small' };
  },
  /** 200-600 ms of work. */
  'demo.report': {
    run: async (ctx: TaskContext<{ n: number }>) => {
      await sleep(200 + Math.random() * 400, ctx.signal);
      return { n: ctx.payload.n, pages: 3 };
    },
    concurrency: 8,
  },
  /** Always fails with an error that must not be retried: a dead letter. */
  'demo.poison': async () => {
    throw Object.assign(new Error('malformed input'), { retryable: false });
  },
  /** The task of the recurring schedule. */
  'demo.cleanup': async () => ({ cleaned: true }),
};

export const services = {
  /** Runs every 0.2 s on the token bearer only; every run is logged with its term. */
  'demo.sweeper': {
    trigger: { interval: 0.2 },
    execute: async (_ctx: ServiceContext) => {},
  },
};
