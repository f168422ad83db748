/**
 * Containers left behind by a moat process that is gone (`kill -9`, a host crash): found on the engine by
 * label (`dev.moat.managed=true`), kept to this MOAT_HOME's (`ofThisHome`: labelled `dev.moat.home` with
 * its id, or made before that label by a run recorded here), with the records of their runs, and their
 * owners checked with `isOwnerAlive`; `classifyContainer` decides.
 *
 * `moat list`, `logs`, `stop`, `destroy` (and `run`) print ONE line about them on stderr — the notice — and
 * never fail or wait longer than the engine timeout because of it: when the engine cannot be asked in
 * time there is simply no notice. `moat status` and `moat system containers` report orphans themselves
 * (with `liveContainerOwners` from here); `moat clean` removes them.
 */
import { MANAGED_FILTER } from "../run/labels.ts";
import { type EngineClient, engineTimeoutMs } from "../docker/client.ts";
import type { ContainerSummary } from "../docker/types.ts";
import { ofThisHome, orphansOf, ownerOf, runIdOf } from "../run/orphans.ts";
import { maybeHomeId } from "../store/home_id.ts";
import { bootId, isOwnerAlive } from "../store/owner.ts";
import { maybeReadRecord, type RunRecord } from "../store/records.ts";
import { after } from "../timer.ts";
import type { CliContext } from "./context.ts";

const MANAGED = MANAGED_FILTER;

/** Ids of the containers whose owner (`ownerOf`, from the record when there is one) lives. */
export function liveContainerOwners(
  containers: readonly ContainerSummary[] | undefined,
  recordOf: (runId: string) => RunRecord | undefined,
): Set<string> {
  if (!containers?.length) return new Set();
  const boot = bootId();
  return new Set(
    containers.filter((c) => {
      const runId = runIdOf(c);
      const owner = ownerOf(c, runId === undefined ? undefined : recordOf(runId));
      return owner !== undefined && isOwnerAlive(owner, boot);
    }).map((c) => c.Id),
  );
}

/** The orphaned containers among `containers`, given this MOAT_HOME's records (`recordOf`). */
export function orphansAmong(
  containers: readonly ContainerSummary[],
  recordOf: (runId: string) => RunRecord | undefined,
): ContainerSummary[] {
  const alive = liveContainerOwners(containers, recordOf);
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
  const now = new Set((await client.containerList([MANAGED])).map((c) => c.Id));
  return orphans.filter((c) => now.has(c.Id));
}

/**
 * The orphaned containers of this MOAT_HOME on the engine (`ofThisHome`: other homes' containers are
 * theirs to see): one listing (no sizes), the records they need. Throws engine errors.
 */
export async function findOrphans(client: EngineClient, home: string): Promise<ContainerSummary[]> {
  const containers = await client.containerList([MANAGED]);
  const records = recordsOf(home, containers);
  const mine = ofThisHome(containers, maybeHomeId(home), (id) => records.has(id));
  return await stillListed(client, orphansAmong(mine, (id) => records.get(id)));
}

/**
 * `findOrphans`, but never rejects and never takes longer than `timeoutMs`: `undefined` when the engine
 * could not be asked (unreachable, slow, a bad DOCKER_HOST) or anything else went wrong. Start it early,
 * await it late; an advisory line must never fail or hold up the command it rides on.
 */
export function maybeFindOrphans(
  client: () => EngineClient,
  home: string,
  timeoutMs: number,
): Promise<ContainerSummary[] | undefined> {
  let cancel = () => {};
  const late = new Promise<undefined>((resolve) => {
    cancel = after(timeoutMs, () => resolve(undefined));
  });
  const found = (async () => await findOrphans(client(), home))().catch(() => undefined);
  return Promise.race([found, late]).finally(() => cancel());
}

/** `maybeFindOrphans` for a command, bounded by the engine timeout (MOAT_ENGINE_TIMEOUT). */
export function orphansLater(ctx: CliContext): Promise<ContainerSummary[] | undefined> {
  let timeoutMs: number;
  try {
    timeoutMs = engineTimeoutMs(ctx.env);
  } catch {
    return Promise.resolve(undefined); // a bad MOAT_ENGINE_TIMEOUT is for the command itself to report
  }
  return maybeFindOrphans(ctx.client, ctx.home, timeoutMs);
}

/** How many containers the notice names; the rest are counted. */
const NAMED = 3;

/** A container as the notice names it: its name, with its run when the name does not show it. Pure. */
function nameOf(c: ContainerSummary): string {
  const name = c.Names?.[0]?.replace(/^\//, "") || c.Id.slice(0, 12);
  // Labels are free text: keep control characters out of the terminal.
  const runId = runIdOf(c)?.replace(/[^\w.-]/g, "?");
  return runId && !name.includes(runId) ? `${name} of run ${runId}` : name;
}

/**
 * The one stderr line about orphaned containers, newest named first; `undefined` when there are none.
 * Pure.
 */
export function orphanNotice(orphans: readonly ContainerSummary[] | undefined): string | undefined {
  if (!orphans?.length) return undefined;
  const n = orphans.length;
  const named = [...orphans].sort((a, b) => b.Created - a.Created).slice(0, NAMED).map(nameOf).join(", ");
  const more = n > NAMED ? ` and ${n - NAMED} more` : "";
  return n === 1
    ? `moat: notice: 1 container left behind by a moat process that is gone (${named}); ` +
      "remove it with:  moat clean"
    : `moat: notice: ${n} containers left behind by moat processes that are gone (${named}${more}); ` +
      "remove them with:  moat clean";
}

/**
 * Await what `orphansLater` found and print the notice, leaving out the containers of `exceptRun` (the run
 * the command itself just stopped or removed: it says what became of it).
 */
export async function printOrphanNotice(
  ctx: CliContext,
  pending: Promise<ContainerSummary[] | undefined>,
  exceptRun?: string,
): Promise<void> {
  const orphans = (await pending)?.filter((c) => exceptRun === undefined || runIdOf(c) !== exceptRun);
  const line = orphanNotice(orphans);
  if (line) ctx.note(line);
}
