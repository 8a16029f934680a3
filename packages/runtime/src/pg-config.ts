import { readFileSync } from 'node:fs';
import type { PoolConfig } from 'pg';
import type { CompiledConfig, TlsOptions } from './config.js';
import { ConfigError } from './config.js';

/** PEM text from an inline value or a file; a missing file is a config error naming the option. */
export function pem(
  option: string,
  inline: string | undefined,
  file: string | undefined,
): string | undefined {
  if (inline) return inline;
  if (!file) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(option, `cannot read ${file}: ${(error as Error).message}`, file);
  }
}

/** TLS options for node's `tls.connect` from Baton's TLS settings. */
export function tlsFor(
  option: string,
  tls: TlsOptions,
): { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean } {
  const ca = pem(`${option}.caFile`, tls.ca, tls.caFile);
  const cert = pem(`${option}.certFile`, tls.cert, tls.certFile);
  const key = pem(`${option}.keyFile`, tls.key, tls.keyFile);
  return {
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    rejectUnauthorized: tls.rejectUnauthorized ?? true,
  };
}

/** The `pg` pool settings of a node: credentials, TLS, size, and a name visible in pg_stat_activity. */
export function pgPoolConfig(db: CompiledConfig['database'], applicationName: string): PoolConfig {
  const ssl =
    db.ssl === undefined || db.ssl === false
      ? undefined
      : db.ssl === true
        ? true
        : tlsFor('database.ssl', db.ssl);
  return {
    ...(db.url ? { connectionString: db.url } : {}),
    ...(db.host ? { host: db.host } : {}),
    ...(db.port ? { port: db.port } : {}),
    ...(db.user ? { user: db.user } : {}),
    ...(db.password ? { password: db.password } : {}),
    ...(db.database ? { database: db.database } : {}),
    ...(ssl !== undefined ? { ssl } : {}),
    max: db.poolSize,
    application_name: applicationName.slice(0, 63),
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
  };
}
