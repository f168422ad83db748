/**
 * `moat stop [RUN]`: stop a run's container (SIGTERM, then SIGKILL after `--time` seconds) and make sure
 * its record ends in a final state with the exit code. This module parses the arguments, picks the run and
 * says what happened; ending the run — and who writes its record, the run's live owner or moat stop — is
 * lib/run/stop.ts. Stopping a run that already ended is not an error.
 */
import { MANAGED_FILTER } from "../run/labels.ts";
import { UsageError } from "../errors.ts";
import { DEFAULT_STOP_GRACE_S, parseCommandArgs, parseGrace } from "./args.ts";
import { newestRunning, stopRun } from "../run/stop.ts";
import { isFinal, type RunRecord } from "../store/records.ts";
import { readRuns } from "../store/run_index.ts";
import { resolveRunRef } from "../store/refs.ts";
import { cliContext } from "./context.ts";
import { orphansLater, printOrphanNotice } from "./orphan_notice.ts";

export const STOP_HELP = `Usage: moat stop [OPTIONS] [RUN]

Stop a run: its command gets SIGTERM, then SIGKILL when it has not exited after the grace
period. The run's record ends with its final state and exit code. Stopping a run that has
already ended is not an error (exit 0, a note on stderr).

RUN is a run id, a unique prefix of one, or a run name. Without RUN, the newest running run
is stopped (stderr says which); when nothing runs, there is nothing to do (exit 0).

The run id is printed on stdout; what happened goes to stderr.

Options:
  -t, --time SECONDS   Grace period between SIGTERM and SIGKILL (default: 10; 0 kills at once)
  -h, --help           Print this help

Exit codes: 0 stopped or already ended; 2 usage error (no such run, ambiguous reference);
125 the engine could not be asked or refused.

Examples:
  moat stop                  # the newest running run
  moat stop 3f2a             # by id prefix
  moat stop -t 0 fix-tests   # by name, without waiting
`;

export interface ParsedStopArgs {
  help: boolean;
  time: number;
  ref: string | undefined;
}

/** Parse `moat stop` arguments. Pure; throws `UsageError`. */
export function parseStopArgs(args: string[]): ParsedStopArgs {
  const parsed = parseCommandArgs("stop", args, {
    help: { type: "boolean", short: "h" },
    time: { type: "string", short: "t" },
  });
  const { values, positionals } = parsed;
  if (values.help) return { help: true, time: DEFAULT_STOP_GRACE_S, ref: undefined };
  if (positionals.length > 1) {
    throw new UsageError(
      `Unexpected argument "${positionals[1]}": moat stop takes one run`,
      `Stop them one at a time:  moat stop ${positionals[0]}`,
    );
  }
  return { help: false, time: parseGrace(values.time, "stop"), ref: positionals[0] };
}

/** One line on how a record ended: `exited, exit code 137`. Pure. */
export function describeEnd(r: RunRecord): string {
  const parts: string[] = [r.state];
  if (r.exitCode !== null) parts.push(`exit code ${r.exitCode}`);
  if (r.signal) parts.push(`by ${r.signal}`);
  return parts.join(", ");
}

export async function command(args: string[]): Promise<number> {
  const opts = parseStopArgs(args);
  const ctx = cliContext();
  if (opts.help) {
    await ctx.out(STOP_HELP);
    return 0;
  }
  ctx.checkEnv();
  const orphans = orphansLater(ctx);
  const { runs } = readRuns(ctx.home);
  let record: RunRecord;
  if (opts.ref !== undefined) {
    record = resolveRunRef(runs, opts.ref).record;
  } else {
    const pending = runs.filter((r) => !isFinal(r.state)).map((r) => r.record);
    const containers = pending.length ? await ctx.client().containerList([MANAGED_FILTER]) : [];
    const found = newestRunning(pending, containers);
    if (!found) {
      ctx.note("moat: no run is running; nothing to stop");
      await printOrphanNotice(ctx, orphans);
      return 0;
    }
    record = found;
    ctx.note(`moat: the newest running run is ${record.id}${record.name ? ` (${record.name})` : ""}`);
  }

  // A finished run whose container was removed needs no engine at all.
  if (isFinal(record.state) && (record.removed || !record.containerId)) {
    ctx.note(`moat: run ${record.id} already ended (${describeEnd(record)}); nothing to stop`);
    await ctx.out(`${record.id}\n`);
    await printOrphanNotice(ctx, orphans, record.id);
    return 0;
  }
  const result = await stopRun(ctx.client(), ctx.home, record, opts.time, ctx.note);
  const end = result.record;
  if (!end) {
    ctx.note(`moat: run ${record.id} was stopped; its record disappeared meanwhile (destroyed?)`);
  } else if (result.writtenBy === "already") {
    ctx.note(
      result.stopped
        ? `moat: run ${end.id} had already ended (${describeEnd(end)}); its kept container was stopped`
        : `moat: run ${end.id} already ended (${describeEnd(end)}); nothing to stop`,
    );
  } else if (!result.stopped) {
    ctx.note(`moat: run ${end.id} was not running; recorded as ${describeEnd(end)}`);
  } else {
    ctx.note(`moat: run ${end.id} stopped: ${describeEnd(end)}`);
  }
  await ctx.out(`${record.id}\n`);
  // The stopped run's own container is left out: the lines above say what became of it.
  await printOrphanNotice(ctx, orphans, record.id);
  return 0;
}
