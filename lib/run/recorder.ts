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
import { Demuxer } from "../docker/demux.ts";
import { OOM_KILLED_EXIT_CODE, type RecordSink } from "./lifecycle.ts";
import { EngineApiError } from "../errors.ts";

export interface RecorderIO {
  /** The run record's output file. */
  record: RecordSink;
  now(): number;
}

export interface RecordOutcome {
  /** The container's exit code; `null` when it could not be read (the container vanished). */
  exitCode: number | null;
  /** `HostConfig.Runtime` as the engine reports it. */
  runtime: string | undefined;
  removed: boolean;
  /** A log stream ended inside a frame. */
  truncated: boolean;
  /** What went wrong while recording (the command itself may have run fine). */
  error: string | undefined;
  /** The kernel killed the command for exceeding the memory limit (`exitCode` is then 137). */
  oomKilled: boolean;
}

function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
}

/**
 * Copy a log stream into the record, skipping the first `skip` payload bytes (already recorded). Returns
 * the payload bytes seen in total, whether it ended inside a frame, and the error that ended it, if any.
 */
async function copyLog(
  client: EngineClient,
  id: string,
  follow: boolean,
  skip: number,
  io: RecorderIO,
): Promise<{ seen: number; truncated: boolean; error: unknown }> {
  let seen = 0;
  let truncated = false;
  let error: unknown;
  try {
    const logs = await client.containerLogs(id, { follow });
    try {
      const demux = new Demuxer();
      for await (const chunk of logs.body) {
        const t = io.now();
        for (const f of demux.push(chunk)) {
          let data = f.data;
          const before = seen;
          seen += data.byteLength;
          if (before < skip) {
            if (seen <= skip) continue;
            data = data.subarray(skip - before);
          }
          await io.record.output(f.stream, data, t);
        }
        io.record.flushSoon();
      }
      truncated = demux.end().truncated;
    } finally {
      logs.close();
    }
  } catch (err) {
    error = err;
  }
  await io.record.flush();
  return { seen, truncated, error };
}

/**
 * Record a started container until it ends: register a wait, follow its log from the start, read the exit
 * code; if the live stream broke, read the log once more without following for what it missed. Never
 * throws for engine trouble: it is reported in `error` so the record can say what happened.
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
  let wait: PendingWait | undefined;
  let waitError: unknown;
  try {
    wait = await client.containerWait(id, "not-running");
  } catch (err) {
    waitError = err;
  }

  const live = await copyLog(client, id, true, 0, io);
  let truncated = live.truncated;

  let exitCode: number | null = null;
  if (wait) {
    try {
      exitCode = (await wait.result).StatusCode;
    } catch (err) {
      waitError = err;
    } finally {
      wait.close();
    }
  }
  if (waitError !== undefined) {
    error = waitError instanceof EngineApiError && waitError.isNotFound
      ? "The container was removed before its exit code could be read"
      : `The exit code could not be read: ${messageOf(waitError)}`;
  }

  // A live stream that broke (or stopped inside a frame) missed the rest: it is in the replay, which has the
  // same bytes in the same order, so the bytes already recorded are skipped. A clean end is trusted: the
  // engine ends a follow only after the stopped container's log is drained, and a replay of a log that the
  // driver rotated (`max-size`) would not start where the live stream did.
  if (live.error !== undefined || live.truncated) {
    const rest = await copyLog(client, id, false, live.seen, io);
    if (rest.error === undefined) truncated = rest.truncated;
    else if (live.error !== undefined) error ??= `The output could not be recorded: ${messageOf(live.error)}`;
  }

  // After the exit and before removal is the only time the engine can say whether the OOM killer ended it.
  const oomKilled = exitCode !== null &&
    await client.maybeContainerInspect(id).then((c) => c?.State.OOMKilled === true, () => false);
  if (oomKilled) exitCode = OOM_KILLED_EXIT_CODE;
  const removed = opts.keep ? false : await client.containerRemove(id).then(() => true, () => false);
  return { exitCode, runtime, removed, truncated, error, oomKilled };
}

/**
 * The command line that starts the recorder: the same moat, as it was started. Under `deno run` (source or
 * bundle) that is the deno binary with `run -A <main module>`; a compiled moat is its own binary. Pure.
 */
export function recorderInvocation(
  self: { execPath: string; mainModule: string; standalone: boolean },
  runId: string,
): { command: string; args: string[] } {
  const tail = ["run", "--record-detached", runId];
  if (self.standalone) return { command: self.execPath, args: tail };
  const main = self.mainModule.startsWith("file:")
    ? decodeURIComponent(new URL(self.mainModule).pathname)
    : self.mainModule;
  return { command: self.execPath, args: ["run", "-A", main, ...tail] };
}
