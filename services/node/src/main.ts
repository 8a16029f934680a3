/**
 * The node container's entrypoint: environment -> config -> node; signals.
 * SIGTERM/SIGINT drain the node (exit 0); a second signal exits at once (1);
 * a node that fails exits 1; bad configuration exits 2 with one line naming it.
 */
import { ConfigError, createNode, type NodeExit } from '@baton/runtime';
import { EnvError, optionsFromEnv, unknownVariables } from './env.js';
import { loadHandlerModules } from './handler-modules.js';

async function main(): Promise<number> {
  let parsed;
  let node;
  try {
    parsed = optionsFromEnv(process.env);
    node = createNode(parsed.options);
  } catch (error) {
    // A bad variable, or a bad value env.ts passed on (a log level, a
    // concurrency of 0, a malformed DATABASE_URL): one line naming it.
    if (error instanceof EnvError || error instanceof ConfigError) {
      process.stderr.write(`baton-node: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  for (const name of unknownVariables(process.env)) {
    node.logger.warn({ variable: name }, 'unknown BATON_ variable (a typo?)');
  }
  await loadHandlerModules(node, parsed.handlerModules, process.cwd());
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
  const first = await Promise.race([
    starting.then(
      () => 'started' as const,
      (error: unknown) => {
        if (signals > 0) return 'stopping' as const; // refused by the shutdown under way
        throw error;
      },
    ),
    stopped.then(() => 'stopping' as const),
  ]);
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
