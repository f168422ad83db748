/**
 * Ending a run: stop its container (SIGTERM, then SIGKILL after the grace period) and make sure its record
 * ends in a final state with the exit code. `moat stop` and `moat destroy --force` both end runs this way.
 *
 * Who writes the record: a run whose owner process lives (a foreground `moat run`, or a detached run's
 * recorder) records its own end — it learns the exit from its wait on the container. `stopRun` then only
 * stops the container and waits up to `OWNER_GRACE_MS` for the owner to write; if the owner has not
 * written by then (or dies), `stopRun` writes the final state itself from `GET /containers/{id}/json`
 * (`State.ExitCode`). A run without a live owner is always recorded by `stopRun`. Stopping a run that
 * already ended is not an error.
 *
 * The decisions (`newestRunning`, and the record transition `finalPatch` in record_life.ts) are pure; the engine comes in as an
 * `EngineClient`, the lines to print go out through a `note` callback.
 */
import * as life from "./record_life.ts";
import type { EngineClient } from "../docker/client.ts";
import type { ContainerInspect, ContainerSummary } from "../docker/types.ts";
import { MoatError } from "../errors.ts";
import { bootId, isOwnerAlive } from "../store/owner.ts";
import { maybeReadRecord, type Owner, type RunRecord, RunStore } from "../store/records.ts";
import { isLive, ownerOf } from "./orphans.ts";
import { containersByRun, engineViewOf } from "./reconcile.ts";
import { isFinal } from "../store/records.ts";

/** How long to wait, after the container stopped, for a live owner to record the end itself. */
export const OWNER_GRACE_MS = 5000;

/** The summary-shaped view of an inspect, for the helpers that read labels and states. Pure. */
export function summaryOf(c: ContainerInspect): ContainerSummary {
  return {
    Id: c.Id,
    Names: [c.Name],
    Image: "",
    State: c.State.Status,
    Status: "",
    Labels: c.Config.Labels ?? null,
    Created: 0,
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Wait until the owner writes a final state, dies, or `ms` pass. Returns the record as last read
 * (`undefined` when it disappeared, e.g. destroyed meanwhile).
 */
export async function waitForOwner(
  home: string,
  id: string,
  owner: Owner,
  ms: number,
): Promise<RunRecord | undefined> {
  const boot = bootId();
  const deadline = Date.now() + ms;
  for (;;) {
    const rec = maybeReadRecord(home, id);
    if (!rec || isFinal(rec.state)) return rec;
    if (!isOwnerAlive(owner, boot) || Date.now() >= deadline) {
      // One last read: the owner may have written just before it exited.
      return maybeReadRecord(home, id);
    }
    await sleep(100);
  }
}

export interface StopResult {
  /** The container was running and has been stopped now. */
  stopped: boolean;
  /** The record as it ends (`undefined` when it disappeared meanwhile). */
  record: RunRecord | undefined;
  /** Who wrote the final state: the run's owner, `stopRun`, or nobody (it was final already). */
  writtenBy: "owner" | "stop" | "already";
}

/** Whether the record's owner — or, for older records, the owner its container is labelled with — lives. */
function ownerOfRun(
  record: RunRecord,
  container: ContainerInspect | undefined,
): { owner: Owner | undefined; alive: boolean } {
  const owner = record.owner ?? (container ? ownerOf(summaryOf(container), undefined) : undefined);
  return { owner, alive: owner ? isOwnerAlive(owner) : false };
}

/**
 * Stop one run and bring its record to a final state (see the module comment for who writes it). Used by
 * `moat stop` and `moat destroy --force`. Throws engine errors (`MoatError`).
 */
export async function stopRun(
  client: EngineClient,
  home: string,
  record: RunRecord,
  graceSeconds: number,
  note: (line: string) => void,
): Promise<StopResult> {
  const id = record.id;
  const cid = record.containerId;
  let container = cid && !record.removed ? await client.maybeContainerInspect(cid) : undefined;
  const { owner, alive } = ownerOfRun(record, container);

  if (!cid && !isFinal(record.state) && alive) {
    throw new MoatError(
      `Run ${id} is still starting: it has no container to stop yet`,
      `Try again in a moment:  moat stop ${id}`,
    );
  }

  let stopped = false;
  if (container && isLive(container.State.Status)) {
    note(
      graceSeconds > 0
        ? `moat: stopping run ${id} (container ${
          cid!.slice(0, 12)
        }): SIGTERM, SIGKILL after ${graceSeconds} s…`
        : `moat: stopping run ${id} (container ${cid!.slice(0, 12)}): SIGKILL`,
    );
    if (graceSeconds > 0) await client.containerStop(cid!, graceSeconds);
    else await client.containerKill(cid!, "SIGKILL");
    stopped = true;
  }

  if (isFinal(record.state)) return { stopped, record, writtenBy: "already" };

  if (alive && owner) {
    const after = await waitForOwner(home, id, owner, OWNER_GRACE_MS);
    if (!after || isFinal(after.state)) return { stopped, record: after, writtenBy: "owner" };
  }

  // Nobody else will record the end (or the owner did not in time): write it from what the engine shows.
  const store = RunStore.open(home, id);
  if (!store) return { stopped, record: undefined, writtenBy: "stop" };
  if (isFinal(store.record.state)) return { stopped, record: store.record, writtenBy: "owner" };
  if (cid && !store.record.removed) {
    container = await client.maybeContainerInspect(cid);
    if (container && isLive(container.State.Status)) {
      // Restarted or not stopped yet (a stop that raced an owner starting it): do not write a final state.
      throw new MoatError(
        `Run ${id} is still running after the stop: container ${
          cid.slice(0, 12)
        } is ${container.State.Status}`,
        `Try again, or kill it at once:  moat stop -t 0 ${id}`,
      );
    }
  } else {
    container = undefined;
  }
  store.update(life.finalPatch(store.record, container, new Date().toISOString()));
  return { stopped, record: store.record, writtenBy: "stop" };
}

/** The newest unfinished record whose container is live on the engine. Pure. */
export function newestRunning(records: RunRecord[], containers: ContainerSummary[]): RunRecord | undefined {
  // Running means its container runs (a record that says so without a container is not stoppable).
  const byRun = containersByRun(containers);
  return records.find((r) => {
    const view = engineViewOf(r, byRun);
    return !isFinal(r.state) && typeof view === "object" && isLive(view.State);
  });
}
