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
  type IndexLayout,
  type IndexLine,
  indexPath,
  newGeneration,
  parseIndexHeader,
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
  isRunState,
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
  /** It comes from one of the index's sorted lines (lib/store/index_file.ts `IndexLayout`). */
  sorted = false;
  // TypeScript's `private`, not `#` fields: thousands of runs are made per read, and `#` fields cost twice
  // as much to set in code that runs once (`moat list` of 5,000 runs).
  private home: string;
  private rec: RunRecord | undefined = undefined;
  private file: RecordsFile | undefined = undefined;
  private offset = 0;
  private length = 0;

  private constructor(
    home: string,
    id: string,
    state: RunState,
    exitCode: number | null,
    createdAt: string,
    name: string | null,
    damage: RecordDamage | null,
  ) {
    this.home = home;
    this.id = id;
    this.state = state;
    this.exitCode = exitCode;
    this.createdAt = createdAt;
    this.name = name;
    this.damage = damage;
  }

  /** A run whose record is at hand (read from its directory). */
  static of(home: string, record: RunRecord, damage: RecordDamage | null): IndexedRun {
    const exitCode = typeof record.exitCode === "number" ? record.exitCode : null;
    const name = typeof record.name === "string" ? record.name : null;
    const run = new IndexedRun(home, record.id, record.state, exitCode, record.createdAt, name, damage);
    run.rec = record;
    return run;
  }

  /**
   * A run from a summary line (lib/store/index_file.ts `summaryLine`), parsed, its record in `file`;
   * `undefined` when it is not one. Indexed, not destructured: thousands are read at a time.
   */
  static fromSummary(home: string, file: RecordsFile, a: unknown[]): IndexedRun | undefined {
    const id = a[0],
      state = a[1],
      exitCode = a[2],
      createdAt = a[3],
      name = a[4],
      offset = a[5],
      length = a[6];
    if (
      a.length !== 7 || typeof id !== "string" || !isRunDirName(id) || typeof state !== "string" ||
      !isRunState(state) || (exitCode !== null && typeof exitCode !== "number") ||
      typeof createdAt !== "string" || (name !== null && typeof name !== "string") ||
      typeof offset !== "number" || !(offset >= 0) || typeof length !== "number" || !(length >= 2)
    ) return undefined;
    const run = new IndexedRun(home, id, state as RunState, exitCode as number | null, createdAt, name, null);
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
  layout: IndexLayout;
  /** The runs with a readable record, by id, in the order they came into the index. */
  runs: Map<string, IndexedRun>;
  /** Damaged runs whose `run.json` cannot be read, by id. */
  unreadable: Map<string, DamagedRecord>;
  /** The last stamp of `runs/` (`dirStamp`). */
  stamp: string | undefined;
  /** Lines appended since the index was written. */
  appended: number;
  /** Whether one of them may be about a run among the sorted lines (`keepsSorted`): `readRecent` declines. */
  touched: boolean;
  /** The records file the runs' records are in. */
  file: RecordsFile;
}

/** One line of `runs.index` (after the header), checked. */
type Line =
  | { id: string; run: IndexedRun | DamagedRecord }
  | { id: string; gone: true }
  | { dir: string };

/** What a parsed line (`JSON.parse` of it) says; `undefined` when it is not a line moat writes. */
function lineFrom(home: string, file: RecordsFile, line: unknown): Line | undefined {
  if (Array.isArray(line)) {
    const run = IndexedRun.fromSummary(home, file, line);
    return run && { id: run.id, run };
  }
  const keys = line && typeof line === "object" ? Object.keys(line) : [];
  const v = line as { damaged?: unknown; gone?: unknown; dir?: unknown };
  if (keys.length !== 1) return undefined;
  if (keys[0] === "damaged") {
    const d = damagedOfLine(v.damaged);
    return d && { id: d.id, run: d.record ? IndexedRun.of(home, d.record, d.damage) : d };
  }
  if (keys[0] === "gone" && typeof v.gone === "string") return { id: v.gone, gone: true };
  if (keys[0] === "dir" && typeof v.dir === "string") return { dir: v.dir };
  return undefined;
}

/**
 * Lines of JSON text, parsed; `undefined` when one is not JSON. One parse of every line at once: a JSON
 * parse per line costs three times as much (thousands of runs). A line break never occurs inside a JSON text
 * as moat writes it.
 */
function parseLines(text: string): unknown[] | undefined {
  try {
    return JSON.parse(`[${text.replaceAll("\n", ",")}]`);
  } catch {
    return undefined;
  }
}

/**
 * Parse the text of `runs.index`. `undefined` when it is not an index moat can trust: another first line, or
 * a line that is not one of moat's (a last line without its newline is an append in progress, and skipped).
 */
export function parseIndex(home: string, text: string): IndexContents | undefined {
  const first = text.indexOf("\n");
  const last = text.lastIndexOf("\n");
  const layout = first < 0 ? undefined : parseIndexHeader(text.slice(0, first));
  if (!layout) return undefined;
  const lines = last > first ? parseLines(text.slice(first + 1, last)) : [];
  if (!lines || lines.length < layout.sorted + layout.own) return undefined;
  const file = new RecordsFile(home, layout.generation);
  const index: IndexContents = {
    layout,
    runs: new Map(),
    unreadable: new Map(),
    stamp: undefined,
    appended: lines.length - layout.sorted - layout.own,
    touched: false,
    file,
  };
  const seen = new Set<string>();
  let newestSorted: IndexedRun | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lineFrom(home, file, lines[i]);
    if (!line || (i < layout.sorted && !("run" in line && line.run instanceof IndexedRun))) return undefined;
    if ("dir" in line) {
      index.stamp = line.dir;
      continue;
    }
    if (i < layout.sorted) {
      newestSorted = (line as { run: IndexedRun }).run;
      newestSorted.sorted = true;
    } else {
      if (i >= layout.sorted + layout.own) index.touched ||= !keepsSorted(line, seen, newestSorted);
      seen.add(line.id);
    }
    place(index, line.id, "run" in line ? line.run : undefined);
  }
  return index;
}

/**
 * Whether a line appended to an index leaves its sorted runs as they are (what `readRecent` needs): it is
 * about a run named since the sorted lines (`seen`), or about a run made after every sorted one
 * (`newestSorted`, the last of them). A line about another run may be about a sorted one. Pure.
 */
function keepsSorted(
  line: { id: string; run?: IndexedRun | DamagedRecord },
  seen: ReadonlySet<string>,
  newestSorted: IndexedRun | undefined,
): boolean {
  if (!newestSorted || seen.has(line.id)) return true;
  return line.run instanceof IndexedRun && madeBefore(newestSorted, line.run);
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
 * Write both files of the index anew (inside `withIndexLocked`): the finished runs sorted, oldest first, then
 * the others (in progress, damaged), the damaged runs without a record, and the stamp `runs/` had when they
 * were all in it (lib/store/index_file.ts `IndexLayout`). Throws when they cannot be written.
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
  const settled: IndexedRun[] = [];
  const others: IndexedRun[] = [];
  for (const run of runs) (isFinal(run.state) && !run.damage ? settled : others).push(run);
  settled.sort((a, b) => madeBefore(a, b) ? -1 : 1);
  const lineOfRun = (run: IndexedRun): string => {
    if (run.damage) {
      return JSON.stringify({ damaged: { id: run.id, damage: run.damage, record: run.record } });
    }
    const json = run.json();
    records.push(json);
    const line = summaryLine(run, offset, json.byteLength);
    offset += json.byteLength + 1;
    return line;
  };
  let sorted = "";
  for (const run of settled) sorted += lineOfRun(run) + "\n";
  let own = "";
  for (const run of others) own += lineOfRun(run) + "\n";
  const rest: IndexLine[] = [...unreadable].map((d) => ({ damaged: d }));
  if (stamp !== undefined) rest.push({ dir: stamp });
  for (const line of rest) own += JSON.stringify(line) + "\n";
  const layout = {
    generation,
    sorted: settled.length,
    sortedBytes: encoder.encode(sorted).byteLength,
    own: others.length + rest.length,
  };
  replaceIndex(home, layout, records, sorted + own);
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

/**
 * Lines appended to an index before its reader rewrites it (each run appends one per change of state, four
 * or five in all): `readRecent` reads them all, so they are kept few.
 */
export const MAX_APPENDED = 256;

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
      index.touched ||= index.runs.get(id)?.sorted === true;
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
  // Rewritten when `readRecent` would read too much of it, or could not use it (a sorted run changed).
  if (index.appended + fixes.length > MAX_APPENDED || index.touched) compactIndex(home);
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

/** What `readRecent` found. */
export interface Recent extends Runs {
  /** How many runs there are (damaged ones included): `runs` has only the newest and those in progress. */
  total: number;
}

/**
 * The newest `limit` runs, every run in progress or damaged, and how many runs there are, without reading
 * every summary: the last `limit` sorted lines of the index and the lines after them (lib/store/
 * index_file.ts `IndexLayout`). Their records are not read. `undefined` when the index cannot answer so: it
 * is missing or damaged, `runs/` changed since its last stamp, more than `MAX_APPENDED` lines were appended
 * to it, or one of them may be about a sorted run (`keepsSorted`). `readRuns` reads all of it then, and
 * rewrites it when that was what stood in the way.
 */
export function readRecent(home: string, limit: number): Recent | undefined {
  const info = statRuns(home);
  if (!info) return { runs: [], unreadable: [], total: 0 };
  let bytes: Uint8Array | undefined;
  try {
    bytes = readBytesIfThere(indexPath(home));
  } catch {
    return undefined;
  }
  const headerEnd = bytes ? bytes.indexOf(0x0a) : -1;
  if (!bytes || headerEnd < 0) return undefined;
  const layout = parseIndexHeader(decoder.decode(bytes.subarray(0, headerEnd)));
  if (!layout) return undefined;
  const sortedStart = headerEnd + 1;
  const sortedEnd = sortedStart + layout.sortedBytes;
  const end = bytes.lastIndexOf(0x0a) + 1; // after the last whole line
  if (sortedEnd > end || bytes[sortedEnd - 1] !== 0x0a) return undefined;
  const tail = end > sortedEnd ? parseLines(decoder.decode(bytes.subarray(sortedEnd, end - 1))) : [];
  if (!tail || tail.length < layout.own || tail.length - layout.own > MAX_APPENDED) return undefined;
  const file = new RecordsFile(home, layout.generation);
  // The newest sorted runs: the last lines of them, read back from their end.
  const newest: IndexedRun[] = [];
  // At least one: the newest sorted run is what tells a line about a run made since (`keepsSorted`).
  for (let lineEnd = sortedEnd - 1; newest.length < Math.min(Math.max(limit, 1), layout.sorted);) {
    const start = Math.max(sortedStart, bytes.lastIndexOf(0x0a, lineEnd - 1) + 1);
    const [parsed] = parseLines(decoder.decode(bytes.subarray(start, lineEnd))) ?? [];
    const line = lineFrom(home, file, parsed);
    if (!line || !("run" in line) || !(line.run instanceof IndexedRun)) return undefined;
    newest.push(line.run);
    lineEnd = start - 1;
  }
  const index: Pick<IndexContents, "runs" | "unreadable"> = { runs: new Map(), unreadable: new Map() };
  const seen = new Set<string>();
  let stamp: string | undefined;
  for (let i = 0; i < tail.length; i++) {
    const line = lineFrom(home, file, tail[i]);
    if (!line) return undefined;
    if ("dir" in line) {
      stamp = line.dir;
      continue;
    }
    if (i >= layout.own && !keepsSorted(line, seen, newest[0])) return undefined;
    seen.add(line.id);
    place(index, line.id, "run" in line ? line.run : undefined);
  }
  if (stamp === undefined || stamp !== dirStamp(info)) return undefined;
  // Every run after the sorted ones that is in progress or damaged, read from disk (as `readRuns` does).
  for (const run of index.runs.values()) {
    if (!isFinal(run.state) || run.damage) {
      place(index, run.id, found(home, run.id, scanRunDir(home, run.id)));
    }
  }
  for (const id of [...index.unreadable.keys()]) place(index, id, found(home, id, scanRunDir(home, id)));
  const runs = runsOf({
    runs: new Map([...newest.map((r) => [r.id, r] as const), ...index.runs]),
    unreadable: index.unreadable,
  });
  return { ...runs, total: layout.sorted + index.runs.size + index.unreadable.size };
}

/** Runs as a `RecordScan` (as `scanRecords` orders them): every record read. */
export function asScan(runs: Runs): RecordScan {
  return { records: IndexedRun.records(runs.runs), damaged: damagedOf(runs) };
}

/** `readRuns` as a `RecordScan`: every record read. */
export function scanRuns(home: string): RecordScan {
  return asScan(readRuns(home));
}
