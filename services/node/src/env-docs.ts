import { ENV_VARS } from './env.js';

/** The configuration page's table of environment variables, from the one table in env.ts. */
export function envTable(): string {
  const rows = ENV_VARS.map(
    (v) => `| \`${v.name}\` | ${v.description} |${v.example ? ` \`${v.example}\` ` : ' '}|`,
  );
  return ['| variable | meaning | example |', '| --- | --- | --- |', ...rows].join('\n');
}
