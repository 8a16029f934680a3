/**
 * The node container's entrypoint: environment -> config -> node; signals.
 * SIGTERM/SIGINT drain the node (exit 0); a second signal exits at once (1);
 * a node that fails exits 1; bad configuration (a variable, a handler
 * module, an option the start refuses) exits 2 with one line naming it.
 */
import {
  BatonError,
  ConfigError,
  createNode,
  HttpListenError,
  type BatonNode,
  type NodeExit,
} from '@baton/runtime';
import { EnvError, optionsFromEnv, unknownVariables, variableOf } from './env.js';
import { HandlerModuleError, loadHandlerModules } from './handler-modules.js';

/** Exit code of a configuration the node cannot run with. */
const BAD_CONFIG = 2;

/**
 * The line to print for an error the operator fixes in the environment,
 * naming the variable; undefined for any other error.
 */
export function configProblem(error: unknown): string | undefined {
  if (error instanceof EnvError) return error.message;
  if (error instanceof HandlerModuleError) {
    // The user's own code failed: its stack is theirs to read.
    const cause = error.cause instanceof Error ? error.cause.stack : undefined;
    return cause && !(error.cause instanceof BatonError)
      ? `${error.message}\n${cause}`
      : error.message;
  }
  if (error instanceof HttpListenError) return `BATON_HTTP_PORT/BATON_HTTP_HOST: ${error.message}`;
  const option =
    error instanceof BatonError && typeof error.fields.option === 'string'
      ? error.fields.option
      : undefined;
  if (error instanceof ConfigError || option !== undefined) {
    const variable = option === undefined ? undefined : variableOf(option);
    return variable ? `${variable}: ${(error as Error).message}` : (error as Error).message;
  }
  return undefined;
}

/** Network and login failures on connecting to PostgreSQL: the operator checks DATABASE_URL. */
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
]);
const LOGIN_SQLSTATES = /^(28|3D)/; // invalid authorization, unknown database

function startProblem(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown }).code;
  const database =
    !(error instanceof BatonError) &&
    typeof code === 'string' &&
    (CONNECT_CODES.has(code) || LOGIN_SQLSTATES.test(code));
  return database
    ? `the node failed to start: PostgreSQL (DATABASE_URL): ${message}`
    : `the node failed to start: ${message}`;
}

async function main(): Promise<number> {
  let parsed;
  let node: BatonNode;
  try {
    parsed = optionsFromEnv(process.env);
    node = createNode(parsed.options);
    for (const name of unknownVariables(process.env)) {
      node.logger.warn({ variable: name }, 'unknown BATON_ variable (a typo?)');
    }
    await loadHandlerModules(node, parsed.handlerModules, process.cwd());
  } catch (error) {
    const problem = configProblem(error);
    if (problem === undefined) throw error;
    process.stderr.write(`baton-node: ${problem}\n`);
    return BAD_CONFIG;
  }
  let signals = 0;
  let stopping!: (exit: Promise<NodeExit>) => void;
  // Resolved with the shutdown's promise: settles when the shutdown is done.
  const stopped = new Promise<NodeExit>((resolve) => (stopping = resolve));
  const stop = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      node.logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    node.logger.info({ signal, graceMs: node.config.shutdownGraceMs }, 'draining');
    stopping(node.shutdown());
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // A signal during the start (which may wait on a server that is down) stops
  // the node there: the shutdown's outcome is the exit code, not the start's.
  const starting = node.start();
  starting.catch(() => undefined);
  let first: 'started' | 'stopping';
  try {
    first = await Promise.race([
      starting.then(
        () => 'started' as const,
        (error: unknown) => {
          if (signals > 0) return 'stopping' as const; // refused by the shutdown under way
          throw error;
        },
      ),
      stopped.then(() => 'stopping' as const),
    ]);
  } catch (error) {
    node.logger.error({ err: error }, 'the node failed to start');
    const problem = configProblem(error);
    process.stderr.write(`baton-node: ${problem ?? startProblem(error)}\n`);
    return problem === undefined ? 1 : BAD_CONFIG;
  }
  if (first === 'stopping') {
    const exit = await stopped;
    node.logger.info({ status: exit.status, reason: exit.reason }, 'node exited');
    return exit.status === 'stopped' ? 0 : 1;
  }
  process.send?.({ type: 'baton.ready', nodeId: node.id, http: node.httpUrl });
  const exit = await node.exited;
  await node.shutdown();
  node.logger.info({ status: exit.status, reason: exit.reason }, 'node exited');
  return exit.status === 'stopped' ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
    // Anything still holding the loop open after a clean close is a bug; do not hang the container.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (error: unknown) => {
    process.stderr.write(
      `baton-node: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
