/**
 * `moat wait RUN`: block until a run has ended, print its exit code, exit 0 — what `docker wait` does for a
 * container, for a moat run (a detached one above all: `moat run -d` returns at once). The same watcher
 * decides when `moat logs -f` stops, and gives `moat logs -f --exit-code` its exit status.
 *
 * A run has ended when its record reaches a final state. A run nobody records any more (its moat process
 * was killed) has ended when its container is not running; its exit code is then the container's, as the
 * engine reports it, when there is one.
 */
import { firstLineOf, MoatError, UsageError } from "../errors.ts";
import { parseCommandArgs } from "./args.ts";
import { isFinal } from "../run/reconcile.ts";
import { isOwnerAlive } from "../store/owner.ts";
import { damagedRecordError, maybeReadRecord, type RunRecord, scanRecords } from "../store/records.ts";
import { resolveRunOrDamaged } from "../store/refs.ts";
import { type CliContext, cliContext } from "./context.ts";

export const WAIT_HELP = `Usage: moat wait RUN

Block until RUN has ended, then print its exit code on stdout and exit 0, like docker wait.
RUN is a run id, a unique prefix of one, or a run name. A run that has already ended is
answered at once. Works from the run records; the engine is asked only about a run whose
moat process is gone (killed), for its container's exit code.

Exit codes: 0 the run ended and its exit code was printed; 2 usage error (no RUN, no run
matches); 125 the run ended without an exit code (it failed or was interrupted before its
command ran, its record was removed, or its moat process is gone and its container's code
cannot be had).

Options:
  -h, --help     Print this help

Examples:
  moat wait 3f2a
  id=$(moat run -d -- make test) && moat logs -f "$id"; exit "$(moat wait "$id")"
`;

/** Parse `moat wait` arguments. Pure; throws `UsageError`. */
export function parseWaitArgs(args: string[]): { help: boolean; ref: string } {
  const { values, positionals } = parseCommandArgs("wait", args, { help: { type: "boolean", short: "h" } });
  if (values.help) return { help: true, ref: "" };
  if (positionals.length === 0) {
    throw new UsageError(
      "moat wait needs the run to wait for",
      "Name it by id, id prefix or name:  moat wait RUN   (see the runs:  moat list)",
    );
  }
  if (positionals.length > 1) {
    throw new UsageError(
      `Unexpected argument "${positionals[1]}": moat wait takes one run`,
      `Wait for them one at a time:  moat wait ${positionals[0]}`,
    );
  }
  return { help: false, ref: positionals[0]! };
}

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

const ENGINE_CHECK_MS = 1000;

/**
 * Watches one run until it ends: its record reaches a final state, or its record is removed, or its owner
 * is gone and the engine says its container is not running (asked at most once a second). Reads the record
 * each time it is asked.
 */
export class RunWatcher {
  #ctx: CliContext;
  #id: string;
  #lastEngineCheck = -Infinity;
  #engineSaysRunning = false;
  #engineExitCode: number | undefined;
  #end: RunEnd | undefined;

  constructor(ctx: CliContext, rec: RunRecord) {
    this.#ctx = ctx;
    this.#id = rec.id;
  }

  /** How the run ended; `undefined` until `inProgress` has said `false`. */
  get end(): RunEnd | undefined {
    return this.#end;
  }

  async inProgress(): Promise<boolean> {
    const rec = maybeReadRecord(this.#ctx.home, this.#id);
    if (!rec) {
      this.#end = { kind: "removed", id: this.#id };
      return false;
    }
    if (isFinal(rec.state)) {
      this.#end = { kind: "final", record: rec };
      return false;
    }
    if (rec.owner && isOwnerAlive(rec.owner)) return true;
    // Nobody records this run any more (its moat process was killed). It goes on as long as its container
    // runs; ask the engine at most once a second.
    const gone = "the moat process that ran it is gone";
    if (!rec.containerId) {
      this.#end = { kind: "abandoned", id: this.#id, why: gone, exitCode: undefined };
      return false;
    }
    const now = Date.now();
    if (now - this.#lastEngineCheck >= ENGINE_CHECK_MS) {
      this.#lastEngineCheck = now;
      try {
        const c = await this.#ctx.client().maybeContainerInspect(rec.containerId);
        this.#engineSaysRunning = c?.State.Running ?? false;
        // "created" (never started) has an ExitCode of 0 that is no command's: only an ended one counts.
        const ended = c?.State.Status === "exited" || c?.State.Status === "dead";
        this.#engineExitCode = ended ? c!.State.ExitCode : undefined;
      } catch (err) {
        const why = firstLineOf(err);
        this.#end = {
          kind: "abandoned",
          id: this.#id,
          why: `${gone}, and the engine could not be asked about its container (${why})`,
          exitCode: undefined,
        };
        return false;
      }
      if (!this.#engineSaysRunning) {
        this.#end = {
          kind: "abandoned",
          id: this.#id,
          why: `${gone} and its container is not running`,
          exitCode: this.#engineExitCode,
        };
      }
    }
    return this.#engineSaysRunning;
  }
}

const POLL_MS = 100;

/** Watch until the run ends (polling its record about ten times a second); how it ended. */
export async function waitForEnd(watcher: RunWatcher): Promise<RunEnd> {
  while (await watcher.inProgress()) await new Promise((r) => setTimeout(r, POLL_MS));
  return watcher.end!;
}

/** `moat wait RUN` → 0 after printing the exit code. */
export async function command(args: string[]): Promise<number> {
  const opts = parseWaitArgs(args);
  const ctx = cliContext();
  if (opts.help) {
    await ctx.out(WAIT_HELP);
    return 0;
  }
  ctx.checkEnv();
  const { records, damaged } = scanRecords(ctx.home);
  const found = resolveRunOrDamaged(records, damaged, opts.ref);
  if ("damaged" in found) {
    const d = found.damaged;
    throw damagedRecordError(d.id, d.damage, "Its exit code cannot be read.\nRemove it:  moat clean");
  }
  const code = exitCodeOfEnd(await waitForEnd(new RunWatcher(ctx, found.record)));
  try {
    await ctx.out(`${code}\n`);
  } catch (err) {
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
  return 0;
}
