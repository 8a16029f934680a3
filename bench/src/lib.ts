import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { resolvePostgres, withDatabase, type PostgresServer } from '@baton/testkit';
import { migrate } from '@baton/store';

export const resultsDir = fileURLToPath(new URL('../results/', import.meta.url));

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;

/** A fresh, migrated database for one benchmark, dropped by `drop()`. */
export interface BenchDatabase {
  readonly url: string;
  readonly server: PostgresServer;
  drop(): Promise<void>;
}

/** Creates the database; `migrate: false` skips Baton's schema (the peers bring their own). */
export async function benchDatabase(
  prefix: string,
  options: { migrate?: boolean } = {},
): Promise<BenchDatabase> {
  const server = await resolvePostgres();
  const name = `baton_bench_${prefix}_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  await admin.query(`create database "${name}"`);
  const url = withDatabase(server.adminUrl, name);
  if (options.migrate ?? true) {
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    pool.on('error', () => {});
    await migrate(pool, 'baton');
    await pool.end();
  }
  return {
    url,
    server,
    async drop() {
      await admin.query(`drop database if exists "${name}" with (force)`);
      await admin.end();
      await server.stop();
    },
  };
}

export function machine(): Record<string, unknown> {
  return { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version };
}

export function writeResults(name: string, data: unknown): string {
  mkdirSync(resultsDir, { recursive: true });
  const file = `${resultsDir}${name}.json`;
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return file;
}

/** Prints rows as an aligned text table. */
export function printTable(rows: readonly Record<string, string | number>[]): void {
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]!);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(width[i]!)).join('  ');
  console.log(line(cols));
  for (const r of rows) console.log(line(cols.map((c) => String(r[c]))));
}
