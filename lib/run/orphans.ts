/**
 * Which of moat's containers have no live owner. Pure decisions over what the engine lists, the records
 * in this MOAT_HOME, and whether owner processes live (checked at the edge with `isOwnerAlive`).
 */
import type { ContainerSummary } from "../docker/types.ts";
import type { Owner, RunRecord } from "../store/records.ts";
import { LABEL_PREFIX } from "./plan.ts";
import { isFinal } from "./reconcile.ts";

/** The run id a container belongs to, from its labels. */
export function runIdOf(c: ContainerSummary): string | undefined {
  return c.Labels?.[`${LABEL_PREFIX}run-id`];
}

/**
 * The process responsible for a container: the record's owner (a detached run's recorder), else the
 * `owner-pid`/`boot-id` labels set at create. Labels carry no start time, so `startTicks` is 0 (unknown).
 */
export function ownerOf(c: ContainerSummary, record: RunRecord | undefined): Owner | undefined {
  if (record?.owner) return record.owner;
  const pid = Number(c.Labels?.[`${LABEL_PREFIX}owner-pid`]);
  const bootId = c.Labels?.[`${LABEL_PREFIX}boot-id`];
  return Number.isInteger(pid) && pid > 0 && bootId ? { pid, bootId, startTicks: 0 } : undefined;
}

export type ContainerRole =
  /** Its run is in progress and its owner lives. */
  | "active"
  /** Kept on purpose (`--keep`) after its run ended. */
  | "kept"
  /** Nobody will clean it up: the owner died (or never existed) while the run was not finished. */
  | "orphaned";

/**
 * Classify one container. `ownerAlive` is whether `ownerOf(...)` is a live process (false when there is
 * no owner at all).
 */
export function classifyContainer(
  c: ContainerSummary,
  record: RunRecord | undefined,
  ownerAlive: boolean,
): ContainerRole {
  if (ownerAlive) return "active";
  if (record && record.kept && isFinal(record.state) && !c.Labels?.[`${LABEL_PREFIX}probe`]) return "kept";
  return "orphaned";
}
