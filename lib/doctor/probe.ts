/**
 * `moat doctor`'s probe run: a tiny container under the gVisor runtime, planned and driven exactly like a
 * run (`planContainer` + `driveRun`, so it carries every moat label, plus `dev.moat.probe=doctor`), with its
 * output kept in memory. Bounded in time, and the container is removed on every path.
 */
import { LABELS } from "../run/labels.ts";
import type { EngineClient } from "../docker/client.ts";
import { InterruptedError, MoatError } from "../errors.ts";
import { driveRun, type Sink } from "../run/lifecycle.ts";
import { planContainer } from "../run/plan.ts";
import { profileFor } from "../run/profile.ts";
import type { ContainerCreateBody } from "../docker/types.ts";
import type { Owner } from "../store/records.ts";
import { PROBE_COMMAND, type ProbeFacts } from "./checks.ts";

/** How long the probe may take from create to exit before it is stopped and reported as hanging. */
export const PROBE_TIMEOUT_MS = 30_000;
/** Label value that marks the doctor's probe container (`dev.moat.probe=doctor`). */
export const PROBE_LABEL = "doctor";
/** At most this much output is kept per stream; the probe prints a few hundred bytes. */
const MAX_OUTPUT = 64 * 1024;
const TIMEOUT = "probe timeout";

export interface ProbeOptions {
  runId: string;
  image: string;
  runtime: string;
  /** An existing, empty host directory mounted as the workspace, as in a run. */
  workspace: string;
  /** `uid:gid` the probe runs as (the workspace's owner, as in a run). */
  user: string;
  owner?: Owner;
  /** The MOAT_HOME's id, labelled like a run's (`dev.moat.home`); `undefined` when it could not be had. */
  homeId?: string;
  moatVersion: string;
  timeoutMs: number;
  /** Aborted with a signal name when the user interrupts: the container is removed, then this throws. */
  interrupt?: AbortSignal;
}

function memorySink(): Sink & { text(): string } {
  const parts: Uint8Array[] = [];
  let size = 0;
  return {
    write(bytes) {
      if (size < MAX_OUTPUT) {
        const part = bytes.slice(0, MAX_OUTPUT - size);
        parts.push(part);
        size += part.byteLength;
      }
      return Promise.resolve();
    },
    text() {
      const all = new Uint8Array(size);
      let off = 0;
      for (const p of parts) {
        all.set(p, off);
        off += p.byteLength;
      }
      return new TextDecoder().decode(all);
    },
  };
}

/** Run the probe. Create/start failures become `problem`; only a user interrupt throws. */
export function runProbe(client: EngineClient, opts: ProbeOptions): Promise<ProbeFacts> {
  const plan = planContainer({
    runId: opts.runId,
    name: undefined,
    image: opts.image,
    command: PROBE_COMMAND,
    env: {},
    workspace: opts.workspace,
    user: opts.user,
    runtime: opts.runtime,
    interactive: false,
    moatVersion: opts.moatVersion,
    // The probe needs no network: it reads what the sandbox's kernel says.
    profile: profileFor({ network: "none" }),
    ...(opts.owner ? { owner: opts.owner } : {}),
    ...(opts.homeId ? { homeId: opts.homeId } : {}),
  });
  plan.body.Labels = { ...plan.body.Labels, [LABELS.probe]: PROBE_LABEL };
  plan.name = `moat-doctor-${opts.runId}`;
  return driveProbe(client, plan, opts);
}

/**
 * Drive one of the doctor's probe containers (`plan`, labelled by the caller) to its end within
 * `timeoutMs`, its output kept in memory; it is removed on every path. Create/start failures become
 * `problem`; only a user interrupt (`interrupt`) throws, once the container is removed.
 */
export async function driveProbe(
  client: EngineClient,
  plan: { name: string; body: ContainerCreateBody },
  opts: { image: string; runtime: string; timeoutMs: number; interrupt?: AbortSignal },
): Promise<ProbeFacts> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(TIMEOUT), opts.timeoutMs);
  const onUser = () => controller.abort(String(opts.interrupt?.reason ?? "SIGINT"));
  opts.interrupt?.addEventListener("abort", onUser, { once: true });
  if (opts.interrupt?.aborted) onUser();

  const stdout = memorySink(), stderr = memorySink();
  const facts: ProbeFacts = {
    image: opts.image,
    runtime: opts.runtime,
    timeoutMs: opts.timeoutMs,
    timedOut: false,
  };
  const userInterrupt = () => controller.signal.aborted && controller.signal.reason !== TIMEOUT;
  try {
    const outcome = await driveRun(client, plan, {
      stdout,
      stderr,
      record: { output: () => Promise.resolve(), flushSoon: () => {}, flush: () => Promise.resolve() },
      now: () => Date.now(),
    }, {
      onCreated: (id) => {
        facts.containerId = id;
        return Promise.resolve();
      },
      onStarted: () => Promise.resolve(),
      onRemoved: (removed) => {
        facts.removed = removed;
        return Promise.resolve();
      },
    }, { keep: false, interrupt: controller.signal, stopGraceSeconds: 1 });
    if (userInterrupt()) {
      throw new InterruptedError(String(controller.signal.reason), outcome.containerId, outcome.removed);
    }
    if (outcome.interrupted) facts.timedOut = true;
    else {
      facts.outcome = {
        exitCode: outcome.exitCode,
        stdout: stdout.text(),
        stderr: stderr.text(),
        engineRuntime: outcome.runtime,
      };
    }
  } catch (err) {
    if (err instanceof InterruptedError) {
      if (userInterrupt()) throw err;
      facts.timedOut = true;
    } else if (err instanceof MoatError) {
      facts.problem = { message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
    } else throw err;
  } finally {
    clearTimeout(timer);
    opts.interrupt?.removeEventListener("abort", onUser);
  }
  return facts;
}
