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
import {
  containersByRun,
  listEntries,
  type ListEntry,
  type ListState,
  liveOwners,
} from "../run/reconcile.ts";
import { orphansListed, ownerLiveness, recordsOf, runIdOf } from "../run/orphans.ts";
import {
  type DamagedRecord,
  damageText,
  isFinal,
  type Owner,
  type RecordDamage,
  type RunRecord,
} from "../store/records.ts";
import { type IndexedRun, readRecent, readRuns, recheckRun } from "../store/run_index.ts";
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
export function tableEntries<T extends ListEntry>(entries: T[], limit = TABLE_LIMIT): T[] {
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

export function listJsonItem(e: ListEntry): ListJsonItem {
  return {
    ...(e.record ?? { id: e.id }),
    shownState: e.shownState,
    shownExitCode: e.shownExitCode,
    containerState: e.containerState,
    damage: e.damage,
  };
}

/**
 * `moat list --json`, in UTF-8, in chunks of at most `CHUNK` bytes: a JSON array, one run per line. A settled
 * run's item is its record's JSON text as the index holds it, with the shown fields added, never parsed:
 * what keeps listing thousands of runs fast (docs/performance.md). The chunks share one buffer: each is good
 * until the next is asked for.
 */
export function* listJsonChunks(entries: readonly ListRow[]): Generator<Uint8Array> {
  if (entries.length === 0) return yield encoder.encode("[]\n");
  // The shown fields of settled runs: a few kinds only (by state and exit code; one container state).
  const tails = new Map<ListState, Map<number | null, Uint8Array>>();
  const tailOf = (e: ListRow): Uint8Array => {
    let byCode = tails.get(e.shownState);
    if (!byCode) tails.set(e.shownState, byCode = new Map());
    let tail = byCode.get(e.shownExitCode);
    if (!tail) {
      tail = encoder.encode(
        `,"shownState":${JSON.stringify(e.shownState)},"shownExitCode":${e.shownExitCode},` +
          `"containerState":${JSON.stringify(e.containerState)},"damage":null}`,
      );
      byCode.set(e.shownExitCode, tail);
    }
    return tail;
  };
  // One buffer, given out whenever the next piece would not fit (a bigger piece goes out alone): an output
  // of megabytes is never held whole, so it costs no garbage collection of its size.
  const buf = new Uint8Array(CHUNK);
  let used = 0;
  for (let i = 0; i <= entries.length; i++) {
    const e = entries[i];
    let pieces: Uint8Array[];
    if (!e) pieces = [CLOSE];
    else if (!e.run) pieces = [i ? SEPARATOR : OPEN, encoder.encode(JSON.stringify(listJsonItem(e)))];
    else {
      const json = e.run.json();
      // The record without its closing brace, then the shown fields.
      pieces = [i ? SEPARATOR : OPEN, json.subarray(0, json.byteLength - 1), tailOf(e)];
    }
    for (const piece of pieces) {
      if (used + piece.byteLength > CHUNK && used > 0) {
        yield buf.subarray(0, used);
        used = 0;
      }
      if (piece.byteLength > CHUNK) yield piece;
      else {
        buf.set(piece, used);
        used += piece.byteLength;
      }
    }
  }
  if (used > 0) yield buf.subarray(0, used);
}

/** Bytes `listJsonChunks` gives at a time. */
const CHUNK = 64 * 1024;
const encoder = new TextEncoder();
const SEPARATOR = encoder.encode(",\n  ");
const OPEN = encoder.encode("[\n  ");
const CLOSE = encoder.encode("\n]\n");

/** A `ListEntry`, and for a settled run (`listRows`) the index's run, whose record is read when shown. */
export type ListRow = ListEntry & { run?: IndexedRun };

/**
 * Every run as `moat list` shows it, newest first after those whose `run.json` cannot be read (as
 * `listEntries` orders them). A finished run the engine has no container of is settled: shown as recorded
 * from its index summary, its record not read. The others (in progress, damaged, with a container) are
 * reconciled by `listEntries` from their records; `isAlive` is asked only for those. Pure given `isAlive`.
 */
export function listRows(
  runs: readonly IndexedRun[],
  unreadable: readonly DamagedRecord[],
  containers: ContainerSummary[] | undefined,
  isAlive: (owner: Owner) => boolean,
): { rows: ListRow[]; checked: RunRecord[] } {
  const byRun = containers === undefined ? undefined : containersByRun(containers);
  const settled = (r: IndexedRun) => isFinal(r.state) && !r.damage && !byRun?.has(r.id);
  const checked = runs.filter((r) => !settled(r)).map((r) => r.record);
  const damaged = [...unreadable];
  for (const r of runs) if (r.damage) damaged.push({ id: r.id, damage: r.damage, record: r.record });
  const entries = listEntries(checked, containers, liveOwners(checked, containers, isAlive), damaged);
  const byId = new Map(entries.map((e) => [e.id, e]));
  const containerState = containers === undefined ? null : "absent";
  const rows: ListRow[] = entries.slice(0, unreadable.length);
  for (const run of runs) {
    rows.push(settled(run) ? new SettledRow(run, containerState) : byId.get(run.id)!);
  }
  return { rows, checked };
}

/**
 * The rows the table shows, each settled run read from its directory (`recheckRun`): the table shows what is
 * on disk, and a run damaged since it ended as `damaged`.
 */
function readShown(home: string, rows: ListRow[]): ListRow[] {
  return rows.map((row) => {
    if (!(row instanceof SettledRow)) return row;
    const now = recheckRun(home, row.run);
    if (!now?.damage) return row;
    return {
      id: row.id,
      record: now.record,
      damage: now.damage,
      shownState: "damaged",
      shownExitCode: now.record?.exitCode ?? null,
      containerState: row.containerState,
    };
  });
}

/** A finished run the engine has no container of, shown as recorded; its record is read when shown. */
class SettledRow implements ListRow {
  readonly id: string;
  readonly damage = null;
  readonly shownState: ListState;
  readonly shownExitCode: number | null;
  readonly containerState: "absent" | null;
  readonly run: IndexedRun;

  constructor(run: IndexedRun, containerState: "absent" | null) {
    this.id = run.id;
    this.shownState = run.state;
    this.shownExitCode = run.exitCode;
    this.containerState = containerState;
    this.run = run;
  }

  get record(): RunRecord {
    return this.run.record;
  }
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
  // The table needs only the newest runs and those in progress: the index gives those without reading every
  // summary when it can (`readRecent`), else every run is read.
  const recent = opts.json || opts.all ? undefined : readRecent(ctx.home, TABLE_LIMIT);
  const { runs, unreadable } = recent ?? readRuns(ctx.home);
  const total = recent?.total ?? runs.length + unreadable.length;
  const listing = await asked;
  let containers: ContainerSummary[] | undefined;
  if ("containers" in listing) containers = listing.containers;
  // With nothing recorded there is nothing to show from records; the notice alone stays silent.
  else if (runs.length + unreadable.length > 0) ctx.note(engineNotAskedNote(listing.error));
  const { rows: entries, checked } = listRows(runs, unreadable, containers, ownerLiveness());
  // The records of the runs with a container: those checked, and `listedOrphans` reads any other.
  const orphans = containers ? await listedOrphans(ctx, checked, containers) : undefined;
  const shown = opts.json ? entries : readShown(ctx.home, opts.all ? entries : tableEntries(entries));
  try {
    if (!opts.json) await ctx.out(formatListTable(shown, Date.now()));
    else for (const chunk of listJsonChunks(entries)) await ctx.out(chunk);
  } catch (err) {
    // `moat list | head -1`: a reader that stopped reading is not an error.
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
  for (const e of shown) if (e.damage) ctx.note(damageWarning({ id: e.id, damage: e.damage }));
  if (shown.length < total) {
    ctx.note(`moat: showing ${shown.length} of ${total} runs, the newest first; every run:  moat list -a`);
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
  // A container of a run that was not read (an old finished run the table does not show): its record.
  const unread = containers.filter((c) => !byId.has(runIdOf(c) ?? ""));
  for (const [id, r] of recordsOf(ctx.home, unread)) byId.set(id, r);
  try {
    return await orphansListed(ctx.client(), ctx.home, containers, byId);
  } catch (err) {
    if (err instanceof MoatError) return undefined;
    throw err;
  }
}
