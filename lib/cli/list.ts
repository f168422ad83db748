/**
 * `moat list` (alias `ls`): the runs recorded in MOAT_HOME, newest first, with their states checked against
 * the engine read-only. The engine is asked once (`GET /containers/json?all=1` filtered by moat's label,
 * bounded by the client's timeout, while the records are read); containers are matched to records by the
 * `dev.moat.run-id` label. No record is ever written from here (issue 3): a run that looks lost is shown
 * as `lost`, not recorded so (the states are decided by `listEntries` in lib/run/reconcile.ts). The same
 * listing finds this MOAT_HOME's containers left behind by a moat process that is gone (`orphansListed`
 * in lib/run/orphans.ts): one notice line on stderr, after the list (lib/cli/orphan_notice.ts).
 */
import { MANAGED_FILTER } from "../run/labels.ts";
import type { ContainerSummary } from "../docker/types.ts";
import { MoatError, UsageError } from "../errors.ts";
import { parseCommandArgs } from "./args.ts";
import { listEntries, type ListEntry, type ListState, liveOwners } from "../run/reconcile.ts";
import { orphansListed, ownerLiveness } from "../run/orphans.ts";
import { damageText, type RecordDamage, type RunRecord, scanRecords } from "../store/records.ts";
import { type CliContext, cliContext, formatAge, formatTable } from "./context.ts";
import { orphanNotice } from "./orphan_notice.ts";

/** Runs the table shows without `-a` (older runs that need attention are shown too). */
export const TABLE_LIMIT = 20;

export const LIST_HELP = `Usage: moat list [OPTIONS]
       moat ls [OPTIONS]

List the runs recorded in MOAT_HOME (default: ~/.moat), newest first. Each state is checked
against the Docker engine with one container listing; no record is changed. When the engine
cannot be asked, the recorded states are shown and one line on stderr says so (exit 0).
Containers left behind by a moat process that is gone (e.g. after kill -9) get one notice
line on stderr; moat clean removes them.

Columns:
  NAME     the run's --name, or -
  ID       the run id (any unique prefix of it works as a run reference)
  STATE    creating, created, running, exited, interrupted, failed, lost (recorded as in
           progress, but its container and the moat process that drove it are gone), or
           damaged (its run.json cannot be read, or its output.bin is gone: a warning line on
           stderr says which file and what is wrong; moat clean removes it)
  SANDBOX  gvisor or none, with the runtime the engine ran it with, e.g. gvisor (runsc)
  IMAGE    the image it ran
  AGE      time since it was created
  EXIT     the command's exit code, or - while running or when unknown

The table shows the newest ${TABLE_LIMIT} runs, and any older run still in progress, lost or
damaged; one line on stderr says how many are left out. -a shows every run; --json always
lists every run.

Options:
  -a, --all      Show every run in the table
      --json     Print a JSON array of every run instead (schema: docs/reference/cli.md#moat-list)
  -h, --help     Print this help

Examples:
  moat list
  moat list -a
  moat ls --json | jq -r '.[] | select(.shownState == "lost") | .id'
  MOAT_HOME=/srv/moat moat list
`;

export interface ParsedListArgs {
  help: boolean;
  json: boolean;
  all: boolean;
}

/** Parse `moat list` arguments; throws `UsageError`. */
export function parseListArgs(args: string[]): ParsedListArgs {
  const { values, positionals } = parseCommandArgs("list", args, {
    help: { type: "boolean", short: "h" },
    json: { type: "boolean" },
    all: { type: "boolean", short: "a" },
  });
  if (positionals.length > 0 && !values.help) {
    throw new UsageError(
      `Unexpected argument "${positionals[0]}": moat list takes no arguments`,
      "List every run:  moat list",
    );
  }
  return { help: values.help ?? false, json: values.json ?? false, all: values.all ?? false };
}

/** A run in progress, lost or damaged: shown in the table however old it is. */
function needsAttention(e: ListEntry): boolean {
  return e.shownState !== "exited" && e.shownState !== "interrupted" && e.shownState !== "failed";
}

/**
 * The entries the table shows without `-a`: the newest `limit`, and every older one that needs attention,
 * in the order given (newest first). Pure.
 */
export function tableEntries(entries: ListEntry[], limit = TABLE_LIMIT): ListEntry[] {
  return entries.filter((e, i) => i < limit || needsAttention(e));
}

/** `gvisor (runsc)`, `none (runc)`, or just the sandbox when the runtime is not known yet. Pure. */
export function sandboxColumn(record: RunRecord): string {
  return record.runtime ? `${record.sandbox} (${record.runtime})` : record.sandbox;
}

export const LIST_HEADER = ["NAME", "ID", "STATE", "SANDBOX", "IMAGE", "AGE", "EXIT"];

/** The table, header included (an empty list is just the header). Pure given `now`. */
export function formatListTable(entries: ListEntry[], now: number): string {
  return formatTable(
    LIST_HEADER,
    entries.map((e) => [
      e.record?.name ?? "-",
      e.id,
      e.shownState,
      e.record ? sandboxColumn(e.record) : "-",
      e.record?.image ?? "-",
      e.record ? formatAge(e.record.createdAt, now) : "-",
      e.shownExitCode === null ? "-" : String(e.shownExitCode),
    ]),
  );
}

/** The stderr line `moat list` prints for each damaged record, after the table. Pure. */
export function damageWarning(e: { id: string; damage: RecordDamage }): string {
  return `moat: warning: ${damageText(e.id, e.damage)}; remove it with:  moat clean`;
}

/**
 * One element of `moat list --json`: every field of `run.json` as stored, plus the shown fields and
 * `damage`. A run whose `run.json` cannot be read has only `id` and those. Fields are only ever added
 * (docs/reference/cli.md#moat-list).
 */
export type ListJsonItem = Partial<RunRecord> & {
  id: string;
  shownState: ListState;
  shownExitCode: number | null;
  containerState: string | null;
  damage: RecordDamage | null;
};

export function listJsonItems(entries: ListEntry[]): ListJsonItem[] {
  return entries.map((e) => ({
    ...(e.record ?? { id: e.id }),
    shownState: e.shownState,
    shownExitCode: e.shownExitCode,
    containerState: e.containerState,
    damage: e.damage,
  }));
}

/** What one engine listing said: the containers, or the error (first line) that kept us from asking. */
export type EngineListing = { containers: ContainerSummary[] } | { error: MoatError };

/**
 * List moat's containers with one call, bounded by the client's timeout. A `MoatError` (engine down, slow,
 * a bad DOCKER_HOST) is returned, not thrown, so callers can still work from records.
 */
export async function listManagedContainers(ctx: CliContext): Promise<EngineListing> {
  try {
    return { containers: await ctx.client().containerList([MANAGED_FILTER]) };
  } catch (err) {
    if (err instanceof MoatError) return { error: err };
    throw err;
  }
}

/** The one stderr line when the engine could not be asked. */
export function engineNotAskedNote(err: MoatError): string {
  return `moat: note: showing recorded states; the engine could not be asked: ${err.message.split("\n")[0]}`;
}

export async function command(args: string[]): Promise<number> {
  const opts = parseListArgs(args);
  const ctx = cliContext();
  if (opts.help) {
    await ctx.out(LIST_HELP);
    return 0;
  }
  ctx.checkEnv();
  // The one listing serves both the states and the orphan notice, so it is asked even with no records.
  // Asked first: the engine's connect and answer overlap reading the records.
  const asked = listManagedContainers(ctx);
  const { records, damaged } = scanRecords(ctx.home);
  const listing = await asked;
  let containers: ContainerSummary[] | undefined;
  if ("containers" in listing) containers = listing.containers;
  // With nothing recorded there is nothing to show from records; the notice alone stays silent.
  else if (records.length + damaged.length > 0) ctx.note(engineNotAskedNote(listing.error));
  const alive = liveOwners(records, containers, ownerLiveness());
  const orphans = containers ? await listedOrphans(ctx, records, containers) : undefined;
  const entries = listEntries(records, containers, alive, damaged);
  const shown = opts.json || opts.all ? entries : tableEntries(entries);
  const text = opts.json
    ? JSON.stringify(listJsonItems(entries), null, 2) + "\n"
    : formatListTable(shown, Date.now());
  try {
    await ctx.out(text);
  } catch (err) {
    // `moat list | head -1`: a reader that stopped reading is not an error.
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
  for (const d of damaged) ctx.note(damageWarning(d));
  if (shown.length < entries.length) {
    ctx.note(
      `moat: showing ${shown.length} of ${entries.length} runs, the newest first; every run:  moat list -a`,
    );
  }
  const notice = orphanNotice(orphans);
  if (notice) ctx.note(notice);
  return 0;
}

/** The orphaned containers among the listing; `undefined` when the engine could not be asked again. */
async function listedOrphans(
  ctx: CliContext,
  records: RunRecord[],
  containers: ContainerSummary[],
): Promise<ContainerSummary[] | undefined> {
  const byId = new Map(records.map((r) => [r.id, r]));
  try {
    return await orphansListed(ctx.client(), ctx.home, containers, byId);
  } catch (err) {
    if (err instanceof MoatError) return undefined;
    throw err;
  }
}
