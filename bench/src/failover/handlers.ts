/**
 * The handler module the failover benchmark loads into its real node
 * processes (BATON_HANDLERS), as a user would write one:
 *
 * - service `tick` (every BENCH_TICK_S seconds, default 0.05): its `execute`
 *   first reports its start to the benchmark, one UDP datagram to
 *   127.0.0.1:BENCH_REPORT_PORT carrying `process.hrtime.bigint()`
 *   (CLOCK_MONOTONIC: one clock for every process of the machine, immune to
 *   wall-clock steps, nanoseconds) and `Date.now()`;
 * - task `short`: a short task (`payload.cpuMs` of CPU, default 1 ms), the
 *   steady load of the failover trials;
 * - task `burn`: `payload.ms` of CPU-bound work in a worker thread (one pool
 *   of BENCH_BURN_THREADS threads per node, default 1), so the CPU is kept
 *   busy while the node's event loop stays free to heartbeat, the way a user
 *   runs CPU-heavy work; `payload.sliceMs` > 0 burns on the main thread
 *   instead, in slices of that length with a yield to the event loop between.
 */
import { createSocket } from 'node:dgram';
import { Worker } from 'node:worker_threads';
import type { ServiceContext, TaskContext } from '@baton/runtime';

const node = process.env.BATON_NODE_ID ?? 'unknown';
const reportPort = Number(process.env.BENCH_REPORT_PORT ?? 0);
const socket = reportPort > 0 ? createSocket('udp4') : null;
socket?.unref();

/** What `execute` reports: see the module comment. */
export interface ExecuteReport {
  readonly kind: 'execute';
  readonly node: string;
  readonly term: number;
  readonly run: number;
  /** process.hrtime.bigint() at the start of execute, as a decimal string (ns). */
  readonly mono: string;
  readonly wall: number;
}

function report(message: ExecuteReport): void {
  socket?.send(JSON.stringify(message), reportPort, '127.0.0.1');
}

/** Spins the CPU for `ms` milliseconds. */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy
  }
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A tiny worker-thread pool (plain JS, no loader needed) that burns CPU on request. */
class BurnPool {
  readonly #idle: Worker[] = [];
  readonly #queue: { ms: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  readonly #pending = new Map<Worker, { resolve: () => void; reject: (e: Error) => void }>();

  constructor(size: number) {
    const code = `
      const { parentPort } = require('node:worker_threads');
      parentPort.on('message', (ms) => {
        const end = performance.now() + ms;
        while (performance.now() < end) {}
        parentPort.postMessage(ms);
      });`;
    for (let i = 0; i < size; i++) {
      const worker = new Worker(code, { eval: true });
      worker.unref();
      worker.on('message', () => this.#done(worker));
      worker.on('error', (error) => {
        this.#pending.get(worker)?.reject(error);
        this.#pending.delete(worker);
      });
      this.#idle.push(worker);
    }
  }

  run(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ ms, resolve, reject });
      this.#next();
    });
  }

  #done(worker: Worker): void {
    this.#pending.get(worker)?.resolve();
    this.#pending.delete(worker);
    this.#idle.push(worker);
    this.#next();
  }

  #next(): void {
    while (this.#idle.length > 0 && this.#queue.length > 0) {
      const worker = this.#idle.pop()!;
      const job = this.#queue.shift()!;
      this.#pending.set(worker, job);
      worker.postMessage(job.ms);
    }
  }
}

const burnThreads = Math.max(1, Number(process.env.BENCH_BURN_THREADS ?? 1));
let pool: BurnPool | undefined;

export const handlers = {
  short: async (ctx: TaskContext<{ cpuMs?: number }>) => {
    spin(ctx.payload?.cpuMs ?? 1);
  },
  burn: {
    run: async (ctx: TaskContext<{ ms?: number; sliceMs?: number }>) => {
      const ms = ctx.payload?.ms ?? 100;
      const sliceMs = ctx.payload?.sliceMs ?? 0;
      if (sliceMs > 0) {
        for (let left = ms; left > 0 && !ctx.signal.aborted; left -= sliceMs) {
          spin(Math.min(sliceMs, left));
          await yieldToLoop();
        }
        return;
      }
      pool ??= new BurnPool(burnThreads);
      await pool.run(ms);
    },
    // As many at once as there are threads to burn on (main-thread slices: the same bound).
    concurrency: burnThreads,
  },
};

export const services = {
  tick: {
    trigger: { interval: Number(process.env.BENCH_TICK_S ?? 0.05) },
    execute: async (ctx: ServiceContext) => {
      report({
        kind: 'execute',
        node,
        term: ctx.term,
        run: ctx.run,
        mono: process.hrtime.bigint().toString(),
        wall: Date.now(),
      });
    },
  },
};
