import { describe, inject } from 'vitest';
import './provided.js';

/** The NATS server of this test run, or null (with the reason) when none could be had. */
export function testNats(): { url: string | null; reason: string | null } {
  const { url, reason } = inject('batonNats');
  return { url, reason };
}

/**
 * A suite that needs NATS. Without a server it is reported, loudly and by
 * name, as not run (and under CI=true the global setup already refused to
 * start without one).
 */
export function describeNats(name: string, fn: (natsUrl: string) => void): void {
  const { url, reason } = testNats();
  if (url) {
    describe(name, () => fn(url));
    return;
  }
  console.warn(`\n[baton tests] NOT RUN (needs NATS): "${name}": ${reason ?? 'no server'}\n`);
  describe.skip(`${name} [NOT RUN: needs NATS]`, () => fn(''));
}
