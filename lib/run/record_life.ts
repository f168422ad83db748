/**
 * The life of a run's record as pure state transitions: each returns the patch a writer applies to
 * `run.json` (`RunStore.update`), so every writer — the foreground `moat run`, a detached run's recorder —
 * moves a record through the same states with the same fields:
 *
 *   creating ─created→ created ─started→ running ─ended→ exited | interrupted
 *        └──────────────────────┴──────────┴─failed→ failed | interrupted
 *
 * and, for a run whose moat process is gone, `finalPatch` ends it from what the engine shows (moat stop).
 *
 * `at` is the moment of the transition; the writer passes the clock in.
 */
import type { ContainerInspect } from "../docker/types.ts";
import type { Owner, RunRecord } from "../store/records.ts";
import { isFinal } from "../store/records.ts";

export type RecordPatch = Partial<RunRecord>;

/** A process took the run over (a detached run's recorder): it now drives the run and writes its end. */
export function ownedBy(owner: Owner): RecordPatch {
  return { owner };
}

/** The container exists. */
export function created(containerId: string): RecordPatch {
  return { containerId, state: "created" };
}

/** The engine started the command. */
export function started(at: Date): RecordPatch {
  return { state: "running", startedAt: at.toISOString() };
}

/** Removal of the container was attempted (not with `--keep`): whether it is gone. */
export function removed(gone: boolean): RecordPatch {
  return { removed: gone };
}

/** How a run that started came to its end, as the lifecycle saw it. */
export interface RunEnding {
  exitCode: number;
  /** The signal that interrupted the run, if any. */
  interrupted?: string | undefined;
  /** `HostConfig.Runtime` as the engine reported it, when known. */
  runtime?: string | undefined;
  oomKilled?: boolean;
  /** Why the recorded output is incomplete, when it is. */
  outputIncomplete?: string | undefined;
}

/** The command ended (its exit code is known): `exited`, or `interrupted` when a signal ended it. */
export function ended(record: RunRecord, e: RunEnding, at: Date): RecordPatch {
  return {
    state: e.interrupted ? "interrupted" : "exited",
    exitCode: e.exitCode,
    signal: e.interrupted ?? null,
    runtime: e.runtime ?? record.runtime,
    finishedAt: at.toISOString(),
    ...(e.oomKilled ? { oomKilled: true } : {}),
    ...(e.outputIncomplete === undefined ? {} : { outputIncomplete: e.outputIncomplete }),
  };
}

/** The run failed with `error` (moat's message, without its hint), or was interrupted (`signal`) before it ended. */
export function failed(error: string, signal: string | null, at: Date): RecordPatch {
  return {
    state: signal ? "interrupted" : "failed",
    signal,
    error,
    finishedAt: at.toISOString(),
  };
}

/** What a detached run's recorder learnt by the end (see lib/run/recorder.ts `RecordOutcome`). */
export interface RecordedEnding {
  /** `null`: the exit code could not be read. */
  exitCode: number | null;
  runtime: string | undefined;
  removed: boolean;
  error: string | undefined;
  oomKilled: boolean;
  outputIncomplete: string | undefined;
}

/**
 * The recorder's last word, merged into the record as it is on disk now: someone else (`moat stop`) may
 * have ended the run meanwhile, and a final state and exit code already there are kept.
 */
export function recorded(onDisk: RunRecord, e: RecordedEnding, at: Date): RecordPatch {
  const patch: RecordPatch = {
    runtime: e.runtime ?? onDisk.runtime,
    removed: e.removed,
    finishedAt: at.toISOString(),
    ...(e.error ? { error: e.error } : {}),
    ...(e.oomKilled ? { oomKilled: true } : {}),
    ...(e.outputIncomplete === undefined ? {} : { outputIncomplete: e.outputIncomplete }),
  };
  if (isFinal(onDisk.state)) {
    return {
      ...patch,
      exitCode: onDisk.exitCode ?? e.exitCode,
      finishedAt: onDisk.finishedAt ?? patch.finishedAt!,
    };
  }
  return { ...patch, state: e.exitCode === null ? "failed" : "exited", exitCode: e.exitCode };
}

/** Engine timestamps of a container that never started/ended are the zero time `0001-01-01T…`. Pure. */
function engineTime(t: string | undefined): string | null {
  if (!t || t.startsWith("0001-")) return null;
  return Number.isNaN(Date.parse(t)) ? null : t;
}

/**
 * The record patch that ends a run, from what the engine shows now (`undefined`: the container is gone).
 * Pure given `now`.
 *
 * - the container exited: `exited` with `State.ExitCode` (143 after SIGTERM, 137 after SIGKILL);
 * - it never started (`created`): `failed`, the command never ran;
 * - it is gone: `failed` with the reason; the exit code is unknown.
 */
export function finalPatch(
  record: RunRecord,
  container: ContainerInspect | undefined,
  now: string,
): Partial<RunRecord> {
  if (container === undefined) {
    return {
      state: "failed",
      error: record.containerId
        ? `The container ${record.containerId.slice(0, 12)} no longer exists and the moat process that ` +
          "drove the run is gone; the exit code is unknown"
        : "The run ended before it had a container: the moat process that drove it is gone",
      finishedAt: now,
      removed: record.containerId !== null,
    };
  }
  const s = container.State;
  if (s.Status === "created") {
    return {
      state: "failed",
      error: "The command never started: the moat process that drove the run ended before starting it",
      finishedAt: now,
    };
  }
  return {
    state: "exited",
    exitCode: s.ExitCode,
    finishedAt: engineTime(s.FinishedAt) ?? now,
    startedAt: record.startedAt ?? engineTime(s.StartedAt),
    runtime: record.runtime ?? container.HostConfig.Runtime ?? null,
    ...(s.OOMKilled ? { error: "The container ran out of memory (OOM killed)" } : {}),
  };
}
