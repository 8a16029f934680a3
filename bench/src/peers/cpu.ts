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

/** CPU milliseconds each local PostgreSQL process has used so far, by pid (undefined: none seen). */
export function postgresCpuMs(): ReadonlyMap<string, number> | undefined {
  let dirs: string[];
  try {
    dirs = readdirSync('/proc');
  } catch {
    return undefined;
  }
  const byPid = new Map<string, number>();
  for (const d of dirs) {
    if (!/^\d+$/.test(d)) continue;
    const s = readStat(d);
    if (s?.name.startsWith('postgres')) byPid.set(d, s.ms);
  }
  return byPid.size > 0 ? byPid : undefined;
}

/**
 * The PostgreSQL CPU milliseconds spent between two readings: the growth of
 * each process seen in the second (all of it for one started since). A
 * process that ended in between is left out (its last part is lost), so
 * sessions other clients close meanwhile never make the figure go negative.
 */
export function postgresCpuSpentMs(
  before: ReadonlyMap<string, number>,
  after: ReadonlyMap<string, number>,
): number {
  let spent = 0;
  for (const [pid, ms] of after) spent += Math.max(0, ms - (before.get(pid) ?? 0));
  return spent;
}
