/**
 * `moat wait RUN`: block until a run has ended, print its exit code, exit 0 — what `docker wait` does for a
 * container, for a moat run (a detached one above all: `moat run -d` returns at once). When a run has ended
 * and with what code is lib/run/watch.ts's to decide (`moat logs -f` stops on the same watcher).
 */
import { UsageError } from "../errors.ts";
import { parseCommandArgs } from "./args.ts";
import { exitCodeOfEnd, RunWatcher, watchIo } from "../run/watch.ts";
import { damagedRecordError } from "../store/records.ts";
import { damagedOf, readRuns } from "../store/run_index.ts";
import { resolveRunOrDamaged } from "../store/refs.ts";
import { cliContext } from "./context.ts";

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

/** `moat wait RUN` → 0 after printing the exit code. */
export async function command(args: string[]): Promise<number> {
  const opts = parseWaitArgs(args);
  const ctx = cliContext();
  if (opts.help) {
    await ctx.out(WAIT_HELP);
    return 0;
  }
  ctx.checkEnv();
  const all = readRuns(ctx.home);
  const found = resolveRunOrDamaged(all.runs, damagedOf(all), opts.ref);
  if ("damaged" in found) {
    const d = found.damaged;
    throw damagedRecordError(d.id, d.damage, "Its exit code cannot be read.\nRemove it:  moat clean");
  }
  const watcher = new RunWatcher(found.record.id, watchIo(ctx.home, () => ctx.client()));
  const code = exitCodeOfEnd(await watcher.waitForEnd());
  try {
    await ctx.out(`${code}\n`);
  } catch (err) {
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
  return 0;
}
