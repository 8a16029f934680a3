/** Claim rounds: what to claim within the free capacity, and claiming it. */
import type {
  BatchOutcome,
  ClaimRequest,
  ClaimedTask,
  HandlerRegistry,
  StorePort,
} from './ports.js';
import type { WorkerConfig } from './worker.types.js';
/** One claim call of a claim round. */
export interface ClaimCall {
  readonly types: readonly string[];
  readonly limit: number;
}

/** A claim round: at most `limit` tasks in all, over one or more calls. */
export interface ClaimPlan {
  readonly limit: number;
  readonly calls: readonly ClaimCall[];
}

/**
 * Plans a claim round within the free capacity: one call per type whose own
 * limit binds (so no type goes over it), then one call for the other types.
 */
export function planClaims(
  config: Pick<WorkerConfig, 'concurrency' | 'claimBatchSize'>,
  handlers: HandlerRegistry,
  runs: readonly { readonly type: string }[],
): ClaimPlan {
  const limit = Math.min(config.concurrency - runs.length, config.claimBatchSize);
  if (limit <= 0) return { limit: 0, calls: [] };
  const running = new Map<string, number>();
  for (const run of runs) running.set(run.type, (running.get(run.type) ?? 0) + 1);
  const calls: ClaimCall[] = [];
  const open: string[] = [];
  for (const type of handlers.types()) {
    const cap = handlers.lookup(type)?.concurrency;
    const free = cap === undefined ? limit : cap - (running.get(type) ?? 0);
    if (free >= limit) open.push(type);
    else if (free > 0) calls.push({ types: [type], limit: free });
  }
  if (open.length > 0) calls.push({ types: open, limit });
  return { limit, calls };
}

export interface ClaimRoundInput {
  readonly store: StorePort;
  readonly config: WorkerConfig;
  readonly plan: ClaimPlan;
}

/**
 * A claim that also starts the runs (pending -> claimed -> running in one
 * statement). A store that honours `start` returns the tasks with
 * `status: 'running'` (the store's `Task` rows do); the tasks of a store that
 * ignores it come back claimed and are marked running by a second call.
 */
type StartingClaimRequest = ClaimRequest & { readonly start: true };
type MaybeStartedTask = ClaimedTask & { readonly status?: string };

export interface ClaimRoundOutput {
  /** The tasks claimed and marked running: to run. */
  readonly tasks: readonly ClaimedTask[];
  /** Whether the round claimed all it asked for (a backlog is likely). */
  readonly full: boolean;
  /** Claimed, but refused by `markRunning` as stale. */
  readonly stale: number;
  /**
   * A call of the round failed after earlier ones had claimed tasks: those
   * are still returned (they are leased to this node and must run), and the
   * error is reported here instead of thrown.
   */
  readonly error?: unknown;
}

/**
 * Claims per the plan (never more than the round's limit in total), each
 * call starting its tasks in the same statement; tasks that came back only
 * claimed are marked running with one more call.
 */
export async function claimRound({
  store,
  config,
  plan,
}: ClaimRoundInput): Promise<ClaimRoundOutput> {
  let remaining = plan.limit;
  let asked = 0;
  /** A call that failed after earlier ones claimed tasks: reported with them. */
  let failed: { error: unknown } | undefined;
  const claimed: MaybeStartedTask[] = [];
  for (const call of plan.calls) {
    const limit = Math.min(call.limit, remaining);
    if (limit <= 0) break;
    const request: StartingClaimRequest = {
      owner: config.nodeId,
      queue: config.queue,
      types: call.types,
      limit,
      leaseMs: config.leaseMs,
      start: true,
    };
    let got: readonly ClaimedTask[];
    try {
      got = await store.claim(request);
    } catch (error) {
      // Tasks of earlier calls are committed as this node's: run them, not strand them.
      if (claimed.length === 0) throw error;
      failed = { error };
      break;
    }
    for (const t of got) claimed.push(t);
    remaining -= got.length;
    asked += limit;
  }
  const full = failed === undefined && asked > 0 && claimed.length >= asked;
  if (claimed.length === 0) return { tasks: [], full, stale: 0 };
  const started = claimed.filter((t) => t.status === 'running');
  if (started.length === claimed.length) return { tasks: claimed, full, stale: 0, ...failed };
  const toStart = claimed.filter((t) => t.status !== 'running');
  let outcomes: readonly BatchOutcome[];
  try {
    outcomes = await store.markRunning(toStart);
  } catch (error) {
    // They cannot run without `running`; give them back uncharged (best effort: else their lease expires).
    await store.release(toStart, config.nodeId).catch(() => 0);
    if (started.length === 0) throw error;
    return { tasks: started, full, stale: 0, ...failed };
  }
  const tasks = [...started, ...toStart.filter((_, i) => outcomes[i]?.ok === true)];
  return { tasks, full, stale: claimed.length - tasks.length, ...failed };
}
