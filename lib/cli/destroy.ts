/**
 * `moat destroy RUN`: remove a run's containers (its own, a kept one, a leftover passwd probe — every
 * container labelled `dev.moat.run-id=<id>`) and its record directory. A running run is refused unless
 * `--force`, which stops it first (as `moat stop` does, so a live owner finishes before its record goes),
 * then removes it. The record is removed only once every container is gone, so a failed removal can be
 * retried with the same command.
 */
import { labelOf, LABELS, MANAGED_FILTER } from "../run/labels.ts";
import { MoatError, UsageError } from "../errors.ts";
import { parseCommandArgs, parseGrace } from "./args.ts";
import { isLive, ownerOf } from "../run/orphans.ts";
import { stopRun } from "../run/stop.ts";
import { isOwnerAlive } from "../store/owner.ts";
import { isFinal, removeRunDir, type RunRecord } from "../store/records.ts";
import { readRuns } from "../store/run_index.ts";
import { resolveRunRef } from "../store/refs.ts";
import { cliContext } from "./context.ts";
import { orphansLater, printOrphanNotice } from "./orphan_notice.ts";

export const DESTROY_HELP = `Usage: moat destroy [OPTIONS] RUN

Remove a run: its container(s) on the engine and its record (run.json and the recorded output)
in MOAT_HOME. A run that is still running is refused; stop it first, or pass --force to stop
and remove it at once.

RUN is a run id, a unique prefix of one, or a run name (required).

The run id is printed on stdout; what was removed goes to stderr.

Options:
  -f, --force          Stop the run first when it is running (SIGTERM, then SIGKILL)
  -t, --time SECONDS   With --force: grace period between SIGTERM and SIGKILL (default: 10)
  -h, --help           Print this help

Exit codes: 0 removed; 2 usage error (no RUN, no such run, ambiguous reference, the run is
running without --force); 125 the engine could not be asked, or something could not be removed.

Examples:
  moat destroy 3f2a
  moat destroy --force fix-tests
  moat list --json | jq -r '.[] | select(.state == "failed") | .id' | xargs -n1 moat destroy
`;

export interface ParsedDestroyArgs {
  help: boolean;
  force: boolean;
  time: number;
  ref: string;
}

/** Parse `moat destroy` arguments. Pure; throws `UsageError`. */
export function parseDestroyArgs(args: string[]): ParsedDestroyArgs {
  const parsed = parseCommandArgs("destroy", args, {
    help: { type: "boolean", short: "h" },
    force: { type: "boolean", short: "f" },
    time: { type: "string", short: "t" },
  });
  const { values, positionals } = parsed;
  if (values.help) return { help: true, force: false, time: 0, ref: "" };
  if (positionals.length === 0) {
    throw new UsageError(
      "moat destroy needs the run to remove",
      "Name it by id, id prefix or name:  moat destroy RUN   (see the runs:  moat list)",
    );
  }
  if (positionals.length > 1) {
    throw new UsageError(
      `Unexpected argument "${positionals[1]}": moat destroy takes one run`,
      `Remove them one at a time:  moat destroy ${positionals[0]}`,
    );
  }
  return {
    help: false,
    force: values.force ?? false,
    time: parseGrace(values.time, "destroy --force"),
    ref: positionals[0]!,
  };
}

/** The refusal for a running run without `--force`. */
export function runningError(record: RunRecord): UsageError {
  return new UsageError(
    `Run ${record.id} is running; moat destroy does not remove a running run`,
    `Stop it first:  moat stop ${record.id}\nor stop and remove it at once:  moat destroy --force ${record.id}`,
  );
}

export async function command(args: string[]): Promise<number> {
  const opts = parseDestroyArgs(args);
  const ctx = cliContext();
  if (opts.help) {
    await ctx.out(DESTROY_HELP);
    return 0;
  }
  ctx.checkEnv();
  const orphans = orphansLater(ctx);
  const record = resolveRunRef(readRuns(ctx.home).runs, opts.ref).record;
  const id = record.id;
  const client = ctx.client();
  const containers = await client.containerList([
    MANAGED_FILTER,
    `${LABELS.runId}=${id}`,
  ]);
  const owner = record.owner ?? containers.map((c) => ownerOf(c, undefined)).find((o) => o !== undefined);
  const ownerAlive = owner ? isOwnerAlive(owner) : false;
  // A finished run's helper that is still there (its relay, removed in the background after a run in the
  // foreground) does not make it running: it goes with the run below.
  const live = containers.filter((c) => isLive(c.State) && !(isFinal(record.state) && labelOf(c, "probe")));
  const running = live.length > 0 || (!isFinal(record.state) && ownerAlive);
  if (running) {
    if (!opts.force) throw runningError(record);
    // Stop through the owner-aware path, so a live `moat run` records its end before the record goes.
    await stopRun(client, ctx.home, record, opts.time, ctx.note).catch((err) => {
      // A run still starting has no container to stop yet; removal below kills whatever exists by then.
      if (!(err instanceof MoatError)) throw err;
      ctx.note(`moat: note: ${err.message}; removing it anyway`);
    });
  }

  // Every container of the run as the engine lists it now (a live owner may have removed its own).
  const ids = running
    ? (await client.containerList([MANAGED_FILTER, `${LABELS.runId}=${id}`])).map((c) => c.Id)
    : containers.map((c) => c.Id);
  const removed: string[] = [];
  for (const cid of ids) {
    try {
      await client.containerRemove(cid);
      removed.push(cid.slice(0, 12));
    } catch (err) {
      throw new MoatError(
        `Could not remove container ${cid.slice(0, 12)} of run ${id}: ${
          err instanceof Error ? err.message.split("\n")[0] : String(err)
        }`,
        `The record was kept. Remove the container by hand:  docker rm -f ${cid}\nthen:  moat destroy ${id}`,
        { cause: err },
      );
    }
  }
  const dir = `${ctx.home}/runs/${id}`;
  try {
    await removeRunDir(ctx.home, id);
  } catch (err) {
    throw new MoatError(
      `Could not remove the record of run ${id} (${dir}): ${
        err instanceof Error ? err.message : String(err)
      }`,
      `Check its permissions:  ls -ld ${dir}`,
    );
  }
  ctx.note(
    `moat: destroyed run ${id}${record.name ? ` (${record.name})` : ""}: ${
      removed.length ? `container${removed.length > 1 ? "s" : ""} ${removed.join(", ")} and ` : ""
    }record removed`,
  );
  await ctx.out(`${id}\n`);
  // The destroyed run's containers are left out: the engine listed them before they were removed.
  await printOrphanNotice(ctx, orphans, id);
  return 0;
}
