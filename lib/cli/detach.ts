/**
 * The process side of `moat run -d`: start the recorder (lib/run/recorder.ts) as a detached moat process,
 * wait until it has taken the run over, and the recorder's own entry point — the internal, hidden
 * `moat run --record-detached <id>`, which is not for people to type.
 */
import * as life from "../run/record_life.ts";
import { clientFromEnv, engineStartTimeoutMs } from "../docker/client.ts";
import { takeOverEgress } from "../run/egress.ts";
import { loadRunGrants } from "../run/grant_kinds.ts";
import { needsTls } from "../run/trust.ts";
import { importRunCa } from "../net/x509.ts";
import { EXIT, MoatError } from "../errors.ts";
import { isFinal } from "../store/records.ts";
import { awaitStart, recordDetached, recorderTail, spawnDetachedMoat, thisMoat } from "../run/recorder.ts";
import { currentOwner } from "../store/owner.ts";
import { maybeReadRecord, RunStore } from "../store/records.ts";

/** The hidden option that makes `moat run` the recorder of a detached run. */
export const RECORD_DETACHED_OPTION = "--record-detached";

/** Beyond the engine's start budget: how long a recorder waits for `moat run -d` to start the container. */
const START_MARGIN_MS = 30_000;

/** How long `moat run -d` waits for its recorder to take the run over. */
const CLAIM_TIMEOUT_MS = 20_000;

/**
 * Refuse `-d` up front, before anything is created, when Deno would not let moat start its recorder
 * (moat run without `-A`, or compiled without `--allow-run`).
 */
export function checkRecorderAllowed(): void {
  const { execPath, standalone } = thisMoat();
  const state = Deno.permissions.querySync({ name: "run", command: execPath }).state;
  if (state === "granted") return;
  throw new MoatError(
    `Cannot start the process that records a detached run: Deno does not allow moat to run ${execPath}`,
    standalone
      ? "This moat was compiled without --allow-run: run it without -d, or compile it with --allow-run"
      : `Allow it:  deno run -A …/main.ts run -d …   (or add --allow-run=${execPath})`,
  );
}

/**
 * Start the recorder of run `runId` as its own process group, with no stdio, not waited for, and wait until
 * it has written itself into the record as the run's owner. On failure the child is killed and the reason
 * returned.
 */
export async function startRecorder(
  home: string,
  runId: string,
  handOver?: Uint8Array,
): Promise<string | undefined> {
  let child: Deno.ChildProcess;
  try {
    child = spawnDetachedMoat(home, recorderTail(runId), handOver);
  } catch (err) {
    return `${Deno.execPath()} could not be started: ${err instanceof Error ? err.message : String(err)}`;
  }
  let exited: Deno.CommandStatus | undefined;
  child.status.then((s) => exited = s, () => {});
  const claimed = () => {
    const rec = maybeReadRecord(home, runId);
    // The recorder's first write; a recorder that already finished (a quick command) wrote it too.
    return rec?.owner?.pid === child.pid;
  };
  const deadline = Date.now() + CLAIM_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (claimed()) return undefined;
    if (exited) {
      if (claimed()) return undefined;
      return `it exited with code ${exited.code} before taking the run over`;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  try {
    child.kill("SIGKILL");
  } catch { /* already gone */ }
  return `it did not take the run over within ${CLAIM_TIMEOUT_MS / 1000} s`;
}

/**
 * `moat run --record-detached <id>`: become the run's owner, record its output and exit, remove the
 * container unless kept, and write the final state. Returns 0 when the exit code was recorded.
 */
export async function recordCommand(home: string, runId: string): Promise<number> {
  // Detached from any terminal: a hangup or ^C meant for the shell that started `moat run -d` is not ours.
  const ignore = () => {};
  for (const sig of ["SIGHUP", "SIGINT"] as const) Deno.addSignalListener(sig, ignore);
  try {
    return await record(home, runId);
  } finally {
    for (const sig of ["SIGHUP", "SIGINT"] as const) Deno.removeSignalListener(sig, ignore);
  }
}

async function record(home: string, runId: string): Promise<number> {
  const store = RunStore.open(home, runId);
  if (!store) {
    throw new MoatError(`There is no record of run ${runId} in ${home}`, "See the runs:  moat list");
  }
  const containerId = store.record.containerId;
  if (!store.record.detached || !containerId || isFinal(store.record.state)) {
    throw new MoatError(
      `Run ${runId} is not a detached run in progress`,
      "The recorder is started by moat run -d; it is not meant to be run by hand",
    );
  }
  const env = Deno.env.toObject();
  const client = clientFromEnv(env);
  // The allowlist network: this process serves the run's policy from before the container starts.
  const profile = store.record.profile;
  // With grants or rules it reads TLS: with the run's CA, which moat run -d passed on stdin, and the grants.
  const tls = profile?.network === "allowlist" && needsTls(profile)
    ? {
      ca: await importRunCa(await new Response(Deno.stdin.readable).text()),
      grants: loadRunGrants(home, profile.grants ?? []).uses,
    }
    : undefined;
  const egress = profile?.network === "allowlist"
    ? await takeOverEgress(client, {
      runId,
      runDir: store.dir,
      allow: profile.allow ?? [],
      tcp: profile.tcp ?? [],
      rules: profile.rules ?? [],
      ...(tls ? { tls } : {}),
      audit: store.auditLog,
    }, env)
    : undefined;
  try {
    store.update(life.ownedBy(currentOwner()));
  } catch (err) {
    await egress?.stop();
    throw err;
  }
  try {
    if (egress && store.record.startedAt === null) {
      const start = await awaitStart(
        () => maybeReadRecord(home, runId),
        engineStartTimeoutMs(env) + START_MARGIN_MS,
      );
      if (start === "ended") return EXIT.failure; // moat run -d said why, and removed the container
      if (start === "gone") {
        await client.containerRemove(containerId).catch(() => {});
        throw new MoatError(
          `moat run -d of run ${runId} ended before it started the container`,
          "Run it again",
        );
      }
    }
    const outcome = await recordDetached(client, containerId, {
      record: store,
      now: () => Date.now(),
    }, { keep: store.record.kept });
    await store.close();
    // The run's network goes before the record says the run is over (as a run in the foreground's does
    // before moat exits): `moat wait` then finds nothing of it left.
    await egress?.stop();
    // Someone may have written the record meanwhile (`moat stop`): merge into what is on disk now.
    const fresh = RunStore.open(home, runId) ?? store;
    fresh.update(life.recorded(fresh.record, {
      ...outcome,
      outputIncomplete: outcome.outputIncomplete ?? store.outputNotWritten,
    }, new Date()));
    return outcome.exitCode === null ? EXIT.failure : EXIT.ok;
  } catch (err) {
    await store.close().catch(() => {});
    const fresh = RunStore.open(home, runId) ?? store;
    if (!isFinal(fresh.record.state)) {
      const why = err instanceof Error ? err.message : String(err);
      fresh.tryUpdate(life.failed(`The recorder of this detached run failed: ${why}`, null, new Date()));
    }
    throw err;
  } finally {
    await egress?.stop();
  }
}
