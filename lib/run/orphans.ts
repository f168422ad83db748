/**
 * Which of moat's containers have no live owner. Pure decisions over what the engine lists, the records
 * in this MOAT_HOME, and whether owner processes live (checked at the edge with `isOwnerAlive`, see
 * lib/cli/orphan_notice.ts).
 */
import { labelOf } from "./labels.ts";
import type { ContainerSummary } from "../docker/types.ts";
import type { Owner, RunRecord } from "../store/records.ts";
import { isFinal } from "./reconcile.ts";

/** The run id a container belongs to, from its labels. */
export function runIdOf(c: ContainerSummary): string | undefined {
  return labelOf(c, "runId");
}

/**
 * The process responsible for a container: the record's owner (a detached run's recorder), else the
 * `owner-pid`/`boot-id` labels set at create. Labels carry no start time, so `startTicks` is 0 (unknown).
 */
export function ownerOf(c: ContainerSummary, record: RunRecord | undefined): Owner | undefined {
  if (record?.owner) return record.owner;
  const pid = Number(labelOf(c, "ownerPid"));
  const bootId = labelOf(c, "bootId");
  return Number.isInteger(pid) && pid > 0 && bootId ? { pid, bootId, startTicks: 0 } : undefined;
}

export type ContainerRole =
  /** Its run is in progress and its owner lives. */
  | "active"
  /** Kept on purpose (`--keep`) after its run ended. */
  | "kept"
  /** Nobody will clean it up: the owner died (or never existed) while the run was not finished. */
  | "orphaned";

/** `true` for the engine states in which the container's process exists (`docker ps` shows it). Pure. */
export function isLive(state: string): boolean {
  return state === "running" || state === "paused" || state === "restarting";
}

/**
 * Classify one container. `ownerAlive` is whether `ownerOf(...)` is a live process (false when there is
 * no owner at all).
 *
 * Kept means asked for with `--keep` and no longer running: either this MOAT_HOME's record says so (a
 * finished run with `kept`), or the container carries `dev.moat.keep=true` — which also covers kept
 * containers of another MOAT_HOME, whose records are not here. A container that still runs with its owner
 * gone is orphaned even with `--keep`: nobody will ever record how it ends. A passwd probe is never kept.
 */
export function classifyContainer(
  c: ContainerSummary,
  record: RunRecord | undefined,
  ownerAlive: boolean,
): ContainerRole {
  if (ownerAlive) return "active";
  if (labelOf(c, "probe")) return "orphaned";
  if (record && record.kept && isFinal(record.state)) return "kept";
  if (labelOf(c, "keep") === "true" && !isLive(c.State)) return "kept";
  return "orphaned";
}

/**
 * The orphaned containers among `containers`, in the order given. `recordOf` is this MOAT_HOME's record
 * of a run id (`undefined` when there is none); `alive` says whether a container's owner lives. Pure.
 */
export function orphansOf(
  containers: readonly ContainerSummary[],
  recordOf: (runId: string) => RunRecord | undefined,
  alive: (c: ContainerSummary) => boolean,
): ContainerSummary[] {
  return containers.filter((c) => {
    const runId = runIdOf(c);
    return classifyContainer(c, runId === undefined ? undefined : recordOf(runId), alive(c)) === "orphaned";
  });
}

/** Whose a container is, seen from one MOAT_HOME (`homeOf`). */
export type ContainerHome = "this" | "other" | "unknown";

/**
 * Which MOAT_HOME a container belongs to, from here: `this` when its `dev.moat.home` label is this home's
 * id (`homeId`, `undefined` when this home has none yet), `other` when it names another; a container made
 * before moat set that label is `this` when its run is recorded here (`recorded`), else `unknown`. Pure.
 */
export function homeOf(
  c: ContainerSummary,
  homeId: string | undefined,
  recorded: (runId: string) => boolean,
): ContainerHome {
  const label = labelOf(c, "home");
  if (label !== undefined) return label === homeId ? "this" : "other";
  const runId = runIdOf(c);
  return runId !== undefined && recorded(runId) ? "this" : "unknown";
}

/**
 * The containers of this MOAT_HOME among `containers` (`homeOf` is `this`): what the notice, `moat status`,
 * `moat clean` and `moat system containers` consider unless told to look at every home. Pure.
 */
export function ofThisHome(
  containers: readonly ContainerSummary[],
  homeId: string | undefined,
  recorded: (runId: string) => boolean,
): ContainerSummary[] {
  return containers.filter((c) => homeOf(c, homeId, recorded) === "this");
}
