import pg from 'pg';
import { useTestDatabase } from '@baton/testkit';
import { describe, expect, it } from 'vitest';
import { postgresCpuMs, postgresCpuSpentMs, processCpuMs } from '../src/peers/cpu.js';

const db = useTestDatabase();

describe.runIf(process.platform === 'linux')('CPU time from /proc', () => {
  it("reads a process's CPU time, which grows while it works", () => {
    const before = processCpuMs(process.pid)!;
    expect(before).toBeGreaterThan(0);
    // Work until Node itself counts 100 ms more CPU (however busy the machine is).
    const start = process.cpuUsage();
    const spent = () => {
      const { user, system } = process.cpuUsage(start);
      return (user + system) / 1000;
    };
    let x = 0;
    while (spent() < 100) x += Math.sqrt(x + 1);
    expect(x).toBeGreaterThan(0);
    // /proc counts in 10 ms ticks.
    expect(processCpuMs(process.pid)! - before).toBeGreaterThanOrEqual(80);
    expect(processCpuMs(2 ** 22 + 1)).toBeUndefined(); // above Linux's pid_max
  });

  it("reads the local PostgreSQL server's CPU time, which grows under queries", async () => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const before = postgresCpuMs()!;
      expect(before.size).toBeGreaterThan(0);
      await client.query('select count(*) from generate_series(1, 3000000)');
      expect(postgresCpuSpentMs(before, postgresCpuMs()!)).toBeGreaterThan(0);
    } finally {
      await client.end();
    }
  });

  it('counts only the growth of the processes still there: a session that ended does not make it negative', () => {
    const before = new Map([
      ['10', 500],
      ['11', 40],
    ]);
    // 11 ended; 12 started in between.
    const after = new Map([
      ['10', 530],
      ['12', 7],
    ]);
    expect(postgresCpuSpentMs(before, after)).toBe(37);
  });
});
