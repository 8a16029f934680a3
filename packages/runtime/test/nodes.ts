import { createNode, type BatonNode, type NodeOptions } from '../src/index.js';

/**
 * A node of a test, on the test database at `url`: silent, no HTTP, a pool of
 * 4, a group of its own unless `options` name one (options override all).
 */
export function testNode(url: string, options: Partial<NodeOptions> = {}): BatonNode {
  return createNode({
    groupId: `t${Math.random().toString(36).slice(2, 8)}`,
    database: { url, poolSize: 4 },
    logLevel: 'silent',
    http: false,
    ...options,
  });
}
