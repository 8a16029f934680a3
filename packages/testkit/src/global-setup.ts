import type { TestProject } from 'vitest/node';
import { resolveNats } from './nats.js';
import { ensureTemplate, resolvePostgres } from './postgres.js';
import './provided.js';

/**
 * Runs once per `vitest run`: finds (or starts) PostgreSQL and NATS, builds
 * the migrated template database, and hands their addresses to the tests.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const pg = await resolvePostgres();
  const template = await ensureTemplate(pg.adminUrl);
  const nats = await resolveNats();
  if (!nats.url && process.env.CI) {
    await pg.stop();
    throw new Error(`CI requires NATS, and none could be had: ${nats.reason ?? 'unknown'}`);
  }
  console.log(
    `[baton tests] PostgreSQL from ${pg.source}; NATS ${nats.url ? `from ${nats.source}` : `NOT AVAILABLE (${nats.reason})`}`,
  );
  project.provide('batonPg', { adminUrl: pg.adminUrl, template, source: pg.source });
  project.provide('batonNats', { url: nats.url, source: nats.source, reason: nats.reason ?? null });
  return async () => {
    await nats.stop();
    await pg.stop();
  };
}
