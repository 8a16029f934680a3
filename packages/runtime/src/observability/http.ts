/**
 * The node's HTTP endpoint on `node:http`: `GET /health`, `GET /ready`,
 * `GET /metrics`, and JSON routes added by the runtime (the dashboard API).
 * Everything else is a JSON 404; a method other than GET or HEAD is a 405.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { HttpListenError, ObservabilityConfigError } from './errors.js';
import { describeError, type HealthReport } from './health.js';

/** What a JSON route answers; `body` is serialised with `JSON.stringify`. */
export interface RouteResult {
  readonly status: number;
  readonly body: unknown;
}

/** A JSON route; a throw or rejection becomes a 500 with the error message. */
export type RouteHandler = (req: IncomingMessage, url: URL) => Promise<RouteResult>;

/** Options of {@link startHttpServer}. */
export interface HttpServerOptions {
  /**
   * Interface to listen on.
   * @default '0.0.0.0'
   */
  readonly host?: string;
  /** Port to listen on; 0 picks a free one (see {@link HttpServerHandle.port}). */
  readonly port: number;
  /** Builds the health report; `down` answers 503, `ok` and `degraded` 200. */
  readonly health: () => Promise<HealthReport>;
  /** True while the node accepts work (running, not draining). */
  readonly ready: () => boolean;
  /** The registry served on `/metrics`. */
  readonly registry: Registry;
  /**
   * Extra JSON routes by path, e.g. `/api/tasks`. A key ending in `/*` also
   * matches every path below it (`/api/tasks/*` matches `/api/tasks/42`);
   * exact keys win, then the longest prefix.
   */
  readonly routes?: Readonly<Record<string, RouteHandler>>;
}

/** A running server. */
export interface HttpServerHandle extends AsyncDisposable {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** Base URL, e.g. `http://127.0.0.1:39123`. */
  readonly url: string;
  /** Stops listening and closes every connection, idle keep-alive and in-flight ones (cut off). Idempotent. */
  close(): Promise<void>;
}

const BUILT_IN = new Set(['/health', '/ready', '/metrics']);

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body));
}

function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

/** Parses the request target; `//x` stays a path (not a host), absolute forms are accepted. */
function parseRequestUrl(target: string | undefined): URL | undefined {
  const raw = target ?? '/';
  try {
    return raw.startsWith('/') ? new URL(`http://localhost${raw}`) : new URL(raw);
  } catch {
    return undefined;
  }
}

function compileRoutes(
  routes: Readonly<Record<string, RouteHandler>>,
): (path: string) => RouteHandler | undefined {
  const exact = new Map<string, RouteHandler>();
  const prefixes: [string, RouteHandler][] = [];
  for (const [key, handler] of Object.entries(routes)) {
    if (!key.startsWith('/')) {
      throw new ObservabilityConfigError(`http.routes.${key}`, key, 'a route must start with /');
    }
    const base = key.endsWith('/*') ? key.slice(0, -2) : key;
    if (BUILT_IN.has(base)) {
      throw new ObservabilityConfigError(
        `http.routes.${key}`,
        key,
        'conflicts with a built-in route',
      );
    }
    if (key.endsWith('/*')) prefixes.push([`${base}/`, handler]);
    else exact.set(key, handler);
  }
  prefixes.sort((a, b) => b[0].length - a[0].length);
  return (path) => exact.get(path) ?? prefixes.find(([prefix]) => path.startsWith(prefix))?.[1];
}

/**
 * Starts the HTTP server and resolves once it listens.
 *
 * @throws {ObservabilityConfigError} for a bad port or route key.
 * @throws {HttpListenError} when the port cannot be bound.
 * @example
 * const http = await startHttpServer({
 *   port: 9090, health, ready: () => node.lifecycle === 'running', registry: metrics.registry,
 * });
 * // ...
 * await http.close();
 */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServerHandle> {
  const host = options.host ?? '0.0.0.0';
  const { port, registry } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new ObservabilityConfigError('http.port', port, 'must be an integer from 0 to 65535');
  }
  const route = compileRoutes(options.routes ?? {});

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = parseRequestUrl(req.url);
    if (url === undefined) {
      sendJson(res, 400, errorBody('BAD_REQUEST', 'malformed request target'));
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendJson(res, 405, errorBody('METHOD_NOT_ALLOWED', `${req.method ?? '?'} is not allowed`));
      return;
    }
    switch (url.pathname) {
      case '/health': {
        let report: HealthReport;
        try {
          report = await options.health();
        } catch (error) {
          sendJson(res, 503, { status: 'down', error: describeError(error) });
          return;
        }
        sendJson(res, report.status === 'down' ? 503 : 200, report);
        return;
      }
      case '/ready': {
        const ready = options.ready();
        sendJson(res, ready ? 200 : 503, { ready });
        return;
      }
      case '/metrics': {
        send(res, 200, registry.contentType, await registry.metrics());
        return;
      }
    }
    const handler = route(url.pathname);
    if (handler === undefined) {
      sendJson(res, 404, errorBody('NOT_FOUND', `no route for ${url.pathname}`));
      return;
    }
    const result = await handler(req, url);
    sendJson(res, result.status, result.body);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJson(res, 500, errorBody('INTERNAL', describeError(error)));
    });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: unknown) => reject(new HttpListenError(host, port, error));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // After listening, a server error (rare: e.g. EMFILE on accept) must not crash the node.
  server.on('error', () => undefined);

  const bound = (server.address() as AddressInfo).port;
  const urlHost =
    host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closing;
  };
  return {
    port: bound,
    url: `http://${urlHost}:${bound}`,
    close,
    [Symbol.asyncDispose]: close,
  };
}
