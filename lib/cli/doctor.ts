/**
 * `moat doctor`: check, in order, what a sandboxed run needs (engine, API version, runtimes, gVisor, a
 * probe run under gVisor, a run network and the host's isolation from it, the image, MOAT_HOME), print one
 * line each with the fix, and exit 0 when a sandboxed run would work, 1 otherwise. This is the edge: it gathers facts (stopping at what an earlier
 * failure makes pointless) and lib/doctor/checks.ts decides. It never prints the no-sandbox warning and
 * creates nothing but its probes and one run network, which it removes.
 */
import { loadConfig } from "../config/load.ts";
import { clientFromEnv, type DockerClient, hostView } from "../docker/client.ts";
import { endpointUrl, resolveEndpoint } from "../docker/endpoint.ts";
import { EngineApiError, EngineUnavailableError, InterruptedError, MoatError } from "../errors.ts";
import { parseCommandArgs } from "./args.ts";
import {
  diagnose,
  doctorExitCode,
  type DoctorFacts,
  type Fact,
  type NameSource,
  onPodman,
  type Problem,
  renderJson,
  renderText,
} from "../doctor/checks.ts";
import { PROBE_LABEL, PROBE_TIMEOUT_MS, runProbe } from "../doctor/probe.ts";
import { runNetworkChecks } from "../doctor/network_probe.ts";
import { LABELS } from "../run/labels.ts";
import { runLabels } from "../run/plan.ts";
import { type MoatRuntime, moatRuntime } from "../run/relay_plan.ts";
import type { Owner } from "../store/records.ts";
import { chooseImage, DEFAULT_IMAGE } from "../run/image.ts";
import { decideSandbox, DEFAULT_RUNTIME } from "../sandbox/decide.ts";
import { ensureHomeId } from "../store/home_id.ts";
import { currentOwner } from "../store/owner.ts";
import { moatHome, newRunId } from "../store/records.ts";
import { VERSION } from "../version.ts";
import { cliContext } from "./context.ts";

export const DOCTOR_HELP = `Usage: moat doctor [--json]

Check that a sandboxed run would work here, in order, one line each:
  Engine       which endpoint (DOCKER_HOST or the default socket) and whether it answers
  API version  the engine's API version and the one moat uses
  Runtimes     the OCI runtimes the engine has, and its default
  gVisor       the gVisor runtime (runtime: in ./moat.yaml, else $MOAT_RUNTIME, else ${DEFAULT_RUNTIME}),
               its path and runtime arguments; warns when --network=host weakens isolation
  Probe run    a tiny container under gVisor running 'uname -r; dmesg', proving the kernel is
               gVisor's; it is removed afterwards and stopped after ${PROBE_TIMEOUT_MS / 1000} s
  Run network  the engine makes a network as moat run --allow does: Internal, its bridge without a
               host address (com.docker.network.bridge.inhibit_ipv4); it is removed afterwards
  Host isolation
               a probe under gVisor on that network tries to connect to this host (its gateway,
               docker0's address) while moat listens on a port; passes only when it ran and every
               attempt was blocked (about 4 s)
  Image        the image runs use (image: in ./moat.yaml, else $MOAT_IMAGE, else ${DEFAULT_IMAGE})
  MOAT_HOME    where run records go is writable (created if missing)

Each line starts with ✓ (fine), ✗ (broken: the fix follows, indented), ! (works, with a warning and
what to do about it) or - (skipped because an earlier check failed).

Options:
      --json     Print { "ok": bool, "checks": [{ "name", "status", "detail", "fix"? }] } instead
  -h, --help     Show this help

Exit codes: 0 a sandboxed run would work, with --allow too (warnings allowed); 1 a check failed;
2 usage error.

Examples:
  moat doctor
  moat doctor --json | jq -r '.checks[] | select(.status != "ok") | .name'
  DOCKER_HOST=unix:///run/user/1000/docker.sock moat doctor
  MOAT_RUNTIME=runsc-kvm moat doctor
`;

/** Parse `moat doctor` arguments. Pure; throws `UsageError`. */
export function parseDoctorArgs(args: string[]): { help: boolean; json: boolean } {
  const { values } = parseCommandArgs("doctor", args, {
    help: { type: "boolean", short: "h" },
    json: { type: "boolean" },
  }, false);
  return { help: values.help ?? false, json: values.json ?? false };
}

function problemOf(err: unknown, extra: Partial<Problem> = {}): Problem {
  if (err instanceof MoatError) {
    return {
      message: err.message,
      ...(err.hint ? { hint: err.hint } : {}),
      ...(err instanceof EngineApiError ? { status: err.status } : {}),
      ...extra,
    };
  }
  return { message: err instanceof Error ? err.message : String(err), ...extra };
}

async function fact<T>(
  f: () => Promise<T>,
  classify: (err: unknown) => Problem = problemOf,
): Promise<Fact<T>> {
  try {
    return { ok: true, value: await f() };
  } catch (err) {
    return { ok: false, problem: classify(err) };
  }
}

/** Errors that mean the engine cannot be used at all; anything from an engine that answered is not. */
function engineProblem(client: DockerClient) {
  return (err: unknown): Problem => {
    if (err instanceof EngineUnavailableError) return problemOf(err, { unreachable: true });
    if (err instanceof EngineApiError) return problemOf(err);
    // A /_ping that answered (and so set the engine's API version) but was refused: an API problem.
    if (client.http.serverApiVersion !== undefined) return problemOf(err);
    return problemOf(err, { unreachable: true });
  };
}

async function homeFact(env: Record<string, string | undefined>): Promise<DoctorFacts["home"]> {
  let path: string;
  try {
    path = moatHome(env);
  } catch (err) {
    return { ok: false, problem: problemOf(err) };
  }
  try {
    let created = false;
    try {
      if (!(await Deno.stat(path)).isDirectory) {
        return { ok: false, path, problem: { message: "it is not a directory" } };
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      await Deno.mkdir(path, { recursive: true, mode: 0o700 });
      created = true;
    }
    const file = await Deno.makeTempFile({ dir: path, prefix: ".moat-doctor-" });
    await Deno.remove(file);
    return { ok: true, value: { path, created } };
  } catch (err) {
    // Deno's own text ("Not a directory (os error 20): …") says what is wrong; keep only the first line.
    const message = (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
    return { ok: false, path, problem: { message } };
  }
}

/** Gather everything `diagnose` needs, asking the engine only what the earlier answers allow. */
export async function gatherFacts(
  env: Record<string, string | undefined>,
  cwd: string | undefined,
): Promise<DoctorFacts> {
  const home = homeFact(env);
  const facts: DoctorFacts = {
    endpoint: await fact(() => {
      const ep = resolveEndpoint(env, hostView());
      return Promise.resolve({
        url: endpointUrl(ep),
        source: ep.source,
        ...(ep.context ? { context: ep.context } : {}),
      });
    }),
    home: await home,
  };
  if (!facts.endpoint.ok) return facts;

  let client: DockerClient;
  try {
    client = clientFromEnv(env);
  } catch (err) {
    facts.endpoint = { ok: false, problem: problemOf(err) };
    return facts;
  }
  const pinned = env["DOCKER_API_VERSION"]?.trim();
  if (pinned) facts.pinnedApi = pinned;

  const classify = engineProblem(client);
  facts.ping = await fact(() => client.systemPing(), classify);
  if (!facts.ping.ok) return facts;
  facts.info = await fact(() => client.systemInfo(), classify);
  if (!facts.info.ok && facts.info.problem.unreachable) return facts;

  // The runtime and image a `moat run` here would use: ./moat.yaml beats the environment beats the default.
  let config: { runtime?: string; image?: string } = {};
  let configFile: string | undefined;
  try {
    if (cwd !== undefined) {
      const loaded = await loadConfig(cwd);
      config = loaded.config;
      configFile = loaded.file;
    }
  } catch (err) {
    // A broken moat.yaml would stop `moat run` here too; the runtime it names cannot be known.
    facts.runtime = {
      ok: false,
      problem: { hint: "Fix the file, then check again:  moat doctor", ...problemOf(err) },
    };
  }
  if (!facts.runtime) {
    const source: NameSource = config.runtime ? "config" : env["MOAT_RUNTIME"]?.trim() ? "env" : "default";
    facts.runtime = await fact(() => {
      const decision = decideSandbox({
        flags: { sandbox: true },
        config: config.runtime ? { runtime: config.runtime } : {},
        env,
      });
      if (decision.sandbox !== "gvisor") throw new Error("unreachable: --sandbox decides gVisor");
      return Promise.resolve({ name: decision.runtime, source, ...(configFile ? { configFile } : {}) });
    });
  }
  const ref = chooseImage(undefined, config.image, env);
  const imageSource: NameSource = config.image ? "config" : env["MOAT_IMAGE"]?.trim() ? "env" : "default";
  const found = await fact(async () => {
    const inspect = await client.maybeImageInspect(ref);
    return inspect ? { id: inspect.Id } : undefined;
  }, classify);
  facts.image = { ref, source: imageSource, ...(configFile ? { configFile } : {}), found };

  // The probe only when a run could start at all: gVisor registered as such, image present. The run network
  // whenever the engine is usable; the probe on it only when the first probe could run.
  const partial = diagnose(facts).checks;
  const status = (name: string) => partial.find((c) => c.name === name)?.status;
  const passed = (name: string) => status(name) === "ok" || status(name) === "warn";
  const canProbe = passed("gvisor") && found.ok && found.value !== undefined && facts.runtime.ok;
  if (passed("engine") && passed("api")) {
    // Labelled with this MOAT_HOME's id like a run's container, when the home is usable.
    const homeId = facts.home.ok ? maybeEnsureHomeId(facts.home.value.path) : undefined;
    const runtime = facts.runtime.ok ? facts.runtime.value.name : undefined;
    await probeFacts(client, facts, canProbe && runtime ? { image: ref, runtime } : undefined, homeId);
  }
  return facts;
}

function maybeEnsureHomeId(home: string): string | undefined {
  try {
    return ensureHomeId(home);
  } catch {
    return undefined; // the MOAT_HOME check reports what is wrong with it
  }
}

/**
 * The probes, each run with the same run id and labels (`dev.moat.probe=doctor`): the gVisor probe when
 * `run` is given, then the run network, with the isolation probe on it when the gVisor probe passed.
 */
async function probeFacts(
  client: DockerClient,
  facts: DoctorFacts,
  run: { image: string; runtime: string } | undefined,
  homeId: string | undefined,
): Promise<void> {
  // An empty workspace of our own, mounted as a run's would be, owned by us: the probe runs as its owner.
  let dir: string | undefined;
  let dirProblem: Problem | undefined;
  try {
    dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "moat-doctor-" }));
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
    dirProblem = {
      message: `Cannot create the probe's empty workspace in the temp directory: ${why}`,
      hint: "Point TMPDIR at a writable directory:  TMPDIR=/path/to/dir moat doctor",
    };
  }
  // While a probe exists, an interrupt removes it before moat exits (128 + signal).
  const controller = new AbortController();
  const handlers = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((sig) => {
    const h = () => controller.abort(sig);
    Deno.addSignalListener(sig, h);
    return [sig, h] as const;
  });
  const runId = newRunId();
  const owner = currentOwner();
  try {
    if (run) {
      if (dirProblem || dir === undefined) facts.probe = { ok: false, problem: dirProblem! };
      else {
        const st = await Deno.stat(dir);
        const user = st.uid === null ? "" : `${st.uid}:${st.gid ?? st.uid}`;
        facts.probe = {
          ok: true,
          value: await runProbe(client, {
            runId,
            image: run.image,
            runtime: run.runtime,
            workspace: dir,
            user,
            ...(owner ? { owner } : {}),
            ...(homeId ? { homeId } : {}),
            moatVersion: VERSION,
            timeoutMs: PROBE_TIMEOUT_MS,
            interrupt: controller.signal,
          }),
        };
      }
    }
    const probePassed = diagnose(facts).checks.find((c) => c.name === "probe")?.status;
    const isolation = run && (probePassed === "ok" || probePassed === "warn") ? run : undefined;
    const labels = doctorLabels(runId, dir, run?.runtime, owner, homeId);
    let result: Awaited<ReturnType<typeof runNetworkChecks>> | undefined;
    let moat: MoatRuntime | undefined;
    let moatProblem: Problem | undefined;
    if (isolation) {
      try {
        moat = moatRuntime();
      } catch (err) {
        moatProblem = { message: `cannot tell which files moat runs from: ${problemOf(err).message}` };
      }
    }
    if (controller.signal.aborted) throw new InterruptedError(String(controller.signal.reason));
    // No allow-list network on Podman (its checks say why): nothing to make there.
    if (onPodman(facts)) return;
    try {
      result = await runNetworkChecks(client, {
        runId,
        labels,
        ...(isolation && moat
          ? {
            probe: {
              image: isolation.image,
              runtime: isolation.runtime,
              moat,
              user: `${Deno.uid() ?? 0}:${Deno.gid() ?? 0}`,
              timeoutMs: PROBE_TIMEOUT_MS,
              interrupt: controller.signal,
            },
          }
          : {}),
      });
    } catch (err) {
      if (err instanceof InterruptedError) throw err;
      facts.network = { ok: false, problem: problemOf(err) };
    }
    if (result) {
      facts.network = { ok: true, value: result.network };
      if (result.isolation) facts.isolation = { ok: true, value: result.isolation };
      else if (moatProblem) facts.isolation = { ok: false, problem: moatProblem };
    }
  } finally {
    for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
    if (dir !== undefined) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The labels of the run network and its probe: a run's (`runLabels`), marked `dev.moat.probe=doctor`. */
function doctorLabels(
  runId: string,
  workspace: string | undefined,
  runtime: string | undefined,
  owner: Owner | undefined,
  homeId: string | undefined,
): Record<string, string> {
  return {
    ...runLabels({
      runId,
      name: undefined,
      image: "",
      command: undefined,
      env: {},
      workspace: workspace ?? "",
      user: "",
      runtime,
      interactive: false,
      moatVersion: VERSION,
      ...(owner ? { owner } : {}),
      ...(homeId ? { homeId } : {}),
    }),
    [LABELS.probe]: PROBE_LABEL,
  };
}

/** `moat doctor [--json]` → 0 when a sandboxed run would work, 1 otherwise. */
export async function command(args: string[]): Promise<number> {
  const opts = parseDoctorArgs(args);
  const ctx = cliContext();
  if (opts.help) {
    await ctx.out(DOCTOR_HELP);
    return 0;
  }
  ctx.checkEnv();
  let cwd: string | undefined;
  try {
    cwd = Deno.cwd();
  } catch { /* the directory was removed: no moat.yaml to honour */ }
  const report = diagnose(await gatherFacts(ctx.env, cwd));
  await ctx.out(opts.json ? renderJson(report) : renderText(report));
  return doctorExitCode(report);
}
