/**
 * `moat clean`: remove what no moat process will ever clean up — finished runs (their records, and their
 * containers when kept) and orphaned containers (moat's labels, no live owner: e.g. the `moat run` was
 * killed with `kill -9`, or a passwd probe was left behind) — of this MOAT_HOME only, unless `--all-homes`.
 * The decision is `planClean` (lib/run/clean.ts); this file gathers its facts (records, one
 * `GET /containers/json?size=1`, owner liveness), lists the items, asks, and removes. A run whose owner
 * process lives is never touched.
 */
import { MANAGED_FILTER } from "../run/labels.ts";
import type { ContainerSummary } from "../docker/types.ts";
import { EXIT, UsageError } from "../errors.ts";
import { parseCommandArgs } from "./args.ts";
import { type CleanItem, liveOwnersSettled, ownerKey, planClean } from "../run/clean.ts";
import { formatBytes } from "./format.ts";
import { directorySize } from "../store/disk_usage.ts";
import { homeOf, ofThisHome } from "../run/orphans.ts";
import { maybeHomeId } from "../store/home_id.ts";
import { bootId, isOwnerAlive } from "../store/owner.ts";
import { damageText, removeRunDir } from "../store/records.ts";
import { forgetStandby } from "../run/standby.ts";
import { asScan, rebuildIndex, scanRuns } from "../store/run_index.ts";
import { cliContext, formatTable } from "./context.ts";

export const CLEAN_HELP = `Usage: moat clean [OPTIONS]

Remove what is left over, after listing it and asking:
  - finished runs: their records in MOAT_HOME (run.json and the recorded output), and their
    containers when they were kept (--keep);
  - orphaned containers: moat's containers whose moat process is gone without cleaning up (e.g.
    after kill -9 of a moat run), including leftover passwd probe containers, with their records;
  - damaged records: a run.json that cannot be read, or an output.bin that is gone (stderr
    names the file and what is wrong), once no live moat process or running container has them.
  - run networks (moat-net-<id>: moat run --allow's, moat doctor's): with their run, after its
    containers, or alone once their moat process is gone (moat system networks: orphaned). One
    made ahead of the next --allow run is left alone while it waits (standby).
  - with --standby, also what is made ahead of the next run and waits for it: networks and
    relays of --allow runs, and sandboxes booted ahead of warm runs (moat run --warm).
A run whose moat process is still alive (a moat run in progress, a detached run's recorder) is
never touched. Run records of finished runs are removed too: this is how records are cleaned.
Only this MOAT_HOME's containers are considered (label dev.moat.home, or a run recorded here):
other users and other MOAT_HOMEs on the same engine keep theirs, unless --all-homes.

The list (stdout) has one line per run: RUN, NAME, STATE, WHY (finished, orphaned, lost or damaged),
CONTAINER, the container's size (its writable layer) and the record's size on disk.

On a terminal moat asks "Remove N items? [y/N]". When stdin is not a terminal, pass -f.

Options:
  -f, --force            Remove without asking
      --dry-run          Only list what would be removed
      --workspace DIR    Only runs and containers of this workspace
      --all-homes        Also the containers of other MOAT_HOMEs on this engine, and those of
                         moat versions that did not label their MOAT_HOME (judged by their labels)
      --standby          Also what waits for the next run: networks made ahead, warm sandboxes
  -h, --help             Print this help

Exit codes: 0 everything listed was removed (or nothing to do, or declined); 2 usage error (e.g.
no terminal and no -f); 125 the engine could not be asked, or something could not be removed (each
failure is reported on stderr).

Examples:
  moat clean --dry-run
  moat clean -f
  moat clean -f --workspace ~/src/app
`;

export interface ParsedCleanArgs {
  help: boolean;
  force: boolean;
  dryRun: boolean;
  workspace: string | undefined;
  /** `--all-homes`: every moat container on the engine, not only this MOAT_HOME's. */
  allHomes: boolean;
  /** `--standby`: also what is made ahead of the next run and waits for it. */
  standby: boolean;
}

/** Parse `moat clean` arguments. Pure; throws `UsageError`. */
export function parseCleanArgs(args: string[]): ParsedCleanArgs {
  const parsed = parseCommandArgs("clean", args, {
    help: { type: "boolean", short: "h" },
    force: { type: "boolean", short: "f" },
    "dry-run": { type: "boolean" },
    workspace: { type: "string" },
    "all-homes": { type: "boolean" },
    standby: { type: "boolean" },
  });
  const { values, positionals } = parsed;
  if (positionals.length > 0 && !values.help) {
    throw new UsageError(
      `Unexpected argument "${positionals[0]}": moat clean takes no runs`,
      `Remove one run:  moat destroy ${positionals[0]}`,
    );
  }
  return {
    help: values.help ?? false,
    force: values.force ?? false,
    dryRun: values["dry-run"] ?? false,
    workspace: values.workspace,
    allHomes: values["all-homes"] ?? false,
    standby: values.standby ?? false,
  };
}

/** An item's size: its containers' writable layers and its record's files. */
export interface ItemSizes {
  container: number | undefined;
  record: number | undefined;
}

/** A state with its exit code: `exited (0)`. Pure. */
function stateColumn(item: CleanItem): string {
  return item.exitCode === null ? String(item.state) : `${item.state} (${item.exitCode})`;
}

/** The list `moat clean` shows. Pure. */
export function formatCleanTable(items: CleanItem[], sizes: ItemSizes[]): string {
  return formatTable(
    ["RUN", "NAME", "STATE", "WHY", "CONTAINER", "CONTAINER SIZE", "RECORD SIZE"],
    items.map((item, i) => [
      item.runId || "-",
      item.name ?? "-",
      stateColumn(item),
      item.reason,
      item.containers.length ? item.containers.map((c) => c.Id.slice(0, 12)).join(",") : "-",
      sizes[i]?.container === undefined ? "-" : formatBytes(sizes[i]!.container!),
      sizes[i]?.record === undefined ? "-" : formatBytes(sizes[i]!.record!),
    ]),
  );
}

/** `1 item` / `3 items`. Pure. */
export function countItems(n: number): string {
  return `${n} item${n === 1 ? "" : "s"}`;
}

/** Whether an answer to `[y/N]` is yes. Pure. */
export function isYes(answer: string | null): boolean {
  return answer !== null && /^\s*y(es)?\s*$/i.test(answer);
}

function containerSize(cs: ContainerSummary[]): number | undefined {
  // The engine omits `SizeRw` when it is 0 (`omitempty`).
  return cs.length ? cs.reduce((n, c) => n + (c.SizeRw ?? 0), 0) : undefined;
}

/** The item has a run directory in this MOAT_HOME: a record, readable or damaged. */
function hasRecordDir(item: CleanItem): boolean {
  return item.record !== undefined || item.damage !== undefined;
}

/** One line from stdin (a terminal), or `null` at EOF. */
async function readLine(): Promise<string | null> {
  const buf = new Uint8Array(1024);
  let text = "";
  for (;;) {
    const n = await Deno.stdin.read(buf);
    if (n === null) return text === "" ? null : text;
    text += new TextDecoder().decode(buf.subarray(0, n));
    if (text.includes("\n")) return text.slice(0, text.indexOf("\n"));
  }
}

async function resolveWorkspace(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch (err) {
    throw new UsageError(
      `Workspace "${path}" cannot be resolved: ${err instanceof Error ? err.message : String(err)}`,
      "Give an existing directory:  moat clean --workspace .",
    );
  }
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
}

export async function command(args: string[]): Promise<number> {
  const opts = parseCleanArgs(args);
  const ctx = cliContext();
  if (opts.help) {
    await ctx.out(CLEAN_HELP);
    return 0;
  }
  ctx.checkEnv();
  const workspace = opts.workspace === undefined ? undefined : await resolveWorkspace(opts.workspace);
  // Everything read from the run directories (and the index rebuilt from them): clean acts on what is there.
  const { records, damaged } = asScan(rebuildIndex(ctx.home));
  const client = ctx.client();
  const listed = await client.containerList([MANAGED_FILTER], { size: true });
  // Other MOAT_HOMEs' containers are theirs to clean, unless asked (`--all-homes`).
  const here = new Set([...records.map((r) => r.id), ...damaged.map((d) => d.id)]);
  const containers = opts.allHomes ? listed : ofThisHome(listed, maybeHomeId(ctx.home), (id) => here.has(id));

  // moat's networks (`moat-net-<run id>`: an --allow run's, moat doctor's), of this MOAT_HOME like containers.
  const listedNetworks = await client.networkList([MANAGED_FILTER]);
  const networks = opts.allHomes
    ? listedNetworks
    : listedNetworks.filter((n) => homeOf(n, maybeHomeId(ctx.home), (id) => here.has(id)) === "this");

  const boot = bootId();
  const { scan, alive } = liveOwnersSettled(
    records,
    () => scanRuns(ctx.home),
    containers,
    (o) => isOwnerAlive(o, boot),
    networks,
  );
  const items = planClean({
    records: scan.records,
    containers,
    ownerAlive: (o) => o !== undefined && alive.has(ownerKey(o)),
    ...(workspace ? { workspace } : {}),
    damaged: scan.damaged,
    networks,
    standby: opts.standby,
  });
  if (items.length === 0) {
    ctx.note(`moat: nothing to clean${workspace ? ` for ${workspace}` : ""}`);
    return 0;
  }

  const sizes: ItemSizes[] = await Promise.all(items.map(async (item) => ({
    container: containerSize(item.containers),
    record: hasRecordDir(item) ? await directorySize(`${ctx.home}/runs/${item.runId}`) : undefined,
  })));
  await ctx.out(formatCleanTable(items, sizes));
  for (const item of items) if (item.damage) ctx.note(`moat: ${damageText(item.runId, item.damage)}`);
  const total = sizes.reduce((n, s) => n + (s.container ?? 0) + (s.record ?? 0), 0);
  const what = `${countItems(items.length)}, ${formatBytes(total)}`;

  if (opts.dryRun) {
    ctx.note(`moat: dry run: ${what} would be removed; nothing was removed`);
    return 0;
  }
  if (!opts.force) {
    if (!Deno.stdin.isTerminal()) {
      throw new UsageError(
        `Refusing to remove ${countItems(items.length)} without confirmation: stdin is not a terminal`,
        "Remove them without asking:  moat clean -f\nor only list them:  moat clean --dry-run",
      );
    }
    Deno.stderr.writeSync(new TextEncoder().encode(`Remove ${countItems(items.length)}? [y/N] `));
    if (!isYes(await readLine())) {
      ctx.note("moat: nothing removed");
      return 0;
    }
  }

  let failed = 0;
  let freed = 0;
  for (const [i, item] of items.entries()) {
    const label = item.runId ? `run ${item.runId}` : `container ${item.containers[0]!.Id.slice(0, 12)}`;
    let ok = true;
    const done: string[] = [];
    for (const c of item.containers) {
      try {
        await client.containerRemove(c.Id);
        done.push(`container ${c.Id.slice(0, 12)}`);
      } catch (err) {
        ok = false;
        ctx.note(`moat: could not remove container ${c.Id.slice(0, 12)} of ${label}: ${firstLine(err)}`);
        ctx.note(`  Remove it by hand:  docker rm -f ${c.Id}`);
      }
    }
    // A run's networks once its containers are gone (the engine refuses to remove a network still joined).
    for (const n of ok ? item.networks : []) {
      try {
        await client.networkRemove(n.Id);
        done.push(`network ${n.Name}`);
      } catch (err) {
        ok = false;
        ctx.note(`moat: could not remove the network of ${label}: ${firstLine(err)}`);
        ctx.note(`  Remove it by hand:  docker network rm ${n.Name}`);
      }
    }
    if (hasRecordDir(item)) {
      const dir = `${ctx.home}/runs/${item.runId}`;
      if (!ok) {
        ctx.note(`moat: kept the record of ${label} (${dir}) because its container is still there`);
      } else {
        try {
          await removeRunDir(ctx.home, item.runId);
          done.push("record");
        } catch (err) {
          ok = false;
          ctx.note(`moat: could not remove the record of ${label} (${dir}): ${firstLine(err)}`);
          ctx.note(`  Check its permissions:  ls -ld ${dir}`);
        }
      }
    }
    // What was made ahead is forgotten with it: no run takes it any more.
    if (ok && item.reason === "standby") forgetStandby(ctx.home, item.runId);
    if (ok) freed += (sizes[i]!.container ?? 0) + (sizes[i]!.record ?? 0);
    else failed++;
    if (done.length) await ctx.out(`removed ${item.runId || "-"}: ${done.join(", ")}\n`);
  }
  if (failed > 0) {
    ctx.note(`moat: ${countItems(failed)} of ${items.length} could not be removed (see above)`);
    return EXIT.failure;
  }
  ctx.note(`moat: removed ${countItems(items.length)}, ${formatBytes(freed)}`);
  return 0;
}
