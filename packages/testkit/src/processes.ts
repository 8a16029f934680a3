import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach } from 'vitest';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const tsxLoader = createRequire(import.meta.url).resolve('tsx');
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const nodeMain = fileURLToPath(new URL('../../../services/node/src/main.ts', import.meta.url));

export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const live = new Set<NodeProcess>();
/** Every process started since the last killAll, exited ones included. */
const started = new Set<NodeProcess>();

/**
 * A real Baton node process (`services/node`), configured by environment
 * variables, that a test can kill, pause, resume and wait for.
 */
export class NodeProcess {
  readonly #child: ChildProcess;
  readonly exited: Promise<ProcessExit>;
  readonly ready: Promise<{ nodeId: string; http: string | null }>;
  /** Lines the process wrote (pino JSON on stdout, anything on stderr). */
  readonly output: string[] = [];
  #exit: ProcessExit | undefined;

  private constructor(
    readonly name: string,
    env: Record<string, string>,
  ) {
    this.#child = spawn(process.execPath, ['--import', tsxLoader, nodeMain], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    live.add(this);
    started.add(this);
    const collect = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line) this.output.push(line);
      if (this.output.length > 5000) this.output.splice(0, this.output.length - 5000);
    };
    this.#child.stdout!.on('data', collect);
    this.#child.stderr!.on('data', collect);
    this.exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        live.delete(this);
        resolve(this.#exit);
      });
    });
    this.ready = new Promise((resolve, reject) => {
      this.#child.on('message', (m: { type?: string; nodeId?: string; http?: string | null }) => {
        if (m.type === 'baton.ready') resolve({ nodeId: m.nodeId ?? name, http: m.http ?? null });
      });
      void this.exited.then((e) =>
        reject(
          new Error(
            `${name} exited before it was ready (${JSON.stringify(e)}):\n${this.output.slice(-20).join('\n')}`,
          ),
        ),
      );
    });
    this.ready.catch(() => undefined);
  }

  /** Starts a node process and waits until it reports ready. */
  static async start(name: string, env: Record<string, string>): Promise<NodeProcess> {
    const p = NodeProcess.spawn(name, env);
    await p.ready;
    return p;
  }

  /** Starts a node process without waiting for it (`ready` tells when it is). */
  static spawn(name: string, env: Record<string, string>): NodeProcess {
    return new NodeProcess(name, env);
  }

  get pid(): number {
    return this.#child.pid!;
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.#child.kill(signal);
  }

  async kill(): Promise<ProcessExit> {
    this.signal('SIGKILL');
    return this.exited;
  }

  pause(): void {
    this.signal('SIGSTOP');
  }

  resume(): void {
    this.signal('SIGCONT');
  }

  /**
   * The last lines of every process started since the last killAll, with how
   * each ended: what a failed test prints to explain itself.
   */
  static report(lines = 40): string {
    return [...started]
      .map((p) => {
        const state = p.#exit ? `exited ${JSON.stringify(p.#exit)}` : 'running';
        return `--- ${p.name} (pid ${p.#child.pid}, ${state})\n${p.output.slice(-lines).join('\n')}`;
      })
      .join('\n');
  }

  /** Stops every node process still running (for afterEach/afterAll). */
  static async killAll(): Promise<void> {
    await Promise.all([...live].map((p) => (p.resume(), p.kill())));
    started.clear();
  }
}

/**
 * Registers an afterEach that stops every node process the test started and,
 * when the test failed, prints each one's last lines and how it ended.
 */
export function killNodesAfterEach(): void {
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail') console.error(NodeProcess.report());
    await NodeProcess.killAll();
  });
}
