import { basename } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, expect, inject } from 'vitest';
import './provided.js';
import { withDatabase } from './postgres.js';

export interface TestDatabase {
  /** Connection string of this test file's own database (migrated, schema `baton`). */
  readonly url: string;
  readonly name: string;
  readonly schema: string;
  /** A pool on this database, ended (and checked for leaks) after the file. */
  pool(config?: pg.PoolConfig): pg.Pool;
}

function slug(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .slice(0, 30);
}

/**
 * Gives the calling test file a database of its own, cloned from the migrated
 * template. Dropped after the file when every test passed; kept for
 * inspection (and its name printed) when one failed. The file fails if a
 * connection to it is still open at the end (a leaked pool or client).
 */
export function useTestDatabase(): TestDatabase {
  const { adminUrl, template } = inject('batonPg');
  const file = basename(expect.getState().testPath ?? 'test');
  const name = `baton_t_${slug(file.replace(/\.test\.ts$/, ''))}_${Math.random().toString(36).slice(2, 8)}`;
  const url = withDatabase(adminUrl, name);
  const pools: pg.Pool[] = [];
  let failed = false;

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      for (let tries = 0; ; tries++) {
        try {
          await admin.query(`create database "${name}" template "${template}"`);
          break;
        } catch (error) {
          // 55006: the template is briefly in use by a concurrent clone.
          if ((error as { code?: string }).code !== '55006' || tries > 50) throw error;
          await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
        }
      }
    } finally {
      await admin.end();
    }
  });

  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      failed = true;
    });
  });

  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end()));
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      // A killed node process's backend lives on until its statement ends
      // (a lock wait, say): give the connections of processes that are gone
      // a few seconds to close. A pool left open in this process stays.
      const open = () =>
        admin.query<{ application_name: string; state: string; query: string }>(
          `select application_name, state, left(query, 60) as query
             from pg_stat_activity where datname = $1`,
          [name],
        );
      let { rows } = await open();
      for (let waited = 0; rows.length > 0 && waited < 3000; waited += 100) {
        await new Promise((r) => setTimeout(r, 100));
        ({ rows } = await open());
      }
      if (failed) {
        console.warn(`[baton tests] kept database ${name} of a failed test for inspection: ${url}`);
        return;
      }
      await admin.query(`drop database if exists "${name}" with (force)`);
      if (rows.length > 0) {
        throw new Error(
          `${file} leaked ${rows.length} connection(s) to its database (${rows
            .map((r) => `${r.application_name || 'unnamed'}:${r.state}: ${r.query}`)
            .join(', ')})`,
        );
      }
    } finally {
      await admin.end();
    }
  });

  return {
    url,
    name,
    schema: 'baton',
    pool(config = {}) {
      const p = new pg.Pool({ connectionString: url, ...config });
      pools.push(p);
      return p;
    },
  };
}
