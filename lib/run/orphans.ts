/**
 * Which of moat's containers have no live owner: containers left behind by a moat process that is gone
 * (`kill -9`, a host crash). Pure decisions over what the engine lists, the records in this MOAT_HOME, and
 * whether owner processes live (a predicate; `ownerLiveness` checks /proc with `isOwnerAlive`):
 * `classifyContainer` decides, `ofThisHome` keeps this MOAT_HOME's containers.
 *
 * `findOrphans` puts them together: one engine listing filtered by moat's label (`dev.moat.managed=true`)
 * through the `EngineClient` it is given, the records of those runs only, and a second listing only when
 * something looks orphaned. The notice that `moat list`, `logs`, `stop`, `destroy` and `run` print about
 * them is lib/cli/orphan_notice.ts; `moat status` and `moat system containers` report them with
 * `liveContainerOwners`; `moat clean` removes them.
 */
import { labelOf, MANAGED_FILTER } from "./labels.ts";
import type { EngineClient } from "../docker/client.ts";
import type { ContainerSummary, NetworkInspect } from "../docker/types.ts";
import { maybeHomeId } from "../store/home_id.ts";
import { bootId, isOwnerAlive } from "../store/owner.ts";
import { maybeReadRecord, type Owner, type RunRecord } from "../store/records.ts";
import { isFinal } from "../store/records.ts";

/** Anything the engine labels: a container, a network. */
type Labelled = { Labels?: Record<string, string> | null };

/** The run id a container belongs to, from its labels. */
export function runIdOf(c: ContainerSummary): string | undefined {
  return labelOf(c, "runId");
}

/**
 * The process responsible for a container: the record's owner (a detached run's recorder), else the
 * `owner-pid`/`boot-id` labels set at create. Labels carry no start time, so `startTicks` is 0 (unknown).
 */
export function ownerOf(c: Labelled, record: RunRecord | undefined): Owner | undefined {
  if (record?.owner) return record.owner;
  const pid = Number(labelOf(c, "ownerPid"));
  const bootId = labelOf(c, "bootId");
  return Number.isInteger(pid) && pid > 0 && bootId ? { pid, bootId, startTicks: 0 } : undefined;
}

export type ContainerRole =
  /** Its run is in progress and its owner lives. */
  | "active"
  /** Made ahead of a run that has not taken it yet, and not expired (`waitingStandby`). */
  | "standby"
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
  now = Date.now(),
): ContainerRole {
  if (ownerAlive) return "active";
  if (waitingStandby(c, record !== undefined, now)) return "standby";
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
  c: Labelled,
  homeId: string | undefined,
  recorded: (runId: string) => boolean,
): ContainerHome {
  const label = labelOf(c, "home");
  if (label !== undefined) return label === homeId ? "this" : "other";
  const runId = labelOf(c, "runId");
  return runId !== undefined && recorded(runId) ? "this" : "unknown";
}

/**
 * The run a network of moat's belongs to: its `dev.moat.run-id` label, when it is named after it
 * (`moat-net-<id>`, lib/run/egress.ts, and `moat doctor`'s); `undefined` for any other network. Pure.
 */
export function networkRunId(n: NetworkInspect): string | undefined {
  const runId = labelOf(n, "runId");
  return runId !== undefined && n.Name === `moat-net-${runId}` ? runId : undefined;
}

/**
 * A network's role: `active` while its owner lives (the run's record's, else its labels'), `standby` while
 * it waits for a run (`waitingStandby`), else orphaned.
 */
export type NetworkRole = "active" | "standby" | "orphaned";

/**
 * Classify one of moat's networks; `recorded`: its run has a record here; `ownerAlive`: whether
 * `ownerOf(n, record)` is a live process (false when there is no owner at all). A network is never kept: its
 * run's moat process removes it. Pure.
 */
export function classifyNetwork(
  n: Labelled,
  recorded: boolean,
  ownerAlive: boolean,
  now = Date.now(),
): NetworkRole {
  if (ownerAlive) return "active";
  return waitingStandby(n, recorded, now) ? "standby" : "orphaned";
}

/**
 * Whether a container or network of moat's is a run's network or relay made ahead (lib/run/standby.ts) and
 * still waiting: labelled `dev.moat.standby` with a time not yet past at `now`, and not yet the run of a
 * record here (`recorded`: once a run took it, its run's owner decides). Nobody owns such a thing, and it is
 * not left behind: its relay stops by itself at that time. Pure.
 */
export function waitingStandby(item: Labelled, recorded: boolean, now: number): boolean {
  const expires = Number(labelOf(item, "standby") ?? NaN);
  return !recorded && Number.isFinite(expires) && expires > now;
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

/**
 * Whether an owner process lives, on this host now (`isOwnerAlive`); the boot id is read once, on the
 * first question. The edge behind the predicates the decisions here and in lib/run/reconcile.ts take.
 */
export function ownerLiveness(): (owner: Owner) => boolean {
  let boot: string | undefined;
  return (owner) => isOwnerAlive(owner, boot ??= bootId());
}

/** Ids of the containers whose owner (`ownerOf`, from the record when there is one) lives (`isAlive`). */
export function liveContainerOwners(
  containers: readonly ContainerSummary[] | undefined,
  recordOf: (runId: string) => RunRecord | undefined,
  isAlive: (owner: Owner) => boolean,
): Set<string> {
  if (!containers?.length) return new Set();
  return new Set(
    containers.filter((c) => {
      const runId = runIdOf(c);
      const owner = ownerOf(c, runId === undefined ? undefined : recordOf(runId));
      return owner !== undefined && isAlive(owner);
    }).map((c) => c.Id),
  );
}

/** The orphaned containers among `containers`, given this MOAT_HOME's records (`recordOf`). */
export function orphansAmong(
  containers: readonly ContainerSummary[],
  recordOf: (runId: string) => RunRecord | undefined,
  isAlive: (owner: Owner) => boolean,
): ContainerSummary[] {
  const alive = liveContainerOwners(containers, recordOf, isAlive);
  return orphansOf(containers, recordOf, (c) => alive.has(c.Id));
}

/** A run id as moat makes them (`newRunId`); anything else is not looked up as a path under MOAT_HOME. */
const RUN_ID = /^[0-9a-f]{1,64}$/;

/** This MOAT_HOME's records of the runs `containers` belong to — only those, not every record. */
export function recordsOf(home: string, containers: readonly ContainerSummary[]): Map<string, RunRecord> {
  const ids = [...new Set(containers.map(runIdOf))].filter((id): id is string => !!id && RUN_ID.test(id));
  const found = ids.map((id) => maybeReadRecord(home, id));
  return new Map(found.filter((r): r is RunRecord => r !== undefined).map((r) => [r.id, r]));
}

/**
 * Drop the orphans the engine no longer lists. A run that ends between the listing and the owner check
 * (its owner removes the container, then exits) would otherwise be reported as left behind; asking again
 * only when something looks orphaned costs nothing in the usual case. Throws engine errors.
 */
export async function stillListed(
  client: EngineClient,
  orphans: ContainerSummary[],
): Promise<ContainerSummary[]> {
  if (orphans.length === 0) return orphans;
  const now = new Set((await client.containerList([MANAGED_FILTER])).map((c) => c.Id));
  return orphans.filter((c) => now.has(c.Id));
}

/**
 * The orphaned containers of this MOAT_HOME (`home`) among one listing of moat's containers, given the
 * records of their runs (`records`, by run id: all of them, or `recordsOf` the listing). Throws engine
 * errors (from `stillListed`).
 */
export async function orphansListed(
  client: EngineClient,
  home: string,
  containers: readonly ContainerSummary[],
  records: ReadonlyMap<string, RunRecord>,
): Promise<ContainerSummary[]> {
  const mine = ofThisHome(containers, maybeHomeId(home), (id) => records.has(id));
  const isAlive = ownerLiveness();
  const candidates = orphansAmong(mine, (id) => records.get(id), isAlive);
  if (candidates.length === 0) return candidates;
  // A record read before its run changed hands names an owner that may be gone by the time it is checked:
  // a detached run's recorder writes itself into the record, then `moat run -d` exits. Read the candidates'
  // records again, after the check: only a run whose current owner is gone is left behind.
  const fresh = recordsOf(home, candidates);
  return await stillListed(client, orphansAmong(candidates, (id) => fresh.get(id), isAlive));
}

/**
 * The orphaned containers of this MOAT_HOME on the engine (`ofThisHome`: other homes' containers are
 * theirs to see): one listing (no sizes), the records they need. Throws engine errors.
 */
export async function findOrphans(client: EngineClient, home: string): Promise<ContainerSummary[]> {
  const containers = await client.containerList([MANAGED_FILTER]);
  return await orphansListed(client, home, containers, recordsOf(home, containers));
}
