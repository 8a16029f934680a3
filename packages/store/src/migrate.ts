import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Pool, PoolClient } from 'pg';
import { MigrationError } from './errors.js';
import { quoteSchema } from './schema.js';

export interface Migration {
  readonly id: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * Where the `.sql` files are: beside the package's source (`../migrations/`),
 * or beside a bundle that inlined this module (`./migrations/`, which the
 * node's build copies there).
 */
function findMigrationsDir(): string {
  const candidates = ['../migrations/', './migrations/'].map((p) =>
    fileURLToPath(new URL(p, import.meta.url)),
  );
  const found = candidates.find((dir) => existsSync(`${dir}000001.sql`));
  if (!found) {
    throw new MigrationError(`no migrations found in ${candidates.join(' or ')}`, { candidates });
  }
  return found;
}

let cached: readonly Migration[] | undefined;

/** The numbered `.sql` migrations shipped with the store, in order. */
export function loadMigrations(): readonly Migration[] {
  if (cached) return cached;
  const migrationsDir = findMigrationsDir();
  cached = readdirSync(migrationsDir)
    .filter((f) => /^\d{6}\.sql$/.test(f))
    .sort()
    .map((f) => ({
      id: Number.parseInt(f.slice(0, 6), 10),
      name: f,
      sql: readFileSync(migrationsDir + f, 'utf8'),
    }));
  return cached;
}

export interface MigrateResult {
  /** Migrations applied by this call (empty when another node got there first). */
  readonly applied: readonly number[];
  readonly current: number;
}

/**
 * Brings `schema` up to date. Runs in one transaction under an advisory lock
 * keyed on the schema, so any number of nodes may call it at once: one
 * applies the migrations, the others wait and find nothing left to do.
 */
export async function migrate(pool: Pool, schema: string): Promise<MigrateResult> {
  const s = quoteSchema(schema);
  const migrations = loadMigrations();
  const client: PoolClient = await pool.connect();
  try {
    await client.query('begin');
    await client.query('select pg_advisory_xact_lock(hashtext($1))', [`baton.migrate:${schema}`]);
    await client.query(`create schema if not exists ${s}`);
    await client.query(
      `create table if not exists ${s}.migrations (
         id integer primary key,
         name text not null,
         applied_at timestamptz not null default now()
       )`,
    );
    const { rows } = await client.query<{ id: number }>(`select id from ${s}.migrations`);
    const done = new Set(rows.map((r) => r.id));
    const latestKnown = migrations.at(-1)?.id ?? 0;
    const newest = Math.max(0, ...done);
    if (newest > latestKnown) {
      throw new MigrationError(
        `schema ${schema} is at migration ${newest}, newer than this version of Baton knows (${latestKnown})`,
        { schema, current: newest, known: latestKnown },
      );
    }
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.id)) continue;
      try {
        await client.query(m.sql.replaceAll(':SCHEMA', s));
      } catch (error) {
        throw new MigrationError(
          `migration ${m.name} failed on schema ${schema}`,
          { schema, migration: m.name },
          error,
        );
      }
      await client.query(`insert into ${s}.migrations (id, name) values ($1, $2)`, [m.id, m.name]);
      applied.push(m.id);
    }
    await client.query('commit');
    return { applied, current: latestKnown };
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
