import { storableJson } from './json.js';
import type { Pool } from 'pg';
import { nodeSql } from './nodes.sql.js';
import type { Json } from './types.js';

/** A member of a group as PostgreSQL sees it. */
export interface NodeRow {
  readonly nodeId: string;
  /** Milliseconds since its last heartbeat, on PostgreSQL's clock. */
  readonly heartbeatAgeMs: number;
  readonly startedAt: Date;
  readonly info: Json | null;
}

/** A node's row as it was before a heartbeat replaced it. */
export interface PreviousBeat {
  /** The `instance` in the row's info: which process wrote it, if it said. */
  readonly instance: string | null;
  /** Milliseconds between that heartbeat and this one, on PostgreSQL's clock. */
  readonly ageMs: number;
}

/** Node heartbeats in `health_check` (seed 000), one row per node and group. */
export class NodeStore {
  readonly #pool: Pool;
  readonly #sql: ReturnType<typeof nodeSql>;
  readonly #beatName: string;

  constructor(pool: Pool, quotedSchema: string) {
    this.#pool = pool;
    this.#sql = nodeSql(quotedSchema);
    // A prepared statement's name is per connection: stores of two schemas may share a pool.
    this.#beatName = `baton.${quotedSchema}.nodes.beat`;
  }

  /**
   * Records a heartbeat of `nodeId` at PostgreSQL's `now()`; returns the row
   * it replaced (null on the node's first beat).
   */
  async beat(nodeId: string, groupId: string, info: Json = null): Promise<PreviousBeat | null> {
    const { rows } = await this.#pool.query<{ instance: string | null; age_ms: string }>({
      name: this.#beatName,
      text: this.#sql.beat,
      values: [nodeId, groupId, storableJson(info)],
    });
    const prev = rows[0];
    return prev ? { instance: prev.instance, ageMs: Number(prev.age_ms) } : null;
  }

  /**
   * The last heartbeat of `nodeId` (its time, its age, and the writer's
   * `instance`), or null when the node has no row.
   */
  async member(
    nodeId: string,
    groupId: string,
  ): Promise<{ instance: string | null; lastHeartbeat: Date; ageMs: number } | null> {
    const { rows } = await this.#pool.query<{
      instance: string | null;
      last_heartbeat: Date;
      age_ms: string;
    }>(this.#sql.member, [nodeId, groupId]);
    const r = rows[0];
    return r
      ? { instance: r.instance, lastHeartbeat: r.last_heartbeat, ageMs: Number(r.age_ms) }
      : null;
  }

  /** The group's nodes with the age of their last heartbeat. */
  async members(groupId: string): Promise<NodeRow[]> {
    const { rows } = await this.#pool.query<{
      task_id: string;
      info: Json | null;
      started_at: Date;
      age_ms: string;
    }>(this.#sql.members, [groupId]);
    return rows.map((r) => ({
      nodeId: r.task_id,
      heartbeatAgeMs: Number(r.age_ms),
      startedAt: r.started_at,
      info: r.info,
    }));
  }

  /** A node leaving on purpose removes its row. */
  async leave(nodeId: string, groupId: string): Promise<void> {
    await this.#pool.query(this.#sql.leave, [nodeId, groupId]);
  }

  /** Removes rows of nodes silent for longer than `olderThanMs`. */
  async prune(groupId: string, olderThanMs: number): Promise<number> {
    const { rowCount } = await this.#pool.query(this.#sql.prune, [groupId, olderThanMs]);
    return rowCount ?? 0;
  }
}
