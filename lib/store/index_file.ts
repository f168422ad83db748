/**
 * The records index on disk, and how several moat processes share it. lib/store/run_index.ts reads it; this
 * module appends to it and replaces it. Two files in MOAT_HOME:
 *
 * - `runs.index`, the summaries: JSON lines. The first is the header (`indexHeader`); then one line per
 *   change: a run's summary (`summaryLine`: id, state, exit code, creation time, name, and where its record
 *   is in `runs.records`), a damaged run, a removed one, or a stamp of `runs/` (`IndexLine`). For a run,
 *   the last line about it wins. A rewrite puts the finished runs first, one line each, oldest first (the
 *   _sorted_ lines), then its own lines for the others (runs in progress, damaged ones, the stamp); appends
 *   follow. The header says how many of each there are, so a reader that wants only the newest runs reads
 *   the last sorted lines and what follows them (lib/store/run_index.ts `readRecent`).
 * - `runs.records`: the records the summaries point into, each the JSON text of `run.json` and a newline,
 *   after a header line. A command that shows every record (`moat list --json`) reads this one file.
 *
 * Both headers carry the same generation: a file of another generation is not read with the other. Every
 * writer holds an exclusive `flock` on `runs.index` while it writes. An append writes the records first,
 * then their summaries; a rewrite (a rebuild from the run directories, a compaction) writes both files anew
 * under temporary names and renames them into place, the records first, while the old `runs.index` is
 * locked: an append waiting for the lock finds another file at the path, and appends to the new one.
 * Readers take no lock: they skip a last line without its newline (an append in progress), and read again
 * when the generations differ (a rewrite between their two reads).
 *
 * The index is a cache of the run directories, which stay the truth: writing it is best effort. When an
 * append fails, `runs.index` is removed, and the next reader rebuilds both files from the run directories.
 */
import type { DamagedRecord, RunRecord } from "./records.ts";

/** Version of the format: an index with another one is rebuilt. */
const FORMAT = 1;

/**
 * What an index says besides its summaries:
 * - `damaged`: a run directory whose record cannot be trusted (lib/store/records.ts `scanRunDir`);
 * - `gone`: the run's directory was removed;
 * - `dir`: `runs/` was listed, and every run in it was in the index, when it had this stamp (lib/store/
 *   run_index.ts `dirStamp`): while it still has it, no run directory was made or removed since.
 * `run` lines are written as a summary here and a record in `runs.records`.
 */
export type IndexLine =
  | { run: RunRecord }
  | { damaged: DamagedRecord }
  | { gone: string }
  | { dir: string };

/** `MOAT_HOME/runs.index`. */
export function indexPath(home: string): string {
  return `${home}/runs.index`;
}

/** `MOAT_HOME/runs.records`. */
export function recordsPath(home: string): string {
  return `${home}/runs.records`;
}

/** A fresh generation for a rewritten pair of files: 16 hex characters. */
export function newGeneration(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
}

/** What the header of `runs.index` says besides its format. */
export interface IndexLayout {
  /** Of the records file. */
  generation: string;
  /** Lines after the header that are the sorted summaries of finished runs, oldest first. */
  sorted: number;
  /** Their size in bytes, newlines included. */
  sortedBytes: number;
  /** Lines the rewrite wrote after them, about other runs than theirs (and the stamp). */
  own: number;
}

/** The first line of `runs.index`. Pure. */
export function indexHeader(h: IndexLayout): string {
  return `{"moatRunsIndex":${FORMAT},"records":"${h.generation}","sorted":${h.sorted},` +
    `"sortedBytes":${h.sortedBytes},"own":${h.own}}`;
}

const HEADER = new RegExp(
  `^\\{"moatRunsIndex":${FORMAT},"records":"([0-9a-f]{16})","sorted":(\\d+),"sortedBytes":(\\d+),"own":(\\d+)\\}$`,
);

/** An index header's layout (`indexHeader`); `undefined` for any other line. Pure. */
export function parseIndexHeader(line: string): IndexLayout | undefined {
  const m = HEADER.exec(line);
  if (!m) return undefined;
  return { generation: m[1]!, sorted: Number(m[2]), sortedBytes: Number(m[3]), own: Number(m[4]) };
}

/** The first line of `runs.records`. Pure. */
export function recordsHeader(generation: string): string {
  return `{"moatRunsRecords":${FORMAT},"generation":"${generation}"}`;
}

/** The generation an index header (`indexHeader`) names; `undefined` for any other line. Pure. */
export function indexGeneration(line: string): string | undefined {
  return parseIndexHeader(line)?.generation;
}

/**
 * A run's summary line: `[id, state, exitCode, createdAt, name, offset, length]`, its record being the
 * `length` bytes at `offset` in `runs.records`. An exit code or name of a type moat does not write is
 * `null` here (the record keeps it). Pure.
 */
export function summaryLine(
  r: Pick<RunRecord, "id" | "state" | "exitCode" | "createdAt" | "name">,
  offset: number,
  length: number,
): string {
  const exitCode = typeof r.exitCode === "number" && Number.isFinite(r.exitCode) ? r.exitCode : null;
  const name = typeof r.name === "string" ? r.name : null;
  return JSON.stringify([r.id, r.state, exitCode, r.createdAt, name, offset, length]);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Whether `file` is still the file at `path` (not replaced by a rewrite, not removed). */
function stillAt(file: Deno.FsFile, path: string): boolean {
  try {
    const open = file.statSync();
    const now = Deno.statSync(path);
    return open.ino === now.ino && open.dev === now.dev;
  } catch {
    return false;
  }
}

/** How often a writer tries again when the file was replaced while it waited for the lock. */
const LOCK_TRIES = 8;

/**
 * Open `runs.index` and hold its lock for `fn`, on the file that is at the path once the lock is held.
 * `create`: make the file (empty) when there is none. Returns what `fn` returned; `undefined` when there is
 * no index and `create` is false, or when it kept being replaced. Errors from opening or `fn` are thrown.
 */
export function withIndexLocked<T>(
  home: string,
  create: boolean,
  fn: (index: Deno.FsFile) => T,
): T | undefined {
  const path = indexPath(home);
  for (let i = 0; i < LOCK_TRIES; i++) {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { read: true, append: true, create, mode: 0o600 });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined;
      throw err;
    }
    try {
      file.lockSync(true);
      if (stillAt(file, path)) return fn(file);
    } finally {
      file.close(); // and the lock with it
    }
  }
  return undefined;
}

/** The first line of an open file (up to `max` bytes), read from its start. */
function firstLine(file: Deno.FsFile, max = 256): string {
  const buf = new Uint8Array(max);
  file.seekSync(0, Deno.SeekMode.Start);
  let got = 0;
  while (got < max) {
    const n = file.readSync(buf.subarray(got));
    if (n === null || n === 0) break;
    got += n;
  }
  const text = decoder.decode(buf.subarray(0, got));
  const nl = text.indexOf("\n");
  return nl < 0 ? "" : text.slice(0, nl);
}

function writeAll(file: Deno.FsFile, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.byteLength) off += file.writeSync(bytes.subarray(off));
}

/** Thrown inside an append when the files are not a pair moat can append to; the index is then forgotten. */
class NotAppendable extends Error {}

/**
 * Append `lines` to the index, when there is one (a missing index is rebuilt by its next reader). Never
 * throws: when the lines cannot be written, the index is removed, so that no reader trusts it without them.
 */
export function appendToIndex(home: string, lines: readonly IndexLine[]): void {
  if (lines.length === 0) return;
  try {
    withIndexLocked(home, false, (index) => {
      const generation = indexGeneration(firstLine(index));
      if (!generation) throw new NotAppendable();
      const runs = lines.filter((l): l is { run: RunRecord } => "run" in l);
      const at = new Map<RunRecord, [number, number]>();
      if (runs.length > 0) {
        const records = Deno.openSync(recordsPath(home), { read: true, append: true });
        try {
          if (firstLine(records) !== recordsHeader(generation)) throw new NotAppendable();
          let offset = records.statSync().size;
          let text = "";
          for (const { run } of runs) {
            const json = JSON.stringify(run);
            const length = encoder.encode(json).byteLength;
            at.set(run, [offset, length]);
            offset += length + 1;
            text += json + "\n";
          }
          writeAll(records, encoder.encode(text));
        } finally {
          records.close();
        }
      }
      let text = "";
      for (const line of lines) {
        text += ("run" in line ? summaryLine(line.run, ...at.get(line.run)!) : JSON.stringify(line)) + "\n";
      }
      writeAll(index, encoder.encode(text));
    });
  } catch {
    forgetIndex(home);
  }
}

/** Remove the index (best effort): its next reader rebuilds it from the run directories. */
export function forgetIndex(home: string): void {
  try {
    Deno.removeSync(indexPath(home));
  } catch { /* gone already, or not ours to remove: its reader checks it anyway */ }
}

/**
 * Replace both files: `records` (the records file's lines after its header, each a record's JSON text in
 * UTF-8, without its newline) and `summaries` (the index's lines after its header `layout`, of a new
 * generation). Each is written to a temporary file, then renamed into place, the records first. Called
 * inside `withIndexLocked`. Throws when they cannot be written.
 */
export function replaceIndex(
  home: string,
  layout: IndexLayout,
  records: readonly Uint8Array[],
  summaries: string,
): void {
  const generation = layout.generation;
  const tmp = [`${recordsPath(home)}.${Deno.pid}.tmp`, `${indexPath(home)}.${Deno.pid}.tmp`] as const;
  try {
    const file = Deno.openSync(tmp[0], { write: true, create: true, truncate: true, mode: 0o600 });
    try {
      const newline = new Uint8Array([0x0a]);
      writeAll(file, encoder.encode(recordsHeader(generation) + "\n"));
      for (const r of records) {
        writeAll(file, r);
        writeAll(file, newline);
      }
    } finally {
      file.close();
    }
    Deno.writeTextFileSync(tmp[1], `${indexHeader(layout)}\n${summaries}`, { mode: 0o600 });
    Deno.renameSync(tmp[0], recordsPath(home));
    Deno.renameSync(tmp[1], indexPath(home));
  } catch (err) {
    for (const t of tmp) {
      try {
        Deno.removeSync(t);
      } catch { /* not made, or renamed */ }
    }
    throw err;
  }
}

/** The whole of `path`: text, or bytes; `undefined` when there is no such file. Throws other errors. */
export function readIfThere(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** The bytes of `path`; `undefined` when there is no such file. Throws other errors. */
export function readBytesIfThere(path: string): Uint8Array | undefined {
  try {
    const file = Deno.openSync(path);
    try {
      // Read into a buffer of the file's size: `Deno.readFileSync` grows its buffer as it reads, at twice
      // the cost for a file of megabytes (`moat list --json` of thousands of runs).
      const size = file.statSync().size;
      const buf = new Uint8Array(size);
      let got = 0;
      while (got < size) {
        const n = file.readSync(buf.subarray(got));
        if (n === null || n === 0) break;
        got += n;
      }
      return buf.subarray(0, got);
    } finally {
      file.close();
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}
