/**
 * The recorder of a detached run (`moat run -d`): a moat process of its own that follows the container's log
 * stream into the run record, waits for the exit, and removes the container unless `--keep`.
 *
 * Why the log and why after `start`: the engine keeps a container's output in its log from the moment it
 * starts and replays all of it to `GET /containers/{id}/logs`, so a recorder that connects after `start`
 * — even after the command already ended — loses nothing. Following before `start` is not possible: the
 * daemon only follows a running container (for any other it sends what is stored and ends the stream).
 * Attaching before `start` would also work, but the foreground `moat run -d` would then have to wait for a
 * second process to attach before it may start the container; with the log it starts the container at once
 * and reports a start failure (127, 126, 125) itself, like `moat run`.
 */
import type { EngineClient, PendingWait } from "../docker/client.ts";
import { firstLineOf } from "../errors.ts";
import { isFinal, type RunRecord } from "../store/records.ts";
import { OOM_KILLED_EXIT_CODE, watchExit } from "./lifecycle.ts";
import {
  type ByteStream,
  copyOutput,
  Delivery,
  logStream,
  OUTPUT_GRACE_MS,
  type OutputTargets,
} from "./output.ts";

export type RecorderIO = Pick<OutputTargets, "record" | "now">;

export interface RecordOutcome {
  /** The container's exit code; `null` when it could not be read (the container vanished). */
  exitCode: number | null;
  /** `HostConfig.Runtime` as the engine reports it. */
  runtime: string | undefined;
  removed: boolean;
  /** Why the recorded output is incomplete (see `copyOutput`); `undefined` when it is complete. */
  outputIncomplete: string | undefined;
  /** What went wrong while recording (the command itself may have run fine). */
  error: string | undefined;
  /** The kernel killed the command for exceeding the memory limit (`exitCode` is then 137). */
  oomKilled: boolean;
}

/** A stream that fails at once: the followed log that could not be opened, for `copyOutput` to recover. */
function failedStream(err: unknown): ByteStream {
  return { read: () => Promise.reject(err), close: () => {} };
}

/**
 * Record a started container until it ends: register a wait, follow its log from the start, read the exit
 * code. A log stream that breaks, ends while the container runs, or stays open after it exited is made good
 * from the log's replay (`copyOutput`); a lost wait reply from the container's state (`exitStatus`). Never
 * throws for engine trouble: it is reported in `error` and `outputIncomplete` so the record can say what
 * happened.
 */
export async function recordDetached(
  client: EngineClient,
  id: string,
  io: RecorderIO,
  opts: { keep: boolean },
): Promise<RecordOutcome> {
  let error: string | undefined;
  const runtime = await client.maybeContainerInspect(id).then((c) => c?.HostConfig.Runtime, () => undefined);

  // Registered first, so the exit status arrives even if someone removes the container right after it
  // stops (`docker rm -f`, or a `moat stop` that removes it).
  // A wait that cannot be registered leaves the exit code to the container's state (`watchExit`).
  const wait: PendingWait = await client.containerWait(id, "not-running").catch((err) => {
    const result = Promise.reject(err);
    result.catch(() => {}); // observed by watchExit
    return { result, close: () => {} };
  });
  const watch = watchExit(client, id, wait.result, OUTPUT_GRACE_MS);
  const exit = watch.exit;

  const first = await client.containerLogs(id, { follow: true }).then(logStream, failedStream);
  const outputIncomplete = await copyOutput(client, id, false, first, new Delivery(io), exit);
  watch.dueSoon();
  await io.record.flush();

  let exitCode: number | null = null;
  try {
    exitCode = await exit;
  } catch (err) {
    error = firstLineOf(err);
  } finally {
    watch.stop();
    wait.close();
  }

  // After the exit and before removal is the only time the engine can say whether the OOM killer ended it.
  const oomKilled = exitCode !== null &&
    await client.maybeContainerInspect(id).then((c) => c?.State.OOMKilled === true, () => false);
  if (oomKilled) exitCode = OOM_KILLED_EXIT_CODE;
  const removed = opts.keep ? false : await client.containerRemove(id).then(() => true, () => false);
  return { exitCode, runtime, removed, outputIncomplete, error, oomKilled };
}

/**
 * The command line that runs this moat again with `tail` (a subcommand and its arguments): under `deno run`
 * (source or bundle) the deno binary with `run -A <main module>`; a compiled moat is its own binary. Pure.
 */
export function selfInvocation(
  self: { execPath: string; mainModule: string; standalone: boolean },
  tail: readonly string[],
): { command: string; args: string[] } {
  if (self.standalone) return { command: self.execPath, args: [...tail] };
  const main = self.mainModule.startsWith("file:")
    ? decodeURIComponent(new URL(self.mainModule).pathname)
    : self.mainModule;
  return { command: self.execPath, args: ["run", "-A", main, ...tail] };
}

/** This moat process as `selfInvocation` needs it. */
export function thisMoat(): { execPath: string; mainModule: string; standalone: boolean } {
  return {
    execPath: Deno.execPath(),
    mainModule: Deno.mainModule,
    standalone: (Deno.build as { standalone?: boolean }).standalone === true,
  };
}

/**
 * Start this moat again with `tail` in MOAT_HOME `home`, as its own process group with no stdio (but `input`
 * on its stdin, when given), not waited for (the process outlives this one): the recorder of a detached run,
 * `moat standby`. Throws when it cannot be started.
 */
export function spawnDetachedMoat(
  home: string,
  tail: readonly string[],
  input?: Uint8Array,
): Deno.ChildProcess {
  const inv = selfInvocation(thisMoat(), tail);
  const child = new Deno.Command(inv.command, {
    args: inv.args,
    env: { MOAT_HOME: home },
    detached: true,
    stdin: input ? "piped" : "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  if (input) {
    // `input` on its stdin, then the end of it; a child that is gone already reads nothing.
    const writer = child.stdin.getWriter();
    writer.write(input).then(() => writer.close()).catch(() => {});
  }
  child.unref();
  return child;
}

/** moat's arguments that make it the recorder of `runId`. Pure. */
export const recorderTail = (runId: string): string[] => ["run", "--record-detached", runId];

/** The command line that starts the recorder of `runId`: the same moat, as it was started. Pure. */
export function recorderInvocation(
  self: { execPath: string; mainModule: string; standalone: boolean },
  runId: string,
): { command: string; args: string[] } {
  return selfInvocation(self, recorderTail(runId));
}

/** How often a recorder that took over before the start looks at the record again. */
const START_POLL_MS = 20;

/**
 * For a recorder started before its container (a detached run with the allowlist network, whose policy it
 * serves from before the start): wait until the record says the container started ("started"), or that the
 * run ended without it ("ended": `moat run -d` failed or was interrupted, and wrote so), or `budgetMs` pass
 * ("gone": that `moat run -d` died before it could say).
 */
export async function awaitStart(
  read: () => Pick<RunRecord, "state" | "startedAt"> | undefined,
  budgetMs: number,
): Promise<"started" | "ended" | "gone"> {
  const deadline = Date.now() + budgetMs;
  for (;;) {
    const rec = read();
    if (rec?.startedAt) return "started";
    if (!rec || isFinal(rec.state)) return "ended";
    if (Date.now() >= deadline) return "gone";
    await new Promise((r) => setTimeout(r, START_POLL_MS));
  }
}
