/** `pnpm bench <name>`: runs one benchmark and writes its JSON to bench/results/. */
import { benchLatency, benchPeers, benchThroughput } from './peers.bench.js';
import { benchFailover } from './failover.bench.js';
import { benchMemory } from './memory.bench.js';
import { benchSchedules } from './schedules.bench.js';
import { benchStore } from './store.bench.js';

const benches: Record<string, () => Promise<void>> = {
  failover: benchFailover,
  peers: benchPeers,
  throughput: benchThroughput,
  latency: benchLatency,
  memory: benchMemory,
  schedules: benchSchedules,
  store: benchStore,
};

const name = process.argv[2];
const run = name ? benches[name] : undefined;
if (!run) {
  console.error(`usage: pnpm bench <${Object.keys(benches).join('|')}>`);
  process.exit(2);
}
await run();
