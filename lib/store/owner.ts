/**
 * Who owns a run, and whether that process is still alive. Linux `/proc` only: a pid is compared together
 * with the boot id and the process start time, so a reused pid or a reboot never counts as alive.
 */
import type { Owner } from "./records.ts";

/** Synchronous: /proc files answer at once, and an async read costs a thread-pool hop (1–3 ms). */
function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/** Fields 3 onwards of a `/proc/<pid>/stat` line. The command name (field 2) may hold spaces and parentheses. */
function fieldsAfterName(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** Field 22 (starttime) of a `/proc/<pid>/stat` line. Pure. */
export function startTicksFromStat(stat: string): number | undefined {
  // The first field after the name is field 3 (state); starttime is field 22.
  const v = Number(fieldsAfterName(stat)[22 - 3]);
  return Number.isFinite(v) ? v : undefined;
}

/**
 * True when a `/proc/<pid>/stat` line is a process that has ended: a zombie (`Z`, exited and not yet reaped
 * by its parent) or dead (`X`). A detached run's recorder is reparented to PID 1 when `moat run -d`
 * returns; where PID 1 reaps late, or never (a container without an init), the ended recorder stays a
 * zombie, and must not count as the run's live owner. Pure.
 */
export function hasEnded(stat: string): boolean {
  const state = fieldsAfterName(stat)[0];
  return state === "Z" || state === "X";
}

export function bootId(): string {
  return readText("/proc/sys/kernel/random/boot_id")?.trim() ?? "unknown";
}

/** This process as an owner. */
export function currentOwner(): Owner {
  return processOwner(Deno.pid);
}

/** Process `pid` of this host as an owner (a child this process started). */
export function processOwner(pid: number): Owner {
  const stat = readText(`/proc/${pid}/stat`);
  return { pid, bootId: bootId(), startTicks: (stat ? startTicksFromStat(stat) : undefined) ?? 0 };
}

/** True when the owner process is running now (same boot, same pid, same start time, not a zombie). */
export function isOwnerAlive(owner: Owner, currentBootId?: string): boolean {
  if (owner.bootId !== (currentBootId ?? bootId())) return false;
  const stat = readText(`/proc/${owner.pid}/stat`);
  if (stat === undefined || hasEnded(stat)) return false;
  return owner.startTicks === 0 || startTicksFromStat(stat) === owner.startTicks;
}
