/**
 * What `moat clean` removes, decided from data: the records in this MOAT_HOME, the containers carrying
 * moat's labels, and which owner processes live (checked at the edge with `isOwnerAlive`). Pure.
 *
 * The rule (issue 3): a run whose owner process lives is never touched. Every other run is cleanable —
 * a finished run (its record, and its container if it was kept), a run whose owner died before it ended
 * (its container is orphaned; the record goes with it, since nobody will ever finish it), a run whose
 * container and owner are both gone (`lost`). Containers with no record in this MOAT_HOME are cleanable
 * when `classifyContainer` calls them orphaned, e.g. a leftover passwd probe.
 *
 * A damaged record (`scanRecords`: its `run.json` cannot be read, or its `output.bin` is gone) is cleanable
 * the same way when its record can still be read (its owner is known); when it cannot, only once none of
 * its run's containers is live or has a live owner — a running container may still belong to a live
 * detached run whose recorder will rewrite the record. Its stopped containers go with it.
 */
import { labelOf } from "./labels.ts";
import type { ContainerSummary, NetworkInspect } from "../docker/types.ts";
import type { DamagedRecord, Owner, RecordDamage, RecordScan, RunRecord } from "../store/records.ts";
import { classifyContainer, classifyNetwork, isLive, networkRunId, ownerOf, runIdOf } from "./orphans.ts";
import { engineViewOf, reconcile, type ShownState } from "./reconcile.ts";
import { isFinal } from "../store/records.ts";

/** Why an item is cleanable. */
export type CleanReason =
  /** The run ended and its record says so. */
  | "finished"
  /** The run's owner died before it ended; its container (if any) is left behind. */
  | "orphaned"
  /** Recorded as in progress, but its container and its owner are gone. */
  | "lost"
  /** Its record cannot be trusted (`damage` says why). */
  | "damaged"
  /** Made ahead of a run and waiting for it (`--standby`: removed only when asked). */
  | "standby";

/** One run (or one run id seen only on the engine) and everything of it that `clean` would remove. */
export interface CleanItem {
  runId: string;
  name: string | null;
  /** The run's reconciled state; for containers without a record, the container's own `State`. */
  state: ShownState | string;
  exitCode: number | null;
  reason: CleanReason;
  /** Its containers on the engine (the run's own, a kept one, a leftover probe). */
  containers: ContainerSummary[];
  /** Its networks (`moat-net-<run id>`: an `--allow` run's, `moat doctor`'s), removed after its containers. */
  networks: NetworkInspect[];
  /** Its record in this MOAT_HOME, if any. */
  record: RunRecord | undefined;
  /** What is wrong with its record, when it is damaged; its run directory is removed with it. */
  damage?: RecordDamage;
}

export interface CleanFacts {
  /** Newest first, as `listRecords` returns them. */
  records: RunRecord[];
  /** Every container labelled `dev.moat.managed=true`. */
  containers: ContainerSummary[];
  /** Whether an owner process lives (`false` for `undefined`: no owner known at all). */
  ownerAlive(owner: Owner | undefined): boolean;
  /** Only runs and containers of this workspace (an absolute, resolved path). */
  workspace?: string;
  /** The damaged runs (`scanRecords`); those with a readable record are in `records` too. */
  damaged?: readonly DamagedRecord[];
  /** moat's networks (labelled `dev.moat.managed=true`); only those named after their run count. */
  networks?: readonly NetworkInspect[];
  /**
   * Also what is made ahead of the next run and waits for it (lib/run/standby.ts: networks and relays, warm
   * sandboxes), which is otherwise left alone until its time has passed.
   */
  standby?: boolean;
}

/** The owners whose liveness `planClean` asks about, so the edge can check each once. Pure. */
export function ownersToCheck(
  records: RunRecord[],
  containers: ContainerSummary[],
  networks: readonly NetworkInspect[] = [],
): Owner[] {
  const byRun = new Map(records.map((r) => [r.id, r]));
  const out: Owner[] = [];
  for (const r of records) if (r.owner) out.push(r.owner);
  for (const c of containers) {
    const runId = runIdOf(c);
    const o = ownerOf(c, runId === undefined ? undefined : byRun.get(runId));
    if (o) out.push(o);
  }
  for (const n of networks) {
    const o = ownerOf(n, undefined);
    if (o) out.push(o);
  }
  return out;
}

/**
 * Which owners live, checked so that a run that changed hands during the check counts as its new owner's:
 * a detached run's recorder writes itself into the record, then `moat run -d` exits, so an owner from
 * `first` found gone may already have handed over. The records are read again after the check (`reread`)
 * and their owners checked too; plan with the records it returns.
 */
export function liveOwnersSettled(
  first: RunRecord[],
  reread: () => RecordScan,
  containers: ContainerSummary[],
  isAlive: (o: Owner) => boolean,
  networks: readonly NetworkInspect[] = [],
): { scan: RecordScan; alive: Set<string> } {
  const alive = new Set<string>();
  const check = (records: RunRecord[]) => {
    for (const o of ownersToCheck(records, containers, networks)) {
      if (!alive.has(ownerKey(o)) && isAlive(o)) alive.add(ownerKey(o));
    }
  };
  check(first);
  const scan = reread();
  check(scan.records);
  return { scan, alive };
}

/** A key that identifies one owner process, for a `Set` of live ones. Pure. */
export function ownerKey(o: Owner): string {
  return `${o.bootId}/${o.pid}/${o.startTicks}`;
}

function inWorkspace(ws: string | undefined, path: string | undefined): boolean {
  return ws === undefined || path === ws;
}

/** The items `moat clean` would remove: records newest first, then record-less containers newest first. */
export function planClean(facts: CleanFacts): CleanItem[] {
  const { ownerAlive, workspace } = facts;
  const containers = facts.containers.filter((c) => inWorkspace(workspace, labelOf(c, "workspace")));
  const records = facts.records.filter((r) => inWorkspace(workspace, r.workspace));
  const byRun = new Map<string, ContainerSummary[]>();
  const loose: ContainerSummary[] = [];
  for (const c of containers) {
    const id = runIdOf(c);
    if (id === undefined) loose.push(c);
    else byRun.set(id, [...(byRun.get(id) ?? []), c]);
  }

  const items: CleanItem[] = [];
  const recorded = new Set<string>();
  const damageOf = new Map((facts.damaged ?? []).map((d) => [d.id, d.damage]));
  // Damaged runs whose run.json cannot be read: no workspace known, so never within --workspace.
  for (const d of workspace === undefined ? (facts.damaged ?? []).filter((d) => d.record === null) : []) {
    recorded.add(d.id);
    const mine = byRun.get(d.id) ?? [];
    const busy = mine.some((c) => isLive(c.State) || ownerAlive(ownerOf(c, undefined)));
    if (busy) continue;
    items.push({
      runId: d.id,
      name: null,
      state: "damaged",
      exitCode: null,
      reason: "damaged",
      containers: mine,
      networks: [],
      record: undefined,
      damage: d.damage,
    });
  }
  for (const record of records) {
    recorded.add(record.id);
    const mine = byRun.get(record.id) ?? [];
    // The record's owner, else (older records) the owner its containers are labelled with.
    const owner = record.owner ?? mine.map((c) => ownerOf(c, undefined)).find((o) => o !== undefined);
    if (ownerAlive(owner ?? undefined)) continue;
    if (mine.some((c) => classifyContainer(c, record, ownerAlive(ownerOf(c, record))) === "active")) continue;
    const view = engineViewOf(record, byRun);
    const shown = reconcile(record, view, false);
    const damage = damageOf.get(record.id);
    const reason: CleanReason = damage
      ? "damaged"
      : isFinal(record.state)
      ? "finished"
      : shown.state === "lost"
      ? "lost"
      : "orphaned";
    items.push({
      runId: record.id,
      name: record.name,
      state: shown.state,
      exitCode: shown.exitCode,
      reason,
      containers: mine,
      networks: [],
      record,
      ...(damage ? { damage } : {}),
    });
  }

  const unrecorded: CleanItem[] = [];
  const roleOf = (c: ContainerSummary) => classifyContainer(c, undefined, ownerAlive(ownerOf(c, undefined)));
  const orphaned = (c: ContainerSummary) => {
    const role = roleOf(c);
    return role === "orphaned" || (facts.standby === true && role === "standby");
  };
  for (const [runId, mine] of byRun) {
    if (recorded.has(runId)) continue;
    const gone = mine.filter(orphaned);
    if (gone.length === 0) continue;
    const main = gone.find((c) => !labelOf(c, "probe")) ?? gone[0]!;
    unrecorded.push({
      runId,
      name: labelOf(main, "name") ?? null,
      state: labelOf(main, "probe") ? "probe" : main.State,
      exitCode: null,
      reason: gone.every((c) => roleOf(c) === "standby") ? "standby" : "orphaned",
      containers: gone,
      networks: [],
      record: undefined,
    });
  }
  for (const c of loose.filter(orphaned)) {
    unrecorded.push({
      runId: "",
      name: null,
      state: c.State,
      exitCode: null,
      reason: "orphaned",
      containers: [c],
      networks: [],
      record: undefined,
    });
  }
  const newest = (i: CleanItem) => Math.max(0, ...i.containers.map((c) => c.Created));
  unrecorded.sort((a, b) => newest(b) - newest(a));

  // Each run's networks go with it; a network whose run is not cleaned stays, unless nothing else of its run
  // is left and its owner is gone (`classifyNetwork`), as after a `kill -9` between network and container.
  const all = [...items, ...unrecorded];
  const byId = new Map(all.filter((i) => i.runId).map((i) => [i.runId, i]));
  const keptRuns = new Set([...recorded, ...byRun.keys()]);
  const networks = (facts.networks ?? []).filter((n) => inWorkspace(workspace, labelOf(n, "workspace")));
  for (const n of networks) {
    const runId = networkRunId(n);
    if (runId === undefined) continue;
    const item = byId.get(runId);
    if (item) {
      // Not while a container of its run stays (a live one of a run cleaned in part): it is still joined.
      if (item.containers.length === (byRun.get(runId) ?? []).length) item.networks.push(n);
    } else if (!keptRuns.has(runId)) {
      const role = classifyNetwork(n, false, ownerAlive(ownerOf(n, undefined)));
      if (role !== "orphaned" && !(facts.standby === true && role === "standby")) continue;
      const lone: CleanItem = {
        runId,
        name: labelOf(n, "name") ?? null,
        state: "network",
        exitCode: null,
        reason: role === "standby" ? "standby" : "orphaned",
        containers: [],
        networks: [n],
        record: undefined,
      };
      byId.set(runId, lone);
      all.push(lone);
    }
  }
  return all;
}
