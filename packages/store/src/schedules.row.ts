/**
 * Schedules: the `schedules` row as PostgreSQL returns it, and its mapping
 * to and from a `Schedule`.
 */
import type {
  ErrorPolicy,
  RetryConfig,
  Schedule,
  ScheduleKind,
  ScheduleTrigger,
  WaitingPolicy,
} from './schedules.types.js';
import type { Json } from './types.js';

export interface ScheduleRow {
  id: string;
  group_id: string;
  type: string;
  queue: string;
  payload: Json;
  kind: ScheduleKind;
  spec: Record<string, Json>;
  next_due_at: Date | null;
  fired_count: number;
  skipped_count: number;
  paused: boolean;
  anchor_at: Date;
  priority: number;
  max_attempts: number;
  retry: RetryConfig | null;
  error_policy: ErrorPolicy;
  waiting_policy: WaitingPolicy;
  end_reason: 'completed' | 'terminated' | null;
  ended_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export function specJson(t: ScheduleTrigger): string {
  return JSON.stringify(t);
}

function triggerOf(kind: ScheduleKind, spec: Record<string, Json>): ScheduleTrigger {
  const d = (v: Json | undefined) => (typeof v === 'string' ? new Date(v) : null);
  const str = (v: Json | undefined) => (typeof v === 'string' ? v : '');
  if (kind === 'once') return { kind, at: d(spec['at'])! };
  const common = {
    maxCount: Number(spec['maxCount']),
    startTime: d(spec['startTime']),
    endTime: d(spec['endTime']),
  };
  if (kind === 'interval') return { kind, intervalMs: Number(spec['intervalMs']), ...common };
  return {
    kind,
    expression: str(spec['expression']),
    timeZone: str(spec['timeZone']),
    ...common,
  };
}

export function toSchedule(r: ScheduleRow): Schedule {
  return {
    id: r.id,
    groupId: r.group_id,
    task: {
      type: r.type,
      queue: r.queue,
      payload: r.payload,
      priority: r.priority,
      maxAttempts: r.max_attempts,
    },
    trigger: triggerOf(r.kind, r.spec),
    retryConfig: r.retry,
    taskPolicy: { errorPolicy: r.error_policy, waitingPolicy: r.waiting_policy },
    anchorAt: r.anchor_at,
    nextDueAt: r.next_due_at,
    firedCount: r.fired_count,
    skippedCount: r.skipped_count,
    paused: r.paused,
    state: r.next_due_at === null ? 'finished' : r.paused ? 'paused' : 'active',
    endReason: r.end_reason,
    endedAt: r.ended_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}
