/**
 * A command run in a run's container while it runs (`moat exec RUN -- CMD`, issue 16): an exec instance of
 * the engine (lib/docker/exec.ts), its output to moat's stdout and stderr (separate, or one pty stream with
 * `-t`), moat's stdin to it with `-i`, its exit code from the engine once it ends.
 *
 * The engine has no way to signal an exec'd process. So without a pty, when the image has `/bin/sh`, the
 * command is started through it: the shell writes its process id on stderr (moat reads that line; it is not
 * output) and replaces itself with the command (`exec "$@"`), whose process then has that id. An interrupt of
 * moat sends it SIGTERM (through another exec: `kill`), SIGKILL after the grace period or a second
 * interrupt: as `moat run` stops its container. With a pty, Ctrl-C is a key the command gets from its
 * terminal. Otherwise moat says it cannot signal the command, and leaves it running.
 */
import type { EngineClient } from "../docker/client.ts";
import type { ExecCreateBody } from "../docker/exec.ts";
import { Demuxer } from "../docker/demux.ts";
import { EngineApiError, MoatError } from "../errors.ts";
import { after, sleep } from "../timer.ts";
import { followSize, pumpStdin, type Sink, type SizeFollower, type Terminal } from "./lifecycle.ts";
import { WORKSPACE_TARGET } from "./plan.ts";

/** How long the command has after SIGTERM before SIGKILL (moat run gives its container as long). */
export const EXEC_STOP_GRACE_SECONDS = 5;

/** The name the shell that starts the command calls itself (`$0`: in its messages, "moat exec: …"). */
const SHELL_NAME = "moat exec";

export interface ExecRequest {
  containerId: string;
  command: string[];
  env: Record<string, string>;
  /** As `User` in a create body; the container's own when absent. */
  user?: string;
  tty: boolean;
  interactive: boolean;
}

export interface ExecIO {
  stdout: Sink;
  stderr: Sink;
  stdin?: { read(p: Uint8Array): Promise<number | null> };
  terminal?: Terminal;
}

export interface ExecHooks {
  /** The exec instance exists: its id. */
  onCreated?(execId: string): void;
  /** The engine started the process (or failed to: the exit code says). */
  onStarted?(): void;
  /** A line for the user (stopping, cannot signal). */
  say(line: string): void;
}

/**
 * A command that is its sandbox's only work (a warm run, lib/run/warm.ts): an interrupt stops the whole
 * sandbox (`stop`; `force`: kill it now), and the sandbox's end (`ended`, its exit code) also ends the
 * command, whose output and exit the engine may then never report (the runtime lost the process).
 */
export interface ExecSandbox {
  stop(force: boolean): void;
  ended: Promise<number>;
  /** How long output may still come once the sandbox has ended. */
  graceMs: number;
}

/** How an exec ended: its exit code, or the engine's refusal to start its process (`failed`). */
export interface ExecEnd {
  execId: string;
  exitCode: number;
  /** The engine could not start the process: the code a shell gives (127, 126) and the engine's reason. */
  failed?: { code: number; reason: string };
  /** The sandbox ended while the command ran (`ExecSandbox.ended`); `exitCode` is then the sandbox's. */
  sandboxEnded?: boolean;
}

/** The create body of `req`; `viaShell`: started through `/bin/sh`, which tells moat its pid. Pure. */
export function execBody(req: ExecRequest, viaShell: boolean): ExecCreateBody {
  return {
    Cmd: viaShell ? ["/bin/sh", "-c", 'echo "$$" >&2; exec "$@"', SHELL_NAME, ...req.command] : req.command,
    Env: Object.entries(req.env).map(([k, v]) => `${k}=${v}`),
    ...(req.user ? { User: req.user } : {}),
    WorkingDir: WORKSPACE_TARGET,
    Tty: req.tty,
    AttachStdin: req.interactive,
    AttachStdout: true,
    AttachStderr: true,
  };
}

/**
 * The engine's own words when it could not start the process at all (no shell to start it through): the
 * exit code a shell would give (127 not found, 126 not executable), or `undefined` when `text` is not such a
 * message. Pure.
 */
export function startFailure(text: string): { code: number; reason: string } | undefined {
  if (!/^OCI runtime exec failed/.test(text)) return undefined;
  const message = text.trim().replace(/: unknown$/, "");
  const at = message.lastIndexOf("in sandbox: ");
  const reason = at >= 0
    ? message.slice(at + "in sandbox: ".length)
    : message.replace(/^OCI runtime exec failed: /, "");
  return { code: /no such file|not found/i.test(reason) ? 127 : 126, reason };
}

/**
 * Run `req` to its end; its exit code. Throws `MoatError` when the engine refuses it. Without a pty it is
 * started through `/bin/sh` (so that moat can signal it); in an image without one, again as it is.
 */
export async function runExec(
  client: EngineClient,
  req: ExecRequest,
  io: ExecIO,
  signals: { interrupt: AbortSignal; force: AbortSignal },
  hooks: ExecHooks,
): Promise<{ execId: string; exitCode: number }> {
  const end = req.tty
    ? await execOnce(client, req, false, io, signals, hooks)
    : await execOnce(client, req, true, io, signals, hooks).then((first) =>
      first.noShell ? execOnce(client, req, false, io, signals, hooks) : first
    );
  if (end.failed) {
    hooks.say(`moat: cannot run ${req.command[0]} in the run's container: ${end.failed.reason}`);
  }
  return { execId: end.execId, exitCode: end.exitCode };
}

/**
 * Run `req` as it is (no shell) in a sandbox that exists for it alone (`sandbox`): interrupts stop the
 * sandbox, and its end ends the command. How it ended; throws `MoatError` when the engine refuses it.
 */
export async function execInSandbox(
  client: EngineClient,
  req: ExecRequest,
  io: ExecIO,
  signals: { interrupt: AbortSignal; force: AbortSignal },
  hooks: ExecHooks,
  sandbox: ExecSandbox,
): Promise<ExecEnd> {
  return await execOnce(client, req, false, io, signals, hooks, sandbox);
}

async function execOnce(
  client: EngineClient,
  req: ExecRequest,
  viaShell: boolean,
  io: ExecIO,
  signals: { interrupt: AbortSignal; force: AbortSignal },
  hooks: ExecHooks,
  sandbox?: ExecSandbox,
): Promise<ExecEnd & { noShell?: true }> {
  let execId: string;
  try {
    execId = await client.execCreate(req.containerId, execBody(req, viaShell));
  } catch (err) {
    if (err instanceof EngineApiError && err.status === 409) {
      throw new MoatError(
        "The run's container is not running, so nothing can be run in it",
        "See its state:  moat status   (start a run that stays up with  moat run -d)",
        { cause: err },
      );
    }
    throw err;
  }
  hooks.onCreated?.(execId);
  const stream = await client.execStart(execId, req.tty, io.terminal?.size());
  hooks.onStarted?.();
  // A sandbox that ended may leave the process's stream open for good: it gets the grace, then it is closed.
  let sandboxEnded = false;
  const cancelGrace = sandbox
    ? (() => {
      let cancel: (() => void) | undefined;
      let done = false;
      sandbox.ended.then(() => {
        sandboxEnded = true;
        if (!done) cancel = after(sandbox.graceMs, () => stream.close());
      }, () => {});
      return () => {
        done = true;
        cancel?.();
      };
    })()
    : undefined;
  let raw = false;
  let sizes: SizeFollower | undefined;
  let pid: number | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (force: boolean) => {
    if (sandbox) return sandbox.stop(force);
    if (force) return void signal(client, req, pid, "KILL");
    if (stopping) return;
    if (pid === undefined) {
      hooks.say(
        req.tty
          ? "moat: moat exec cannot signal a command with a terminal: press Ctrl-C in it with -i, or stop the run:  moat stop"
          : "moat: moat exec cannot signal this command (the image has no /bin/sh to start it through): it goes on; stop the run to end it:  moat stop",
      );
      stream.close();
      return;
    }
    hooks.say(
      `moat: stopping the command (SIGTERM): it has ${EXEC_STOP_GRACE_SECONDS} s to exit; signal again to kill it now`,
    );
    stopping = (async () => {
      await signal(client, req, pid, "TERM");
      await sleep(EXEC_STOP_GRACE_SECONDS * 1000);
      await signal(client, req, pid, "KILL");
    })();
  };
  const onInterrupt = () => stop(false);
  const onForce = () => stop(true);
  signals.interrupt.addEventListener("abort", onInterrupt);
  signals.force.addEventListener("abort", onForce);
  // A sandbox of its own is stopped for an interrupt that came while the process was being started.
  if (sandbox && signals.interrupt.aborted) stop(false);
  if (sandbox && signals.force.aborted) stop(true);
  try {
    if (io.terminal) {
      if (req.interactive) {
        raw = true;
        await io.terminal.setRaw(true);
      }
      sizes = followSize((rows, cols) => client.execResize(execId, rows, cols), io.terminal);
    }
    if (req.interactive && io.stdin) pumpStdin(io.stdin, stream);

    // The output, to moat's stdout and stderr; with the shell, its first line on stderr is the pid.
    const demux = req.tty ? undefined : new Demuxer();
    let pidLine = viaShell ? "" : undefined;
    let held: Uint8Array | undefined;
    let firstStdout = true;
    for (;;) {
      let chunk: Uint8Array | null;
      try {
        chunk = await stream.reader.readSome();
      } catch {
        break; // the connection ended: the exit code says how the command did
      }
      if (chunk === null) break;
      const pieces = demux ? demux.push(chunk) : [{ stream: 1, data: chunk }];
      for (const p of pieces) {
        let data = p.data;
        if (p.stream === 2 && pidLine !== undefined) {
          const nl = data.indexOf(0x0a);
          pidLine += new TextDecoder().decode(nl < 0 ? data : data.subarray(0, nl));
          if (nl < 0) continue;
          pid = Number(pidLine.trim()) || undefined;
          pidLine = undefined;
          if (signals.interrupt.aborted && !stopping) stop(false);
          data = data.subarray(nl + 1);
          if (data.byteLength === 0) continue;
        }
        // A process the engine could not start (the command, or the shell) shows as its message, the first
        // and only bytes on stdout: held until the exit says which it was. Anything after it is output.
        if (p.stream === 1 && firstStdout) {
          firstStdout = false;
          if (/^OCI runtime exec failed/.test(new TextDecoder().decode(data.subarray(0, 64)))) {
            held = data.slice();
            continue;
          }
        } else if (p.stream === 1 && held) {
          await write(io.stdout, held);
          held = undefined;
        }
        await write(p.stream === 2 ? io.stderr : io.stdout, data);
      }
    }
    // With a sandbox of its own, the sandbox's end is the command's: the engine may never report the exec's.
    const result = sandbox
      ? await Promise.race([
        sandboxEnded ? Promise.reject(new Error("the sandbox ended")) : exitOf(client, execId),
        sandbox.ended.then((code) => ({ exitCode: code, pid: -1, sandboxEnded: true as const })),
      ]).catch(() => sandbox.ended.then((code) => ({ exitCode: code, pid: -1, sandboxEnded: true as const })))
      : await exitOf(client, execId);
    const ended = "sandboxEnded" in result ? { sandboxEnded: true } : {};
    if (held && result.pid === 0) {
      const failed = startFailure(new TextDecoder().decode(held));
      // No shell in the image: the command is started again as it is (nothing of it ran).
      if (viaShell && failed?.code === 127 && failed.reason.includes("/bin/sh")) {
        return { execId, exitCode: result.exitCode, noShell: true };
      }
      if (failed) return { execId, exitCode: failed.code, failed };
    }
    // The command's own output after all (it started, or the engine said something else).
    if (held) await write(io.stdout, held);
    return { execId, exitCode: result.exitCode, ...ended };
  } finally {
    cancelGrace?.();
    signals.interrupt.removeEventListener("abort", onInterrupt);
    signals.force.removeEventListener("abort", onForce);
    if (raw) await io.terminal?.setRaw(false);
    await sizes?.stop();
    stream.close();
  }
}

/** Write to moat's stdout or stderr; a reader that went away is not an error (the command goes on). */
async function write(sink: Sink, bytes: Uint8Array): Promise<void> {
  await sink.write(bytes).catch((err) => {
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  });
}

/** The exit code of an exec whose output has ended (asked until the engine has it). */
async function exitOf(client: EngineClient, execId: string): Promise<{ exitCode: number; pid: number }> {
  for (let i = 0;; i++) {
    const inspect = await client.execInspect(execId);
    if (!inspect.Running && inspect.ExitCode !== null) {
      return { exitCode: inspect.ExitCode, pid: inspect.Pid };
    }
    // The output ends when the process closes it, a moment before the engine records its exit.
    await sleep(Math.min(10 * 2 ** i, 500));
  }
}

/** Send `sig` to the command (process `pid`) through another exec; failures are the command having ended. */
async function signal(client: EngineClient, req: ExecRequest, pid: number | undefined, sig: "TERM" | "KILL") {
  if (pid === undefined) return;
  try {
    const id = await client.execCreate(req.containerId, {
      Cmd: ["/bin/sh", "-c", `kill -${sig} ${pid} 2>/dev/null`],
      ...(req.user ? { User: req.user } : {}),
      Tty: false,
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
    });
    const s = await client.execStart(id, false);
    const cancel = after(5000, () => s.close());
    try {
      while (await s.reader.readSome().catch(() => null) !== null) { /* until it ends */ }
    } finally {
      cancel();
      s.close();
    }
  } catch { /* the command or the run ended meanwhile */ }
}
