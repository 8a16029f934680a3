/**
 * The IPC protocol between the benchmark (parent) and a peer's worker
 * process (child), and the child's side of it.
 *
 * 1. child loads its modules, sends `ready`;
 * 2. parent sends `go`: the child starts its peer's worker, sends `running`;
 * 3. in throughput mode the child sends `started` at its first handler start;
 *    in latency mode it sends `job` at every handler start;
 * 4. parent sends `stop`: the child stops its worker and exits 0.
 * Times are `performance.timeOrigin + performance.now()` (ms, shared clock).
 */
export type ToWorker = { type: 'go' } | { type: 'stop' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'running' }
  | { type: 'started'; at: number }
  | { type: 'job'; id: string; at: number }
  | { type: 'error'; message: string };

export type WorkerMode = 'throughput' | 'latency';

/** What a worker entry needs to start its peer. */
export interface WorkerHooks {
  /** Starts the peer's worker; returns how to stop it. */
  start(): Promise<() => Promise<void>>;
}

function send(message: FromWorker): void {
  process.send?.(message);
}

/** The child's config, as passed by `WorkerProcess.spawn`. */
export function workerConfig<T>(): T {
  const raw = process.env.BENCH_PEER_CONFIG;
  if (!raw) throw new Error('BENCH_PEER_CONFIG is not set (run through the peers harness)');
  return JSON.parse(raw) as T;
}

/** Reports a handler start: once per process in throughput mode, per job in latency mode. */
export function handlerReporter(mode: WorkerMode): (id: string) => void {
  let reported = false;
  // The clock is read only when a report is sent: in a burn-down this runs
  // once per task in the measured process, for every peer alike.
  const at = () => performance.timeOrigin + performance.now();
  return (id) => {
    if (mode === 'latency') send({ type: 'job', id, at: at() });
    else if (!reported) {
      reported = true;
      send({ type: 'started', at: at() });
    }
  };
}

/** Runs the child's side of the protocol; exits when the parent goes away. */
export function serveWorker(hooks: WorkerHooks): void {
  if (!process.send) throw new Error('a peer worker must be started with an IPC channel');
  let stop: (() => Promise<void>) | undefined;
  const fail = (e: unknown) => {
    send({ type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 100).unref();
  };
  process.on('disconnect', () => process.exit(1));
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  process.on('message', (raw) => {
    const m = raw as ToWorker;
    if (m.type === 'go') {
      hooks.start().then((s) => {
        stop = s;
        send({ type: 'running' });
      }, fail);
    } else if (m.type === 'stop') {
      (stop ? stop() : Promise.resolve()).then(
        () => process.exit(0),
        (e: unknown) => {
          console.error(e);
          process.exit(1);
        },
      );
    }
  });
  send({ type: 'ready' });
}
