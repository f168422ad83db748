/**
 * `moat logs [RUN]`: a run's recorded output from its `output.bin`, streamed (never loaded whole), stdout
 * frames to stdout and stderr frames to stderr, byte for byte. Works from the records alone; the engine is
 * asked only while following a run whose moat process is gone, and (in parallel, never failing the
 * command) for the notice about containers left behind, printed after the output.
 */
import { MoatError, UsageError } from "../errors.ts";
import { parseCommandArgs } from "./args.ts";
import {
  OutputDecoder,
  OutputFormatError,
  type OutputPiece,
  type OutputPosition,
} from "../store/output_reader.ts";
import type { ContainerSummary } from "../docker/types.ts";
import {
  type DamagedRecord,
  damagedRecordError,
  damageText,
  maybeReadRecord,
  type RunRecord,
} from "../store/records.ts";
import { damagedOf, readRuns } from "../store/run_index.ts";
import { newestRun, resolveRunOrDamaged } from "../store/refs.ts";
import { type CliContext, cliContext, formatTable } from "./context.ts";
import type { Decision } from "../net/policy_point.ts";
import { NETWORK_LOG, parseNetworkLog } from "../run/egress.ts";
import { orphansLater, printOrphanNotice } from "./orphan_notice.ts";
import { exitCodeOfEnd, type RunEnd, RunWatcher, watchIo } from "../run/watch.ts";

export const LOGS_HELP = `Usage: moat logs [OPTIONS] [RUN]

Print the output a run recorded: the command's stdout on stdout and its stderr on stderr, byte for
byte. RUN is a run id, a unique prefix of one, or a run name; without RUN, the newest run (moat says
which on stderr). Works without the Docker engine: the output comes from the run record.

Options:
  -n, --tail N       Print only the last N lines (counted over stdout and stderr together)
  -f, --follow       Keep printing new output while the run is in progress; end when it ends
      --exit-code    With -f: exit with the run's own exit code once it has ended (125 when it
                     has none), instead of 0
  -t, --timestamps   Start each line with the time moat received it (ISO 8601, UTC)
      --network      Print the run's network decisions instead (a run with --allow or
                     network: allow): each DNS question and connection, allowed or denied
      --json         With --network: a JSON array of the decisions
  -h, --help         Show this help

Exit codes: 0 printed (with --exit-code: the run's exit code); 2 usage error, no such run;
125 the records cannot be read, the output is damaged, or (--exit-code) the run has no exit code.

Examples:
  moat logs                        # the newest run's output
  moat logs -n 20 fix-tests        # the last 20 lines of the run named fix-tests
  moat logs -f 3f2a                # follow the run whose id starts with 3f2a until it ends
  id=$(moat run -d -- make test) && moat logs -f --exit-code "$id"   # fails when the tests fail
  moat logs 3f2a 2>/dev/null       # its stdout only
  moat logs --network fix-tests    # what the run reached, and what it was refused
`;

export interface ParsedLogsArgs {
  help: boolean;
  follow: boolean;
  /** `--exit-code` (with `-f`): exit with the run's own exit code once it has ended. */
  exitCode: boolean;
  timestamps: boolean;
  /** `-n N`: the last N lines; `undefined` prints everything. */
  tail: number | undefined;
  /** `--network`: the run's network decisions instead of its output; `json`: as JSON. */
  network: boolean;
  json: boolean;
  ref: string | undefined;
}

/** Parse `moat logs` arguments. Pure; throws `UsageError`. */
export function parseLogsArgs(args: string[]): ParsedLogsArgs {
  const parsed = parseCommandArgs("logs", args, {
    help: { type: "boolean", short: "h" },
    follow: { type: "boolean", short: "f" },
    "exit-code": { type: "boolean" },
    timestamps: { type: "boolean", short: "t" },
    tail: { type: "string", short: "n" },
    network: { type: "boolean" },
    json: { type: "boolean" },
  });
  const { values, positionals } = parsed;
  if (positionals.length > 1) {
    throw new UsageError(
      `Unexpected argument "${positionals[1]}": moat logs takes one RUN`,
      `For example:  moat logs ${positionals[0]}`,
    );
  }
  let tail: number | undefined;
  if (values.tail !== undefined) {
    if (!/^\d+$/.test(values.tail.trim())) {
      throw new UsageError(
        `-n/--tail "${values.tail}" is not a number of lines`,
        "For example:  moat logs -n 20",
      );
    }
    tail = Number(values.tail.trim());
  }
  if (values["exit-code"] && !values.follow && !values.help) {
    throw new UsageError(
      "--exit-code needs -f: moat logs waits for the run's end only while following it",
      `For example:  moat logs -f --exit-code ${positionals[0] ?? "RUN"}`,
    );
  }
  if (values.json && !values.network && !values.help) {
    throw new UsageError(
      "--json goes with --network",
      `For example:  moat logs --network --json ${positionals[0] ?? "RUN"}`,
    );
  }
  if (values.network && (values.follow || values.timestamps || tail !== undefined)) {
    throw new UsageError(
      "--network prints the run's network decisions, which -f, -n and -t do not apply to",
      `For example:  moat logs --network ${positionals[0] ?? "RUN"}`,
    );
  }
  return {
    help: values.help ?? false,
    follow: values.follow ?? false,
    exitCode: values["exit-code"] ?? false,
    timestamps: values.timestamps ?? false,
    tail,
    network: values.network ?? false,
    json: values.json ?? false,
    ref: positionals[0],
  };
}

/**
 * Finds where the last `n` lines of the combined output start. Lines are split at `\n` over stdout and
 * stderr together, in file order; a last line without `\n` counts as a line. Memory is `n` positions,
 * whatever the size of the output.
 */
export class TailFinder {
  readonly n: number;
  #starts: OutputPosition[] = [];
  #next = 0;
  #count = 0;
  #atLineStart = true;

  constructor(n: number) {
    this.n = n;
  }

  feed(piece: OutputPiece): void {
    const d = piece.data;
    let i = 0;
    while (i < d.byteLength) {
      if (this.#atLineStart) {
        this.#atLineStart = false;
        if (this.n > 0) {
          this.#starts[this.#next] = { frame: piece.frame, offset: piece.offset + i };
          this.#next = (this.#next + 1) % this.n;
        }
        this.#count++;
      }
      const nl = d.indexOf(10, i);
      if (nl < 0) break;
      this.#atLineStart = true;
      i = nl + 1;
    }
  }

  /** How many lines were seen. */
  get lines(): number {
    return this.#count;
  }

  /** Where to start printing. `end` is where the output fed so far ends (for `n` = 0). */
  start(end: OutputPosition): OutputPosition {
    if (this.n === 0) return end;
    if (this.#count < this.n) return { frame: 0, offset: 0 };
    // The ring is full: the oldest entry is the start of the n-th line from the end.
    return this.#starts[this.#next]!;
  }
}

/** The part of `piece` at or after `start` (pieces of earlier frames are not passed in). Pure. */
export function clipPiece(piece: OutputPiece, start: OutputPosition): OutputPiece | undefined {
  if (piece.frame !== start.frame || piece.offset >= start.offset) return piece;
  const skip = start.offset - piece.offset;
  if (skip >= piece.data.byteLength) return undefined;
  return { ...piece, data: piece.data.subarray(skip), offset: start.offset };
}

/** Where a recorded stream goes: 0 (stdin echo) and 1 to stdout, 2 and 3 (the engine's errors) to stderr. */
export function fdOf(stream: number): 1 | 2 {
  return stream === 2 || stream === 3 ? 2 : 1;
}

const encoder = new TextEncoder();

/** "2026-11-26T17:04:41.104Z " for a chunk time in Unix ms. Pure. */
export function timestampPrefix(timeMs: number): string {
  const d = new Date(timeMs);
  return `${Number.isFinite(d.getTime()) ? d.toISOString() : "-"} `;
}

/**
 * Turns pieces into what to write where, adding the `--timestamps` prefix at the start of each line.
 * `render` must be fed the output in order from a line start.
 */
export class LineRenderer {
  readonly timestamps: boolean;
  #atLineStart = true;

  constructor(timestamps: boolean) {
    this.timestamps = timestamps;
  }

  render(piece: OutputPiece): Array<{ fd: 1 | 2; bytes: Uint8Array }> {
    const fd = fdOf(piece.stream);
    const d = piece.data;
    if (d.byteLength === 0) return [];
    if (!this.timestamps) {
      this.#atLineStart = d[d.byteLength - 1] === 10;
      return [{ fd, bytes: d }];
    }
    const out: Array<{ fd: 1 | 2; bytes: Uint8Array }> = [];
    let i = 0;
    while (i < d.byteLength) {
      if (this.#atLineStart) {
        out.push({ fd, bytes: encoder.encode(timestampPrefix(piece.timeMs)) });
        this.#atLineStart = false;
      }
      const nl = d.indexOf(10, i);
      const end = nl < 0 ? d.byteLength : nl + 1;
      out.push({ fd, bytes: d.subarray(i, end) });
      if (nl >= 0) this.#atLineStart = true;
      i = end;
    }
    return out;
  }
}

/** Writes to stdout and stderr in order, coalescing consecutive writes to the same one. */
class Output {
  #buf = new Uint8Array(64 * 1024);
  #used = 0;
  #fd: 1 | 2 = 1;
  /** stdout's reader went away (`moat logs | head`): nothing more to do. */
  stdoutClosed = false;
  #stderrClosed = false;

  async write(fd: 1 | 2, bytes: Uint8Array): Promise<void> {
    if (fd !== this.#fd) await this.flush();
    this.#fd = fd;
    if (this.#used + bytes.byteLength > this.#buf.byteLength) await this.flush();
    if (bytes.byteLength > this.#buf.byteLength) {
      await this.#writeAll(fd, bytes);
      return;
    }
    this.#buf.set(bytes, this.#used);
    this.#used += bytes.byteLength;
  }

  async flush(): Promise<void> {
    if (this.#used === 0) return;
    const bytes = this.#buf.subarray(0, this.#used);
    this.#used = 0;
    await this.#writeAll(this.#fd, bytes);
  }

  async #writeAll(fd: 1 | 2, bytes: Uint8Array): Promise<void> {
    if (fd === 1 ? this.stdoutClosed : this.#stderrClosed) return;
    const file = fd === 1 ? Deno.stdout : Deno.stderr;
    try {
      let off = 0;
      while (off < bytes.byteLength) off += await file.write(bytes.subarray(off));
    } catch (err) {
      if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
      if (fd === 1) this.stdoutClosed = true;
      else this.#stderrClosed = true;
    }
  }
}

/** `output.bin`, read in chunks from a position; a file that does not exist yet reads as empty. */
class OutputFile {
  readonly path: string;
  #file: Deno.FsFile | undefined;
  #buf = new Uint8Array(256 * 1024);
  #pos: number;
  readonly #limit: number;

  constructor(path: string, start: number, limit = Infinity) {
    this.path = path;
    this.#pos = start;
    this.#limit = limit;
  }

  /** The next bytes (valid until the next call), or `null` at the end of what is there now. */
  async read(): Promise<Uint8Array | null> {
    if (this.#pos >= this.#limit) return null;
    if (!this.#file) {
      try {
        this.#file = await Deno.open(this.path, { read: true });
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return null;
        throw err;
      }
      if (this.#pos > 0) await this.#file.seek(this.#pos, Deno.SeekMode.Start);
    }
    const want = Math.min(this.#buf.byteLength, this.#limit - this.#pos);
    const n = await this.#file.read(this.#buf.subarray(0, want));
    if (n === null || n === 0) return null;
    this.#pos += n;
    return this.#buf.subarray(0, n);
  }

  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }
}

const POLL_MS = 100;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function damaged(id: string, path: string, err: OutputFormatError): MoatError {
  return new MoatError(
    `The recorded output of run ${id} is damaged: ${err.message}`,
    `What could be read was printed. The file is ${path}`,
  );
}

/** Whether `path` is a file that can be read. */
function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** `moat logs …` → exit code. */
export async function command(args: string[]): Promise<number> {
  const opts = parseLogsArgs(args);
  const ctx = cliContext();
  if (opts.help) {
    await ctx.out(LOGS_HELP);
    return 0;
  }
  ctx.checkEnv();
  // Asked while the output is read; awaited (bounded by the engine timeout) once it is printed.
  const orphans = orphansLater(ctx);
  const all = readRuns(ctx.home);
  const damagedRuns = damagedOf(all);
  let rec: RunRecord | null;
  if (opts.ref !== undefined) {
    const found = resolveRunOrDamaged(all.runs, damagedRuns, opts.ref);
    rec = "record" in found ? found.record.record : null;
    if (!rec && "damaged" in found) {
      if (opts.network) {
        const d = found.damaged;
        throw damagedRecordError(
          d.id,
          d.damage,
          "Its network log cannot be found without it.\nRemove it:  moat clean",
        );
      }
      return await logsOfUnreadable(ctx, found.damaged, opts, orphans);
    }
  } else {
    rec = newestRun(all.runs, () => true, "recorded").record;
    ctx.note(`moat: showing logs of run ${rec.id}${rec.name ? ` (${rec.name})` : ""}`);
  }
  const id = rec!.id;
  if (opts.network) return await networkLog(ctx, rec!, opts.json);
  const path = `${ctx.home}/runs/${id}/output.bin`;
  const damage = damagedRuns.find((d) => d.id === id)?.damage;
  if (damage) {
    throw damagedRecordError(
      id,
      damage,
      `Its output cannot be shown.\nRemove the record:  moat destroy ${id}   (or every damaged one:  moat clean)`,
    );
  }

  let start: OutputPosition = { frame: 0, offset: 0 };
  let limit = Infinity;
  if (opts.tail !== undefined) {
    const tail = await tailStart(id, path, opts.tail);
    start = tail.start;
    // Without -f, print the same snapshot the lines were counted in.
    if (!opts.follow) limit = tail.limit;
  }
  const watcher = opts.follow ? new RunWatcher(rec!.id, watchIo(ctx.home, () => ctx.client())) : undefined;
  await printFrom(ctx, id, path, start, limit, opts, watcher);
  // Read again: a followed run's record got its last word after the output.
  const incomplete = (opts.follow ? maybeReadRecord(ctx.home, id) : rec)?.outputIncomplete;
  if (incomplete !== undefined) {
    ctx.note(`moat: warning: the recorded output of run ${id} is incomplete: ${incomplete}`);
  }
  if (watcher && opts.exitCode) {
    // Printing may have stopped early (stdout's reader went away): the run's end is still waited for.
    const code = exitCodeOfEnd(watcher.end ?? await watcher.waitForEnd());
    await printOrphanNotice(ctx, orphans);
    return code;
  }
  await printOrphanNotice(ctx, orphans);
  return 0;
}

/**
 * `-n`: a first pass finds where the last `n` lines start (positions only), up to what the file holds now;
 * `limit` is where that is.
 */
async function tailStart(
  id: string,
  path: string,
  n: number,
): Promise<{ start: OutputPosition; limit: number }> {
  const finder = new TailFinder(n);
  const file = new OutputFile(path, 0);
  const decoder = new OutputDecoder(0);
  try {
    for (let chunk = await file.read(); chunk !== null; chunk = await file.read()) {
      for (const piece of decoder.push(chunk)) finder.feed(piece);
    }
    decoder.check();
  } catch (err) {
    if (err instanceof OutputFormatError) throw damaged(id, path, err);
    throw err;
  } finally {
    file.close();
  }
  return { start: finder.start(decoder.next), limit: decoder.position };
}

/**
 * `moat logs` of a run whose `run.json` cannot be read: its output is printed as recorded when there is
 * one (once, not followed: whether the run goes on is unknown), with a warning first; with nothing to
 * print, or with `--exit-code` (there is no exit code to give), it is an error.
 */
async function logsOfUnreadable(
  ctx: CliContext,
  d: DamagedRecord,
  opts: ParsedLogsArgs,
  orphans: Promise<ContainerSummary[] | undefined>,
): Promise<number> {
  const path = `${ctx.home}/runs/${d.id}/output.bin`;
  if (!isFile(path)) {
    throw damagedRecordError(d.id, d.damage, "It has no recorded output to show.\nRemove it:  moat clean");
  }
  ctx.note(
    `moat: warning: ${damageText(d.id, d.damage)}; its recorded output is shown, but its state is unknown`,
  );
  let start: OutputPosition = { frame: 0, offset: 0 };
  let limit = Infinity;
  if (opts.tail !== undefined) ({ start, limit } = await tailStart(d.id, path, opts.tail));
  await printFrom(ctx, d.id, path, start, limit, opts, undefined);
  if (opts.exitCode) {
    throw damagedRecordError(d.id, d.damage, "Its exit code cannot be read.\nRemove it:  moat clean");
  }
  await printOrphanNotice(ctx, orphans);
  return 0;
}

/** The stderr line that says why `logs -f` stopped before the run's record was final, if it did. */
export function whyFollowingEnded(end: RunEnd | undefined): string | undefined {
  if (end?.kind === "removed") return `moat: run ${end.id} was removed while following it`;
  if (end?.kind === "abandoned") return `moat: stopped following run ${end.id}: ${end.why}`;
  return undefined;
}

async function printFrom(
  ctx: CliContext,
  id: string,
  path: string,
  start: OutputPosition,
  limit: number,
  opts: ParsedLogsArgs,
  follower: RunWatcher | undefined,
): Promise<void> {
  const file = new OutputFile(path, start.frame, limit);
  const decoder = new OutputDecoder(start.frame);
  const renderer = new LineRenderer(opts.timestamps);
  const out = new Output();
  try {
    let lastRead = false;
    for (;;) {
      const chunk = await file.read();
      if (chunk !== null) {
        for (const piece of decoder.push(chunk)) {
          const p = clipPiece(piece, start);
          if (!p) continue;
          for (const seg of renderer.render(p)) await out.write(seg.fd, seg.bytes);
        }
        await out.flush();
        if (out.stdoutClosed) return;
        continue;
      }
      // At the end of what the file holds now.
      decoder.check();
      if (!follower || lastRead) break;
      const more = await follower.inProgress();
      // The run ended: its recorder wrote everything before the final record, so read once more, then stop.
      if (!more) lastRead = true;
      else await sleep(POLL_MS);
    }
  } catch (err) {
    await out.flush().catch(() => {});
    if (err instanceof OutputFormatError) throw damaged(id, path, err);
    throw err;
  } finally {
    file.close();
  }
  await out.flush();
  const why = whyFollowingEnded(follower?.end);
  if (why) ctx.note(why);
}

/** `moat logs --network`: the run's decisions, as a table or JSON. */
async function networkLog(ctx: CliContext, rec: RunRecord, json: boolean): Promise<number> {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${ctx.home}/runs/${rec.id}/${NETWORK_LOG}`);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    if (rec.profile?.network !== "allowlist") {
      throw new UsageError(
        `Run ${rec.id} has no network log: its network was ${
          rec.profile?.network ?? "default"
        }, not an allowlist`,
        "Only runs with --allow (or network: allow in moat.yaml) have one:  moat run --allow HOST -- COMMAND",
      );
    }
    text = ""; // an allowlist run that decided nothing yet
  }
  const decisions = parseNetworkLog(text);
  const out = json ? JSON.stringify(decisions, null, 2) + "\n" : formatNetworkLog(decisions);
  try {
    await ctx.out(out);
  } catch (err) {
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
  return 0;
}

/** The table of `moat logs --network` (header included). Pure. */
export function formatNetworkLog(decisions: readonly Decision[]): string {
  return formatTable(
    ["TIME", "VIA", "HOST", "REQUEST", "DECISION", "RULE OR REASON", "BYTES OUT/IN"],
    decisions.map((d) => [
      d.time.slice(11, 23),
      d.via,
      d.host === null ? "-" : d.port === null ? d.host : `${d.host}:${d.port}`,
      d.method ? `${d.method} ${d.path ?? ""}`.trim() : "-",
      d.decision,
      [d.rule, d.grant ? `grant ${d.grant}` : undefined, d.reason].filter(Boolean).join("; ") || "-",
      d.sent === undefined ? "-" : `${d.sent}/${d.received ?? 0}`,
    ]),
  );
}
