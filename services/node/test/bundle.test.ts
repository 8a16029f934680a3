import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describeNats, useTestDatabase } from '@baton/testkit';
import { expect, it } from 'vitest';

const nodeDir = fileURLToPath(new URL('../', import.meta.url));
const root = fileURLToPath(new URL('../../../', import.meta.url));
const db = useTestDatabase();

describeNats('the bundled node (what the image runs)', (natsUrl) => {
  it('builds, starts with plain node and a JavaScript handler module, serves /health and /metrics, exits 0 on SIGTERM', async () => {
    const build = spawnSync('pnpm', ['run', 'build'], { cwd: nodeDir, encoding: 'utf8' });
    expect(build.status, build.stderr).toBe(0);
    const child = spawn(process.execPath, [`${nodeDir}dist/main.mjs`], {
      env: {
        PATH: process.env.PATH ?? '',
        DATABASE_URL: db.url,
        NATS_URL: natsUrl,
        BATON_GROUP: `b${Math.random().toString(36).slice(2, 8)}`,
        BATON_NODE_ID: 'bundle-1',
        BATON_HANDLERS: `${root}examples/handlers/index.mjs`,
        BATON_HTTP_HOST: '127.0.0.1',
        BATON_HTTP_PORT: '0',
        BATON_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    try {
      const ready = await new Promise<{ http: string }>((resolve, reject) => {
        child.on(
          'message',
          (m: { type?: string; http?: string }) =>
            m.type === 'baton.ready' && resolve({ http: m.http! }),
        );
        void exited.then(() => reject(new Error(`exited before ready:\n${output}`)));
      });
      const health = await fetch(`${ready.http}/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({
        checks: { database: { ok: true }, bus: { ok: true } },
      });
      const metrics = await (await fetch(`${ready.http}/metrics`)).text();
      expect(metrics).toContain('baton_node_info{node="bundle-1"');
      expect(output).toContain('"types":["echo","report.build"]');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
