import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ENV_VARS } from '../src/env.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const read = (path: string) => readFileSync(root + path, 'utf8');

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  depends_on?: unknown;
}

const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, ComposeService>;
};
const documented = new Set(ENV_VARS.map((v) => v.name));
const nodes = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);

describe('docker-compose.yml', () => {
  it('runs PostgreSQL, NATS with JetStream, three nodes, Prometheus and Grafana', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      ['grafana', 'nats', 'node1', 'node2', 'node3', 'postgres', 'prometheus'].sort(),
    );
    expect(compose.services.postgres!.image).toMatch(/^postgres:/);
    expect(compose.services.nats!.image).toMatch(/^nats:/);
    expect(compose.services.nats!.command).toContain('-js');
    expect(nodes).toHaveLength(3);
  });

  it("sets only the node's documented environment variables, with the required ones, and unique node ids", () => {
    const ids = new Set<string>();
    for (const [name, svc] of nodes) {
      const env = svc.environment ?? {};
      for (const key of Object.keys(env))
        expect(documented.has(key), `${name}: ${key} is not documented`).toBe(true);
      expect(env.DATABASE_URL, name).toMatch(/^postgres:\/\/[^@]+@postgres:5432\//);
      expect(env.NATS_URL, name).toBe('nats://nats:4222');
      expect(env.BATON_NODE_ID, name).toBeTruthy();
      ids.add(env.BATON_NODE_ID!);
      expect(
        svc.ports?.some((p) => p.endsWith(`:${env.BATON_HTTP_PORT}`)),
        `${name} publishes its HTTP port`,
      ).toBe(true);
    }
    expect(ids.size).toBe(3);
  });

  it('the database credentials of the nodes match the PostgreSQL service', () => {
    const pg = compose.services.postgres!.environment!;
    for (const [, svc] of nodes) {
      const url = new URL(svc.environment!.DATABASE_URL!);
      expect([url.username, url.password, url.pathname.slice(1)]).toEqual([
        pg.POSTGRES_USER,
        pg.POSTGRES_PASSWORD,
        pg.POSTGRES_DB,
      ]);
    }
  });

  it('Prometheus scrapes every node on its metrics port', () => {
    const prom = parse(read('deploy/prometheus/prometheus.yml')) as {
      scrape_configs: { static_configs: { targets: string[] }[] }[];
    };
    const targets = prom.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));
    for (const [name, svc] of nodes)
      expect(targets).toContain(`${name}:${svc.environment!.BATON_HTTP_PORT}`);
  });

  it('the Dockerfile is multi-stage, runs as a non-root user and starts the bundled node', () => {
    const dockerfile = read('Dockerfile');
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/pnpm --filter @baton\/node build/);
    expect(dockerfile).toMatch(/ENTRYPOINT \["node", "\/app\/main\.mjs"\]/);
    // The example handlers the compose file names are in the image.
    expect(dockerfile).toContain('examples/handlers');
    for (const [, svc] of nodes)
      expect(svc.environment!.BATON_HANDLERS).toBe('/app/handlers/index.mjs');
  });
});
