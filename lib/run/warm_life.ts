/**
 * A warm run's lifecycle (lib/run/warm.ts), the counterpart of lifecycle.ts `driveRun` for a sandbox booted
 * ahead: check the waiting sandbox is what the run asked for, register a wait on it, run the command in it through an exec (lib/run/exec.ts `execInSandbox`) with its output to the user and the
 * record, and remove it on every path. An interrupt stops the sandbox (its main process passes SIGTERM on
 * to the command), with the grace a cold run's command gets.
 */
import type { EngineClient } from "../docker/client.ts";
import { EngineApiError, InterruptedError, interruptedExitCode, MoatError } from "../errors.ts";
import { execInSandbox, type ExecRequest } from "./exec.ts";
import {
  ContainerStartError,
  type LifecycleHooks,
  type LifecycleIO,
  type LifecycleOptions,
  OOM_KILLED_EXIT_CODE,
  type RunOutcome,
  type Sink,
} from "./lifecycle.ts";
import { OUTPUT_GRACE_MS } from "./output.ts";
import { warmProblem } from "./warm.ts";

/** The waiting sandbox a run took (its standby file), and what it must be for the run. */
export interface WarmSandbox {
  /** Its container id. */
  containerId: string;
  /** The run's id (the standby's) and the container's name. */
  runId: string;
  name: string;
  imageId: string;
  /** The runtime the run asked for; `undefined` with the sandbox off. */
  runtime: string | undefined;
  homeId: string;
}

/** `driveWarm`'s answer when the sandbox could not be taken: nothing ran; it has been removed. */
export interface NotTaken {
  notTaken: string;
}

const NEVER = new AbortController().signal;

/**
 * Run `exec` in the waiting sandbox `sandbox`. Returns the outcome, or why it could not be taken (not
 * running any more, not what the run asked for): the caller then starts the run cold. Throws as `driveRun`
 * does (a refused admission, an interrupt before the command started, a command the engine could not start:
 * `ContainerStartError` with 127 or 126).
 */
export async function driveWarm(
  client: EngineClient,
  sandbox: WarmSandbox,
  exec: Omit<ExecRequest, "containerId">,
  io: LifecycleIO,
  hooks: LifecycleHooks,
  opts: LifecycleOptions & {
    /**
     * Leave the sandbox of a run that ended to be removed by another process (`moat standby --release`),
     * off the user's wait: the outcome's `removed` is then `false` and `onRemoved` is not called.
     */
    leaveSandbox?: boolean;
  },
): Promise<RunOutcome | NotTaken> {
  const id = sandbox.containerId;
  const { interrupt } = opts;
  const signalName = () => String(interrupt.reason ?? "SIGINT");
  const notTaken = async (why: string): Promise<NotTaken> => {
    await client.containerRemove(id).catch(() => {});
    return { notTaken: why };
  };
  const inspected = await client.maybeContainerInspect(id).catch(() => undefined);
  const problem = warmProblem(inspected, {
    id: sandbox.runId,
    name: sandbox.name,
    imageId: sandbox.imageId,
    runtime: sandbox.runtime,
    homeId: sandbox.homeId,
  });
  if (problem) return await notTaken(problem);
  // Registered before the sandbox is woken: its end, whenever it comes, is known.
  const wait = await client.containerWait(id, "next-exit").catch(() => undefined);
  if (!wait) return await notTaken("could not be waited for");
  // A sandbox that has ended refuses the exec (the run then starts cold). One that is taken has a claim margin
  // (lib/run/standby.ts) before its idle time is up, and lives on after it while the command runs.
  const takenAt = Date.now();
  const ended = new Promise<number>((resolve) => {
    wait.result.then((r) => {
      if (typeof r?.StatusCode === "number") resolve(r.StatusCode);
    }, () => {});
  });

  let outcome: RunOutcome | undefined;
  let execStarted = false;
  let gaveUp = false;
  let stopping: Promise<void> | undefined;
  let killing: Promise<void> | undefined;
  const stop = (force: boolean) => {
    if (force) {
      killing ??= client.containerKill(id).catch(() => {});
      return;
    }
    if (stopping) return;
    hooks.onStopping?.(opts.stopGraceSeconds);
    stopping = client.containerStop(id, opts.stopGraceSeconds).catch(() => client.containerKill(id)).catch(
      () => {},
    );
  };
  // The output goes to the record as it goes to the user. A reader that went away (`moat run … | head -1`)
  // gets pipe semantics, as in a cold run: the sandbox's main process passes SIGPIPE on to the command.
  const gone = new Set<number>();
  const tee = (stream: number, sink: Sink): Sink => ({
    async write(bytes) {
      await io.record.output(stream, bytes, io.now());
      io.record.flushSoon();
      if (gone.has(stream)) return;
      try {
        await sink.write(bytes);
      } catch (err) {
        if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
        gone.add(stream);
        if (gone.size === 1) await client.containerKill(id, "SIGPIPE").catch(() => {});
      }
    },
  });
  try {
    await hooks.onCreated(id, []);
    await opts.admit;
    if (interrupt.aborted) throw new InterruptedError(signalName(), id, true);
    let startedAt: Date | undefined;
    const end = await execInSandbox(
      client,
      { ...exec, containerId: id },
      {
        stdout: tee(1, io.stdout),
        stderr: tee(2, io.stderr),
        ...(io.stdin ? { stdin: io.stdin } : {}),
        ...(io.terminal ? { terminal: io.terminal } : {}),
      },
      { interrupt, force: opts.force ?? NEVER },
      {
        onStarted: () => {
          execStarted = true;
          startedAt = new Date();
          void hooks.onStarted();
        },
        say: () => {},
      },
      { stop, ended, graceMs: opts.timing?.graceMs ?? OUTPUT_GRACE_MS },
    );
    await io.record.flush();
    if (end.failed) {
      const what = end.failed.code === 127
        ? "The command was not found in the image"
        : "The command is not executable in the image";
      throw new ContainerStartError(
        `${what}: ${end.failed.reason}`,
        "Check the command and image, e.g.:  moat run --image <image> -- ls /usr/bin",
        end.failed.code,
      );
    }
    await stopping;
    await killing;
    const interrupted = interrupt.aborted ? signalName() : undefined;
    // A command killed (or lost) with its sandbox: the engine's events say whether the memory limit did it.
    const oomKilled = !interrupted && (end.sandboxEnded === true || end.exitCode >= 128) &&
      await client.systemEvents(takenAt - 1000, Date.now(), {
        container: [id],
        event: ["oom"],
      }).then((events) => events.length > 0, () => false);
    outcome = {
      containerId: id,
      exitCode: interrupted
        ? interruptedExitCode(interrupted)
        : oomKilled
        ? OOM_KILLED_EXIT_CODE
        : end.exitCode,
      interrupted,
      runtime: inspected?.HostConfig.Runtime,
      outputIncomplete: undefined,
      removed: false,
      startedAt,
      oomKilled,
    };
  } catch (err) {
    // Refused by the engine before the command started: the sandbox had ended (the run starts cold).
    if (
      !execStarted && err instanceof MoatError && err.cause instanceof EngineApiError &&
      err.cause.status === 409
    ) {
      gaveUp = true;
      return await notTaken("had ended");
    }
    throw err;
  } finally {
    wait.close();
    if (!gaveUp && (!outcome || !opts.leaveSandbox)) {
      const removed = await client.containerRemove(id).then(() => true, () => false);
      if (outcome) outcome.removed = removed;
      await hooks.onRemoved?.(removed);
    }
  }
  return outcome;
}
