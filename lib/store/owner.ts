/**
 * Who owns a run, and whether that process is still alive. Linux `/proc` only: a pid is compared together
 * with the boot id and the process start time, so a reused pid or a reboot never counts as alive.
 */
import type { Owner } from "./records.ts";

async function readText(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
}

/** Field 22 (starttime) of a `/proc/<pid>/stat` line. The command name (field 2) may hold spaces. Pure. */
export function startTicksFromStat(stat: string): number | undefined {
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state); starttime is field 22.
  const v = Number(rest[22 - 3]);
  return Number.isFinite(v) ? v : undefined;
}

export async function bootId(): Promise<string> {
  return (await readText("/proc/sys/kernel/random/boot_id"))?.trim() ?? "unknown";
}

/** This process as an owner. */
export async function currentOwner(): Promise<Owner> {
  const stat = await readText(`/proc/${Deno.pid}/stat`);
  return {
    pid: Deno.pid,
    bootId: await bootId(),
    startTicks: (stat ? startTicksFromStat(stat) : undefined) ?? 0,
  };
}

/** True when the owner process is running now (same boot, same pid, same start time). */
export async function isOwnerAlive(owner: Owner, currentBootId?: string): Promise<boolean> {
  if (owner.bootId !== (currentBootId ?? await bootId())) return false;
  const stat = await readText(`/proc/${owner.pid}/stat`);
  if (stat === undefined) return false;
  return owner.startTicks === 0 || startTicksFromStat(stat) === owner.startTicks;
}
