/**
 * `moat doctor`'s decisions. Pure: the facts the edge gathered (what the engine answered, what the probe
 * printed, whether MOAT_HOME took a file) in, one line per check out, plus whether a sandboxed run would
 * work. The edge (lib/cli/doctor.ts) gathers only what the earlier checks allow; a check whose
 * prerequisite failed is `skip` here, whatever facts exist.
 */
import { type EndpointSource, engineProduct } from "../docker/endpoint.ts";
import { EXIT } from "../errors.ts";
import type { PingResult, SystemInfo } from "../docker/types.ts";
import { compareApiVersions, MAX_API_VERSION, MIN_API_VERSION } from "../docker/transport.ts";
import {
  gvisorInstallSteps,
  looksLikeGvisor,
  podmanDefaultProblem,
  podmanGvisorHint,
  sameRuntime,
} from "../sandbox/decide.ts";
import { SUBNET_POOL, SUBNET_PREFIX } from "../run/network.ts";
import { parseReachOutput } from "./reach.ts";

export type CheckName =
  | "engine"
  | "api"
  | "runtimes"
  | "gvisor"
  | "probe"
  | "network"
  | "isolation"
  | "image"
  | "home";
export type CheckStatus = "ok" | "fail" | "warn" | "skip";

/** One line of the report. `fix` is present for `fail` and `warn`: the next thing to type. */
export interface Check {
  name: CheckName;
  status: CheckStatus;
  detail: string;
  fix?: string;
}

/** What `--json` prints (docs/reference/cli.md "moat doctor"). */
export interface DoctorReport {
  ok: boolean;
  checks: Check[];
}

/** An error as the doctor reports it: the first line and the hint of a `MoatError`. */
export interface Problem {
  message: string;
  hint?: string;
  /** The engine could not be used at all (socket absent, refused, timeout…): the engine check fails. */
  unreachable?: boolean;
  /** The engine answered with this HTTP status. */
  status?: number;
}

export type Fact<T> = { ok: true; value: T } | { ok: false; problem: Problem };

export type NameSource = "config" | "env" | "default";

export interface ProbeFacts {
  image: string;
  runtime: string;
  timeoutMs: number;
  /** Set once the container was created. */
  containerId?: string;
  /** Whether removal succeeded; `undefined` when nothing was created. */
  removed?: boolean;
  timedOut: boolean;
  /** The command ran to its end. */
  outcome?: { exitCode: number; stdout: string; stderr: string; engineRuntime: string | undefined };
  /** Create or start failed (the container, if any, was then removed). */
  problem?: Problem;
}

/** The run-style network the doctor made (lib/doctor/network_probe.ts). */
export interface NetworkFacts {
  /** `moat-net-<run id>`. */
  name: string;
  /** The /28 asked for; absent when none of `SUBNET_POOL` was free. */
  subnet?: string;
  /** The engine refused to make it. */
  createProblem?: { message: string; hint?: string };
  /** Set once made. */
  id?: string;
  /** What the engine kept of what moat asked for (`GET /networks/{id}`). */
  kept?: { internal: boolean; inhibitIpv4: string | undefined; driver: string | undefined };
  /** It could not be read back. */
  inspectProblem?: string;
  /** Whether removal succeeded; `undefined` when nothing was made. */
  removed?: boolean;
  removeProblem?: string;
}

/** The host-isolation probe's facts (lib/doctor/network_probe.ts). */
export interface IsolationFacts {
  /** `address:port` of the host it tried, the run network's gateway first. */
  targets: string[];
  /** The probe container, once the host's listener was open. */
  probe?: ProbeFacts;
  /** Connections the host's listener accepted while the probe ran. */
  accepted: number;
  /** The host's listener could not be opened. */
  listenProblem?: string;
}

export interface DoctorFacts {
  endpoint: Fact<{ url: string; source: EndpointSource; context?: string }>;
  /** `DOCKER_API_VERSION`, when set: moat then does not negotiate. */
  pinnedApi?: string;
  ping?: Fact<PingResult>;
  info?: Fact<SystemInfo>;
  runtime?: Fact<{ name: string; source: NameSource; configFile?: string }>;
  image?: { ref: string; source: NameSource; configFile?: string; found: Fact<{ id: string } | undefined> };
  probe?: Fact<ProbeFacts>;
  /** The run-style network: asked for whenever the engine is usable. */
  network?: Fact<NetworkFacts>;
  /** The probe on it: only when gVisor ran the probe and the network kept its options. */
  isolation?: Fact<IsolationFacts>;
  home: Fact<{ path: string; created: boolean }> & { path?: string };
}

/** Human names of the checks, in report order. */
export const CHECK_LABELS: Record<CheckName, string> = {
  engine: "Engine",
  api: "API version",
  runtimes: "Runtimes",
  gvisor: "gVisor",
  probe: "Probe run",
  network: "Run network",
  isolation: "Host isolation",
  image: "Image",
  home: "MOAT_HOME",
};

/** The command the probe runs: the kernel release, then the kernel log (gVisor's starts "Starting gVisor"). */
export const PROBE_COMMAND = ["sh", "-c", "uname -r; dmesg 2>/dev/null || true"];
const PROBE_NEEDS = `The probe runs  sh -c '${PROBE_COMMAND[2]}': the image needs sh and uname, ` +
  "e.g.  MOAT_IMAGE=debian:bookworm-slim";
/** The release gVisor's Sentry reports to `uname` (it emulates Linux 4.4). */
export const GVISOR_KERNEL = "4.4.0";
/** gVisor's netstack refuses to start when the container is in the root network namespace. */
export const ROOT_NETNS_ERROR = "cannot run with network enabled in root network namespace";

const ok = (name: CheckName, detail: string): Check => ({ name, status: "ok", detail });
const fail = (name: CheckName, detail: string, fix: string): Check => ({ name, status: "fail", detail, fix });
const warn = (name: CheckName, detail: string, fix: string): Check => ({ name, status: "warn", detail, fix });
const skip = (name: CheckName, detail: string): Check => ({ name, status: "skip", detail });

const passed = (c: Check) => c.status === "ok" || c.status === "warn";

function problemFix(p: Problem, fallback: string): string {
  return p.hint ?? fallback;
}

/** All nine checks from the facts, in order, and whether a sandboxed run would work. */
export function diagnose(facts: DoctorFacts): DoctorReport {
  const engine = engineCheck(facts);
  const api = passed(engine) ? apiCheck(facts) : skip("api", "needs a reachable engine");
  const engineUp = passed(engine) && passed(api);
  const runtimes = engineUp ? runtimesCheck(facts) : skip("runtimes", needsEngine(engine));
  const gvisor = passed(runtimes)
    ? gvisorCheck(facts)
    : skip("gvisor", engineUp ? "needs the engine's runtime list" : needsEngine(engine));
  const image = engineUp ? imageCheck(facts) : skip("image", needsEngine(engine));
  const probe = !engineUp
    ? skip("probe", needsEngine(engine))
    : !passed(gvisor)
    ? skip("probe", "needs a registered gVisor runtime; see gVisor above")
    : !passed(image)
    ? skip("probe", `needs the image ${facts.image?.ref ?? ""}; see Image below`)
    : probeCheck(facts);
  const network = !engineUp
    ? skip("network", needsEngine(engine))
    : onPodman(facts)
    ? warn("network", PODMAN_NO_ALLOWLIST, PODMAN_NETWORK_FIX)
    : networkCheck(facts);
  const isolation = !engineUp ? skip("isolation", needsEngine(engine)) : onPodman(facts)
    ? warn(
      "isolation",
      "not probed: there is no allow-list network on Podman (with --network default a sandbox reaches what " +
        "Podman's network reaches)",
      PODMAN_NETWORK_FIX,
    )
    : !passed(probe)
    ? skip("isolation", "needs a probe run under gVisor; see Probe run above")
    : !networkKeptOptions(facts)
    ? skip("isolation", "needs a run network; see Run network above")
    : isolationCheck(facts);
  const home = homeCheck(facts);
  const checks = [engine, api, runtimes, gvisor, probe, network, isolation, image, home];
  return { ok: checks.every(passed), checks };
}

/** True when the engine is Podman (`/_ping`'s `Server`). */
export function onPodman(facts: DoctorFacts): boolean {
  return facts.ping?.ok === true && engineProduct(facts.ping.value.server) === "Podman";
}

const PODMAN_NO_ALLOWLIST =
  "the engine is Podman: runs on the allow list (moat's default network; --allow, " +
  "grants, rules, ports) are refused there, since its relay runs under runc and Podman runs every container " +
  "under its default runtime";
const PODMAN_NETWORK_FIX =
  "Run with  --network none  (or  --network default)  on Podman, or use Docker with " +
  "gVisor registered for the allow list";

function needsEngine(engine: Check): string {
  return passed(engine) ? "needs an engine API moat speaks" : "needs a reachable engine";
}

/**
 * Why this endpoint: `DOCKER_HOST`, a Docker context, the default socket because `DOCKER_HOST` is unset, or
 * rootless Docker's or Podman's socket because the default one is absent.
 */
export function endpointWhy(source: EndpointSource, context?: string): string {
  switch (source) {
    case "DOCKER_HOST":
      return "from DOCKER_HOST";
    case "context":
      return `from Docker context "${context}"`;
    case "rootless":
      return "rootless Docker's socket: the default socket is absent";
    case "podman":
      return "Podman's socket: the default socket is absent";
    case "default":
      return "the default socket; DOCKER_HOST is not set";
  }
}

function engineCheck(facts: DoctorFacts): Check {
  if (!facts.endpoint.ok) {
    return fail(
      "engine",
      facts.endpoint.problem.message,
      problemFix(facts.endpoint.problem, "unset DOCKER_HOST"),
    );
  }
  const { url, source, context } = facts.endpoint.value;
  const why = endpointWhy(source, context);
  // Unreachable on /_ping, or (with a pinned API version, which skips the ping) on /info.
  const down = [facts.ping, facts.info].find((f) => f && !f.ok && f.problem.unreachable);
  if (down && !down.ok) {
    return fail(
      "engine",
      `${down.problem.message} (${why})`,
      problemFix(down.problem, "Check the engine with:  docker info"),
    );
  }
  if (!facts.ping) return fail("engine", `${url} was not asked (${why})`, "Run again:  moat doctor");
  if (!facts.ping.ok && facts.ping.problem.status !== undefined) {
    // The daemon answered /_ping with an error and no API version: up but unhealthy (swagger SystemPing).
    return fail(
      "engine",
      `${facts.ping.problem.message} (${why})`,
      problemFix(facts.ping.problem, "Check the engine with:  docker info"),
    );
  }
  const product = engineProduct(facts.ping.ok ? facts.ping.value.server : undefined);
  const version = facts.info?.ok && facts.info.value.ServerVersion
    ? `${product} ${facts.info.value.ServerVersion}`
    : facts.ping.ok && facts.ping.value.server
    ? facts.ping.value.server
    : "An engine";
  return ok("engine", `${version} at ${url} (${why})`);
}

function apiCheck(facts: DoctorFacts): Check {
  const range = `moat supports ${MIN_API_VERSION}–${MAX_API_VERSION}`;
  const ping = facts.ping;
  if (!ping) return skip("api", "needs a reachable engine");
  if (!ping.ok) return fail("api", ping.problem.message, problemFix(ping.problem, "docker version"));
  if (facts.pinnedApi) {
    const pinned = facts.pinnedApi;
    const refused = facts.info && !facts.info.ok && facts.info.problem.status === 400 &&
      /version/i.test(facts.info.problem.message);
    if (compareApiVersions(pinned, MIN_API_VERSION) < 0 || refused) {
      return fail(
        "api",
        refused && facts.info && !facts.info.ok
          ? `API ${pinned} pinned by DOCKER_API_VERSION is refused: ${facts.info.problem.message}`
          : `API ${pinned} pinned by DOCKER_API_VERSION is older than the ${MIN_API_VERSION} moat needs`,
        "Unset it to let moat negotiate:  unset DOCKER_API_VERSION",
      );
    }
    return ok("api", `API ${pinned}, pinned by DOCKER_API_VERSION (not negotiated; ${range})`);
  }
  const server = ping.value.serverApiVersion;
  const used = ping.value.apiVersion;
  if (!server) return ok("api", `the engine did not say which API it speaks; moat uses ${used} (${range})`);
  return ok("api", `the engine speaks up to ${server}; moat uses ${used} (${range})`);
}

function runtimesCheck(facts: DoctorFacts): Check {
  const info = facts.info;
  if (!info) return skip("runtimes", "needs a reachable engine");
  if (!info.ok) {
    return fail(
      "runtimes",
      info.problem.message,
      problemFix(info.problem, "Check the engine with:  docker info"),
    );
  }
  const names = Object.keys(info.value.Runtimes ?? {}).sort();
  const def = info.value.DefaultRuntime ? `; default: ${info.value.DefaultRuntime}` : "";
  return ok("runtimes", `${names.length ? names.join(", ") : "none listed"}${def}`);
}

function nameWhy(source: NameSource, configFile: string | undefined, key: string, env: string): string {
  return source === "config"
    ? `from ${key}: in ${configFile ?? "moat.yaml"}`
    : source === "env"
    ? `from ${env}`
    : "the default";
}

/** True when `args` turn on gVisor's host networking (`--network=host` or `--network host`). */
export function usesHostNetwork(args: string[] | undefined): boolean {
  if (!args) return false;
  return args.some((a, i) => a === "--network=host" || (a === "--network" && args[i + 1] === "host"));
}

export const HOST_NETWORK_FIX = [
  "--network=host weakens isolation: gVisor's own network stack is bypassed, so the sandboxed command's",
  "socket calls go to the host kernel's network stack instead of gVisor's.",
  "Some hosts need it: there gVisor's netstack refuses to start with",
  `"${ROOT_NETNS_ERROR}".`,
  "If this host does not, remove it from the runtime's runtimeArgs in /etc/docker/daemon.json,",
  "reload the engine (sudo systemctl reload docker), and check again:  moat doctor",
].join("\n");

function gvisorCheck(facts: DoctorFacts): Check {
  const rt = facts.runtime;
  if (!rt) return skip("gvisor", "needs the engine's runtime list");
  if (!rt.ok) return fail("gvisor", rt.problem.message, problemFix(rt.problem, "Check again:  moat doctor"));
  const { name, source, configFile } = rt.value;
  const why = nameWhy(source, configFile, "runtime", "MOAT_RUNTIME");
  const runtimes = facts.info?.ok ? facts.info.value.Runtimes ?? {} : {};
  const entry = runtimes[name];
  if (!entry) {
    const others = Object.keys(runtimes).filter((r) => r !== name && looksLikeGvisor(r, runtimes[r]!));
    return fail(
      "gvisor",
      `no runtime "${name}" is registered with the engine (name: ${why})`,
      [
        ...(others.length
          ? [
            `A gVisor runtime is registered as ${others.join(", ")}: select it with  MOAT_RUNTIME=${
              others[0]
            }`,
          ]
          : []),
        ...gvisorInstallSteps(name),
        "3. Check again:  moat doctor",
      ].join("\n"),
    );
  }
  const runs = entry.path ?? entry.runtimeType ?? "?";
  const podman = onPodman(facts);
  const podmanProblem = podman && facts.info?.ok ? podmanDefaultProblem(name, facts.info.value) : undefined;
  if (podmanProblem) {
    return fail(
      "gvisor",
      `Podman lists "${name}" (it runs ${runs}), but ${
        podmanProblem.replace(/^Podman /, "it ")
      }: moat refuses ` +
        "sandboxed runs there",
      podmanGvisorHint(name),
    );
  }
  if (!looksLikeGvisor(name, entry)) {
    return fail(
      "gvisor",
      `runtime "${name}" (name: ${why}) is registered but is not gVisor: it runs ${runs}`,
      "Name the runtime gVisor is registered under:  MOAT_RUNTIME=runsc  (or  runtime: runsc  in moat.yaml)\n" +
        "See what is registered:  docker info --format '{{json .Runtimes}}'",
    );
  }
  const args = entry.runtimeArgs?.length ? entry.runtimeArgs.join(" ") : "none";
  const detail = `"${name}" (name: ${why}) runs ${runs}; runtime arguments: ${args}${
    podman ? "; Podman's default runtime, so every container of its runs under it" : ""
  }`;
  return usesHostNetwork(entry.runtimeArgs) ? warn("gvisor", detail, HOST_NETWORK_FIX) : ok("gvisor", detail);
}

/** What the probe printed: the kernel release (first line) and gVisor's boot banner from `dmesg`. */
export function readProbeOutput(stdout: string): { kernel: string | undefined; banner: string | undefined } {
  const lines = stdout.split("\n").map((l) => l.trim()).filter(Boolean);
  const banner = lines.find((l) => /Starting gVisor/.test(l))?.replace(/^\[\s*[\d.]+\]\s*/, "");
  return { kernel: lines[0], banner };
}

function probeCheck(facts: DoctorFacts): Check {
  const p = facts.probe;
  if (!p) return skip("probe", "was not run");
  if (!p.ok) return fail("probe", p.problem.message, problemFix(p.problem, "Run again:  moat doctor"));
  const f = p.value;
  const byHand =
    `Run it by hand to see the runtime's error:  docker run --rm --runtime=${f.runtime} ${f.image} uname -r`;
  const leftover = f.containerId && f.removed === false
    ? {
      detail: `; container ${f.containerId.slice(0, 12)} could not be removed`,
      fix: `Remove it:  docker rm -f ${f.containerId}`,
    }
    : undefined;
  const withLeftover = (detail: string, fix: string | undefined): Check =>
    leftover
      ? fail("probe", detail + leftover.detail, [fix, leftover.fix].filter(Boolean).join("\n"))
      : fix === undefined
      ? ok("probe", detail)
      : fail("probe", detail, fix);
  const under = `under "${f.runtime}" with ${f.image}`;
  if (f.problem) {
    const netns = f.problem.message.includes(ROOT_NETNS_ERROR)
      ? [
        "gVisor's network stack cannot start in this host's network namespace. Give runsc host networking:",
        `  add "runtimeArgs": ["--network=host"] to "${f.runtime}" in /etc/docker/daemon.json, then`,
        "  sudo systemctl reload docker   (this weakens isolation; doctor then warns about it)",
      ]
      : [];
    const hint = /not found in the image|not executable in the image/.test(f.problem.message)
      ? [PROBE_NEEDS]
      : f.problem.hint
      ? [f.problem.hint]
      : [];
    return withLeftover(
      `the probe container did not run ${under}: ${f.problem.message}`,
      [...netns, ...hint, byHand].join("\n"),
    );
  }
  if (f.timedOut) {
    return withLeftover(
      `the probe ${under} did not finish within ${Math.round(f.timeoutMs / 1000)} s`,
      `${byHand}\nSee gVisor's own log: add "--debug", "--debug-log=/tmp/runsc/" to the runtime's runtimeArgs`,
    );
  }
  const out = f.outcome;
  if (!out) return withLeftover(`the probe ${under} gave no result`, byHand);
  if (out.exitCode !== 0) {
    const err = out.stderr.trim().split("\n")[0] ?? "";
    return withLeftover(
      `the probe ${under} exited with code ${out.exitCode}${err ? `: ${err}` : ""}`,
      `${PROBE_NEEDS}\n${byHand}`,
    );
  }
  if (out.engineRuntime !== undefined && !sameRuntime(out.engineRuntime, f.runtime)) {
    return withLeftover(
      `the engine ran the probe under "${out.engineRuntime}", not "${f.runtime}"`,
      "Check the registration:  docker info --format '{{json .Runtimes}}'",
    );
  }
  const { kernel, banner } = readProbeOutput(out.stdout);
  const removed = f.removed ? "; container removed" : "";
  if (banner) {
    return withLeftover(`kernel ${kernel ?? "?"} ${under} (dmesg: "${banner}")${removed}`, undefined);
  }
  if (kernel === GVISOR_KERNEL) {
    return withLeftover(`kernel ${kernel} ${under} (gVisor's; dmesg printed nothing)${removed}`, undefined);
  }
  return withLeftover(
    `kernel ${
      kernel ?? "(nothing printed)"
    } ${under} is not gVisor's (${GVISOR_KERNEL}): the container ran on the host kernel`,
    `Check what "${f.runtime}" runs:  docker info --format '{{json .Runtimes}}'\n${byHand}`,
  );
}

/** The run network was made with both options kept (whether or not it could be removed afterwards). */
function networkKeptOptions(facts: DoctorFacts): boolean {
  const kept = facts.network?.ok ? facts.network.value.kept : undefined;
  return kept !== undefined && kept.internal && kept.inhibitIpv4 === "true";
}

/** What the doctor asks of the engine for a run network, in words. */
const NETWORK_ASK = "an Internal bridge network whose bridge has no host address (inhibit_ipv4)";
const NETWORK_NEEDS = [
  "moat run --allow needs the engine's bridge driver with the option com.docker.network.bridge.inhibit_ipv4",
  "(Docker Engine 20.10 or newer on Linux; see what this one is:  docker version).",
  "Runs without --allow do not use it.",
].join("\n");

function networkCheck(facts: DoctorFacts): Check {
  const n = facts.network;
  if (!n) return skip("network", "was not checked");
  if (!n.ok) {
    return fail(
      "network",
      `could not prepare a run network: ${n.problem.message}`,
      problemFix(n.problem, "Check the engine with:  docker network ls"),
    );
  }
  const f = n.value;
  const leftover = f.id !== undefined && f.removed === false
    ? {
      detail: `; network ${f.name} could not be removed${f.removeProblem ? `: ${f.removeProblem}` : ""}`,
      fix: `Remove it:  docker network rm ${f.name}`,
    }
    : undefined;
  const result = (detail: string, fix: string | undefined): Check =>
    leftover
      ? fail("network", detail + leftover.detail, [fix, leftover.fix].filter(Boolean).join("\n"))
      : fix === undefined
      ? ok("network", detail)
      : fail("network", detail, fix);
  if (!f.subnet) {
    return fail(
      "network",
      `no /${SUBNET_PREFIX} of ${SUBNET_POOL} is free for a run network: the engine's networks cover it`,
      "Remove networks left behind:  moat clean\nSee moat's networks:  moat system networks",
    );
  }
  if (f.createProblem) {
    return fail(
      "network",
      `the engine refused ${NETWORK_ASK} on ${f.subnet}: ${f.createProblem.message}`,
      [f.createProblem.hint, NETWORK_NEEDS].filter(Boolean).join("\n"),
    );
  }
  const removed = f.removed ? "; removed" : "";
  if (!f.kept) {
    return result(
      `the engine made ${f.name} but it could not be read back: ${f.inspectProblem ?? "no answer"}${removed}`,
      "Run again:  moat doctor",
    );
  }
  const dropped = [
    ...(f.kept.internal ? [] : ["Internal"]),
    ...(f.kept.inhibitIpv4 === "true" ? [] : ["com.docker.network.bridge.inhibit_ipv4"]),
  ];
  if (dropped.length) {
    return result(
      `the engine made ${f.name} (driver ${f.kept.driver ?? "?"}) without ${dropped.join(" and ")}: ` +
        "a sandbox on it could reach this host",
      NETWORK_NEEDS,
    );
  }
  return result(`${f.name} on ${f.subnet}: Internal, its bridge without a host address${removed}`, undefined);
}

/** The leak, in words, and what to do. */
export const HOST_REACHED_FIX = [
  "The run network does not isolate this host: a command run with --allow could reach services of this",
  "host that listen on all addresses. Do not use --allow here until doctor passes.",
  "Check that the engine keeps the option:  docker network create --internal \\",
  "  -o com.docker.network.bridge.inhibit_ipv4=true moat-check && docker network inspect moat-check",
  "  (then  docker network rm moat-check), and that no host route or proxy leads into 10.237.0.0/16.",
].join("\n");

function isolationCheck(facts: DoctorFacts): Check {
  const iso = facts.isolation;
  if (!iso) return fail("isolation", "the probe was not run", "Run again:  moat doctor");
  if (!iso.ok) {
    return fail(
      "isolation",
      `the isolation probe could not run: ${iso.problem.message}`,
      problemFix(iso.problem, "Run again:  moat doctor"),
    );
  }
  const f = iso.value;
  if (f.listenProblem) {
    return fail(
      "isolation",
      `could not listen on a TCP port of this host for the probe: ${f.listenProblem}`,
      "Run again:  moat doctor",
    );
  }
  const p = f.probe;
  if (!p) return fail("isolation", "the probe was not run", "Run again:  moat doctor");
  const under = `under "${p.runtime}"`;
  const byHand = "Run it again:  moat doctor   (the probe is moat's own code, run from the image's root)";
  const leftover = p.containerId && p.removed === false
    ? {
      detail: `; container ${p.containerId.slice(0, 12)} could not be removed`,
      fix: `Remove it:  docker rm -f ${p.containerId}`,
    }
    : undefined;
  const result = (detail: string, fix: string | undefined): Check =>
    leftover
      ? fail("isolation", detail + leftover.detail, [fix, leftover.fix].filter(Boolean).join("\n"))
      : fix === undefined
      ? ok("isolation", detail)
      : fail("isolation", detail, fix);
  const verdict = p.outcome ? parseReachOutput(p.outcome.stdout, f.targets) : undefined;
  // A leak is reported whatever else went wrong: the probe said so, or the host saw a connection.
  if (verdict?.kind === "reached" || f.accepted > 0) {
    const where = verdict?.kind === "reached" ? verdict.reached.join(", ") : f.targets.join(" or ");
    const seen = f.accepted > 0
      ? ` (this host accepted ${f.accepted} connection${f.accepted === 1 ? "" : "s"})`
      : "";
    return result(
      `a sandbox ${under} on a run network reached this host at ${where}${seen}: ` +
        "the run network does not isolate the host",
      HOST_REACHED_FIX,
    );
  }
  if (p.problem) {
    return result(
      `the isolation probe did not run ${under}: ${p.problem.message}`,
      [p.problem.hint, byHand].filter(Boolean).join("\n"),
    );
  }
  if (p.timedOut) {
    return result(
      `the isolation probe ${under} did not finish within ${Math.round(p.timeoutMs / 1000)} s`,
      byHand,
    );
  }
  const out = p.outcome;
  if (!out || !verdict) return result(`the isolation probe ${under} gave no result`, byHand);
  if (out.engineRuntime !== undefined && !sameRuntime(out.engineRuntime, p.runtime)) {
    return result(
      `the engine ran the isolation probe under "${out.engineRuntime}", not "${p.runtime}"`,
      "Check the registration:  docker info --format '{{json .Runtimes}}'",
    );
  }
  if (verdict.kind === "inconclusive") {
    const code = out.exitCode !== 0 ? ` (exit code ${out.exitCode})` : "";
    const err = out.stderr.trim().split("\n")[0] ?? "";
    return result(
      `the isolation probe ${under} proved nothing${code}: ${verdict.why}${err ? `; stderr: ${err}` : ""}`,
      byHand,
    );
  }
  if (out.exitCode !== 0) {
    return result(`the isolation probe ${under} exited with code ${out.exitCode}`, byHand);
  }
  const tried = verdict.blocked.map((b) => `${b.target} ${b.why}`).join(", ");
  const removed = p.removed ? "; container removed" : "";
  return result(
    `a sandbox ${under} on a run network reached none of ${verdict.blocked.length} host address${
      verdict.blocked.length === 1 ? "" : "es"
    } (${tried})${removed}`,
    undefined,
  );
}

function imageCheck(facts: DoctorFacts): Check {
  const img = facts.image;
  if (!img) return skip("image", "needs a reachable engine");
  const why = nameWhy(img.source, img.configFile, "image", "MOAT_IMAGE");
  if (!img.found.ok) {
    return fail("image", img.found.problem.message, problemFix(img.found.problem, "docker images"));
  }
  const found = img.found.value;
  if (found) {
    return ok(
      "image",
      `${img.ref} (${why}) is on the engine (${found.id.replace(/^sha256:/, "").slice(0, 12)})`,
    );
  }
  return fail(
    "image",
    `${img.ref} (${why}) is not on the engine`,
    [
      `Pull it:  docker pull ${img.ref}`,
      "On a host without a registry, bring it as a file:",
      `  on a connected machine:  docker pull ${img.ref} && docker save ${img.ref} -o image.tar`,
      "  here:                    docker load -i image.tar",
      "or use an image this engine already has:  docker images   then  MOAT_IMAGE=NAME",
    ].join("\n"),
  );
}

function homeCheck(facts: DoctorFacts): Check {
  const h = facts.home;
  if (!h.ok) {
    const where = h.path ? `MOAT_HOME ${h.path} is not writable: ` : "";
    return fail(
      "home",
      `${where}${h.problem.message}`,
      problemFix(
        h.problem,
        h.path
          ? `Make it yours:  mkdir -p ${h.path} && chmod u+rwx ${h.path}\nor use another:  MOAT_HOME=/path/to/dir`
          : "Set it:  MOAT_HOME=/path/to/dir",
      ),
    );
  }
  return ok("home", `${h.value.path} is writable${h.value.created ? " (created it)" : ""}`);
}

const MARKS: Record<CheckStatus, string> = { ok: "✓", fail: "✗", warn: "!", skip: "-" };

/** The human report: one line per check, fix lines indented below, then a one-line verdict. */
export function renderText(report: DoctorReport): string {
  const lines: string[] = [];
  for (const c of report.checks) {
    const detail = c.status === "skip" ? `skipped (${c.detail})` : c.detail;
    lines.push(`${MARKS[c.status]} ${CHECK_LABELS[c.name]}: ${detail}`);
    if (c.fix) lines.push(...c.fix.split("\n").map((l) => `    ${l}`));
  }
  const failed = report.checks.filter((c) => c.status === "fail").length;
  const warned = report.checks.filter((c) => c.status === "warn").length;
  const warnings = warned ? ` (${warned} warning${warned === 1 ? "" : "s"})` : "";
  const checks = `${failed} check${failed === 1 ? "" : "s"} failed${warnings}`;
  // Only the run network's checks failed: a run works, one with --allow does not.
  const onlyNetwork = report.checks.every((c) =>
    c.status !== "fail" || c.name === "network" || c.name === "isolation"
  );
  lines.push(
    "",
    report.ok
      ? `A sandboxed run would work here${warnings}.`
      : onlyNetwork
      ? `A sandboxed run would work here, but not one with --allow: ${checks}.`
      : `A sandboxed run would not work here: ${checks}.`,
  );
  return lines.join("\n") + "\n";
}

/** The `--json` report: `{ ok, checks: [{ name, status, detail, fix? }] }`. */
export function renderJson(report: DoctorReport): string {
  return JSON.stringify(report, null, 2) + "\n";
}

/** 0 when a sandboxed run would work, 1 otherwise. Warnings do not fail. */
export function doctorExitCode(report: DoctorReport): number {
  return report.ok ? EXIT.ok : EXIT.problem;
}
