/**
 * The runs of a MOAT_HOME, read through the records index (lib/store/index_file.ts) instead of every
 * `run.json`: `runs.index` gives each run's summary (id, state, exit code, creation time, name); a record is
 * read when a command asks for it, and `runs.records` holds them all for the commands that want every one.
 * What the index cannot know is checked on disk at each read:
 *
 * - a run directory made or removed behind its back (an older moat, a moat killed between making the
 *   directory and appending, `rm -r`): `runs/` is listed when its stamp (inode, mtime, link count) is not
 *   the one the index last saw it with, and the runs found or missing are added to the index;
 * - a run in progress, or damaged: its directory is read again every time (a record that changes, or a
 *   moat killed between writing `run.json` and appending to the index), and shown as it is on disk.
 *
 * A finished run's summary is taken from the index: a `run.json` edited by hand, or an `output.bin` removed,
 * after its run ended shows in `moat list` once the index is rebuilt (`moat clean` rebuilds it, and so does
 * removing `runs.index`). A missing or unreadable index is rebuilt from the run directories; one that grew
 * to more than twice its runs is compacted. Writing the index is best effort: where it cannot be written (a
 * full disk, a MOAT_HOME that is read-only to this user) the runs are read from their directories.
 */
import { MoatError } from "../errors.ts";
import {
  appendToIndex,
  forgetIndex,
  indexGeneration,
  type IndexLine,
  indexPath,
  newGeneration,
  readBytesIfThere,
  readIfThere,
  recordsHeader,
  recordsPath,
  replaceIndex,
  summaryLine,
  withIndexLocked,
} from "./index_file.ts";
import {
  type DamagedRecord,
  isFinal,
  isRunDirName,
  maybeReadRecord,
  type RecordDamage,
  recordProblem,
  type RecordScan,
  type RunDir,
  runDirNames,
  type RunRecord,
  type RunState,
  scanRecords,
  scanRunDir,
} from "./records.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `runs.records` as one read of the index found it: loaded on first use, and only when of its generation. */
class RecordsFile {
  #home: string;
  #generation: string;
  #bytes: Uint8Array | null | undefined;

  constructor(home: string, generation: string) {
    this.#home = home;
    this.#generation = generation;
  }

  get loaded(): boolean {
    return this.#bytes !== undefined;
  }

  /** The file's bytes; `null` when it is missing, unreadable, or of another generation. */
  bytes(): Uint8Array | null {
    if (this.#bytes !== undefined) return this.#bytes;
    let bytes: Uint8Array | undefined;
    try {
      bytes = readBytesIfThere(recordsPath(this.#home));
    } catch { /* unreadable: as missing */ }
    const header = encoder.encode(recordsHeader(this.#generation) + "\n");
    const ok = bytes !== undefined && header.every((b, i) => bytes[i] === b);
    if (!ok && !this.#rewritten()) forgetIndex(this.#home); // not a pair: rebuilt by the next reader
    return this.#bytes = ok ? bytes! : null;
  }

  /** `runs.index` was rewritten since it was read (its generation is another now): the two reads crossed. */
  #rewritten(): boolean {
    try {
      const text = readIfThere(indexPath(this.#home));
      const gen = text === undefined ? undefined : indexGeneration(text.slice(0, text.indexOf("\n")));
      return gen !== undefined && gen !== this.#generation;
    } catch {
      return false;
    }
  }
}

/** A run as the index knows it: its summary, and its record, read when first asked for. */
export class IndexedRun {
  readonly id: string;
  readonly state: RunState;
  readonly exitCode: number | null;
  readonly createdAt: string;
  readonly name: string | null;
  /** What is wrong with its directory (its `output.bin` is gone), else `null`. */
  readonly damage: RecordDamage | null;
  // TypeScript's `private`, not `#` fields: thousands of runs are made per read, and `#` fields cost twice
  // as much to set in code that runs once (`moat list` of 5,000 runs).
  private home: string;
  private rec: RunRecord | undefined = undefined;
  private file: RecordsFile | undefined = undefined;
  private offset = 0;
  private length = 0;

  private constructor(home: string, summary: Summary, damage: RecordDamage | null) {
    this.home = home;
    this.id = summary.id;
    this.state = summary.state;
    this.exitCode = summary.exitCode;
    this.createdAt = summary.createdAt;
    this.name = summary.name;
    this.damage = damage;
  }

  /** A run whose record is at hand (read from its directory). */
  static of(home: string, record: RunRecord, damage: RecordDamage | null): IndexedRun {
    const exitCode = typeof record.exitCode === "number" ? record.exitCode : null;
    const name = typeof record.name === "string" ? record.name : null;
    const run = new IndexedRun(home, { ...record, exitCode, name }, damage);
    run.rec = record;
    return run;
  }

  /** A run from its summary line, its record at `offset` in `file`. */
  static at(home: string, summary: Summary, file: RecordsFile, offset: number, length: number): IndexedRun {
    const run = new IndexedRun(home, summary, null);
    run.file = file;
    run.offset = offset;
    run.length = length;
    return run;
  }

  /** The record's JSON text as `runs.records` holds it; `undefined` when it is not to be had from there. */
  private stored(): Uint8Array | undefined {
    const bytes = this.file?.bytes();
    const end = this.offset + this.length;
    if (!bytes || end > bytes.byteLength || bytes[this.offset] !== 0x7b || bytes[end - 1] !== 0x7d) {
      return undefined; // `{` … `}`, or it is not what the summary says
    }
    return bytes.subarray(this.offset, end);
  }

  private parsed(): RunRecord | undefined {
    const json = this.stored();
    if (!json) return undefined;
    try {
      const rec = JSON.parse(decoder.decode(json));
      return recordProblem(rec, this.id) === undefined ? rec : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The record: from `runs.records` when that is loaded already, else from `run.json` (one small file for a
   * command that shows a few runs), else from `runs.records`. Throws when none of them has it.
   */
  get record(): RunRecord {
    if (this.rec) return this.rec;
    const found = (this.file?.loaded ? this.parsed() : undefined) ?? maybeReadRecord(this.home, this.id) ??
      this.parsed();
    if (found) return this.rec = found;
    throw new MoatError(
      `Cannot read the record of run ${this.id}: its run.json is unreadable, and ${
        indexPath(this.home)
      } does not hold it`,
      `See what is wrong:  moat clean --dry-run`,
    );
  }

  /** Take `record` as this run's (read from its directory): shown instead of the one in `runs.records`. */
  use(record: RunRecord): void {
    this.rec = record;
  }

  /** The records of `runs`, read from `runs.records` in one read (not one `run.json` each). */
  static records(runs: readonly IndexedRun[]): RunRecord[] {
    for (const run of runs) run.file?.bytes(); // loaded once: the runs of one read share it
    return runs.map((r) => r.record);
  }

  /** The record as compact JSON text, in UTF-8: as `runs.records` holds it when it does. */
  json(): Uint8Array {
    return (this.rec ? undefined : this.stored()) ?? encoder.encode(JSON.stringify(this.record));
  }
}

/** What a run's summary line holds besides where its record is. */
interface Summary {
  id: string;
  state: RunState;
  exitCode: number | null;
  createdAt: string;
  name: string | null;
}

const STATES: ReadonlySet<string> = new Set([
  "creating",
  "created",
  "running",
  "exited",
  "interrupted",
  "failed",
]);

/** A summary line's fields, checked (lib/store/index_file.ts `summaryLine`); `undefined` when not one. Pure. */
function summaryOf(a: unknown[]): [Summary, number, number] | undefined {
  const [id, state, exitCode, createdAt, name, offset, length] = a;
  if (
    a.length !== 7 || typeof id !== "string" || !isRunDirName(id) || typeof state !== "string" ||
    !STATES.has(state) ||
    (exitCode !== null && typeof exitCode !== "number") || typeof createdAt !== "string" ||
    (name !== null && typeof name !== "string") || !Number.isSafeInteger(offset) || (offset as number) < 0 ||
    !Number.isSafeInteger(length) || (length as number) < 2
  ) return undefined;
  return [{ id, state: state as RunState, exitCode, createdAt, name }, offset as number, length as number];
}

function isDamage(v: unknown): v is RecordDamage {
  const d = v as { path?: unknown; problem?: unknown } | null;
  return !!d && typeof d === "object" && typeof d.path === "string" && typeof d.problem === "string";
}

/** A `damaged` line's run, checked; `undefined` when it is not one. Pure. */
function damagedOfLine(value: unknown): DamagedRecord | undefined {
  const d = value as { id?: unknown; damage?: unknown; record?: unknown } | null;
  if (!d || typeof d !== "object" || typeof d.id !== "string" || !isRunDirName(d.id) || !isDamage(d.damage)) {
    return undefined;
  }
  if (d.record !== null && recordProblem(d.record, d.id) !== undefined) return undefined;
  return { id: d.id, damage: d.damage, record: d.record as RunRecord | null };
}

/** What `runs.index` says. */
export interface IndexContents {
  generation: string;
  /** The runs with a readable record, by id, in the order they came into the index. */
  runs: Map<string, IndexedRun>;
  /** Damaged runs whose `run.json` cannot be read, by id. */
  unreadable: Map<string, DamagedRecord>;
  /** The last stamp of `runs/` (`dirStamp`). */
  stamp: string | undefined;
  /** Lines after the header. */
  lines: number;
  /** The records file the runs' records are in. */
  file: RecordsFile;
}

/**
 * Parse the text of `runs.index`. `undefined` when it is not an index moat can trust: another first line, or
 * a line that is not one of moat's (a last line without its newline is an append in progress, and skipped).
 */
export function parseIndex(home: string, text: string): IndexContents | undefined {
  const first = text.indexOf("\n");
  const last = text.lastIndexOf("\n");
  const generation = first < 0 ? undefined : indexGeneration(text.slice(0, first));
  if (!generation) return undefined;
  let lines: unknown;
  try {
    // One parse of every line at once: a JSON parse per line costs three times as much (`moat list` of
    // thousands of runs). A line break never occurs inside a JSON text as moat writes it.
    lines = JSON.parse(`[${text.slice(first + 1, last).replaceAll("\n", ",")}]`);
  } catch {
    return undefined;
  }
  const file = new RecordsFile(home, generation);
  const index: IndexContents = {
    generation,
    runs: new Map(),
    unreadable: new Map(),
    stamp: undefined,
    lines: (lines as unknown[]).length,
    file,
  };
  for (const line of lines as unknown[]) {
    if (Array.isArray(line)) {
      const s = summaryOf(line);
      if (!s) return undefined;
      place(index, s[0].id, IndexedRun.at(home, s[0], file, s[1], s[2]));
      continue;
    }
    const keys = line && typeof line === "object" ? Object.keys(line) : [];
    const v = line as { damaged?: unknown; gone?: unknown; dir?: unknown };
    if (keys.length !== 1) return undefined;
    if (keys[0] === "damaged") {
      const d = damagedOfLine(v.damaged);
      if (!d) return undefined;
      place(index, d.id, d.record ? IndexedRun.of(home, d.record, d.damage) : d);
    } else if (keys[0] === "gone" && typeof v.gone === "string") {
      place(index, v.gone, undefined);
    } else if (keys[0] === "dir" && typeof v.dir === "string") {
      index.stamp = v.dir;
    } else {
      return undefined;
    }
  }
  return index;
}

/**
 * Put what is now known of run `id` in place of what the index had: a run, a damaged run without a
 * record, or nothing (gone). A run that stays keeps its place: the order the runs were made in.
 */
function place(
  index: Pick<IndexContents, "runs" | "unreadable">,
  id: string,
  now: IndexedRun | DamagedRecord | undefined,
): void {
  if (now instanceof IndexedRun) index.runs.set(id, now);
  else index.runs.delete(id);
  if (now && !(now instanceof IndexedRun)) index.unreadable.set(id, now);
  else index.unreadable.delete(id);
}

/** What `scanRunDir` found, as `place` takes it. */
function found(home: string, id: string, dir: RunDir | undefined): IndexedRun | DamagedRecord | undefined {
  if (!dir) return undefined;
  return dir.record ? IndexedRun.of(home, dir.record, dir.damage) : { id, damage: dir.damage!, record: null };
}

/** The index line for a run directory. Pure. */
function lineOf(id: string, dir: RunDir): IndexLine {
  return dir.damage || !dir.record
    ? { damaged: { id, damage: dir.damage!, record: dir.record } }
    : { run: dir.record };
}

/** What identifies the state of `runs/`' list of entries: it changes when one is made, removed or renamed. */
export function dirStamp(info: Deno.FileInfo): string | undefined {
  const mtime = info.mtime?.getTime();
  return mtime === undefined || info.ino === null ? undefined : `${info.ino}:${mtime}:${info.nlink ?? ""}`;
}

/**
 * How long `runs/` must have been left alone before a listing of it is remembered by its stamp. Its mtime
 * has a coarse clock: an entry made in the same tick as the last change, after the listing, would leave
 * the stamp as it was. One made later than this after the listing gets a later mtime.
 */
export const STAMP_SETTLE_MS = 2000;

/** The stamp to remember for a listing of `runs/` made after `info` was taken at `now`, if any. Pure. */
export function settledStamp(info: Deno.FileInfo, now: number): string | undefined {
  const mtime = info.mtime?.getTime();
  return mtime !== undefined && now - mtime > STAMP_SETTLE_MS ? dirStamp(info) : undefined;
}

function statRuns(home: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(`${home}/runs`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    runDirNames(home); // throws the error that says what is wrong with runs/
    throw err;
  }
}

/** The index, parsed; `undefined` when it is missing, unreadable or not to be trusted. */
function readIndex(home: string): IndexContents | undefined {
  try {
    const text = readIfThere(indexPath(home));
    return text === undefined ? undefined : parseIndex(home, text);
  } catch {
    return undefined;
  }
}

/**
 * Write both files of the index anew (inside `withIndexLocked`): `runs` oldest first, the damaged runs
 * without a record, and the stamp `runs/` had when they were all in it. Throws when they cannot be written.
 */
function writeIndex(
  home: string,
  runs: Iterable<IndexedRun>,
  unreadable: Iterable<DamagedRecord>,
  stamp: string | undefined,
): void {
  const generation = newGeneration();
  const records: Uint8Array[] = [];
  let offset = encoder.encode(recordsHeader(generation) + "\n").byteLength;
  let summaries = "";
  for (const run of runs) {
    if (run.damage) {
      summaries += JSON.stringify({ damaged: { id: run.id, damage: run.damage, record: run.record } }) + "\n";
      continue;
    }
    const json = run.json();
    records.push(json);
    summaries += summaryLine(run, offset, json.byteLength) + "\n";
    offset += json.byteLength + 1;
  }
  for (const d of unreadable) summaries += JSON.stringify({ damaged: d }) + "\n";
  if (stamp !== undefined) summaries += JSON.stringify({ dir: stamp }) + "\n";
  replaceIndex(home, generation, records, summaries);
}

/** The runs of a MOAT_HOME: newest first, and those whose `run.json` cannot be read, by id. */
export interface Runs {
  runs: IndexedRun[];
  unreadable: DamagedRecord[];
}

/** Newest first by creation time, id as tie-break (as `sortNewestFirst` in lib/store/records.ts). Pure. */
function newestFirst(runs: IndexedRun[]): IndexedRun[] {
  // Runs come into the index as they are made, so it is nearly always oldest first already: reversed, then.
  let ascending = true;
  for (let i = 1; i < runs.length && ascending; i++) ascending = madeBefore(runs[i - 1]!, runs[i]!);
  return ascending ? runs.reverse() : runs.sort((a, b) => madeBefore(b, a) ? -1 : 1);
}

/** `a` was made before `b` (by time, then id; code-unit order, as `sortNewestFirst`). */
function madeBefore(a: IndexedRun, b: IndexedRun): boolean {
  return a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.id < b.id);
}

function runsOf(index: Pick<IndexContents, "runs" | "unreadable">): Runs {
  return {
    runs: newestFirst([...index.runs.values()]),
    unreadable: [...index.unreadable.values()].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  };
}

/**
 * Read every run directory (`scanRecords`) and write the index from what was found. Holds the index's lock
 * while it reads, so appends made meanwhile wait, then go to the new index. What was found is returned even
 * when the index cannot be written.
 */
export function rebuildIndex(home: string): Runs {
  let runs: Runs | undefined;
  const read = (): Runs => {
    const scan = scanRecords(home);
    const damageOf = new Map(scan.damaged.map((d) => [d.id, d.damage]));
    return {
      runs: scan.records.map((r) => IndexedRun.of(home, r, damageOf.get(r.id) ?? null)),
      unreadable: scan.damaged.filter((d) => d.record === null),
    };
  };
  try {
    withIndexLocked(home, true, () => {
      const before = statRuns(home);
      runs = read();
      writeIndex(home, [...runs.runs].reverse(), runs.unreadable, before && settledStamp(before, Date.now()));
    });
  } catch {
    // The index cannot be written (a full disk, no permission): what was read is right all the same.
  }
  return runs ?? read();
}

/** Rewrite the index with one line per run (best effort): appends waiting meanwhile go to the new files. */
export function compactIndex(home: string): void {
  try {
    withIndexLocked(home, false, () => {
      const now = readIndex(home); // again, under the lock: every append so far is in it
      if (now?.file.bytes()) writeIndex(home, now.runs.values(), now.unreadable.values(), now.stamp);
    });
  } catch {
    // Left as it was: right, only longer.
  }
}

/** Lines an index may have per run before it is compacted (each run appends one line per state change). */
const COMPACT_RATIO = 2;
/** … plus these, so a small index is not rewritten at every read. */
const COMPACT_SLACK = 256;

/**
 * Every run under `home`, from the index, as `scanRecords` finds them. Makes or repairs the index as needed
 * (see the top of this module); never writes a record.
 */
export function readRuns(home: string): Runs {
  const info = statRuns(home);
  if (!info) return { runs: [], unreadable: [] };
  const index = readIndex(home);
  if (!index) return rebuildIndex(home);
  const fixes: IndexLine[] = [];
  const stamp = dirStamp(info);
  if (stamp === undefined || stamp !== index.stamp) {
    const names = new Set(runDirNames(home));
    for (const id of [...index.runs.keys(), ...index.unreadable.keys()]) {
      if (names.has(id)) continue;
      place(index, id, undefined);
      fixes.push({ gone: id });
    }
    for (const id of names) {
      if (index.runs.has(id) || index.unreadable.has(id)) continue;
      const dir = scanRunDir(home, id);
      if (!dir) continue;
      place(index, id, found(home, id, dir));
      fixes.push(lineOf(id, dir));
    }
    const settled = settledStamp(info, Date.now());
    if (settled !== undefined) fixes.push({ dir: settled });
  }
  // Runs in progress change, and damaged ones may be repaired or removed: read from disk every time. What is
  // read is not appended: a line written now could land after a newer one its owner appends meanwhile.
  for (const run of index.runs.values()) {
    if (!isFinal(run.state) || run.damage) {
      place(index, run.id, found(home, run.id, scanRunDir(home, run.id)));
    }
  }
  for (const id of [...index.unreadable.keys()]) place(index, id, found(home, id, scanRunDir(home, id)));
  appendToIndex(home, fixes);
  const size = index.runs.size + index.unreadable.size;
  if (index.lines + fixes.length > COMPACT_RATIO * size + COMPACT_SLACK) compactIndex(home);
  return runsOf(index);
}

/**
 * Read a run the index holds from its directory (`scanRunDir`), for a command that shows it: the run, with
 * what `run.json` says now, and its damage if it has some; `undefined` when its directory is gone. A damaged
 * one is written to the index, so that the commands after this one know. The run's record is the one read.
 */
export function recheckRun(home: string, run: IndexedRun): RunDir | undefined {
  const dir = scanRunDir(home, run.id);
  if (dir?.record && !run.damage) run.use(dir.record);
  if (dir?.damage) appendToIndex(home, [lineOf(run.id, dir)]);
  return dir;
}

/** The damaged runs, as `RecordScan` has them: those whose `run.json` cannot be read, then the others. */
export function damagedOf({ runs, unreadable }: Runs): DamagedRecord[] {
  const damaged: DamagedRecord[] = [...unreadable];
  for (const r of runs) if (r.damage) damaged.push({ id: r.id, damage: r.damage, record: r.record });
  return damaged;
}

/** Runs as a `RecordScan` (as `scanRecords` orders them): every record read. */
export function asScan(runs: Runs): RecordScan {
  return { records: IndexedRun.records(runs.runs), damaged: damagedOf(runs) };
}

/** `readRuns` as a `RecordScan`: every record read. */
export function scanRuns(home: string): RecordScan {
  return asScan(readRuns(home));
}
