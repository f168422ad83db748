/**
 * What state a run is really in: its record, corrected by what the engine shows and whether its owner
 * process lives. Pure and read-only: callers display the result, they never write it back from here.
 *
 * `listEntries` does it for every run in MOAT_HOME at once, from one engine listing matched to the records
 * by the `dev.moat.run-id` label (`moat list`, `moat status`); whether an owner lives is a predicate the
 * caller passes (`ownerLiveness` in lib/run/orphans.ts checks /proc).
 */
import { labelOf } from "./labels.ts";
import type { ContainerSummary } from "../docker/types.ts";
import {
  type DamagedRecord,
  isFinal,
  type Owner,
  type RecordDamage,
  type RunRecord,
  type RunState,
} from "../store/records.ts";

/** A record's state, plus `lost`: it claims to be in progress, but its container and its owner are gone. */
export type ShownState = RunState | "lost";

/** How the engine sees a run's container: a summary, absent, or unknown (engine unreachable or slow). */
export type EngineView = ContainerSummary | "absent" | "unknown";

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

/** The state `moat list` and `moat status` show: a reconciled state, or `damaged`. */
export type ListState = ShownState | "damaged";

/** One run as `moat list` shows it. */
export interface ListEntry {
  id: string;
  /** `null` when the run's `run.json` cannot be read. */
  record: RunRecord | null;
  /** What is wrong with the run's record, else `null`; `shownState` is then `damaged`. */
  damage: RecordDamage | null;
  shownState: ListState;
  shownExitCode: number | null;
  /**
   * The engine's `State` of the run's container (`running`, `exited`, …), `"absent"` when the engine
   * answered and has no container for the run, `null` when the engine could not be asked.
   */
  containerState: string | null;
}

/**
 * The containers of each run, by the `dev.moat.run-id` label (what `runIdOf` in lib/run/orphans.ts reads;
 * that module imports this one). Pure.
 */
export function containersByRun(containers: ContainerSummary[]): Map<string, ContainerSummary[]> {
  const byRun = new Map<string, ContainerSummary[]>();
  for (const c of containers) {
    const id = labelOf(c, "runId");
    if (id === undefined) continue;
    const list = byRun.get(id);
    if (list) list.push(c);
    else byRun.set(id, [c]);
  }
  return byRun;
}

/**
 * The engine's view of one run. `byRun` is `undefined` when the engine could not be asked. A record's own
 * `containerId` wins; otherwise the first container that is not the short-lived passwd probe (which
 * carries the run's labels too). Pure.
 */
export function engineViewOf(
  record: Pick<RunRecord, "id" | "containerId">,
  byRun: Map<string, ContainerSummary[]> | undefined,
): EngineView {
  if (byRun === undefined) return "unknown";
  const mine = byRun.get(record.id) ?? [];
  return mine.find((c) => record.containerId !== null && c.Id === record.containerId) ??
    mine.find((c) => !labelOf(c, "probe")) ??
    "absent";
}

function containerStateOf(view: EngineView): string | null {
  return view === "unknown" ? null : view === "absent" ? "absent" : view.State;
}

/** True when `reconcile` will need to know whether the record's owner lives. Pure. */
export function needsOwnerCheck(record: RunRecord, view: EngineView): boolean {
  return view === "absent" && !isFinal(record.state);
}

/**
 * Reconcile every record. `alive` holds the ids of runs whose owner process lives (only consulted where
 * `needsOwnerCheck` said so). `damaged` (from `scanRecords`) come out as `damaged`: those whose `run.json`
 * cannot be read first, then the records in their order, a damaged one with its recorded exit code. Pure.
 */
export function listEntries(
  records: RunRecord[],
  containers: ContainerSummary[] | undefined,
  alive: ReadonlySet<string>,
  damaged: readonly DamagedRecord[] = [],
): ListEntry[] {
  const byRun = containers === undefined ? undefined : containersByRun(containers);
  const damageOf = new Map(damaged.map((d) => [d.id, d.damage]));
  const unreadable: ListEntry[] = damaged.filter((d) => d.record === null).map((d) => ({
    id: d.id,
    record: null,
    damage: d.damage,
    shownState: "damaged",
    shownExitCode: null,
    containerState: containerStateOf(engineViewOf({ id: d.id, containerId: null }, byRun)),
  }));
  return [
    ...unreadable,
    ...records.map((record): ListEntry => {
      const view = engineViewOf(record, byRun);
      const damage = damageOf.get(record.id) ?? null;
      const { state, exitCode } = reconcile(record, view, alive.has(record.id));
      return {
        id: record.id,
        record,
        damage,
        shownState: damage ? "damaged" : state,
        shownExitCode: exitCode,
        containerState: containerStateOf(view),
      };
    }),
  ];
}

/**
 * Ids of the runs among `records` whose owner lives (`isAlive`), for `listEntries`. `isAlive` is asked
 * only where it matters (`needsOwnerCheck`): never for a finished run or one the engine still lists. Pure
 * given `isAlive`.
 */
export function liveOwners(
  records: RunRecord[],
  containers: ContainerSummary[] | undefined,
  isAlive: (owner: Owner) => boolean,
): Set<string> {
  const byRun = containers === undefined ? undefined : containersByRun(containers);
  return new Set(
    records.filter((r) => r.owner && needsOwnerCheck(r, engineViewOf(r, byRun)) && isAlive(r.owner))
      .map((r) => r.id),
  );
}
