import pg from 'pg';
import { useTestDatabase } from '@baton/testkit';
import { describe, expect, it } from 'vitest';
import { postgresCpuMs, processCpuMs } from '../src/peers/cpu.js';

const db = useTestDatabase();

describe.runIf(process.platform === 'linux')('CPU time from /proc', () => {
  it("reads a process's CPU time, which grows while it works", () => {
    const before = processCpuMs(process.pid)!;
    expect(before).toBeGreaterThan(0);
    const until = performance.now() + 200;
    let x = 0;
    while (performance.now() < until) x += Math.sqrt(x + 1);
    expect(x).toBeGreaterThan(0);
    expect(processCpuMs(process.pid)! - before).toBeGreaterThanOrEqual(100);
    expect(processCpuMs(2 ** 22 + 1)).toBeUndefined(); // above Linux's pid_max
  });

  it("reads the local PostgreSQL server's CPU time, which grows under queries", async () => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const before = postgresCpuMs()!;
      expect(before).toBeGreaterThan(0);
      await client.query('select count(*) from generate_series(1, 3000000)');
      expect(postgresCpuMs()! - before).toBeGreaterThan(0);
    } finally {
      await client.end();
    }
  });
});
