/**
 * CPU time read from Linux's /proc: of a worker process (all its threads),
 * and of the local PostgreSQL server (every process named postgres). Where
 * /proc cannot be read (another OS, a server on another host), undefined.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** utime + stime of /proc/<pid>/stat, in milliseconds, and the process name. */
function readStat(pid: string): { name: string; ms: number } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The name is in parentheses and may hold spaces: fields count from after it.
  const close = stat.lastIndexOf(')');
  const fields = stat.slice(close + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  if (!Number.isFinite(ticks)) return undefined;
  return { name: stat.slice(stat.indexOf('(') + 1, close), ms: (ticks * 1000) / TICKS_PER_SECOND };
}

/** CPU milliseconds a process has used so far, all threads. */
export function processCpuMs(pid: number | undefined): number | undefined {
  return pid === undefined ? undefined : readStat(String(pid))?.ms;
}

/** CPU milliseconds every local PostgreSQL process has used so far (undefined: none seen). */
export function postgresCpuMs(): number | undefined {
  let dirs: string[];
  try {
    dirs = readdirSync('/proc');
  } catch {
    return undefined;
  }
  let total: number | undefined;
  for (const d of dirs) {
    if (!/^\d+$/.test(d)) continue;
    const s = readStat(d);
    if (s?.name.startsWith('postgres')) total = (total ?? 0) + s.ms;
  }
  return total;
}
