import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { dockerAvailable, freePort } from './ports.js';

export interface NatsServerInfo {
  readonly url: string | null;
  readonly source: string;
  /** Why no server could be had (when `url` is null). */
  readonly reason?: string;
  stop(): Promise<void>;
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listens on 127.0.0.1:${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export function natsServerOnPath(): boolean {
  return spawnSync('nats-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Options of {@link OwnedNatsServer.start}. */
export interface OwnedNatsServerOptions {
  /** `false` starts it without JetStream (core NATS only). @default true */
  readonly jetstream?: boolean;
}

/** A nats-server process owned by the caller (fault tests stop and restart it). */
export class OwnedNatsServer {
  #child: ChildProcess | undefined;
  readonly #dir = mkdtempSync(join(tmpdir(), 'baton-nats-'));
  private constructor(
    readonly port: number,
    readonly jetstream: boolean,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  static async start(
    port?: number,
    options: OwnedNatsServerOptions = {},
  ): Promise<OwnedNatsServer> {
    const server = new OwnedNatsServer(port ?? (await freePort()), options.jetstream ?? true);
    await server.restart();
    return server;
  }

  /** Starts the server (again) on the same port and store directory. */
  async restart(): Promise<void> {
    if (this.#child) return;
    const child = spawn(
      'nats-server',
      [
        '-a',
        '127.0.0.1',
        '-p',
        String(this.port),
        ...(this.jetstream ? ['-js', '-sd', this.#dir] : []),
      ],
      {
        stdio: 'ignore',
      },
    );
    this.#child = child;
    child.once('exit', () => {
      if (this.#child === child) this.#child = undefined;
    });
    await waitForPort(this.port, 10_000);
  }

  /** Stops the server (SIGKILL by default: a crash, not a goodbye). */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/**
 * A NATS server for the test run: `NATS_URL` when set, a Testcontainers NATS
 * where Docker runs, a `nats-server` on PATH otherwise; or none, with the reason.
 */
export async function resolveNats(): Promise<NatsServerInfo> {
  const fromEnv = process.env.NATS_URL;
  if (fromEnv) return { url: fromEnv, source: 'NATS_URL', stop: async () => {} };
  if (await dockerAvailable()) {
    const { GenericContainer, Wait } = await import('testcontainers');
    const container = await new GenericContainer('nats:2.10-alpine')
      .withCommand(['-js'])
      .withExposedPorts(4222)
      .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
      .start();
    return {
      url: `nats://${container.getHost()}:${container.getMappedPort(4222)}`,
      source: 'testcontainers',
      stop: async () => {
        await container.stop();
      },
    };
  }
  if (natsServerOnPath()) {
    const server = await OwnedNatsServer.start();
    return {
      url: server.url,
      source: 'nats-server on PATH',
      stop: () => server[Symbol.asyncDispose](),
    };
  }
  return {
    url: null,
    source: 'none',
    reason: 'no NATS_URL, no Docker engine for Testcontainers, and no nats-server on PATH',
    stop: async () => {},
  };
}
