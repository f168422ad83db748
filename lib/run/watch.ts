/**
 * When a run has ended, and with what exit code: what `moat wait` prints, where `moat logs -f` stops and
 * what `moat logs -f --exit-code` exits with.
 *
 * A run has ended when its record reaches a final state, or its record is removed. A run nobody records
 * any more (its moat process was killed) has ended when its container is not running; its exit code is
 * then the container's, as the engine reports it, when there is one.
 *
 * `judgeRun` decides from data (the record, whether its owner lives, the engine's inspect of its
 * container) and says which of those it needs next; `RunWatcher` looks them up through a `WatchIo`.
 */
import type { EngineClient } from "../docker/client.ts";
import type { ContainerInspect } from "../docker/types.ts";
import { firstLineOf, MoatError } from "../errors.ts";
import { isOwnerAlive } from "../store/owner.ts";
import { maybeReadRecord, type Owner, type RunRecord } from "../store/records.ts";
import { isFinal } from "../store/records.ts";

/** How a watched run ended, as far as moat can tell. */
export type RunEnd =
  /** Its record reached a final state. */
  | { kind: "final"; record: RunRecord }
  /** Its record was removed (`moat destroy`, `moat clean`) before it ended. */
  | { kind: "removed"; id: string }
  /**
   * Nobody records it any more (its owner is gone): `why` says what moat found; `exitCode` is the
   * container's when the engine showed it exited.
   */
  | { kind: "abandoned"; id: string; why: string; exitCode: number | undefined };

/** The run's exit code, or the error that says why it has none. Pure. */
export function exitCodeOfEnd(end: RunEnd): number {
  switch (end.kind) {
    case "final": {
      const r = end.record;
      if (r.exitCode !== null) return r.exitCode;
      throw new MoatError(
        `Run ${r.id} ended (${r.state}) without an exit code${r.error ? `: ${r.error.split("\n")[0]}` : ""}`,
        `See what it printed:  moat logs ${r.id}`,
      );
    }
    case "removed":
      throw new MoatError(
        `Run ${end.id} was removed before it ended: its exit code is unknown`,
        "See the runs:  moat list",
      );
    case "abandoned":
      if (end.exitCode !== undefined) return end.exitCode;
      throw new MoatError(
        `Run ${end.id} has no exit code: ${end.why}`,
        `See what it printed:  moat logs ${end.id}\nRemove what is left of it:  moat clean`,
      );
  }
}

/** What the engine answered about a run's container. */
export type EngineAnswer =
  /** Its inspect; `undefined` when the engine has no such container. */
  | { container: ContainerInspect | undefined }
  /** Asking failed: the first line of the error. */
  | { error: string };

/** What moat knows of a run at one look. `ownerAlive` and `engine` are looked up when `judgeRun` asks. */
export interface RunFacts {
  /** Its record as read now; `undefined` once it is removed. */
  record: RunRecord | undefined;
  /** Whether the process that owns the run (the record's `owner`) is alive. */
  ownerAlive?: boolean;
  /** What the engine said about the record's container. */
  engine?: EngineAnswer;
}

/** One look at a run: it has ended (how), it goes on, or a fact must be looked up before deciding. */
export type RunVerdict =
  | { kind: "ended"; end: RunEnd }
  | { kind: "going" }
  | { kind: "ask-owner"; owner: Owner }
  | { kind: "ask-engine"; containerId: string };

const GONE = "the moat process that ran it is gone";

/**
 * Whether run `id` has ended, from the facts at hand. A run whose owner lives goes on; one nobody records
 * any more goes on while the engine says its container runs. Asks for the owner's liveness only of a run
 * in progress that names its owner, and for the engine only once the owner is gone. Pure.
 */
export function judgeRun(id: string, facts: RunFacts): RunVerdict {
  const rec = facts.record;
  if (!rec) return ended({ kind: "removed", id });
  if (isFinal(rec.state)) return ended({ kind: "final", record: rec });
  if (rec.owner) {
    if (facts.ownerAlive === undefined) return { kind: "ask-owner", owner: rec.owner };
    if (facts.ownerAlive) return { kind: "going" };
  }
  // Nobody records this run any more (its moat process was killed). It goes on as long as its container runs.
  if (!rec.containerId) return ended({ kind: "abandoned", id, why: GONE, exitCode: undefined });
  const engine = facts.engine;
  if (!engine) return { kind: "ask-engine", containerId: rec.containerId };
  if ("error" in engine) {
    const why = `${GONE}, and the engine could not be asked about its container (${engine.error})`;
    return ended({ kind: "abandoned", id, why, exitCode: undefined });
  }
  const c = engine.container;
  if (c?.State.Running) return { kind: "going" };
  // "created" (never started) has an ExitCode of 0 that is no command's: only an ended one counts.
  const exited = c?.State.Status === "exited" || c?.State.Status === "dead";
  return ended({
    kind: "abandoned",
    id,
    why: `${GONE} and its container is not running`,
    exitCode: exited ? c!.State.ExitCode : undefined,
  });
}

function ended(end: RunEnd): RunVerdict {
  return { kind: "ended", end };
}

/** What a `RunWatcher` looks things up with. */
export interface WatchIo {
  /** The run's record as it is now; `undefined` once it is removed (or cannot be read). */
  readRecord(id: string): RunRecord | undefined;
  /** Whether a run's owner process is alive. */
  isOwnerAlive(owner: Owner): boolean;
  /** The engine client, made on first use: a run whose owner lives never needs one. Errors it throws count as the engine's answer. */
  client(): Pick<EngineClient, "maybeContainerInspect">;
  /** Milliseconds, for spacing the engine's asks. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** The `WatchIo` of the runs under MOAT_HOME `home`: run records on disk, `/proc` and the engine. */
export function watchIo(home: string, client: () => Pick<EngineClient, "maybeContainerInspect">): WatchIo {
  return {
    readRecord: (id) => maybeReadRecord(home, id),
    isOwnerAlive: (owner) => isOwnerAlive(owner),
    client,
    now: () => Date.now(),
    // A plain sleep with nothing else pending: `setTimeout`, which keeps the process alive (lib/timer.ts).
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
}

const ENGINE_CHECK_MS = 1000;
const POLL_MS = 100;

/**
 * Watches one run until it ends: its record reaches a final state, or its record is removed, or its owner
 * is gone and the engine says its container is not running (asked at most once a second; between asks its
 * last answer holds). Reads the record each time it is asked.
 */
export class RunWatcher {
  readonly id: string;
  #io: WatchIo;
  #lastEngineCheck = -Infinity;
  #engine: EngineAnswer | undefined;
  #end: RunEnd | undefined;

  constructor(id: string, io: WatchIo) {
    this.id = id;
    this.#io = io;
  }

  /** How the run ended; `undefined` until `inProgress` has said `false`. */
  get end(): RunEnd | undefined {
    return this.#end;
  }

  async inProgress(): Promise<boolean> {
    const facts: RunFacts = { record: this.#io.readRecord(this.id) };
    for (;;) {
      const v = judgeRun(this.id, facts);
      switch (v.kind) {
        case "ended":
          this.#end = v.end;
          return false;
        case "going":
          return true;
        case "ask-owner":
          facts.ownerAlive = this.#io.isOwnerAlive(v.owner);
          break;
        case "ask-engine":
          facts.engine = await this.#askEngine(v.containerId);
          break;
      }
    }
  }

  /** Watch until the run ends (reading its record about ten times a second); how it ended. */
  async waitForEnd(): Promise<RunEnd> {
    while (await this.inProgress()) await this.#io.sleep(POLL_MS);
    return this.#end!;
  }

  async #askEngine(containerId: string): Promise<EngineAnswer> {
    const now = this.#io.now();
    if (this.#engine && now - this.#lastEngineCheck < ENGINE_CHECK_MS) return this.#engine;
    this.#lastEngineCheck = now;
    try {
      this.#engine = { container: await this.#io.client().maybeContainerInspect(containerId) };
    } catch (err) {
      this.#engine = { error: firstLineOf(err) };
    }
    return this.#engine;
  }
}
