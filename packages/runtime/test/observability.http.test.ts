import { afterEach, describe, expect, it } from 'vitest';
import { Agent, request } from 'node:http';
import { Registry } from 'prom-client';
import {
  startHttpServer,
  type HttpServerHandle,
  type HttpServerOptions,
} from '../src/observability/http.js';
import { HttpListenError, ObservabilityConfigError } from '../src/observability/errors.js';
import type { HealthReport } from '../src/observability/health.js';

const okReport: HealthReport = {
  status: 'ok',
  checks: {
    database: { ok: true, latencyMs: 1 },
    bus: { ok: true, kind: 'nats', connected: true },
    worker: { ok: true, lastProgressAgoMs: 0, idle: true },
  },
  nodeId: 'n1',
  uptimeS: 1,
};

/** Sends one request over a given agent; resolves with status, headers and body. */
function send(
  url: string,
  method: string,
  agent?: Agent,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('startHttpServer', () => {
  const servers: HttpServerHandle[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  const start = async (options: Partial<HttpServerOptions> = {}): Promise<HttpServerHandle> => {
    const server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      health: () => Promise.resolve(okReport),
      ready: () => true,
      registry: new Registry(),
      ...options,
    });
    servers.push(server);
    return server;
  };

  it('listens on an ephemeral port and reports its URL', async () => {
    const server = await start();
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    const res = await fetch(`${server.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(okReport);
  });

  it('flips /ready between 200 and 503 as the node says', async () => {
    let ready = false;
    const server = await start({ ready: () => ready });
    const before = await fetch(`${server.url}/ready`);
    expect(before.status).toBe(503);
    expect(await before.json()).toEqual({ ready: false });
    ready = true;
    const after = await fetch(`${server.url}/ready`);
    expect(after.status).toBe(200);
    expect(await after.json()).toEqual({ ready: true });
  });

  it('answers an unknown route with a JSON 404', async () => {
    const server = await start();
    const res = await fetch(`${server.url}/nope?x=1`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({
      error: { code: 'NOT_FOUND', message: 'no route for /nope' },
    });
  });

  it('treats a path starting with // as a path, not a host', async () => {
    const server = await start();
    const res = await send(`${server.url}//health`, 'GET');
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body)).toEqual({
      error: { code: 'NOT_FOUND', message: 'no route for //health' },
    });
  });

  it('answers POST (and other non-GET methods) with 405 and an Allow header', async () => {
    const server = await start();
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const res = await fetch(`${server.url}/health`, { method });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, HEAD');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
        'METHOD_NOT_ALLOWED',
      );
    }
  });

  it('answers HEAD like GET without a body', async () => {
    const server = await start();
    const res = await send(`${server.url}/ready`, 'HEAD');
    expect(res.status).toBe(200);
    expect(res.body).toBe('');
    expect(Number(res.headers['content-length'])).toBeGreaterThan(0);
  });

  it('answers 503 when building the health report throws', async () => {
    const server = await start({ health: () => Promise.reject(new Error('boom')) });
    const res = await fetch(`${server.url}/health`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'down', error: 'boom' });
  });

  it('serves extra JSON routes, exact and by prefix, and turns a throw into a 500', async () => {
    const server = await start({
      routes: {
        '/api/counts': async (_req, url) => ({
          status: 200,
          body: { pending: 3, queue: url.searchParams.get('queue') },
        }),
        '/api/tasks/*': async (_req, url) => ({
          status: 200,
          body: { id: url.pathname.slice('/api/tasks/'.length) },
        }),
        '/api/broken': () => Promise.reject(new Error('store unavailable')),
      },
    });
    expect(await (await fetch(`${server.url}/api/counts?queue=mail`)).json()).toEqual({
      pending: 3,
      queue: 'mail',
    });
    expect(await (await fetch(`${server.url}/api/tasks/42`)).json()).toEqual({ id: '42' });
    expect((await fetch(`${server.url}/api/tasks`)).status).toBe(404);
    const broken = await fetch(`${server.url}/api/broken`);
    expect(broken.status).toBe(500);
    expect(await broken.json()).toEqual({
      error: { code: 'INTERNAL', message: 'store unavailable' },
    });
  });

  it('refuses a route that shadows a built-in one, or a bad port, naming the option', async () => {
    const route = async () => ({ status: 200, body: {} });
    await expect(start({ routes: { '/metrics': route } })).rejects.toThrow(
      /http\.routes\.\/metrics/,
    );
    await expect(start({ port: 70_000 })).rejects.toBeInstanceOf(ObservabilityConfigError);
  });

  it('fails with HttpListenError when the port is taken', async () => {
    const first = await start();
    const error: unknown = await start({ port: first.port }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpListenError);
    expect((error as HttpListenError).code).toBe('HTTP_LISTEN_FAILED');
    expect((error as HttpListenError).message).toContain(`127.0.0.1:${first.port}`);
  });

  it('closes cleanly with keep-alive and in-flight connections open, and is idempotent', async () => {
    let entered!: () => void;
    const inFlight = new Promise<void>((resolve) => (entered = resolve));
    const server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      health: () => Promise.resolve(okReport),
      ready: () => true,
      registry: new Registry(),
      // A dashboard request that never finishes (e.g. a stuck query).
      routes: { '/api/hang': () => (entered(), new Promise(() => undefined)) },
    });
    const agent = new Agent({ keepAlive: true });
    try {
      const res = await send(`${server.url}/ready`, 'GET', agent);
      expect(res.status).toBe(200);
      expect(res.headers.connection).toBe('keep-alive');
      const hanging = send(`${server.url}/api/hang`, 'GET').catch((e: unknown) => e);
      await inFlight;
      const hung = new Promise<never>((_, reject) => {
        setTimeout(() => reject(new Error('close() did not finish within 2 s')), 2_000).unref();
      });
      await Promise.race([server.close(), hung]);
      await server.close();
      expect(await hanging).toBeInstanceOf(Error); // its socket was closed
      await expect(send(`${server.url}/ready`, 'GET')).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      agent.destroy();
    }
  });

  it('supports await using', async () => {
    let url: string;
    {
      await using server = await startHttpServer({
        host: '127.0.0.1',
        port: 0,
        health: () => Promise.resolve(okReport),
        ready: () => true,
        registry: new Registry(),
      });
      url = server.url;
      expect((await fetch(`${url}/ready`)).status).toBe(200);
    }
    await expect(send(`${url}/ready`, 'GET')).rejects.toThrow(/ECONNREFUSED/);
  });
});
