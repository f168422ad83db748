/**
 * The start of a run, after the command line and config are understood (lib/cli/run.ts): the fail-closed
 * gVisor admission, the image, the probes the image needs, the plan, the run record, and the lifecycle —
 * foreground (`driveRun`) or detached (`startDetached`, then a recorder process). What the user sees
 * (status phases, warnings) goes through `RunDisplay`; everything outside moat's process (the engine,
 * stdio, the recorder process) comes in through `RunEdge`, so this module decides and the edge acts.
 */
import type { EngineClient } from "../docker/client.ts";
import type { ContainerCreateBody } from "../docker/types.ts";
import { endpointUrl, engineProduct, isLocalEndpoint } from "../docker/endpoint.ts";
import { checkRemoteDirectories } from "./remote_paths.ts";
import { firstLineOf, InterruptedError, MoatError, SandboxUnavailableError } from "../errors.ts";
import { noSandboxWarning, resolveRuntime, type SandboxDecision } from "../sandbox/decide.ts";
import { ensureHomeId } from "../store/home_id.ts";
import {
  isNoSpace,
  maybeReadRecord,
  type Owner,
  type Profile,
  type RunRecord,
  RunStore,
} from "../store/records.ts";
import { VERSION } from "../version.ts";
import { type Egress, readDeniedNotice, startEgress } from "./egress.ts";
import {
  adoptStandby,
  bindSources,
  discardStandby,
  forgetStandby,
  hasNetwork,
  type Standby,
} from "./standby.ts";
import { coldReason, warmCommand, warmKey, warmSpec } from "./warm.ts";
import { driveWarm, type WarmSandbox } from "./warm_life.ts";
import { ensureImage } from "./image.ts";
import { imagePathKinds } from "./image_paths.ts";
import { driveRun, type LifecycleHooks, type LifecycleIO, startDetached } from "./lifecycle.ts";
import {
  checkMountKinds,
  type MountEntry,
  mountKindError,
  type PathKind,
  type ResolvedMount,
  targetsToProbe,
} from "./mounts.ts";
import { readImagePasswd } from "./passwd.ts";
import { needsTls, type RunTrust, writeRunTrust } from "./trust.ts";
import type { GrantUse } from "../net/intercept.ts";
import { exportRunCa, makeRunCa, type RunCa } from "../net/x509.ts";
import {
  containerName,
  FALLBACK_HOME,
  needsFallbackHome,
  planContainer,
  runLabels,
  type RunSpec,
  type UserRef,
} from "./plan.ts";
import * as life from "./record_life.ts";

/** Seconds an interrupted run's command gets between SIGTERM and SIGKILL. */
const STOP_GRACE_SECONDS = 5;

/** Everything about the run, decided from flags, config and environment. */
export interface RunRequest {
  runId: string;
  name: string | undefined;
  image: string;
  command: string[] | undefined;
  /** The container's environment; `HOME` is added when the image has no home for the user. */
  env: Record<string, string>;
  /** Absolute real path. */
  workspace: string;
  /** `User` for the create body, and who that is (for the HOME decision). */
  user: { user: string; who: UserRef | undefined };
  decision: SandboxDecision;
  keep: boolean;
  interactive: boolean;
  tty: boolean;
  detach: boolean;
  profile: Profile;
  /** The extra mounts, resolved on the host, what each source is, and the config entries they came from. */
  mounts: ResolvedMount[];
  mountSourceKinds: PathKind[];
  mountEntries: readonly MountEntry[];
  home: string;
  owner: Owner;
  /**
   * The credentials of the run's grants (`profile.grants`), by host: the policy point adds them. Read by the
   * CLI from MOAT_HOME; never recorded.
   */
  grants?: ReadonlyMap<string, GrantUse>;
  /** Warm runs are on (lib/run/warm.ts): take a waiting sandbox, and have the next one booted after the run. */
  warm?: boolean;
}

/** What the user sees while a run starts and ends: the status line and moat's own lines on stderr. */
export interface RunDisplay {
  /** A new phase of the run ("Checking gVisor…", "Starting container…"). */
  phase(text: string): void;
  /** A pull's progress. */
  progress(line: string): void;
  /** One of moat's lines (stops the status line first). */
  say(line: string): void;
  /** The command started: the status line goes. */
  started(): void;
  /** The line for an interrupt that is stopping the running container. */
  stopping(runId: string, signal: string, graceSeconds: number, starting: boolean): string;
}

/** What lies outside moat's process: the engine, stdio, the terminal, the recorder process. */
export interface RunEdge {
  client: EngineClient;
  /** moat's environment (`MOAT_TEST_UPSTREAMS`, lib/run/egress.ts). */
  env: Record<string, string | undefined>;
  /** Aborted with the signal name when the user interrupts; `force` by a second interrupt. */
  interrupt: AbortSignal;
  force: AbortSignal;
  /** stdout, stderr (and stdin, the terminal for `-t`): everything the lifecycle writes but the record. */
  io: Omit<LifecycleIO, "record">;
  /** The terminal's size, read when the container is planned, for `-t`. */
  consoleSize(): { rows: number; cols: number } | undefined;
  /** The notice about containers left behind, looked for alongside the checks; shown before start. */
  orphanNotice: Promise<string | undefined>;
  /** `-d` (required then): start the recorder process of `runId`; the reason when it did not take over. */
  startRecorder?(home: string, runId: string, handOver?: Uint8Array): Promise<string | undefined>;
  /**
   * Networks made ahead of allowlist runs (lib/run/standby.ts), when they are on: take one for a run of
   * `image`, and have the next one made once a run has ended.
   */
  standby?: {
    /** Take a standby of `key` (`claimStandby`). */
    claim(key: string): Standby | undefined;
    /** The key of a network made ahead for image `imageId` (`ownStandbyKey`). */
    netKey(imageId: string): string;
    /** Start the background work (`spawnStandby`); the process doing it, when it started. */
    spawn(work: { image?: string; warm?: RunSpec; release?: string }): Owner | undefined;
  };
}

/** How a started run ended for the caller: the exit code, or the id of a detached run now recorded. */
export type RunResult = { exitCode: number } | { detached: string };

/** The gVisor check, which runs alongside the image check and create; `failure` is its error once it failed. */
interface SandboxCheck {
  done: Promise<void>;
  failure: unknown;
}

/** Run `req`: checks, plan, record, lifecycle. Throws the errors main.ts reports; the record says the same. */
export async function startRun(req: RunRequest, edge: RunEdge, display: RunDisplay): Promise<RunResult> {
  const { client, interrupt } = edge;
  const checkInterrupt = () => {
    if (interrupt.aborted) throw new InterruptedError(String(interrupt.reason), undefined);
  };
  // A read-only engine call need not finish once the user interrupts (the engine may be hanging).
  const unlessInterrupted = <T>(call: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(new InterruptedError(String(interrupt.reason), undefined));
      if (interrupt.aborted) return onAbort();
      interrupt.addEventListener("abort", onAbort, { once: true });
      call.then(resolve, reject).finally(() => interrupt.removeEventListener("abort", onAbort));
    });
  const { decision, home } = req;
  if (req.detach && !edge.startRecorder) {
    throw new MoatError(
      "A detached run needs a recorder, and none was given",
      "This is a bug in moat; please report it",
    );
  }
  const env = { ...req.env }; // the container's; HOME may be added below
  let runtime: string | undefined;
  const newRecord = (): RunRecord => ({
    schema: 1,
    id: req.runId,
    name: req.name ?? null,
    workspace: req.workspace,
    image: req.image,
    command: req.command ?? null,
    sandbox: decision.sandbox,
    runtime: runtime ?? null,
    containerId: null,
    state: "creating",
    exitCode: null,
    signal: null,
    error: null,
    kept: req.keep,
    removed: false,
    createdAt: new Date().toISOString(),
    startedAt: null,
    finishedAt: null,
    moatVersion: VERSION,
    owner: req.owner,
    detached: req.detach,
    tty: req.tty,
    profile: req.profile,
  });

  let store: RunStore;
  let plan: { name: string; body: ContainerCreateBody } | undefined;
  let spec: RunSpec;
  let imageId: string;
  // An allowlist run without mapped ports takes a network made ahead when one is waiting; its id becomes
  // the run's (lib/run/standby.ts).
  const standbyFits = req.profile.network === "allowlist" && (req.profile.tcp ?? []).length === 0;
  let standby: Standby | undefined;
  // A warm run (lib/run/warm.ts): the sandbox booted ahead it takes, and the command it runs there.
  const warmFits = req.warm === true && edge.standby !== undefined && coldReason(req) === undefined;
  let warm: { sandbox: WarmSandbox; command: string[] } | undefined;
  const check: SandboxCheck = { done: Promise.resolve(), failure: undefined };
  try {
    // The sandbox check (/info only when the sandbox is on) runs alongside the image check and create:
    // /info is the engine's slowest answer. Fail-closed still holds: create itself refuses a runtime the
    // engine does not have (nothing is created), and nothing that runs — a pull, the passwd probe, the
    // container's start — happens before the check has passed (`check.done`).
    if (decision.sandbox === "gvisor") {
      display.phase("Checking gVisor…");
      runtime = decision.runtime;
      // Podman runs every container under its default runtime: there that default is what is checked.
      check.done = unlessInterrupted(Promise.all([client.systemInfo(), client.systemPing()])).then(
        ([info, ping]) => {
          resolveRuntime(decision, info, endpointUrl(client.endpoint), engineProduct(ping.server));
        },
      ).catch((err) => {
        check.failure = err;
        throw err;
      });
      check.done.catch(() => {}); // awaited below and by the lifecycle
    } else {
      display.say(noSandboxWarning(decision.source));
    }

    const imageInfo = await unlessInterrupted(
      ensureImage(client, req.image, display.progress, interrupt, () => check.done),
    );
    checkInterrupt();

    imageId = imageInfo.Id;
    const size = edge.consoleSize();
    spec = {
      runId: req.runId,
      name: req.name,
      image: req.image,
      command: req.command,
      env,
      workspace: req.workspace,
      user: req.user.user,
      runtime,
      interactive: req.interactive,
      tty: req.tty,
      ...(size ? { consoleSize: size } : {}),
      keep: req.keep,
      profile: req.profile,
      moatVersion: VERSION,
      owner: req.owner,
      homeId: ensureHomeId(home),
    };
    const warmCmd = warmFits ? warmCommand(imageInfo.Config, req.command) : [];
    const netKey = standbyFits ? edge.standby?.netKey(imageId) : undefined;
    if (warmCmd.length > 0) standby = edge.standby?.claim(warmKey(spec, imageId, netKey, bindSources(spec)));
    else if (netKey) standby = edge.standby?.claim(netKey);
    if (standby) {
      req = { ...req, runId: standby.id };
      spec = { ...spec, runId: standby.id };
      if (standby.sandbox) {
        const name = containerName(spec);
        warm = {
          sandbox: {
            containerId: standby.sandbox,
            runId: standby.id,
            name,
            imageId,
            runtime,
            homeId: spec.homeId!,
          },
          command: warmCmd,
        };
      }
    }
    if (req.mounts.length > 0) {
      // A directory onto a file of the image (or back) fails only when the runtime starts the container,
      // and under gVisor without saying why: look at the targets in the image first (a probe, cached).
      await check.done; // the probe is a container: made only under a runtime that passed the check
      const targetKinds = await imagePathKinds(
        client,
        home,
        imageInfo.Id,
        runLabels(spec),
        runtime,
        targetsToProbe(req.mounts),
      );
      const bad = checkMountKinds(req.mountEntries, req.mountSourceKinds, targetKinds, req.image);
      if (bad) throw mountKindError(bad);
      checkInterrupt();
    }
    if (!isLocalEndpoint(client.endpoint)) {
      // An engine on another host mounts its own directories of these names: they must be the user's.
      await check.done; // the probe is a container: made only under a runtime that passed the check
      const dirs = [
        req.workspace,
        ...req.mounts.filter((_, i) => req.mountSourceKinds[i] === "directory")
          .map((m) => m.source),
      ];
      await checkRemoteDirectories(client, endpointUrl(client.endpoint), imageId, runLabels(spec), dirs);
      checkInterrupt();
    }
    if (needsFallbackHome(env, req.user.who, undefined)) {
      await check.done; // the probe is a container: it runs only under a runtime that passed the check
      const passwd = await readImagePasswd(client, home, imageInfo.Id, runLabels(spec), runtime);
      if (needsFallbackHome(env, req.user.who, passwd)) env["HOME"] = FALLBACK_HOME;
      checkInterrupt();
    }
    // With the allowlist network the plan waits for the run's own network (below).
    if (req.profile.network !== "allowlist") plan = planContainer(spec);
    store = RunStore.create(home, newRecord());
    // What the record does not say: how the sandbox was decided, the image's id, what the command gets
    // (the variables' names, never their values), the grants (names).
    store.audit("config", {
      sandbox: decision.sandbox,
      sandboxSource: decision.source,
      imageId,
      user: req.user.user,
      env: Object.keys(env).sort(),
      interactive: req.interactive,
      keep: req.keep,
      mounts: req.mounts.map((m) => ({ source: m.source, target: m.target, readonly: m.readonly })),
      grants: req.profile.grants ?? [],
    });
  } catch (err) {
    if (standby) await discardStandby(client, home, standby);
    // Interrupted while the engine was being checked: nothing was created, but the run still gets a
    // final record, like a run interrupted at any later point. An engine error that follows the interrupt
    // is secondary: the user asked to stop.
    if (!interrupt.aborted) throw err;
    const stopped = err instanceof InterruptedError
      ? err
      : new InterruptedError(String(interrupt.reason), undefined);
    try {
      RunStore.create(home, { ...newRecord(), ...life.failed(stopped.message, stopped.signal, new Date()) });
    } catch {
      // The interrupt is what to report.
    }
    throw stopped;
  }

  // The allowlist network: the run's own network, moat's policy point and the relay, in place before the
  // sandbox is created. The relay is a container: made only once the sandbox check has passed.
  let egress: Egress | undefined;
  let ca: RunCa | undefined;
  // A run in the foreground leaves the removal of its relay and network to the process that makes the next
  // one ahead (`edge.standby`), when it can start one: see the end below.
  const deferRemoval = !req.detach && edge.standby !== undefined;
  if (req.profile.network === "allowlist") {
    try {
      await check.done;
      checkInterrupt();
      display.phase("Starting the run's network…");
      if (edge.env["MOAT_TEST_UPSTREAMS"]) {
        display.say(
          "moat: warning: MOAT_TEST_UPSTREAMS is set: the hosts it names are reached at the addresses it gives, " +
            "private ones included (it is for moat's own tests)",
        );
      }
      // Not cut short by an interrupt: what it makes must be known to be removed (its engine calls are
      // bounded); the interrupt is acted on right after. A network made ahead whose relay is gone is
      // removed, and the run's made as if there had been none.
      // A grant or rules: the policy point reads TLS, with a CA of this run's that the sandbox trusts.
      let trust: RunTrust | undefined;
      if (needsTls(req.profile)) {
        // Extractable only for -d, to hand it to the recorder (through a pipe, never a file).
        ca = await makeRunCa(req.runId, new Date(), req.detach);
        trust = await writeRunTrust(client, {
          home,
          runDir: store.dir,
          runId: req.runId,
          imageId,
          labels: runLabels(spec),
          runtime,
          caPem: ca.certPem,
        });
      }
      const tls = {
        ...(ca ? { tls: { ca, grants: req.grants ?? new Map() } } : {}),
        audit: store.auditLog,
      };
      if (standby && hasNetwork(standby)) {
        const taken = standby;
        egress = await adoptStandby(client, home, taken, {
          runDir: store.dir,
          allow: req.profile.allow ?? [],
          rules: req.profile.rules ?? [],
          ...tls,
          deferRemoval,
        }, edge.env).catch(() => discardStandby(client, home, taken).then(() => undefined));
        if (!egress) warm = undefined; // removed with its network
      }
      egress ??= await startEgress(client, {
        runId: req.runId,
        runDir: store.dir,
        image: imageId,
        allow: req.profile.allow ?? [],
        tcp: req.profile.tcp ?? [],
        rules: req.profile.rules ?? [],
        ...tls,
        labels: runLabels(spec),
        deferRemoval,
      }, edge.env);
      plan = planContainer({ ...spec, egress: { ...egress.spec, ...(trust ? { trust } : {}) } });
      checkInterrupt();
    } catch (err) {
      await egress?.stop();
      endFailedRun(store, err, interrupt, check);
      throw err;
    }
  }

  if (!plan) throw new Error("unreachable: the container was not planned");
  try {
    const notice = await edge.orphanNotice;
    if (notice) display.say(notice);

    if (req.detach) return await startDetachedRun(req, edge, display, plan, store, check, egress, ca);
    const warmRun = warm ? { warm, env, leave: edge.standby !== undefined } : undefined;
    let exitCode = warmRun
      ? await runInForeground(req, edge, display, warmRun, store, check, egress)
      : undefined;
    // Nothing ran in the sandbox booted ahead that could not be taken: the run starts cold.
    if (exitCode === undefined) warm = undefined;
    exitCode ??= (await runInForeground(req, edge, display, { plan }, store, check, egress))!;
    // What the policy refused, said once the command is over: a name that did not resolve for the command
    // says nothing of why.
    const refused = egress ? readDeniedNotice(req.runId, store.dir) : undefined;
    if (refused) display.say(refused);
    return { exitCode };
  } finally {
    // The relay of a run in the foreground (left with nothing to pass connections to: the policy point has
    // stopped) and its network (emptied) are removed in the background, by the process that makes the next
    // allowlist run's network ahead: that process owns what is left of the run now (its record says so), or
    // this one removes them itself. A detached run's recorder removes its own, with no one waiting.
    // So is a warm run's sandbox.
    const background = (egress !== undefined || warm !== undefined) && deferRemoval;
    // A warm sandbox's files go now (a network's go with it, `egress.stop`): its id is all the rest needs.
    if (standby && !hasNetwork(standby)) forgetStandby(home, standby.id);
    if (background) await egress?.stop({ keepRelay: true, keepNetwork: true });
    const next = warmFits ? { image: imageId, warm: warmSpec(spec) } : standbyFits ? { image: imageId } : {};
    const owner = next.image || background
      ? edge.standby?.spawn({ ...next, ...(background ? { release: req.runId } : {}) })
      : undefined;
    if (background && owner) store.tryUpdate({ owner });
    else {
      await egress?.stop();
      if (warm) await client.containerRemove(warm.sandbox.containerId).catch(() => {});
    }
  }
}

/**
 * A run in the foreground: its container created and started (`plan`), or the command run in the sandbox
 * booted ahead that the run took (`warm`, lib/run/warm_life.ts). The exit code; `undefined` when the warm
 * sandbox could not be taken (nothing ran: the caller starts the run cold).
 */
async function runInForeground(
  req: RunRequest,
  edge: RunEdge,
  display: RunDisplay,
  how: { plan: { name: string; body: ContainerCreateBody } } | {
    warm: { sandbox: WarmSandbox; command: string[] };
    env: Record<string, string>;
    /** Leave the sandbox of a run that ended for the background process to remove. */
    leave: boolean;
  },
  store: RunStore,
  check: SandboxCheck,
  egress: Egress | undefined,
): Promise<number | undefined> {
  const { client, interrupt } = edge;
  const { runId } = req;
  display.phase("plan" in how ? "Starting container…" : "Starting the command in the sandbox booted ahead…");
  try {
    const hooks: LifecycleHooks = {
      // While the command runs, a record that cannot be written (a full disk) must not end it.
      onCreated: (id, warnings) => {
        if ("warm" in how) store.audit("warm", { container: id });
        store.tryUpdate(life.created(id));
        for (const w of warnings) display.say(`moat: engine warning: ${w}`);
      },
      onStarted: () => {
        display.started();
        store.tryUpdate(life.started(new Date()));
      },
      onRemoved: (removed) => {
        store.tryUpdate(life.removed(removed));
        if (!removed) {
          const id = store.record.containerId ?? "";
          display.say(
            `moat: warning: container ${
              id.slice(0, 12)
            } could not be removed; remove it with:  docker rm -f ${id}`,
          );
        }
      },
      // The relay goes while the sandbox is removed; the network after both (`egress.stop`).
      onFinished: () => void egress?.release(),
      onStopping: (grace) => {
        // Not started yet (onStarted comes after): the interrupt came while the engine was starting the
        // container, which it finished, so the command has only just begun when it is stopped.
        display.say(
          display.stopping(runId, String(interrupt.reason), grace, store.record.startedAt === null),
        );
      },
    };
    const io = { ...edge.io, record: store };
    const opts = {
      keep: req.keep,
      interrupt,
      force: edge.force,
      stopGraceSeconds: STOP_GRACE_SECONDS,
      admit: check.done,
    };
    const outcome = "plan" in how ? await driveRun(client, how.plan, io, hooks, opts) : await driveWarm(
      client,
      how.warm.sandbox,
      { command: how.warm.command, env: how.env, tty: req.tty, interactive: req.interactive },
      io,
      hooks,
      { ...opts, leaveSandbox: how.leave },
    );
    if ("notTaken" in outcome) {
      store.audit("warm", { notTaken: outcome.notTaken });
      return undefined;
    }
    await store.close();
    store.tryUpdate(life.ended(store.record, {
      ...outcome,
      outputIncomplete: outcome.outputIncomplete ?? store.outputNotWritten,
    }, new Date()));
    if (outcome.interrupted) {
      // A warm run's sandbox, stopped, is removed by the engine (and by the process that makes the next one).
      const container = outcome.removed || "warm" in how ? "removed" : "kept";
      display.say(`moat: run ${runId} interrupted by ${outcome.interrupted}; container ${container}`);
    }
    if (outcome.oomKilled) display.say(oomMessage(runId, req.profile.memory));
    if (outcome.outputIncomplete !== undefined) {
      display.say(`moat: warning: the output of run ${runId} is incomplete: ${outcome.outputIncomplete}`);
    }
    if (store.outputError !== undefined || store.recordError !== undefined) {
      display.say(notRecordedLine(store, req.home, outcome.outputIncomplete === undefined));
    }
    return outcome.exitCode;
  } catch (err) {
    await store.close().catch(() => {});
    endFailedRun(store, err, interrupt, check);
    throw err;
  }
}

/**
 * `moat run -d` after the checks: create and start the container (a start failure is reported here, with
 * the same exit codes as `moat run`), hand the run to a recorder process; the caller prints the run id.
 */
async function startDetachedRun(
  req: RunRequest,
  edge: RunEdge,
  display: RunDisplay,
  plan: { name: string; body: ContainerCreateBody },
  store: RunStore,
  check: SandboxCheck,
  egress: Egress | undefined,
  ca: RunCa | undefined,
): Promise<RunResult> {
  const { client, interrupt } = edge;
  const runId = store.record.id;
  display.phase("Starting container…");
  /** Why the recorder did not take the run over; `undefined` once it has. */
  let failure: string | undefined;
  let recorderStarted = false;
  const startRecorder = async () => {
    recorderStarted = true;
    // The run's CA goes to the recorder, which serves the policy from now on, through its stdin.
    const handOver = ca ? new TextEncoder().encode(await exportRunCa(ca)) : undefined;
    failure = await edge.startRecorder!(req.home, runId, handOver); // present: checked in startRun
  };
  try {
    // With the allowlist network the recorder serves the run's policy (lib/run/egress.ts
    // takeOverEgress): it takes over before the sandbox starts, so that no connection of it is cut.
    const beforeStart = egress
      ? async () => {
        await egress.handOver();
        await startRecorder();
        if (failure !== undefined) throw recorderFailure(runId, failure);
        // The recorder wrote itself in as the run's owner: what this process writes next (the start)
        // must not put this process back, or moat stop, list and clean take the run for one whose owner
        // is gone once moat run -d exits.
        const owner = maybeReadRecord(req.home, runId)?.owner;
        if (owner) store.record = { ...store.record, owner };
      }
      : undefined;
    const { containerId } = await startDetached(client, plan, {
      onCreated: (id, warnings) => {
        store.update(life.created(id));
        for (const w of warnings) display.say(`moat: engine warning: ${w}`);
      },
      onStarted: () => {
        store.update(life.started(new Date()));
      },
      onRemoved: (removed) => {
        store.update(life.removed(removed));
      },
    }, { keep: req.keep, interrupt, admit: check.done, ...(beforeStart ? { beforeStart } : {}) });
    // The recorder's now: the relay and the network are its to remove.
    egress?.disown();
    // Nothing records the output yet; the engine's log keeps it until the recorder reads it from the start.
    if (!recorderStarted) await startRecorder();
    if (failure !== undefined) {
      await client.containerKill(containerId).catch(() => {});
      const removed = req.keep
        ? false
        : await client.containerRemove(containerId).then(() => true, () => false);
      store.update(life.removed(removed));
      throw recorderFailure(runId, failure);
    }
  } catch (err) {
    endFailedRun(store, err, interrupt, check);
    throw err;
  }
  display.started();
  return { detached: runId };
}

function recorderFailure(runId: string, why: string): MoatError {
  return new MoatError(
    `The process that records run ${runId} did not start: ${why}`,
    "The container was stopped. Run the command in the foreground instead:  moat run -- …",
  );
}

/**
 * The record of a run that failed: its final state and error. A run the sandbox check stopped (no gVisor, a
 * runtime under gVisor's name that is not gVisor, an engine that could not say) never started: like any
 * other check that fails before a run, it leaves no record.
 */
function endFailedRun(store: RunStore, err: unknown, interrupt: AbortSignal, check: SandboxCheck): void {
  const interrupted = interrupt.aborted ? String(interrupt.reason) : null;
  const refused = err instanceof SandboxUnavailableError || (err !== undefined && err === check.failure);
  if (refused && !interrupted && store.record.startedAt === null) return store.discard();
  store.tryUpdate(life.failed(err instanceof Error ? err.message : String(err), interrupted, new Date()));
}

/** The line that says the exit code 137 was the memory limit, and what to change. */
function oomMessage(runId: string, limit: unknown): string {
  const mib = typeof limit === "number" ? ` (${Math.round(limit / 2 ** 20)} MiB)` : "";
  return `moat: run ${runId}: the command ran out of memory and was killed by the memory limit${mib}; ` +
    "raise it with --memory or memory: in moat.yaml";
}

/**
 * The one line for a run whose record could not be written to the end (a full disk under MOAT_HOME): what
 * was not written, what that means for `moat logs` or `moat list`, and how to make room. `shownWhole`: the
 * terminal got every byte (the engine's stream did not fail as well).
 */
function notRecordedLine(store: RunStore, home: string, shownWhole: boolean): string {
  const output = store.outputError !== undefined;
  const err = output ? store.outputError : store.recordError;
  const full = isNoSpace(err) || isNoSpace((err as { cause?: unknown } | undefined)?.cause);
  const what = output
    ? `output could not be written to ${store.dir} (${firstLineOf(err)}); ` +
      (shownWhole ? "the output shown here is complete, moat logs will not be" : "moat logs will show less")
    : `record could not be updated in ${store.dir} (${firstLineOf(err)}); moat list may show an older state`;
  return `moat: warning: run ${store.record.id}'s ${what}. ` +
    (full
      ? `Free space (df -h ${home}; moat clean removes finished runs) or set MOAT_HOME to a disk with room`
      : `Check the directory:  ls -ld ${store.dir}`);
}
