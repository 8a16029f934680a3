export { useTestDatabase, type TestDatabase } from './database.js';
export { describeNats, testNats } from './nats-suite.js';
export {
  OwnedNatsServer,
  natsServerOnPath,
  resolveNats,
  type NatsServerInfo,
  type OwnedNatsServerOptions,
} from './nats.js';
export {
  resolvePostgres,
  startEmbeddedPostgres,
  ensureTemplate,
  templateName,
  withDatabase,
  type PostgresServer,
} from './postgres.js';
export { freePort, dockerAvailable } from './ports.js';
export { NodeProcess, killNodesAfterEach, type ProcessExit } from './processes.js';
