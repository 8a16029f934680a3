import { createNode, type BatonNode, type NodeDeps, type NodeOptions } from '../src/index.js';

/**
 * A node of a test, on the test database at `url`: silent, no HTTP, a pool of
 * 4, a group of its own unless `options` name one (options override all).
 */
export function testNode(
  url: string,
  options: Partial<NodeOptions> = {},
  deps?: NodeDeps,
): BatonNode {
  return createNode(
    {
      groupId: `t${Math.random().toString(36).slice(2, 8)}`,
      database: { url, poolSize: 4 },
      logLevel: 'silent',
      http: false,
      ...options,
    },
    deps,
  );
}

/** The value of the sample named `name` (with its labels) on a node's /metrics; undefined if absent. */
export async function metricOf(node: BatonNode, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${node.httpUrl!}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}
