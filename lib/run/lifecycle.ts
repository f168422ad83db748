/**
 * The run lifecycle over the `EngineClient` interface, in the order of docker/cli container/run.go:
 * create → attach → wait (headers read) → start → pump output → exit code → remove (unless kept).
 * Attaching and registering the wait before start is what guarantees no output and no exit is missed.
 */
import type { AttachStream, EngineClient, PendingWait } from "../docker/client.ts";
import type { ContainerCreateBody, ContainerInspect, WaitResponse } from "../docker/types.ts";
import {
  EngineApiError,
  EngineUnavailableError,
  firstLineOf,
  ImageMissingError,
  InterruptedError,
  interruptedExitCode,
  MoatError,
  SandboxUnavailableError,
} from "../errors.ts";
import { endpointUrl } from "../docker/endpoint.ts";
import { sameRuntime } from "../sandbox/decide.ts";
import { after, every, sleep } from "../timer.ts";
import {
  attachStream,
  copyOutput,
  Delivery,
  ENGINE_RECOVERY_MS,
  OUTPUT_GRACE_MS,
  type RecordSink,
  type Sink,
} from "./output.ts";

export { InterruptedError };
export type { RecordSink, Sink };

/** The host terminal a `-t` run is attached to (moat's stdin). */
export interface Terminal {
  /** Rows and columns now; `undefined` when unknown. */
  size(): { rows: number; cols: number } | undefined;
  /** Raw mode on (keys go to the container as bytes, Ctrl-C included) or back to what it was. */
  setRaw(on: boolean): Promise<void>;
  /** Call `fn` on every size change (SIGWINCH); returns the unsubscribe. */
  onResize(fn: () => void): () => void;
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

export interface LifecycleHooks {
  /** The container exists; persist its id before anything else can fail. */
  onCreated(id: string, warnings: string[]): void | Promise<void>;
  /** The container started (clear the spinner before any output). */
  onStarted(): void | Promise<void>;
  /** Removal was attempted (not with `keep`): whether the container is gone. Called on every path. */
  onRemoved?(removed: boolean): void | Promise<void>;
  /** An interrupt is stopping the running container: up to `graceSeconds`, unless `force` fires. */
  onStopping?(graceSeconds: number): void;
  /**
   * The container has exited (or never started): what the run no longer needs can go while its output is
   * drained and it is removed. Called once, as soon as the exit is known (`driveRun` only; it does not
   * wait for what this starts).
   */
  onFinished?(): void;
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
  /**
   * How long output may stay silent after the exit (`graceMs`), the exit after the output
   * (`exitAfterEofMs`), and how often a run whose exit is not known asks whether it still runs
   * (`livenessMs`). Tests shorten them.
   */
  timing?: { graceMs?: number; exitAfterEofMs?: number; livenessMs?: number };
}

export interface RunOutcome {
  containerId: string;
  exitCode: number;
  /** The signal that interrupted the run, if any. */
  interrupted: string | undefined;
  /** `HostConfig.Runtime` as the engine reports it: the runtime actually used. */
  runtime: string | undefined;
  /**
   * Why the output that reached stdout, stderr and the record is incomplete (the stream broke and the
   * engine's log could not give the rest); `undefined` when it is complete.
   */
  outputIncomplete: string | undefined;
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
  const missing = /bind source path does not exist: (.*)$/im.exec(err.daemonMessage);
  if (err.status === 400 && missing) {
    return new MoatError(
      `${missing[1]} does not exist on the engine's host, so it cannot be mounted: ${err.daemonMessage}`,
      "With an engine on another host (DOCKER_HOST, a Docker context), the workspace and mounts are that " +
        "host's directories: make them there, or use an engine on this host",
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
    const created = await client.containerCreate(plan.body, plan.name);
    if (typeof created?.Id !== "string" || created.Id === "") {
      throw new EngineUnavailableError(
        endpointUrl(client.endpoint),
        "other",
        `POST /containers/create answered without a container id: ${JSON.stringify(created).slice(0, 120)}`,
      );
    }
    return created;
  } catch (err) {
    const reported = err instanceof EngineApiError
      ? mapCreateError(err, plan.body)
      : await createLost(client, plan.name, err);
    await admit;
    throw reported;
  }
}

/**
 * The create request failed without an answer from the engine (a timeout, a cut or garbled reply, an
 * interrupt): the engine may have made the container anyway. moat knows the name it asked for, so the
 * container is removed by name. The error says whether that worked.
 */
async function createLost(client: EngineClient, name: string, err: unknown): Promise<unknown> {
  const removal = await client.containerRemove(name).then(() => undefined, (e: unknown) => e);
  if (removal === undefined) return err;
  const what = err instanceof Error ? err.message : String(err);
  return new MoatError(
    `${what}; a container named ${name} may have been made, and removing it failed: ${firstLineOf(removal)}`,
    `Remove it once the engine answers:  docker rm -f ${name}`,
  );
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
  // Asked once, right after create and alongside the rest: the runtime the engine made it with.
  const made = client.maybeContainerInspect(id, { slow: true });
  made.catch(() => {}); // awaited below
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
  let watch: ExitWatch | undefined;
  let finishedCalled = false;
  const finished = () => {
    if (finishedCalled) return;
    finishedCalled = true;
    hooks.onFinished?.();
  };
  const stop = () => {
    if (stopping) return;
    hooks.onStopping?.(opts.stopGraceSeconds);
    stopping = client.containerStop(id, opts.stopGraceSeconds).catch(() => client.containerKill(id)).catch(
      () => {},
    );
    stopping.then(() => watch?.dueSoon());
  };
  // A second interrupt does not wait for the grace period. (Listened to from start on: before that the
  // first interrupt already ends the run without starting it, and removal is forced.)
  const kill = () => {
    killing ??= client.containerKill(id).catch(() => {});
    killing.then(() => watch?.dueSoon());
  };
  try {
    await hooks.onCreated(id, created.Warnings ?? []);
    try {
      await opts.admit;
      madeWithRuntime(await made, plan.body.HostConfig.Runtime);
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
    await startContainer(client, id, plan.body.HostConfig.Runtime);
    const startedAt = new Date();
    // The runtime actually used, as the engine said before the start.
    early = made.catch(() => undefined);
    if (tty && io.terminal) {
      sizes = followSize((rows, cols) => client.containerResize(id, rows, cols), io.terminal);
    }
    interrupt.addEventListener("abort", stop, { once: true });
    opts.force?.addEventListener("abort", kill, { once: true });
    if (interrupt.aborted) stop();
    if (opts.force?.aborted) kill();
    await hooks.onStarted();
    if (io.stdin) pumpStdin(io.stdin, attach);
    // A reader that went away (`moat run … | head -1`) gets pipe semantics: the command receives SIGPIPE.
    const delivery = new Delivery(io, () => void client.containerKill(id, "SIGPIPE").catch(() => {}));
    watch = watchExit(
      client,
      id,
      wait.result,
      opts.timing?.graceMs ?? OUTPUT_GRACE_MS,
      opts.timing?.livenessMs,
    );
    const exit = watch.exit;
    // What the run no longer needs goes as soon as the command has exited, while its output is drained.
    exit.then(finished, () => {});
    const outputIncomplete = await copyOutput(
      client,
      id,
      tty,
      attachStream(attach),
      delivery,
      exit,
      opts.timing,
    );
    watch.dueSoon();
    const exitCode = await exit;
    await stopping;
    await killing;
    // After the exit, before removal, and only for the exit codes an OOM kill gives: whether the kernel's
    // OOM killer ended it.
    const mayBeOom = exitCode === OOM_KILLED_EXIT_CODE || exitCode === 1;
    const inspected = mayBeOom ? await client.maybeContainerInspect(id).catch(() => undefined) : undefined;
    const runtime = (inspected ?? await early)?.HostConfig.Runtime;
    const interrupted = interrupt.aborted ? signalName() : undefined;
    outcome = {
      containerId: id,
      exitCode: interrupted
        ? interruptedExitCode(interrupted)
        : inspected?.State.OOMKilled === true
        ? OOM_KILLED_EXIT_CODE
        : exitCode,
      interrupted,
      runtime,
      outputIncomplete,
      removed: false,
      startedAt,
      oomKilled: inspected?.State.OOMKilled === true,
    };
  } finally {
    // The terminal first: whatever happens next (a slow removal, an error), the user's shell works again.
    if (raw) await io.terminal?.setRaw(false);
    interrupt.removeEventListener("abort", stop);
    opts.force?.removeEventListener("abort", kill);
    watch?.stop();
    await sizes?.stop();
    attach?.close();
    wait?.close();
    await early;
    finished();
    if (!opts.keep || refused) {
      const removed = await client.containerRemove(id).then(() => true, () => false);
      if (outcome) outcome.removed = removed;
      await hooks.onRemoved?.(removed);
    }
  }
  return outcome;
}

/**
 * Fail closed on an engine that does not make the container with the runtime asked for (`c`: its inspect
 * right after create). Podman's Docker-compatible API accepts `HostConfig.Runtime` and ignores it: its
 * containers run under its default runtime (the client reads which from Podman's own API). The sandbox
 * check refuses a Podman whose default is not gVisor; this proves it for the container itself, before
 * anything is attached or started, so such a container is never started. Nothing to check without a
 * runtime (the sandbox is off).
 */
function madeWithRuntime(c: ContainerInspect | undefined, wanted: string | undefined): void {
  if (wanted === undefined) return;
  const got = c?.HostConfig.Runtime;
  if (sameRuntime(got, wanted)) return;
  throw new SandboxUnavailableError(
    `The engine made the container with the runtime ${
      got === undefined ? "it did not name" : `"${got}"`
    }, not "${wanted}" as moat asked: it does not run what it is asked to, so nothing was started`,
    "moat runs sandboxed commands only on an engine that runs them under gVisor: Docker with gVisor " +
      "registered, or Podman with gVisor as its default runtime. Check the engine:  moat doctor",
  );
}

/** True once the engine has started the container's command: it runs, or it ran and exited. */
function hasStarted(c: ContainerInspect): boolean {
  return c.State.Running || (c.State.StartedAt !== undefined && !c.State.StartedAt.startsWith("0001-"));
}

/**
 * `POST /containers/{id}/start`. When it fails without an answer — its time ran out while the engine booted
 * the sandbox under load, or the connection broke — the engine is asked how it ended before anything is
 * decided: its inspect answers only once a start in progress is over (both hold the container's lock), so
 * a container that started, running or already exited, goes on as a started run. Only a container the
 * engine reports as never started is a run that did not start.
 */
async function startContainer(client: EngineClient, id: string, runtime: string | undefined): Promise<void> {
  try {
    await client.containerStart(id);
  } catch (err) {
    if (err instanceof EngineApiError) throw classifyStartError(err, runtime);
    const state = await client.maybeContainerInspect(id, { slow: true }).catch(() => null);
    if (state && hasStarted(state)) return;
    const what = err instanceof Error ? err.message : String(err);
    if (state === null) {
      throw new MoatError(
        `${what}; the engine did not say afterwards whether container ${id.slice(0, 12)} started`,
        "Check the engine with:  docker info\nLook for the container with:  moat list",
      );
    }
    throw new MoatError(
      `The engine did not start container ${id.slice(0, 12)}: ${what}`,
      (err instanceof MoatError ? err.hint : undefined) ?? "Check the engine with:  docker info",
      { cause: err },
    );
  }
}

/** How often a run whose exit is not known yet asks whether its container still runs (a stuck wait). */
const LIVENESS_CHECK_MS = 10_000;

/** A container's exit code as it becomes known (`exitStatus`), with the nudges that keep it from hanging. */
export interface ExitWatch {
  exit: Promise<number>;
  /** The exit should be known a grace period from now: the output ended, or a stop or kill went through. */
  dueSoon(): void;
  /** Stop the periodic check. */
  stop(): void;
}

/**
 * Watch for the exit of a started container: `wait` is its registered wait's result. A wait that stays
 * silent although the exit should be known (`dueSoon`), or although the engine reports the container as
 * no longer running (asked every `LIVENESS_CHECK_MS` until the exit is known), is treated as lost, and the
 * exit code is read from the container's state instead. So neither a stuck wait nor a stuck output stream
 * (whose end waits for the exit) can hang a run.
 */
export function watchExit(
  client: EngineClient,
  id: string,
  wait: Promise<WaitResponse>,
  graceMs: number,
  livenessMs = LIVENESS_CHECK_MS,
): ExitWatch {
  const due = Promise.withResolvers<void>();
  let known = false;
  let cancelDue: (() => void) | undefined;
  const exit = exitStatus(client, id, wait, due.promise);
  const stopChecks = every(livenessMs, () => {
    client.maybeContainerInspect(id).then((c) => {
      if (c && !c.State.Running) due.resolve();
    }, () => {});
  });
  const stop = () => {
    known = true;
    stopChecks();
    cancelDue?.();
  };
  exit.then(stop, stop);
  return {
    exit,
    dueSoon: () => {
      if (!known && !cancelDue) cancelDue = after(graceMs, () => due.resolve());
    },
    stop,
  };
}

/**
 * The container's exit code. The wait registered before start gives it; when that reply is lost or damaged
 * (an engine restart, a reset connection, a garbled body), the engine still knows: it is read from the
 * container's state, and a container that still runs is waited for again. `nudge` settles when the exit
 * should be known by now (the output ended, or a stop finished, a grace period ago): a wait that has still
 * said nothing is then treated as lost, so a stuck wait cannot hang the run. Throws when the engine cannot
 * say within `ENGINE_RECOVERY_MS`, or the container is gone.
 */
async function exitStatus(
  client: EngineClient,
  id: string,
  wait: Promise<WaitResponse>,
  nudge?: Promise<void>,
): Promise<number> {
  let failure: unknown;
  try {
    const result = await (nudge === undefined ? wait : Promise.race([
      wait,
      nudge.then(() => Promise.reject(new Error("the engine's wait reported no exit"))),
    ]));
    if (typeof result?.StatusCode === "number") return result.StatusCode;
    failure = new Error(`the wait answered without a status code: ${JSON.stringify(result).slice(0, 120)}`);
  } catch (err) {
    failure = err;
  }
  const gone = () =>
    new MoatError(
      "The container was removed before its exit code could be read",
      `See what removes containers:  docker events --filter container=${id}`,
    );
  const deadline = Date.now() + ENGINE_RECOVERY_MS;
  for (;;) {
    if (failure instanceof EngineApiError && failure.isNotFound) throw gone();
    const c = await client.maybeContainerInspect(id, { slow: true }).catch((err) => {
      failure = err;
      return null;
    });
    if (c === undefined) throw gone();
    if (c && !c.State.Running && typeof c.State.ExitCode === "number") return c.State.ExitCode;
    if (c) {
      try {
        const again = await client.containerWait(id, "not-running");
        try {
          const result = await again.result;
          if (typeof result?.StatusCode === "number") return result.StatusCode;
        } finally {
          again.close();
        }
      } catch (err) {
        failure = err;
      }
    }
    if (Date.now() >= deadline) {
      throw new MoatError(
        `The exit code of container ${id.slice(0, 12)} could not be read: ${firstLineOf(failure)}`,
        `Check the engine with:  docker info\nRead it yourself:  docker inspect --format '{{.State.ExitCode}}' ${id}`,
      );
    }
    await sleep(1_000);
  }
}

export interface SizeFollower {
  /** Stop following and wait for a resize in flight (its failure is harmless). */
  stop(): Promise<void>;
}

/**
 * Keep a pty the size of the host terminal: once right after start (engines before API 1.42 ignore
 * `ConsoleSize`, moby api/docs/CHANGELOG.md) and on every SIGWINCH. Resizes are sent one at a time with
 * `resize` (the container's, or an exec's), the latest size wins, and a failure — typically 409 because the
 * container just exited — is ignored.
 */
export function followSize(
  resize: (rows: number, cols: number) => Promise<void>,
  terminal: Terminal,
): SizeFollower {
  let inFlight: Promise<void> | undefined;
  let pending = false;
  let stopped = false;
  const send = (): Promise<void> => {
    pending = false;
    const size = terminal.size();
    if (!size || stopped) return Promise.resolve();
    return resize(size.rows, size.cols).catch(() => {});
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

/** Copy stdin to the container (or an exec), then half-close so it sees EOF. Ends quietly if the run ends. */
export function pumpStdin(
  stdin: NonNullable<LifecycleIO["stdin"]>,
  attach: Pick<AttachStream, "write" | "closeWrite">,
): void {
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
  opts: {
    keep: boolean;
    interrupt: AbortSignal;
    admit?: Promise<void>;
    /** The last step before the start (a detached run's recorder takes its egress over). */
    beforeStart?: () => Promise<void>;
  },
): Promise<DetachedStart> {
  const { interrupt } = opts;
  const signalName = () => String(interrupt.reason ?? "SIGINT");
  const created = await createUnlessInterrupted(client, plan, interrupt, opts.admit);
  const id = created.Id;
  const made = client.maybeContainerInspect(id, { slow: true });
  made.catch(() => {}); // awaited below
  let started = false;
  let refused = false;
  try {
    await hooks.onCreated(id, created.Warnings ?? []);
    let inspected: ContainerInspect | undefined;
    try {
      await opts.admit;
      inspected = await made;
      madeWithRuntime(inspected, plan.body.HostConfig.Runtime);
    } catch (err) {
      refused = true;
      throw err;
    }
    const logDriver = (inspected?.HostConfig.LogConfig as { Type?: unknown } | undefined)?.Type;
    if (logDriver === "none") {
      throw new MoatError(
        `Cannot record the output of a detached run: the engine's log driver for the container is "none"`,
        "Run it in the foreground (without -d), or set a log driver in /etc/docker/daemon.json, e.g.:\n" +
          `  "log-driver": "json-file"   then restart the engine`,
      );
    }
    if (interrupt.aborted) throw new InterruptedError(signalName(), id, !opts.keep);
    await opts.beforeStart?.();
    if (interrupt.aborted) throw new InterruptedError(signalName(), id, !opts.keep);
    await startContainer(client, id, plan.body.HostConfig.Runtime);
    const startedAt = new Date();
    await hooks.onStarted();
    if (interrupt.aborted) {
      // The interrupt came while the engine was starting the container: the user wants no run. The
      // command did start, and the record says so; it is stopped at once and removed like any other.
      await client.containerKill(id).catch(() => {});
      throw new InterruptedError(signalName(), id, !opts.keep, true);
    }
    started = true;
    return { containerId: id, startedAt };
  } finally {
    if (!started && (!opts.keep || refused)) {
      const removed = await client.containerRemove(id).then(() => true, () => false);
      await hooks.onRemoved?.(removed);
    }
  }
}
