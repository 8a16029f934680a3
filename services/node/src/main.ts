/**
 * The node container's entrypoint: environment -> config -> node; signals.
 * SIGTERM/SIGINT drain the node (exit 0); a second signal exits at once (1);
 * a node that fails exits 1.
 */
import { createNode } from '@baton/runtime';
import { EnvError, optionsFromEnv, unknownVariables } from './env.js';
import { loadHandlerModules } from './handler-modules.js';

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = optionsFromEnv(process.env);
  } catch (error) {
    if (error instanceof EnvError) {
      process.stderr.write(`baton-node: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const node = createNode(parsed.options);
  for (const name of unknownVariables(process.env)) {
    node.logger.warn({ variable: name }, 'unknown BATON_ variable (a typo?)');
  }
  await loadHandlerModules(node, parsed.handlerModules, process.cwd());
  let signals = 0;
  const stop = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      node.logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    node.logger.info({ signal, graceMs: node.config.shutdownGraceMs }, 'draining');
    void node.shutdown();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await node.start();
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
