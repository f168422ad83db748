/**
 * What state a run is really in: its record, corrected by what the engine shows and whether its owner
 * process lives. Pure and read-only: callers display the result, they never write it back from here.
 */
import type { ContainerSummary } from "../docker/types.ts";
import type { RunRecord, RunState } from "../store/records.ts";

/** A record's state, plus `lost`: it claims to be in progress, but its container and its owner are gone. */
export type ShownState = RunState | "lost";

/** How the engine sees a run's container: a summary, absent, or unknown (engine unreachable or slow). */
export type EngineView = ContainerSummary | "absent" | "unknown";

const FINAL: ReadonlySet<RunState> = new Set(["exited", "interrupted", "failed"]);

export function isFinal(state: RunState): boolean {
  return FINAL.has(state);
}

/** The exit code in a `docker ps` status such as `Exited (7) 3 minutes ago`. Pure. */
export function exitCodeFromStatus(status: string): number | undefined {
  const m = /^Exited \((-?\d+)\)/.exec(status);
  return m ? Number(m[1]) : undefined;
}

export function reconcile(
  record: RunRecord,
  view: EngineView,
  ownerAlive: boolean,
): { state: ShownState; exitCode: number | null } {
  const recorded = { state: record.state as ShownState, exitCode: record.exitCode };
  if (isFinal(record.state) || view === "unknown") return recorded;
  if (view === "absent") return ownerAlive ? recorded : { state: "lost", exitCode: record.exitCode };
  if (view.State === "running" || view.State === "restarting" || view.State === "paused") {
    return { state: "running", exitCode: null };
  }
  if (view.State === "exited" || view.State === "dead") {
    return { state: "exited", exitCode: exitCodeFromStatus(view.Status) ?? record.exitCode };
  }
  // "created" or "removing": in between; the record knows as much as the engine does.
  return recorded;
}
