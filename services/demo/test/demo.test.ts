import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import type { Summary } from '../src/summary.js';

const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const tsx = createRequire(import.meta.url).resolve('tsx');

it('pnpm demo (short) runs to completion on embedded PostgreSQL and the PostgreSQL bus, every task accounted for, one bearer per term', async () => {
  const env = { ...process.env };
  delete env.DATABASE_URL;
  delete env.NATS_URL;
  const child = spawn(process.execPath, ['--import', tsx, main, '--tasks', '300', '--json'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  expect(code, out).toBe(0);
  expect(out).toContain('embedded PostgreSQL');
  expect(out).toContain('PostgreSQL LISTEN/NOTIFY');
  const line = out.split('\n').find((l) => l.startsWith('SUMMARY '));
  const summary = JSON.parse(line!.slice('SUMMARY '.length)) as Summary;
  expect(summary.submitted).toBe(300);
  expect(summary.completed + summary.deadLettered).toBe(300);
  expect(summary.deadLettered).toBeGreaterThan(0);
  expect(summary.perNode.reduce((s, p) => s + p.completed, 0)).toBe(summary.completed);
  summary.terms.forEach((t, i) => expect(t.term).toBe(i + 1));
  for (const t of summary.terms) expect(t.runNodes.every((n) => n === t.holder)).toBe(true);
  expect(summary.failover.newBearer).not.toBeNull();
  expect(summary.failover.newBearer).not.toBe(summary.failover.killed);
  expect(summary.scheduleTicks).toBeGreaterThan(0);
  expect(summary.checks.every((c) => c.ok)).toBe(true);
}, 240_000);
