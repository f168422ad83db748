/**
 * Run records under `MOAT_HOME/runs/<id>/`: `run.json` (the record, rewritten atomically at each state
 * change) and `output.bin` (the run's output as it streams). The output format is one frame per chunk:
 *
 *   [stream u8][0 0 0][size u32 BE][unix time ms, f64 BE][size bytes of payload]
 *
 * i.e. the engine's 8-byte stream header plus an 8-byte timestamp, so it appends with one write per
 * chunk and is read back without loading it whole.
 */
import { AuditLog } from "../audit/log.ts";
import type { Json } from "../audit/chain.ts";
import { firstLineOf, MoatError } from "../errors.ts";
import { after } from "../timer.ts";
export { moatHome } from "../home.ts";
import { appendToIndex } from "./index_file.ts";

export type RunState = "creating" | "created" | "running" | "exited" | "interrupted" | "failed";

const FINAL: ReadonlySet<RunState> = new Set(["exited", "interrupted", "failed"]);

/** A state a run never leaves: it has ended. */
export function isFinal(state: RunState): boolean {
  return FINAL.has(state);
}

/** The moat process responsible for a run: a pid is only meaningful with its boot and start time. */
export interface Owner {
  pid: number;
  bootId: string;
  /** Process start time in clock ticks since boot (`/proc/<pid>/stat` field 22), against pid reuse. */
  startTicks: number;
}

export interface ProfileMount {
  /** Absolute, resolved host path. */
  source: string;
  target: string;
  readonly: boolean;
}

/**
 * The effective profile of a run (lib/run/profile.ts makes it): what the record stores and `moat list --json`
 * shows.
 */
export interface Profile {
  /** Always `["ALL"]`. */
  capDrop: string[];
  capAdd: string[];
  noNewPrivileges: boolean;
  /** An init process as PID 1 that reaps zombies and forwards signals. */
  init: boolean;
  /** Most processes the command may have at once. */
  pids: number;
  /** Memory limit in bytes (swap included); `null`: unlimited. */
  memory: number | null;
  /** CPUs the command may use; `null`: unlimited. */
  cpus: number | null;
  /** `none`: loopback only. */
  network: "default" | "none" | "allowlist";
  /**
   * With `allowlist`: the hosts the run may reach, as given (`--allow`; lib/net/host_policy.ts). Absent
   * otherwise.
   */
  allow?: string[];
  /** With `allowlist`: mapped TCP ports, `PORT=HOST:PORT` (lib/net/tcp_map.ts); absent when there are none. */
  tcp?: string[];
  /**
   * With `allowlist`: rules for the HTTP requests to some of `allow`'s entries (`host` as written there), in
   * order (lib/net/http_rules.ts); absent when there are none.
   */
  rules?: HostRules[];
  /**
   * With `allowlist`: the grants whose credentials the policy point adds (names only: the secrets stay in
   * MOAT_HOME/grants); absent when there are none.
   */
  grants?: string[];
  /** Read-only root filesystem, with a writable `/tmp`. */
  readOnly: boolean;
  /** Extra bind mounts besides the workspace. */
  mounts: ProfileMount[];
}

/** An allow entry's rules, as moat writes them back (`allow GET /v1/*`). */
export interface HostRules {
  host: string;
  rules: string[];
}

/** Schema version 1 of `run.json`. Fields are only ever added. */
export interface RunRecord {
  schema: 1;
  id: string;
  name: string | null;
  workspace: string;
  image: string;
  command: string[] | null;
  /** "gvisor" or "none", as decided. */
  sandbox: "gvisor" | "none";
  /** The OCI runtime the engine reports for the container (`HostConfig.Runtime`), once known. */
  runtime: string | null;
  containerId: string | null;
  state: RunState;
  exitCode: number | null;
  /** Set when the run was interrupted: the signal name. */
  signal: string | null;
  error: string | null;
  kept: boolean;
  removed: boolean;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  moatVersion: string;
  /** The process that drives the run (the `moat run`, or the recorder of a detached run). */
  owner?: Owner | null;
  /** Started with `moat run -d`. */
  detached?: boolean;
  /** Started with `moat run -t`: the container had a pty, and the output is its raw stream (stream 1). */
  tty?: boolean;
  /** The container's hardened profile as created (capabilities, limits, network, mounts). */
  profile?: Profile;
  /** The command was killed by the kernel for exceeding the memory limit. */
  oomKilled?: boolean;
  /**
   * Why `output.bin` does not hold all of the run's output (the engine's stream broke and its log could not
   * give the rest, or the disk under MOAT_HOME filled up); absent when it does.
   */
  outputIncomplete?: string;
  /**
   * `output.bin` was created (empty) together with the record, so a record without one is damaged. Absent
   * in records of older versions, which made it only when the command wrote something.
   */
  outputFile?: boolean;
}

/** What is wrong with a run's directory: the file at fault, and what is wrong with it. */
export interface RecordDamage {
  /** The file at fault: the run's `run.json`, or its `output.bin`. */
  path: string;
  /** What is wrong, without the path: `missing`, `a directory, not a file`, `not valid JSON (…)`, … */
  problem: string;
}

/** A run whose record cannot be trusted. `record` is `null` when `run.json` itself cannot be read. */
export interface DamagedRecord {
  /** The run id: the directory's name. */
  id: string;
  damage: RecordDamage;
  record: RunRecord | null;
}

/** The words for a damaged record: `damaged run record <id>: <path>: <problem>`. Pure. */
export function damageText(id: string, damage: RecordDamage): string {
  return `damaged run record ${id}: ${damage.path}: ${damage.problem}`;
}

/** The error for a damaged record that leaves a command nothing to work with (exit 125). */
export function damagedRecordError(id: string, damage: RecordDamage, hint: string): MoatError {
  const text = damageText(id, damage);
  return new MoatError(text[0]!.toUpperCase() + text.slice(1), hint);
}

/** Everything under `MOAT_HOME/runs`. */
export interface RecordScan {
  /** Every readable record, newest first — those whose output is damaged included. */
  records: RunRecord[];
  /** Every damaged run: first those whose `run.json` cannot be read (by id), then the others, newest first. */
  damaged: DamagedRecord[];
}

/** A fresh run id: 12 lowercase hex characters. */
export function newRunId(): string {
  const b = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export const OUTPUT_HEADER_SIZE = 16;

/** Encode the 16-byte output frame header into `into` at `offset`. Pure. */
export function encodeOutputHeader(
  into: Uint8Array,
  offset: number,
  stream: number,
  size: number,
  timeMs: number,
) {
  const dv = new DataView(into.buffer, into.byteOffset + offset, OUTPUT_HEADER_SIZE);
  dv.setUint8(0, stream);
  dv.setUint8(1, 0);
  dv.setUint16(2, 0);
  dv.setUint32(4, size, false);
  dv.setFloat64(8, timeMs, false);
}

/** Decode an output file's frames (for tests and `moat logs`). */
export function* decodeOutput(
  bytes: Uint8Array,
): Generator<{ stream: number; timeMs: number; data: Uint8Array }> {
  let off = 0;
  while (off + OUTPUT_HEADER_SIZE <= bytes.byteLength) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset + off, OUTPUT_HEADER_SIZE);
    const size = dv.getUint32(4, false);
    const end = off + OUTPUT_HEADER_SIZE + size;
    if (end > bytes.byteLength) return;
    yield {
      stream: dv.getUint8(0),
      timeMs: dv.getFloat64(8, false),
      data: bytes.subarray(off + OUTPUT_HEADER_SIZE, end),
    };
    off = end;
  }
}

/**
 * Read one record; `undefined` when the run does not exist or its record is unreadable. Records are small
 * local files, and moat reads and writes them with synchronous calls: each asynchronous file operation is a
 * hop to Deno's blocking thread pool that costs 1–3 ms, which on `moat list` over 500 runs, or on the way
 * to a run's start, is most of the time spent (docs/performance.md). Output is written asynchronously.
 */
export function maybeReadRecord(home: string, id: string): RunRecord | undefined {
  try {
    const rec = JSON.parse(Deno.readTextFileSync(`${home}/runs/${id}/run.json`));
    return recordProblem(rec, id) === undefined ? rec as RunRecord : undefined;
  } catch {
    return undefined;
  }
}

/** A directory name moat gives a run (`newRunId`). Other directories under `runs/` are not moat's. */
const RUN_DIR = /^[0-9a-f]{12}$/;

/**
 * Whether `name` can be a run directory's: one moat gives (`newRunId`), or another that holds the record of a
 * run of that id (`scanRunDir` reads those too). Pure.
 */
export function isRunDirName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !name.includes("/") && !name.includes("\0");
}

const STATES: ReadonlySet<string> = new Set([
  "creating",
  "created",
  "running",
  "exited",
  "interrupted",
  "failed",
]);

/** Whether `s` is a `RunState`. Pure. */
export function isRunState(s: string): s is RunState {
  return STATES.has(s);
}

/** Why parsed JSON is not the record of run `id`; `undefined` when it is one. Pure. */
export function recordProblem(rec: unknown, id: string): string | undefined {
  if (!rec || typeof rec !== "object" || Array.isArray(rec)) return "not a JSON object";
  const r = rec as Record<string, unknown>;
  if (r.id !== id) return `its id is ${JSON.stringify(r.id)}, not the directory's name`;
  if (typeof r.state !== "string" || !STATES.has(r.state)) return `its state is ${JSON.stringify(r.state)}`;
  if (typeof r.createdAt !== "string") return "it has no createdAt";
  return undefined;
}

/**
 * One run directory: its record, and what is wrong with it (`damage`, else `null`). `undefined` when the
 * directory is gone, or is not a run's (its name is not a run id and it holds no record of that id).
 * `checkOutput`: also check that `output.bin` is there when the record says moat created it.
 */
export function scanRunDir(home: string, id: string, checkOutput = true): RunDir | undefined {
  const dir = `${home}/runs/${id}`;
  const path = `${dir}/run.json`;
  const bad = (problem: string) => RUN_DIR.test(id) ? { record: null, damage: { path, problem } } : undefined;
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      try {
        Deno.lstatSync(dir);
      } catch {
        return undefined; // removed meanwhile
      }
      return bad("missing");
    }
    if (err instanceof Deno.errors.IsADirectory) return bad("a directory, not a file");
    return bad(`unreadable: ${firstLineOf(err)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return bad(text.trim() === "" ? "empty" : `not valid JSON (${firstLineOf(err)})`);
  }
  const why = recordProblem(parsed, id);
  if (why !== undefined) return bad(`not a run record: ${why}`);
  const record = parsed as RunRecord;
  if (checkOutput && record.outputFile) {
    const out = `${dir}/output.bin`;
    try {
      if (!Deno.lstatSync(out).isFile) return { record, damage: { path: out, problem: "not a file" } };
    } catch (err) {
      const problem = err instanceof Deno.errors.NotFound
        ? "missing (moat created it with the record)"
        : `unreadable: ${firstLineOf(err)}`;
      return { record, damage: { path: out, problem } };
    }
  }
  return { record, damage: null };
}

/** The names of the directories under `MOAT_HOME/runs` (none when it is not there). */
export function runDirNames(home: string): string[] {
  const ids: string[] = [];
  try {
    for (const e of Deno.readDirSync(`${home}/runs`)) if (e.isDirectory) ids.push(e.name);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw new MoatError(
      `Cannot read run records in ${home}/runs: ${err instanceof Error ? err.message : String(err)}`,
      `Check the directory:  ls -ld ${home}/runs`,
    );
  }
  return ids;
}

/** One run directory as `scanRunDir` found it. */
export interface RunDir {
  record: RunRecord | null;
  damage: RecordDamage | null;
}

/**
 * Every run under `home`, read from every run directory: the readable records, and the damaged ones with
 * what is wrong — a `run.json` that is missing, not a file, not JSON or not a run's record, an `output.bin`
 * that the record says moat created and that is gone. Directories whose names are not run ids are not
 * moat's and are skipped. Commands read the runs through the index instead (lib/store/run_index.ts
 * `scanRuns`), which this rebuilds.
 */
export function scanRecords(home: string): RecordScan {
  const found = new Map<string, RunDir>();
  for (const id of runDirNames(home)) {
    const dir = scanRunDir(home, id);
    if (dir) found.set(id, dir);
  }
  return orderScan(found);
}

/** Run directories as `RecordScan` gives them: the records newest first, the damaged in their order. Pure. */
export function orderScan(found: ReadonlyMap<string, RunDir>): RecordScan {
  const records: RunRecord[] = [];
  const unreadable: DamagedRecord[] = [];
  const damagedOutput: DamagedRecord[] = [];
  for (const [id, { record, damage }] of found) {
    if (record) records.push(record);
    if (damage) (record ? damagedOutput : unreadable).push({ id, damage, record });
  }
  unreadable.sort((a, b) => ordinal(a.id, b.id));
  const sorted = sortNewestFirst(records);
  const order = new Map(sorted.map((r, i) => [r.id, i]));
  damagedOutput.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
  return { records: sorted, damaged: [...unreadable, ...damagedOutput] };
}

/**
 * Newest first by creation time, id as tie-break. Pure. Ordinal comparison: the timestamps are ISO 8601 in
 * UTC and the ids lowercase hex, so code-unit order is time order; `localeCompare` (collation) made sorting
 * 500 records take 13 ms.
 */
export function sortNewestFirst(records: RunRecord[]): RunRecord[] {
  return [...records].sort((a, b) => ordinal(b.createdAt, a.createdAt) || ordinal(b.id, a.id));
}

function ordinal(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Output bytes queued before a write: 4 writes per MiB instead of one per read from the engine. */
const OUTPUT_BUFFER_SIZE = 256 * 1024;
/** The longest queued output waits before it is written (`flushSoon`). */
const FLUSH_DELAY_MS = 100;

/** Writes one run's files: the record synchronously (small), the output asynchronously with backpressure. */
export class RunStore {
  #home: string;
  #dir: string;
  /** `run.json` is in its place (not in the temporary directory of `create`): saves go to the index too. */
  #placed = true;
  record: RunRecord;
  #output: Deno.FsFile | undefined;
  #buf = new Uint8Array(OUTPUT_BUFFER_SIZE);
  #spare: Uint8Array<ArrayBuffer> | undefined;
  #used = 0;
  #writing: Promise<void> = Promise.resolve();
  #cancelTimer: (() => void) | undefined;
  #outputError: unknown;
  #recordError: unknown;

  /** Open an existing run's record for updates (e.g. by `moat stop`, or a detached run's recorder). */
  static open(home: string, id: string): RunStore | undefined {
    const record = maybeReadRecord(home, id);
    return record ? new RunStore(home, `${home}/runs/${id}`, record) : undefined;
  }

  private constructor(home: string, dir: string, record: RunRecord) {
    this.#home = home;
    this.#dir = dir;
    this.record = record;
  }

  /** `MOAT_HOME/runs/<id>`. */
  get dir(): string {
    return this.#dir;
  }

  /**
   * Create `runs/<id>/` with the first record and an empty `output.bin`. The directory is made under a
   * temporary name and renamed into place, so a run directory never exists without its `run.json` and
   * `output.bin`: one without them is damaged (`scanRecords`), never half-made.
   */
  static create(home: string, record: RunRecord): RunStore {
    const dir = `${home}/runs/${record.id}`;
    // A leading dot: never taken for a run (`RUN_DIR`), should this process die before the rename.
    const tmp = `${home}/runs/.${record.id}.${Deno.pid}.tmp`;
    const store = new RunStore(home, tmp, { ...record, outputFile: true });
    store.#placed = false;
    try {
      Deno.mkdirSync(tmp, { recursive: true, mode: 0o700 });
      Deno.writeFileSync(`${tmp}/output.bin`, new Uint8Array(), { mode: 0o600 });
      store.save();
      Deno.renameSync(tmp, dir);
    } catch (err) {
      try {
        Deno.removeSync(tmp, { recursive: true });
      } catch { /* nothing was made */ }
      throw new MoatError(
        `Cannot create the run record directory ${dir}: ${err instanceof Error ? err.message : String(err)}`,
        `Point moat somewhere writable:  MOAT_HOME=/path/to/dir`,
      );
    }
    store.#dir = dir;
    store.#placed = true;
    appendToIndex(home, [{ run: store.record }]);
    store.audit("run", store.record);
    return store;
  }

  /**
   * Merge fields and rewrite `run.json` atomically (write a temp file, then rename). The change goes to the
   * run's audit log too (lib/audit/log.ts); one that ends the run makes its final checkpoint due.
   */
  update(patch: Partial<RunRecord>): void {
    this.record = { ...this.record, ...patch };
    this.save();
    this.audit("record", patch);
  }

  /** Append an entry to the run's audit log (never throws: `auditLog.error` says why one was not written). */
  audit(type: string, data: object): void {
    const log = this.auditLog;
    log.append(type, JSON.parse(JSON.stringify(data)) as { [key: string]: Json });
    if (isFinal(this.record.state)) log.ended();
  }

  /** The run's audit log, as this process writes it. */
  get auditLog(): AuditLog {
    return AuditLog.for(this.#home, this.record.id, this.#dir);
  }

  /** Remove the run's directory: for a run refused before anything ran, which leaves nothing behind. */
  discard(): void {
    // Its audit log goes with it: nothing is left to sign when this process exits.
    this.auditLog.forget();
    try {
      Deno.removeSync(this.dir, { recursive: true });
    } catch {
      // Best effort: the refusal is what the user needs to see.
    }
    appendToIndex(this.#home, [{ gone: this.record.id }]);
  }

  /**
   * `update` where a record that cannot be written must not stop what is going on: on a path that is already
   * failing, or while the command runs (a full disk must not end it). The failure is kept in `recordError`.
   */
  tryUpdate(patch: Partial<RunRecord>): void {
    try {
      this.update(patch);
    } catch (err) {
      this.#recordError ??= err;
    }
  }

  /** Why output stopped being recorded (e.g. the disk is full); `undefined` while it is recorded. */
  get outputError(): unknown {
    return this.#outputError;
  }

  /** `outputIncomplete` for a run whose output stopped being recorded; `undefined` while it is recorded. */
  get outputNotWritten(): string | undefined {
    const err = this.#outputError;
    if (err === undefined) return undefined;
    return `it could not be written: ${firstLineOf(err)}`;
  }

  /** Why an update of `run.json` failed, when one did (see `tryUpdate`). */
  get recordError(): unknown {
    return this.#recordError;
  }

  /**
   * Write `run.json`: a temp file renamed over it, so readers never see half a record. When the disk is full
   * the temp file cannot be written: it is removed, and the record is rewritten in place, which needs no
   * new room as long as it fits the blocks the old one holds (the final record of a run on a full disk).
   * Then the record goes to the index (lib/store/index_file.ts), which forgets itself when it has no room.
   */
  save(): void {
    this.#write();
    if (this.#placed) appendToIndex(this.#home, [{ run: this.record }]);
  }

  #write(): void {
    // One temp name per process: a detached run's recorder and `moat stop` may save at the same time.
    const tmp = `${this.dir}/run.json.${Deno.pid}.tmp`;
    const text = JSON.stringify(this.record, null, 2) + "\n";
    try {
      Deno.writeTextFileSync(tmp, text);
      Deno.renameSync(tmp, `${this.dir}/run.json`);
    } catch (err) {
      try {
        Deno.removeSync(tmp);
      } catch { /* not made */ }
      if (!isNoSpace(err) || !rewriteInPlace(`${this.dir}/run.json`, text)) {
        throw recordWriteError(this.dir, err);
      }
    }
  }

  /**
   * Queue one output chunk; it reaches the file at the next `flush`, or sooner when the buffer fills — and
   * then this waits for the file, which is the stream's backpressure.
   */
  async output(stream: number, data: Uint8Array, timeMs: number): Promise<void> {
    if (this.#outputError !== undefined) return;
    let off = 0;
    while (off < data.byteLength) {
      const room = this.#buf.byteLength - this.#used - OUTPUT_HEADER_SIZE;
      if (room <= 0) {
        await this.flush();
        if (this.#outputError !== undefined) return;
        continue;
      }
      const n = Math.min(room, data.byteLength - off);
      encodeOutputHeader(this.#buf, this.#used, stream, n, timeMs);
      this.#buf.set(data.subarray(off, off + n), this.#used + OUTPUT_HEADER_SIZE);
      this.#used += OUTPUT_HEADER_SIZE + n;
      off += n;
    }
  }

  /**
   * What the output pumps call after each read: the queued output is written within `FLUSH_DELAY_MS`
   * (so `moat logs -f` follows a live run), in one write per buffer rather than one per read. A failed
   * timed write surfaces at the next `flush` or `close`.
   */
  flushSoon(): void {
    if (this.#used === 0 || this.#cancelTimer) return;
    this.#cancelTimer = after(FLUSH_DELAY_MS, () => {
      this.#cancelTimer = undefined;
      this.flush().catch(() => {});
    });
  }

  /**
   * Write what is queued; resolves when every write so far is done. The full buffer is handed to the
   * write and a spare one takes the next output, so reading the engine goes on while the file is written.
   * Never rejects: a failed write (a full disk) ends the recording, kept in `outputError`, and what is
   * queued then is dropped. The output still reaches the terminal; the record says it is incomplete.
   */
  flush(): Promise<void> {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    if (this.#outputError !== undefined) this.#used = 0;
    if (this.#used > 0) {
      const full = this.#buf;
      const bytes = full.subarray(0, this.#used);
      this.#buf = this.#spare ?? new Uint8Array(full.byteLength);
      this.#spare = undefined;
      this.#used = 0;
      this.#writing = this.#writing.then(async () => {
        this.#output ??= await Deno.open(`${this.dir}/output.bin`, {
          create: true,
          append: true,
          mode: 0o600,
        });
        let off = 0;
        while (off < bytes.byteLength) off += await this.#output.write(bytes.subarray(off));
        this.#spare = full;
      }).catch((err) => {
        this.#outputError ??= err;
      });
    }
    return this.#writing;
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      this.#output?.close();
      this.#output = undefined;
    }
  }
}

/**
 * Remove a run's directory, and the run from the index: `moat destroy`, `moat clean`. A directory that is
 * gone already is fine; throws when it cannot be removed.
 */
export async function removeRunDir(home: string, id: string): Promise<void> {
  try {
    await Deno.remove(`${home}/runs/${id}`, { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  appendToIndex(home, [{ gone: id }]);
}

/** The disk (or the user's quota) is full. */
export function isNoSpace(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}

/** Overwrite `path` from its start and cut it to `text`; false when that failed too. */
function rewriteInPlace(path: string, text: string): boolean {
  try {
    const file = Deno.openSync(path, { write: true });
    try {
      const bytes = new TextEncoder().encode(text);
      let off = 0;
      while (off < bytes.byteLength) off += file.writeSync(bytes.subarray(off));
      file.truncateSync(bytes.byteLength);
      return true;
    } finally {
      file.close();
    }
  } catch {
    return false;
  }
}

function recordWriteError(dir: string, err: unknown): MoatError {
  const detail = err instanceof Error ? err.message : String(err);
  return new MoatError(
    `Cannot write the run record ${dir}/run.json: ${detail}`,
    isNoSpace(err) ? noSpaceHint(dir) : `Check the directory:  ls -ld ${dir}`,
    { cause: err },
  );
}

/** What to type when the disk under MOAT_HOME is full. */
export function noSpaceHint(dir: string): string {
  return `Free space there (moat clean removes finished runs):  df -h ${dir}\n` +
    "or keep run records on a disk with room:  MOAT_HOME=/path/with/room moat …";
}
