/**
 * Worker processes for the peer benchmarks, seen from the parent: spawn a
 * TypeScript entry under tsx with an IPC channel, wait for its messages, stop
 * it. Every live child is tracked and SIGKILLed if the parent exits early, so
 * a failed run leaves no process behind.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FromWorker, ToWorker } from './protocol.js';

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export const now = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const child of live) child.kill('SIGKILL');
      process.exit(130);
    });
  }
}

/** Number of worker processes still running (0 after a clean run). */
export function liveWorkers(): number {
  return live.size;
}

type Waiter = {
  match: (m: FromWorker) => boolean;
  resolve: (m: FromWorker) => void;
  reject: (e: Error) => void;
};

/** A child process running one peer's worker, driven over IPC. */
export class WorkerProcess {
  private readonly waiters = new Set<Waiter>();
  private readonly listeners = new Set<(m: FromWorker) => void>();
  private exitError: Error | undefined;
  readonly exited: Promise<void>;

  private constructor(
    readonly label: string,
    private readonly child: ChildProcess,
  ) {
    live.add(child);
    child.on('message', (raw) => {
      const m = raw as FromWorker;
      if (m.type === 'error') this.fail(new Error(`${label}: ${m.message}`));
      for (const l of this.listeners) l(m);
      for (const w of this.waiters) {
        if (w.match(m)) {
          this.waiters.delete(w);
          w.resolve(m);
        }
      }
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(child);
        this.fail(new Error(`${label} exited (code ${code}, signal ${signal})`));
        resolve();
      });
    });
  }

  /**
   * Starts `script` (a .ts file next to this one) under tsx; `config` reaches
   * the child as JSON in `BENCH_PEER_CONFIG`. BENCH_WORKER_EXEC_ARGV adds
   * node flags to every child (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
   */
  static spawn(label: string, script: URL, config: unknown): WorkerProcess {
    installExitHook();
    const child = fork(fileURLToPath(script), [], {
      execArgv: [
        ...(process.env.BENCH_WORKER_EXEC_ARGV?.split(' ').filter(Boolean) ?? []),
        '--import',
        import.meta.resolve('tsx'),
      ],
      env: { ...process.env, BENCH_PEER_CONFIG: JSON.stringify(config) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    return new WorkerProcess(label, child);
  }

  /** The child's process id (undefined if it failed to start). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  private fail(error: Error): void {
    this.exitError ??= error;
    for (const w of this.waiters) w.reject(error);
    this.waiters.clear();
  }

  /** Every message from now on, until the returned function is called. */
  onMessage(listener: (m: FromWorker) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The next message that matches, or a rejection on exit, error or timeout. */
  waitFor<T extends FromWorker['type']>(
    type: T,
    timeoutMs: number,
    match: (m: Extract<FromWorker, { type: T }>) => boolean = () => true,
  ): Promise<Extract<FromWorker, { type: T }>> {
    if (this.exitError) return Promise.reject(this.exitError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`${this.label}: no '${type}' message within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: Waiter = {
        match: (m) => m.type === type && match(m as Extract<FromWorker, { type: T }>),
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as Extract<FromWorker, { type: T }>);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.add(waiter);
    });
  }

  send(message: ToWorker): void {
    if (this.exitError) throw this.exitError;
    this.child.send(message);
  }

  /** Asks the worker to stop gracefully, then SIGKILLs it after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (!live.has(this.child)) return;
    this.exitError ??= new Error(`${this.label} stopped`);
    if (this.child.connected) this.child.send({ type: 'stop' } satisfies ToWorker);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Spawns `n` workers and waits until each has loaded its modules. */
export async function spawnWorkers(
  label: string,
  script: URL,
  n: number,
  config: (index: number) => unknown,
): Promise<WorkerProcess[]> {
  const workers = Array.from({ length: n }, (_, i) =>
    WorkerProcess.spawn(`${label}#${i}`, script, config(i)),
  );
  try {
    await Promise.all(workers.map((w) => w.waitFor('ready', 60_000)));
    return workers;
  } catch (e) {
    await stopAll(workers);
    throw e;
  }
}

export async function stopAll(workers: readonly WorkerProcess[]): Promise<void> {
  await Promise.all(workers.map((w) => w.stop()));
}
