/**
 * A run's output, from the engine to the user's terminal and the run record — complete, or said not to be.
 *
 * The live stream (the hijacked attach connection of a foreground run, the followed log of a detached one)
 * can fail in three ways the engine's own clients do not guard against: it breaks (a reset connection, an
 * engine restart, a frame cut in half), it ends cleanly while the container still runs (a proxy or engine
 * that closed it), or it stays open after the container exited (a stuck engine). The engine still holds the
 * bytes: `GET /containers/{id}/logs` replays a container's output from its start, stream by stream in the
 * same order (Docker Engine API reference, ContainerLogs). So the copy counts the payload bytes it delivered
 * per stream, and a broken, early-ended or stuck stream is followed by the log, skipping what was already
 * delivered. Where the log cannot give the rest either, the outcome says so: the output is incomplete.
 */
import type { EngineClient } from "../docker/client.ts";
import { Demuxer, DemuxError } from "../docker/demux.ts";
import { EngineUnavailableError, firstLineOf, MoatError } from "../errors.ts";
import { after, sleep } from "../timer.ts";

/** Where output goes. `write` must consume the bytes before resolving (they are reused afterwards). */
export interface Sink {
  write(bytes: Uint8Array): Promise<void>;
}

/** Where a run's output is recorded (`RunStore`): queued per piece, written by size and time. */
export interface RecordSink {
  output(stream: number, data: Uint8Array, timeMs: number): Promise<void>;
  /** After each read from the engine: write the queued output soon (not necessarily now). */
  flushSoon(): void;
  /** Write everything queued, now. */
  flush(): Promise<void>;
}

/** Where the copies deliver: the user's stdout and stderr (absent for a detached run) and the record. */
export interface OutputTargets {
  stdout?: Sink;
  stderr?: Sink;
  record: RecordSink;
  now(): number;
}

/** A source of output bytes: the attach connection or a log stream. Slices are valid until the next read. */
export interface ByteStream {
  read(): Promise<Uint8Array | null>;
  close(): void;
}

/** How the stream's bytes become output pieces: the demuxer, or a pty's stream as it is. */
export type Framer = Pick<Demuxer, "push" | "end">;

/** A pty's output is one raw stream (stderr merged in by the pty): every chunk is stdout, unframed. */
const rawFramer: Framer = {
  push: (bytes) => [{ stream: 1, data: bytes }],
  end: () => ({ truncated: false }),
};

/** The framer for a container's streams: raw for a `Tty` container, multiplexed otherwise. */
export function framerFor(tty: boolean): Framer {
  return tty ? rawFramer : new Demuxer();
}

/** How one copy ended. */
export type CopyEnd =
  /** The source ended; `truncated`: inside a frame. */
  | { kind: "eof"; truncated: boolean }
  /** Reading failed (a reset connection, an engine gone, bytes that are not the stream format). */
  | { kind: "error"; error: unknown }
  /** Ended by `cutWhenQuiet`: the source had nothing more to say after the container exited. */
  | { kind: "cut" };

/** How long moat keeps asking an engine that went away (a restart) for what it lost: output, an exit code. */
export const ENGINE_RECOVERY_MS = 60_000;

/** After the exit is known, how long a stream may stay silent before it is taken to be stuck. */
export const OUTPUT_GRACE_MS = 2_000;
/**
 * After a stream ended, how long the exit may take to arrive before the engine is asked whether the
 * container still runs (normally the exit follows within milliseconds).
 */
export const EXIT_AFTER_EOF_MS = 500;

/** 0 for stdout (streams 0 and 1), 1 for stderr (2, and the daemon's own errors, 3). */
function sinkIndex(stream: number): 0 | 1 {
  return stream === 2 || stream === 3 ? 1 : 0;
}

/**
 * What all copies of one run share: the targets, the payload bytes delivered per stream (so a later copy
 * skips them), the sinks whose reader went away, and the buffer that joins pieces into one write.
 */
export class Delivery {
  readonly delivered: [number, number] = [0, 0];
  readonly #closed = new Set<Sink>();
  #joined = new Uint8Array(0);
  readonly #targets: OutputTargets;
  readonly #onClosed: () => void;

  /** `onClosed`: called once, when the first sink's reader is gone (a broken pipe). */
  constructor(targets: OutputTargets, onClosed: () => void = () => {}) {
    this.#targets = targets;
    this.#onClosed = onClosed;
  }

  get targets(): OutputTargets {
    return this.#targets;
  }

  #sink(stream: number): Sink | undefined {
    return sinkIndex(stream) === 1 ? this.#targets.stderr : this.#targets.stdout;
  }

  /**
   * Deliver pieces that arrived at `t`. `seen` counts the payload bytes of this copy's source per stream,
   * those already delivered (by an earlier copy) included; only bytes past `delivered` go out. Consecutive
   * pieces for the same sink leave in one write: docker sends 32 KiB frames, so a 64 KiB read is usually
   * two pieces of stdout.
   */
  async deliver(pieces: Array<{ stream: number; data: Uint8Array }>, seen: [number, number], t: number) {
    const fresh: Array<{ stream: number; data: Uint8Array }> = [];
    for (const p of pieces) {
      const i = sinkIndex(p.stream);
      const before = seen[i];
      seen[i] += p.data.byteLength;
      if (seen[i] <= this.delivered[i]) continue;
      const data = before < this.delivered[i] ? p.data.subarray(this.delivered[i] - before) : p.data;
      this.delivered[i] += data.byteLength;
      fresh.push(data === p.data ? p : { stream: p.stream, data });
    }
    for (let i = 0; i < fresh.length;) {
      const sink = this.#sink(fresh[i]!.stream);
      let end = i + 1;
      let size = fresh[i]!.data.byteLength;
      while (end < fresh.length && this.#sink(fresh[end]!.stream) === sink) {
        size += fresh[end++]!.data.byteLength;
      }
      if (sink && !this.#closed.has(sink)) {
        let data = fresh[i]!.data;
        if (end - i > 1) {
          if (this.#joined.byteLength < size) this.#joined = new Uint8Array(Math.max(size, 64 * 1024));
          for (let k = i, at = 0; k < end; at += fresh[k++]!.data.byteLength) {
            this.#joined.set(fresh[k]!.data, at);
          }
          data = this.#joined.subarray(0, size);
        }
        try {
          await sink.write(data);
        } catch (err) {
          if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
          if (this.#closed.size === 0) this.#onClosed();
          this.#closed.add(sink);
        }
      }
      for (let k = i; k < end; k++) await this.#targets.record.output(fresh[k]!.stream, fresh[k]!.data, t);
      i = end;
    }
    this.#targets.record.flushSoon();
  }
}

/**
 * One copy from a source into a `Delivery`, started at construction. A frame of the daemon's own errors
 * (stream 3, which only a log stream carries) is not output: when `daemonErrors` is set it is kept in
 * `daemonError` instead of delivered.
 */
export class OutputCopy {
  readonly done: Promise<CopyEnd>;
  /** Payload bytes of this source per stream, including those skipped as already delivered. */
  readonly seen: [number, number] = [0, 0];
  /** Text of the daemon's error frames, when `daemonErrors` is set. */
  daemonError = "";
  #source: ByteStream;
  #reading = false;
  #lastRead = 0;
  #cut = false;
  #cancelCut: (() => void) | undefined;

  constructor(
    source: ByteStream,
    framer: Framer,
    delivery: Delivery,
    opts: { daemonErrors?: boolean } = {},
  ) {
    this.#source = source;
    this.done = this.#run(framer, delivery, opts.daemonErrors ?? false);
  }

  async #run(framer: Framer, delivery: Delivery, daemonErrors: boolean): Promise<CopyEnd> {
    const decoder = new TextDecoder();
    try {
      for (;;) {
        let chunk: Uint8Array | null;
        let pieces;
        // Failures of the source and of the framing end the copy as the stream's; a failing sink (other
        // than a reader that went away) is moat's own problem and is thrown.
        try {
          this.#reading = true;
          chunk = await this.#source.read();
          this.#reading = false;
          this.#lastRead = Date.now();
          if (chunk === null) break;
          pieces = framer.push(chunk);
        } catch (err) {
          if (this.#cut) return { kind: "cut" };
          return {
            kind: "error",
            error: err instanceof DemuxError
              ? new MoatError(`the stream is not in the format moat reads: ${err.message}`)
              : err,
          };
        }
        const t = delivery.targets.now();
        if (daemonErrors && pieces.some((p) => p.stream === 3)) {
          for (const p of pieces) {
            if (p.stream === 3) this.daemonError += decoder.decode(p.data, { stream: true });
          }
          pieces = pieces.filter((p) => p.stream !== 3);
        }
        await delivery.deliver(pieces, this.seen, t);
      }
      if (this.#cut) return { kind: "cut" };
      return { kind: "eof", truncated: framer.end().truncated };
    } finally {
      this.#cancelCut?.();
      this.#source.close();
    }
  }

  /**
   * The container has exited: end this copy once its source has been silent for `graceMs` — waiting on a
   * read, not on a slow reader of the output (a paused pager is not a stuck engine).
   */
  cutWhenQuiet(graceMs: number): void {
    if (this.#cancelCut) return;
    this.#lastRead = Date.now();
    const check = () => {
      const quiet = Date.now() - this.#lastRead;
      if (this.#reading && quiet >= graceMs) {
        this.#cut = true;
        this.#source.close();
        return;
      }
      this.#cancelCut = after(this.#reading ? graceMs - quiet : graceMs, check);
    };
    this.#cancelCut = after(graceMs, check);
  }
}

/** The attach connection as a `ByteStream`. */
export function attachStream(attach: { reader: { readSome(): Promise<Uint8Array | null> }; close(): void }) {
  return { read: () => attach.reader.readSome(), close: () => attach.close() };
}

/** A log stream as a `ByteStream`. */
export function logStream(logs: { body: AsyncGenerator<Uint8Array>; close(): void }): ByteStream {
  return {
    read: async () => {
      const r = await logs.body.next();
      return r.done ? null : r.value;
    },
    close: () => logs.close(),
  };
}

/**
 * Copy a container's output from `first` (attach, or a followed log) until it is complete, given `exit`,
 * which settles once the container's exit is known. Returns why the output is incomplete, or `undefined`
 * when every byte reached the targets. Never throws for engine trouble.
 *
 * - `first` ends cleanly, and the exit follows: done (the normal path, no extra request).
 * - `first` ends cleanly but the exit does not follow within `EXIT_AFTER_EOF_MS`: the engine is asked
 *   whether the container still runs; if so (or it cannot say), the stream was cut.
 * - `first` breaks, ends inside a frame, or stays silent for `OUTPUT_GRACE_MS` after the exit: cut.
 * A cut stream is followed by the log (followed while the container runs, replayed once it exited), skipping
 * the bytes already delivered, until a replay after the exit ends cleanly.
 */
export async function copyOutput(
  client: EngineClient,
  id: string,
  tty: boolean,
  first: ByteStream,
  delivery: Delivery,
  exit: Promise<unknown>,
  timing: { graceMs?: number; exitAfterEofMs?: number } = {},
): Promise<string | undefined> {
  const graceMs = timing.graceMs ?? OUTPUT_GRACE_MS;
  const exitAfterEofMs = timing.exitAfterEofMs ?? EXIT_AFTER_EOF_MS;
  let exited = false;
  const exitKnown = exit.then(() => {
    exited = true;
  }, () => {
    exited = true;
  });

  /** Run one copy to its end, cutting it when it stays silent after the exit. */
  const runCopy = async (copy: OutputCopy): Promise<CopyEnd> => {
    const first = await Promise.race([copy.done, exitKnown.then(() => undefined)]);
    if (first !== undefined) return first;
    copy.cutWhenQuiet(graceMs);
    return await copy.done;
  };

  /** After a clean end: does the container still run? (Then the stream was cut short.) */
  const endedEarly = async (): Promise<boolean> => {
    if (exited) return false;
    if (await Promise.race([exitKnown.then(() => true), sleep(exitAfterEofMs).then(() => false)])) {
      return false;
    }
    const c = await client.maybeContainerInspect(id).catch(() => null);
    if (c === undefined) return false; // gone: removed by someone else; its output went with it
    return c === null || c.State.Running;
  };

  const end = await runCopy(new OutputCopy(first, framerFor(tty), delivery));
  if (end.kind === "eof" && !end.truncated && !(await endedEarly())) return undefined;

  const cut = `the output stream ${describe(end)}`;
  let reason = "its log could not be read";
  // A stream that broke at the container's end is common (an engine that gave up on it): then one replay
  // of the log suffices, rather than following a log that is about to end.
  if (!exited) await Promise.race([exitKnown, sleep(exitAfterEofMs)]);
  // A log stream that fails again is given up on after a few tries; an engine that is away (a restart) is
  // asked again for as long as moat waits for a lost exit code.
  const deadline = Date.now() + ENGINE_RECOVERY_MS;
  for (let attempt = 0; attempt < 5;) {
    // Follow the log while the container runs; replay it once it stopped (even if its exit code is not in
    // yet: a stuck wait must not make moat follow a log that has ended).
    const follow = !exited &&
      (await client.maybeContainerInspect(id).catch(() => null))?.State.Running !== false;
    let logs;
    try {
      logs = await client.containerLogs(id, { follow });
    } catch (err) {
      reason = `its log could not be read: ${firstLineOf(err)}`;
      if (!(err instanceof EngineUnavailableError) || Date.now() >= deadline) break;
      await sleep(1_000); // the engine may be restarting
      continue;
    }
    attempt++;
    const copy = new OutputCopy(logStream(logs), framerFor(tty), delivery, { daemonErrors: true });
    const logEnd = await runCopy(copy);
    if (copy.daemonError) {
      reason = `the engine could not replay the log: ${copy.daemonError.trim()}`;
      break;
    }
    if (logEnd.kind !== "eof" || logEnd.truncated) {
      reason = `the log stream ${describe(logEnd)}`;
      continue;
    }
    if (follow) continue; // a followed log ends when the container stops; a replay then confirms it all
    if (copy.seen[0] < delivery.delivered[0] || copy.seen[1] < delivery.delivered[1]) {
      return `${cut}, and the engine's log no longer holds all of it (a log driver that rotates or drops output)`;
    }
    return undefined;
  }
  return `${cut}, and ${reason}`;
}

function describe(end: CopyEnd): string {
  switch (end.kind) {
    case "eof":
      return end.truncated ? "ended inside a frame" : "ended while the container was running";
    case "cut":
      return "stayed open and silent after the container exited";
    case "error":
      return `broke: ${firstLineOf(end.error)}`;
  }
}
