/**
 * The run lifecycle over the `EngineClient` interface, in the order docs/docker-engine-api.md §5.12 gives:
 * create → attach → wait (headers read) → start → pump output → exit code → remove (unless kept).
 * Attaching and registering the wait before start is what guarantees no output and no exit is missed.
 */
import type { AttachStream, EngineClient, PendingWait } from "../docker/client.ts";
import { Demuxer, DemuxError } from "../docker/demux.ts";
import type { ContainerCreateBody, ContainerInspect } from "../docker/types.ts";
import {
  EngineApiError,
  ImageMissingError,
  InterruptedError,
  interruptedExitCode,
  MoatError,
  SandboxUnavailableError,
} from "../errors.ts";

export { InterruptedError };

/** The host terminal a `-t` run is attached to (moat's stdin). */
export interface Terminal {
  /** Rows and columns now; `undefined` when unknown. */
  size(): { rows: number; cols: number } | undefined;
  /** Raw mode on (keys go to the container as bytes, Ctrl-C included) or back to what it was. */
  setRaw(on: boolean): Promise<void>;
  /** Call `fn` on every size change (SIGWINCH); returns the unsubscribe. */
  onResize(fn: () => void): () => void;
}

/** Where output goes. `write` must consume the bytes before resolving (they are reused afterwards). */
export interface Sink {
  write(bytes: Uint8Array): Promise<void>;
}

export interface LifecycleIO {
  stdout: Sink;
  stderr: Sink;
  /** Present only for `-i`: piped to the container; its EOF half-closes the attach connection. */
  stdin?: { read(p: Uint8Array): Promise<number | null> };
  /**
   * Present only for `-t` (the plan has `Tty`): its size follows into the container, and while stdin is
   * attached it is in raw mode, restored on every path out of `driveRun`.
   */
  terminal?: Terminal;
  /** The run record's output file. */
  record: RecordSink;
  now(): number;
}

/** Where a run's output is recorded (`RunStore`): queued per piece, written by size and time. */
export interface RecordSink {
  output(stream: number, data: Uint8Array, timeMs: number): Promise<void>;
  /** After each read from the engine: write the queued output soon (not necessarily now). */
  flushSoon(): void;
  /** Write everything queued, now. */
  flush(): Promise<void>;
}

export interface LifecycleHooks {
  /** The container exists; persist its id before anything else can fail. */
  onCreated(id: string, warnings: string[]): void | Promise<void>;
  /** The container started (clear the spinner before any output). */
  onStarted(): void | Promise<void>;
  /** Removal was attempted (not with `keep`): whether the container is gone. Called on every path. */
  onRemoved?(removed: boolean): void | Promise<void>;
  /** An interrupt is stopping the running container: up to `graceSeconds`, unless `force` fires. */
  onStopping?(graceSeconds: number): void;
}

export interface LifecycleOptions {
  keep: boolean;
  /** Aborted with the signal name ("SIGINT", "SIGTERM") as reason when the user interrupts. */
  interrupt: AbortSignal;
  /** Seconds a stopped container gets between SIGTERM and SIGKILL. */
  stopGraceSeconds: number;
  /** Aborted by a second interrupt: the container is killed at once instead of waiting for the grace. */
  force?: AbortSignal;
  /**
   * A check that runs alongside create and must pass before the container is attached or started: the
   * gVisor runtime check, since `/info` answers slower than create. When it fails, the container, never
   * started, is removed even with `keep`; when create fails too, the check's error is the one reported.
   */
  admit?: Promise<void>;
}

export interface RunOutcome {
  containerId: string;
  exitCode: number;
  /** The signal that interrupted the run, if any. */
  interrupted: string | undefined;
  /** `HostConfig.Runtime` as the engine reports it: the runtime actually used. */
  runtime: string | undefined;
  /** The output stream ended inside a frame. */
  truncated: boolean;
  removed: boolean;
  startedAt: Date | undefined;
  /** The container's memory limit was hit and the kernel killed the command (`exitCode` is then 137). */
  oomKilled: boolean;
}

/**
 * The exit code of a command the kernel's OOM killer ended: SIGKILL's (128 + 9), also when the engine
 * reports 1 because the host killed gVisor's whole sandbox rather than the command in it.
 */
export const OOM_KILLED_EXIT_CODE = 137;

/** The container was created but the runtime could not start the command (docker's 125/126/127). */
export class ContainerStartError extends MoatError {
  override readonly exitCode: number;
  constructor(message: string, hint: string, exitCode: number) {
    super(message, hint);
    this.exitCode = exitCode;
  }
}

/**
 * The engine's own network setup failed before any runtime ran (its bridge is gone, its endpoint could not
 * be made): the engine's fault, not gVisor's. Not the runtime's errors, which also name the network.
 */
const ENGINE_NETWORK_FAILURE =
  /failed to create endpoint|failed to set up container networking|could not find bridge/i;

/**
 * The engine's own refusal of a `-u NAME[:GROUP]` the image's `/etc/passwd` or `/etc/group` lacks: dockerd
 * looks the user up itself (moby/sys/user) before any runtime is involved.
 */
const MISSING_USER = /unable to find (user|group) ([^:]+): no matching entries in (?:passwd|group) file/i;

/**
 * Whether the engine's message says the runtime failed: it names an OCI runtime (dockerd's "OCI runtime
 * create failed", containerd's shim), or the runtime itself by name. Anything else is the engine's own.
 */
function namesRuntime(msg: string, runtime: string | undefined): boolean {
  if (/OCI runtime|\bshim\b/i.test(msg)) return true;
  if (runtime === undefined) return false;
  const name = runtime.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^A-Za-z0-9_.-])${name}($|[^A-Za-z0-9_-])`).test(msg);
}

/**
 * Map a `/start` failure to docker's exit-code convention: 127 not found, 126 not executable, else 125; and
 * say whose failure it is. The runtime (and, for gVisor, its debug log) is named only when the engine's
 * message names the runtime; a user missing from the image and the engine's network setup get their own.
 */
export function classifyStartError(err: EngineApiError, runtime: string | undefined): ContainerStartError {
  const msg = err.daemonMessage;
  const notFound = /executable file not found|no such file or directory/i.test(msg);
  const denied = !notFound && /permission denied/i.test(msg);
  const code = notFound ? 127 : denied ? 126 : 125;
  if (notFound || denied) {
    const what = notFound
      ? "The command was not found in the image"
      : "The command is not executable in the image";
    return new ContainerStartError(
      `${what}: ${msg}`,
      "Check the command and image, e.g.:  moat run --image <image> -- ls /usr/bin",
      code,
    );
  }
  const missing = MISSING_USER.exec(msg);
  if (missing) {
    const [, kind, name] = missing;
    const file = kind!.toLowerCase() === "user" ? "/etc/passwd" : "/etc/group";
    return new ContainerStartError(
      `The image has no ${kind!.toLowerCase()} "${name}": ${msg}`,
      `List the ${kind!.toLowerCase()}s it has:  moat run --image <image> -- cat ${file}\n` +
        "or give a numeric id, which needs no entry there:  --user 1000:1000",
      code,
    );
  }
  const byRuntime = namesRuntime(msg, runtime);
  if (!byRuntime && ENGINE_NETWORK_FAILURE.test(msg)) {
    return new ContainerStartError(
      `The Docker engine could not set up the container's network: ${msg}`,
      "Restarting the engine recreates its default bridge (docker0):  sudo systemctl restart docker\n" +
        "or run without a network:  --network none   (or  network: none  in moat.yaml)",
      code,
    );
  }
  if (!byRuntime) {
    return new ContainerStartError(
      `The Docker engine could not start the container: ${msg}`,
      "Look for the cause in the engine's log:  journalctl -u docker   (or the file dockerd writes to)\n" +
        "Reproduce it without moat:  docker run --rm <image> true",
      code,
    );
  }
  return new ContainerStartError(
    `The container runtime${runtime ? ` "${runtime}"` : ""} could not start the container: ${msg}`,
    runtime
      ? `Reproduce it without moat:  docker run --rm --runtime=${runtime} <image> true\n` +
        `Run with gVisor's debug log: add "--debug", "--debug-log=/tmp/runsc/" to the runtime's runtimeArgs`
      : "Reproduce it without moat:  docker run --rm <image> true",
    code,
  );
}

function mapCreateError(err: unknown, body: ContainerCreateBody): unknown {
  if (!(err instanceof EngineApiError)) return err;
  if (err.isNotFound) {
    return new ImageMissingError(
      body.Image,
      `Image "${body.Image}" disappeared from the engine before the container was created`,
      `Load it again:  docker load -i <file>.tar`,
    );
  }
  if (err.status === 400 && /runtime/i.test(err.daemonMessage) && body.HostConfig.Runtime) {
    return new SandboxUnavailableError(
      `The engine refused the gVisor runtime "${body.HostConfig.Runtime}": ${err.daemonMessage}`,
      "Check the registration:  docker info --format '{{json .Runtimes}}'",
    );
  }
  return err;
}

/**
 * The first step of every run: nothing is created once interrupted; create errors are classified, and
 * when the admission check (`LifecycleOptions.admit`) fails as well, its error is the one thrown: it says
 * more (e.g. which runtimes the engine has instead of gVisor).
 */
async function createUnlessInterrupted(
  client: EngineClient,
  plan: { name: string; body: ContainerCreateBody },
  interrupt: AbortSignal,
  admit: Promise<void> | undefined,
) {
  admit?.catch(() => {}); // awaited by the caller too; a rejection that comes first is not "unhandled"
  if (interrupt.aborted) throw new InterruptedError(String(interrupt.reason ?? "SIGINT"), undefined);
  try {
    return await client.containerCreate(plan.body, plan.name);
  } catch (err) {
    await admit;
    throw mapCreateError(err, plan.body);
  }
}

/** Drive one run. Removes the container on every path unless `keep`. */
export async function driveRun(
  client: EngineClient,
  plan: { name: string; body: ContainerCreateBody },
  io: LifecycleIO,
  hooks: LifecycleHooks,
  opts: LifecycleOptions,
): Promise<RunOutcome> {
  const { interrupt } = opts;
  const signalName = () => String(interrupt.reason ?? "SIGINT");
  const created = await createUnlessInterrupted(client, plan, interrupt, opts.admit);
  const id = created.Id;
  const tty = plan.body.Tty === true;
  let refused = false;
  let early: Promise<ContainerInspect | undefined> | undefined;
  let attach: AttachStream | undefined;
  let wait: PendingWait | undefined;
  let outcome: RunOutcome | undefined;
  let stopping: Promise<void> | undefined;
  let killing: Promise<void> | undefined;
  let raw = false;
  let sizes: SizeFollower | undefined;
  const stop = () => {
    if (stopping) return;
    hooks.onStopping?.(opts.stopGraceSeconds);
    stopping = client.containerStop(id, opts.stopGraceSeconds).catch(() => client.containerKill(id)).catch(
      () => {},
    );
  };
  // A second interrupt does not wait for the grace period. (Listened to from start on: before that the
  // first interrupt already ends the run without starting it, and removal is forced.)
  const kill = () => {
    killing ??= client.containerKill(id).catch(() => {});
  };
  try {
    await hooks.onCreated(id, created.Warnings ?? []);
    try {
      await opts.admit;
    } catch (err) {
      refused = true;
      throw err;
    }
    if (interrupt.aborted) throw new InterruptedError(signalName(), id, !opts.keep);
    attach = await client.containerAttach(id, { stdin: io.stdin !== undefined });
    wait = await client.containerWait(id, "next-exit");
    if (interrupt.aborted) throw new InterruptedError(signalName(), id, !opts.keep);
    // Raw before start, as a terminal program expects: the first keys typed already go to the container.
    if (tty && io.terminal && io.stdin) {
      raw = true;
      await io.terminal.setRaw(true);
    }
    try {
      await client.containerStart(id);
    } catch (err) {
      if (err instanceof EngineApiError) throw classifyStartError(err, plan.body.HostConfig.Runtime);
      throw err;
    }
    const startedAt = new Date();
    // The runtime actually used, read while the command runs rather than after it exits.
    early = client.maybeContainerInspect(id).catch(() => undefined);
    if (tty && io.terminal) sizes = followSize(client, id, io.terminal);
    interrupt.addEventListener("abort", stop, { once: true });
    opts.force?.addEventListener("abort", kill, { once: true });
    if (interrupt.aborted) stop();
    if (opts.force?.aborted) kill();
    await hooks.onStarted();
    if (io.stdin) pumpStdin(io.stdin, attach);
    // A reader that went away (`moat run … | head -1`) gets pipe semantics: the command receives SIGPIPE.
    const onClosed = () => void client.containerKill(id, "SIGPIPE").catch(() => {});
    const { truncated } = await pumpOutput(attach, io, tty ? rawFramer : new Demuxer(), onClosed)
      .catch((err) => {
        if (!(err instanceof DemuxError)) throw err;
        throw new MoatError(
          `The engine's output stream for container ${
            id.slice(0, 12)
          } is not in the format moat reads: ${err.message}`,
          "Check which engine answers:  docker version   and report this with its output",
        );
      });
    const result = await wait.result;
    await stopping;
    await killing;
    // After the exit, before removal, and only for the exit codes an OOM kill gives: whether the kernel's
    // OOM killer ended it.
    const mayBeOom = result.StatusCode === OOM_KILLED_EXIT_CODE || result.StatusCode === 1;
    const inspected = mayBeOom ? await client.maybeContainerInspect(id).catch(() => undefined) : undefined;
    const runtime = (inspected ?? await early)?.HostConfig.Runtime;
    const interrupted = interrupt.aborted ? signalName() : undefined;
    outcome = {
      containerId: id,
      exitCode: interrupted
        ? interruptedExitCode(interrupted)
        : inspected?.State.OOMKilled === true
        ? OOM_KILLED_EXIT_CODE
        : result.StatusCode,
      interrupted,
      runtime,
      truncated,
      removed: false,
      startedAt,
      oomKilled: inspected?.State.OOMKilled === true,
    };
  } finally {
    // The terminal first: whatever happens next (a slow removal, an error), the user's shell works again.
    if (raw) await io.terminal?.setRaw(false);
    interrupt.removeEventListener("abort", stop);
    opts.force?.removeEventListener("abort", kill);
    await sizes?.stop();
    attach?.close();
    wait?.close();
    await early;
    if (!opts.keep || refused) {
      const removed = await client.containerRemove(id).then(() => true, () => false);
      if (outcome) outcome.removed = removed;
      await hooks.onRemoved?.(removed);
    }
  }
  return outcome;
}

/** How the attach stream's bytes become output pieces: the demuxer, or a pty's stream as it is. */
type Framer = Pick<Demuxer, "push" | "end">;

/** A pty's output is one raw stream (stderr merged in by the pty): every chunk is stdout, unframed. */
const rawFramer: Framer = {
  push: (bytes) => [{ stream: 1, data: bytes }],
  end: () => ({ truncated: false }),
};

/**
 * Copy the attach stream to stdout/stderr and the record, until the engine closes it: demultiplexed, or
 * raw for a `Tty` container. A sink whose reader is gone (broken pipe) is skipped from then on, `onClosed`
 * is called once, and the record keeps everything.
 */
async function pumpOutput(
  attach: AttachStream,
  io: LifecycleIO,
  framer: Framer,
  onClosed: () => void,
): Promise<{ truncated: boolean }> {
  const closed = new Set<Sink>();
  // Consecutive pieces for the same sink leave in one write: docker sends 32 KiB frames, so a 64 KiB read
  // is usually two pieces of stdout. `joined` is reused; each write completes before the next read.
  let joined = new Uint8Array(0);
  const sinkOf = (stream: number) => stream === 2 || stream === 3 ? io.stderr : io.stdout;
  for (;;) {
    const chunk = await attach.reader.readSome();
    if (chunk === null) break;
    const t = io.now();
    const pieces = framer.push(chunk);
    for (let i = 0; i < pieces.length;) {
      // 0 (stdin echo) and 1 go to stdout; 2 and the daemon's own errors (3) to stderr (§6.1).
      const sink = sinkOf(pieces[i]!.stream);
      let end = i + 1;
      let size = pieces[i]!.data.byteLength;
      while (end < pieces.length && sinkOf(pieces[end]!.stream) === sink) {
        size += pieces[end++]!.data.byteLength;
      }
      let data = pieces[i]!.data;
      if (end - i > 1) {
        if (joined.byteLength < size) joined = new Uint8Array(Math.max(size, 64 * 1024));
        for (let k = i, at = 0; k < end; at += pieces[k++]!.data.byteLength) joined.set(pieces[k]!.data, at);
        data = joined.subarray(0, size);
      }
      if (!closed.has(sink)) {
        try {
          await sink.write(data);
        } catch (err) {
          if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
          if (closed.size === 0) onClosed();
          closed.add(sink);
        }
      }
      for (let k = i; k < end; k++) await io.record.output(pieces[k]!.stream, pieces[k]!.data, t);
      i = end;
    }
    io.record.flushSoon();
  }
  return framer.end();
}

interface SizeFollower {
  /** Stop following and wait for a resize in flight (its failure is harmless). */
  stop(): Promise<void>;
}

/**
 * Keep the container's pty the size of the host terminal: once right after start (engines before API 1.42
 * ignore `ConsoleSize`, §5.8) and on every SIGWINCH. Resizes are sent one at a time, the latest size
 * wins, and a failure — typically 409 because the container just exited — is ignored.
 */
export function followSize(client: EngineClient, id: string, terminal: Terminal): SizeFollower {
  let inFlight: Promise<void> | undefined;
  let pending = false;
  let stopped = false;
  const send = (): Promise<void> => {
    pending = false;
    const size = terminal.size();
    if (!size || stopped) return Promise.resolve();
    return client.containerResize(id, size.rows, size.cols).catch(() => {});
  };
  const request = () => {
    if (inFlight) {
      pending = true;
      return;
    }
    inFlight = (async () => {
      await send();
      while (pending && !stopped) await send();
      inFlight = undefined;
    })();
  };
  const unsubscribe = terminal.onResize(request);
  request();
  return {
    async stop() {
      stopped = true;
      unsubscribe();
      await inFlight;
    },
  };
}

/** Copy stdin to the container, then half-close so the container sees EOF. Ends quietly if the run ends. */
function pumpStdin(stdin: NonNullable<LifecycleIO["stdin"]>, attach: AttachStream): void {
  (async () => {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await stdin.read(buf);
        if (n === null) break;
        await attach.write(buf.subarray(0, n));
      }
      await attach.closeWrite();
    } catch {
      // The container exited or the connection closed: nothing left to feed.
    }
  })();
}

export interface DetachedStart {
  containerId: string;
  startedAt: Date;
}

/**
 * The first half of a detached run (`moat run -d`): create → start, nothing attached. The output is
 * recorded afterwards from the engine's log, which keeps everything from the container's start, so a
 * recorder that follows the log after `start` misses nothing (recorder.ts). That needs a log driver the
 * engine can read back: a container created with `LogConfig.Type: "none"` (the daemon's `log-driver`) is
 * refused before it starts. On any failure the container is removed unless `keep`; `onRemoved` says so.
 */
export async function startDetached(
  client: EngineClient,
  plan: { name: string; body: ContainerCreateBody },
  hooks: LifecycleHooks,
  opts: { keep: boolean; interrupt: AbortSignal; admit?: Promise<void> },
): Promise<DetachedStart> {
  const { interrupt } = opts;
  const signalName = () => String(interrupt.reason ?? "SIGINT");
  const created = await createUnlessInterrupted(client, plan, interrupt, opts.admit);
  const id = created.Id;
  let started = false;
  let refused = false;
  try {
    await hooks.onCreated(id, created.Warnings ?? []);
    try {
      await opts.admit;
    } catch (err) {
      refused = true;
      throw err;
    }
    const inspected = await client.maybeContainerInspect(id);
    const logDriver = (inspected?.HostConfig.LogConfig as { Type?: unknown } | undefined)?.Type;
    if (logDriver === "none") {
      throw new MoatError(
        `Cannot record the output of a detached run: the engine's log driver for the container is "none"`,
        "Run it in the foreground (without -d), or set a log driver in /etc/docker/daemon.json, e.g.:\n" +
          `  "log-driver": "json-file"   then restart the engine`,
      );
    }
    if (interrupt.aborted) throw new InterruptedError(signalName(), id, !opts.keep);
    try {
      await client.containerStart(id);
    } catch (err) {
      if (err instanceof EngineApiError) throw classifyStartError(err, plan.body.HostConfig.Runtime);
      throw err;
    }
    started = true;
    const startedAt = new Date();
    await hooks.onStarted();
    return { containerId: id, startedAt };
  } finally {
    if (!started && (!opts.keep || refused)) {
      const removed = await client.containerRemove(id).then(() => true, () => false);
      await hooks.onRemoved?.(removed);
    }
  }
}
