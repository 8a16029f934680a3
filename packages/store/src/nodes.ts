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

  /** Records a heartbeat of `nodeId` at PostgreSQL's `now()`. */
  async beat(nodeId: string, groupId: string, info: Json = null): Promise<void> {
    await this.#pool.query({
      name: this.#beatName,
      text: this.#sql.beat,
      values: [nodeId, groupId, storableJson(info)],
    });
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
