/**
 * `moat status`: the engine (which endpoint and why, versions), whether gVisor is registered, how many runs
 * are running or stopped, the disk the run records use, and health lines with their fix. Read-only: it
 * never writes a record, never creates a container, and never needs gVisor (issue 3). Exit 0 when the
 * engine answered, 1 when it could not be asked (what the records say is still printed).
 */
import { formatBytes } from "./format.ts";
import { directorySize } from "../store/disk_usage.ts";
import { labelOf, MANAGED_FILTER } from "../run/labels.ts";
import { type DockerClient, engineTimeoutMs } from "../docker/client.ts";
import { type EndpointSource, endpointUrl, engineProduct } from "../docker/endpoint.ts";
import { endpointWhy } from "../doctor/checks.ts";
import type { ContainerSummary, PingResult, SystemInfo } from "../docker/types.ts";
import { EngineUnavailableError, EXIT, MoatError, UsageError } from "../errors.ts";
import { parseCommandArgs } from "./args.ts";
import {
  classifyContainer,
  liveContainerOwners,
  ofThisHome,
  orphansOf,
  ownerLiveness,
  runIdOf,
} from "../run/orphans.ts";
import {
  listEntries,
  type ListEntry,
  type ListState,
  liveOwners,
  type ShownState,
} from "../run/reconcile.ts";
import { DEFAULT_RUNTIME, looksLikeGvisor, podmanDefaultProblem } from "../sandbox/decide.ts";
import { maybeHomeId } from "../store/home_id.ts";
import type { DamagedRecord, RunRecord } from "../store/records.ts";
import { scanRuns } from "../store/run_index.ts";
import { cliContext } from "./context.ts";

export const STATUS_HELP = `Usage: moat status [OPTIONS]

Show at a glance: which Docker engine moat talks to and why that one, its version and the
API version moat negotiated, whether gVisor is registered, how many runs are running or
stopped, the disk used by run records, and health lines, each with the command that fixes it.
It never needs gVisor and never changes anything.

The gVisor runtime looked for is $MOAT_RUNTIME, else runsc.

Exit status: 0 when the engine answered; 1 when it could not be asked (unreachable, too slow,
or it answered an error) — everything known from the run records is still printed; 2 for a
usage error.

Options:
      --json     Print one JSON object instead (schema: docs/reference/cli.md#moat-status)
  -h, --help     Print this help

Examples:
  moat status
  moat status --json | jq -r .gvisor.status
  DOCKER_HOST=unix:///run/user/1000/docker.sock moat status
`;

/** Parse `moat status` arguments; throws `UsageError`. */
export function parseStatusArgs(args: string[]): { help: boolean; json: boolean } {
  const { values, positionals } = parseCommandArgs("status", args, {
    help: { type: "boolean", short: "h" },
    json: { type: "boolean" },
  });
  if (positionals.length > 0 && !values.help) {
    throw new UsageError(
      `Unexpected argument "${positionals[0]}": moat status takes no arguments`,
      "Show the status:  moat status",
    );
  }
  return { help: values.help ?? false, json: values.json ?? false };
}

/** `not-default`: on Podman, which runs every container under its default runtime, that default is not it. */
export type GvisorStatus = "registered" | "missing" | "not-gvisor" | "not-default" | "unknown";

/** `moat status --json`. Fields are only ever added (docs/reference/cli.md#moat-status). */
export interface StatusReport {
  engine: {
    /** `unix:///…`; `null` when DOCKER_HOST cannot be used. */
    endpoint: string | null;
    /** Why this endpoint: `DOCKER_HOST` set, or the default socket. */
    source: EndpointSource | null;
    /** The Docker context's name, when `source` is `context`. */
    context?: string;
    /**
     * The engine answered at least one request (`/_ping`, or, with a pinned API version, `/info` or the
     * container listing) — an error status counts as an answer. A later call may still have failed.
     */
    reachable: boolean;
    /** The request that failed (`GET /_ping`, `GET /info`, `GET /containers/json`), else `null`. */
    failedCall: string | null;
    /** `failedCall` did not answer within `timeoutSeconds`. */
    timedOut: boolean;
    /** The bound on each call: MOAT_ENGINE_TIMEOUT, else 5. */
    timeoutSeconds: number;
    /** First line of what went wrong asking the engine, else `null`. */
    error: string | null;
    /** The next thing to type about `error`. */
    hint: string | null;
    /** `/info` `ServerVersion`, e.g. `20.10.24`. */
    serverVersion: string | null;
    /** `Docker`, or `Podman` (its Docker-compatible API), from `/_ping`'s `Server`; `null` when not asked. */
    product: "Docker" | "Podman" | null;
    /** The API version moat uses with this engine (negotiated, or pinned by DOCKER_API_VERSION). */
    apiVersion: string | null;
    /** The newest API version the engine speaks (`/_ping` `Api-Version`). */
    serverApiVersion: string | null;
  };
  gvisor: {
    /** The runtime name looked for: MOAT_RUNTIME, else runsc. */
    runtime: string;
    status: GvisorStatus;
    /** The registered runtime's binary (`path`) or shim type, when registered. */
    path: string | null;
    runtimeArgs: string[];
    /** Other registered runtimes whose name says gVisor (e.g. `runsc-kvm`). */
    otherGvisorRuntimes: string[];
    /** Every runtime the engine has registered; `null` when not known. */
    registeredRuntimes: string[] | null;
    /** The runtime the engine uses when none is asked (`/info` `DefaultRuntime`); `null` when not known. */
    defaultRuntime: string | null;
  };
  runs: {
    total: number;
    /** Shown as creating, created or running. */
    running: number;
    /** Shown as exited, interrupted or failed. */
    stopped: number;
    /** Recorded as in progress, but the container and the moat process driving it are gone. */
    lost: number;
    /** Records that cannot be trusted: `run.json` unreadable, or `output.bin` gone (`damagedRecords`). */
    damaged: number;
    /** `engine` when states were reconciled with the engine, `records` when only the records were read. */
    statesFrom: "engine" | "records";
  };
  records: { path: string; bytes: number };
  /** Each damaged record: the run id, the file at fault and what is wrong (`moat clean` removes them). */
  damagedRecords: Array<{ id: string; path: string; problem: string }>;
  /**
   * This MOAT_HOME's containers with moat's labels and no live owner (`moat clean` removes them); `null`
   * when not known.
   */
  orphanedContainers: Array<{ id: string; runId: string | null; name: string | null; state: string }> | null;
  /**
   * How many of moat's containers on the engine are not this MOAT_HOME's (another home's, or unknown: made
   * by an older moat, with no record here); `null` when not known. `moat system containers --all-homes`.
   */
  otherHomesContainers: number | null;
  /**
   * What waits for the next run in this MOAT_HOME (lib/run/standby.ts): sandboxes booted ahead of warm runs,
   * and the relays of networks made ahead (`moat clean --standby` removes them); `null` when not known.
   */
  madeAhead: { sandboxes: number; networks: number } | null;
  /** Finished runs (stopped or lost): what `moat clean` removes, with their container if it still exists. */
  cleanableRuns: Array<{
    id: string;
    name: string | null;
    shownState: ShownState;
    /** Engine state of the run's container, `"absent"`, or `null` when the engine could not be asked. */
    containerState: string | null;
  }>;
}

/** What the edge found out; everything `summarizeStatus` needs. */
export interface StatusFacts {
  endpoint: { url: string; source: EndpointSource; context?: string } | null;
  ping: PingResult | undefined;
  info: SystemInfo | undefined;
  /** `undefined` when the engine could not be asked. */
  containers: ContainerSummary[] | undefined;
  error: MoatError | undefined;
  /** Some request got an answer (see `StatusReport.engine.reachable`). */
  answered: boolean;
  /** The request `error` came from; `null` when the client could not even be made. */
  failedCall: string | null;
  timeoutMs: number;
  runtimeName: string;
  records: RunRecord[];
  /** The damaged ones among the runs (`scanRuns`). */
  damaged: DamagedRecord[];
  /** Ids of runs whose owner lives (see `liveOwners`). */
  liveRuns: ReadonlySet<string>;
  /** Ids of containers whose owner (`ownerOf`) lives. */
  liveContainers: ReadonlySet<string>;
  /** This MOAT_HOME's id (`maybeHomeId`), to tell its containers from other homes'. */
  homeId: string | undefined;
  runsDir: string;
  bytes: number;
}

const RUNNING: ReadonlySet<ListState> = new Set(["creating", "created", "running"]);
const STOPPED: ReadonlySet<ListState> = new Set(["exited", "interrupted", "failed"]);

/** The gVisor part of the report from `/info` `Runtimes`. Pure. */
export function gvisorFacts(
  runtimeName: string,
  info: SystemInfo | undefined,
  product: "Docker" | "Podman" | null = null,
): StatusReport["gvisor"] {
  const runtimes = info?.Runtimes;
  const names = runtimes ? Object.keys(runtimes) : null;
  const others = (names ?? []).filter((n) => n !== runtimeName && /runsc|gvisor/i.test(n));
  const base = {
    runtime: runtimeName,
    otherGvisorRuntimes: others,
    registeredRuntimes: names,
    defaultRuntime: info?.DefaultRuntime ?? null,
  };
  if (!info) return { ...base, status: "unknown", path: null, runtimeArgs: [] };
  const entry = runtimes?.[runtimeName];
  if (!entry) return { ...base, status: "missing", path: null, runtimeArgs: [] };
  const podmanProblem = product === "Podman" && podmanDefaultProblem(runtimeName, info) !== undefined;
  return {
    ...base,
    status: !looksLikeGvisor(runtimeName, entry)
      ? "not-gvisor"
      : podmanProblem
      ? "not-default"
      : "registered",
    path: entry.path ?? entry.runtimeType ?? null,
    runtimeArgs: entry.runtimeArgs ?? [],
  };
}

/** How many of `containers` wait for the next run, by kind (`classifyContainer`'s `standby`). Pure. */
function madeAheadOf(
  containers: readonly ContainerSummary[],
  recordOf: (runId: string) => RunRecord | undefined,
  alive: (c: ContainerSummary) => boolean,
): { sandboxes: number; networks: number } {
  const waiting = containers.filter((c) => {
    const runId = runIdOf(c);
    return classifyContainer(c, runId === undefined ? undefined : recordOf(runId), alive(c)) === "standby";
  });
  const relays = waiting.filter((c) => labelOf(c, "probe") === "relay").length;
  return { sandboxes: waiting.length - relays, networks: relays };
}

/** Turn the facts into the report. Pure. */
export function summarizeStatus(f: StatusFacts): StatusReport {
  const entries: ListEntry[] = listEntries(f.records, f.containers, f.liveRuns, f.damaged);
  const count = (set: ReadonlySet<ListState>) => entries.filter((e) => set.has(e.shownState)).length;
  const byId = new Map(f.records.map((r) => [r.id, r]));
  const mine = f.containers && ofThisHome(f.containers, f.homeId, (id) => byId.has(id));
  const orphaned = mine && orphansOf(mine, (id) => byId.get(id), (c) => f.liveContainers.has(c.Id));
  return {
    engine: {
      endpoint: f.endpoint?.url ?? null,
      source: f.endpoint?.source ?? null,
      ...(f.endpoint?.context ? { context: f.endpoint.context } : {}),
      reachable: f.answered,
      failedCall: f.error ? f.failedCall : null,
      timedOut: f.error instanceof EngineUnavailableError && f.error.reason === "timeout",
      timeoutSeconds: f.timeoutMs / 1000,
      error: f.error ? f.error.message.split("\n")[0]! : null,
      hint: f.error?.hint ?? null,
      serverVersion: f.info?.ServerVersion ?? null,
      product: f.ping ? engineProduct(f.ping.server) : null,
      apiVersion: f.ping?.apiVersion ?? null,
      serverApiVersion: f.ping?.serverApiVersion ?? null,
    },
    gvisor: gvisorFacts(f.runtimeName, f.info, f.ping ? engineProduct(f.ping.server) : null),
    runs: {
      total: entries.length,
      running: count(RUNNING),
      stopped: count(STOPPED),
      lost: entries.filter((e) => e.shownState === "lost").length,
      damaged: f.damaged.length,
      statesFrom: f.containers === undefined ? "records" : "engine",
    },
    records: { path: f.runsDir, bytes: f.bytes },
    damagedRecords: f.damaged.map((d) => ({ id: d.id, ...d.damage })),
    orphanedContainers: orphaned?.map((c) => ({
      id: c.Id,
      runId: runIdOf(c) ?? null,
      name: c.Names?.[0]?.replace(/^\//, "") ?? null,
      state: c.State,
    })) ?? null,
    otherHomesContainers: f.containers && mine ? f.containers.length - mine.length : null,
    madeAhead: mine ? madeAheadOf(mine, (id) => byId.get(id), (c) => f.liveContainers.has(c.Id)) : null,
    cleanableRuns: entries
      .filter((e) => STOPPED.has(e.shownState) || e.shownState === "lost")
      .map((e) => ({
        id: e.id,
        name: e.record?.name ?? null,
        shownState: e.shownState as ShownState,
        containerState: e.containerState,
      })),
  };
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

const MAX_IDS = 5;

function someIds(ids: string[]): string {
  const shown = ids.slice(0, MAX_IDS).join(", ");
  return ids.length > MAX_IDS ? `${shown}, … (${ids.length - MAX_IDS} more)` : shown;
}

/** The human-readable report. Pure. */
export function formatStatus(r: StatusReport): string {
  const e = r.engine;
  const lines: string[] = [];
  const row = (label: string, value: string) => lines.push(`${(label + ":").padEnd(10)}${value}`);
  const why = e.source === null
    ? ""
    : e.source === "default"
    ? "default socket"
    : endpointWhy(e.source, e.context);
  const where = e.endpoint
    ? `${e.endpoint} (${why})`
    : "unusable engine setting (DOCKER_HOST or a Docker context)";
  // What went wrong with the one call that failed, when the engine did answer others: "GET /info did not
  // answer within 5 s" rather than "unreachable" (the engine is there, only slow or failing on that call).
  const failed = e.reachable && e.error && e.failedCall
    ? `${e.failedCall} ${e.timedOut ? `did not answer within ${e.timeoutSeconds} s` : "failed"}`
    : undefined;
  row(
    "Engine",
    !e.reachable ? `${where}, unreachable` : failed ? `${where}, reachable, but ${failed}` : where,
  );
  const unknown = failed ? `unknown (${failed})` : "unknown (the engine could not be asked)";
  if (e.reachable) {
    const product = e.product ?? "Docker";
    const server = e.serverVersion
      ? `${product} ${e.serverVersion}`
      : failed && e.failedCall === "GET /info"
      ? `${product}, version unknown (${failed})`
      : `${product} (version not reported)`;
    const api = e.apiVersion
      ? `, API ${e.apiVersion}${e.serverApiVersion ? ` (engine speaks up to ${e.serverApiVersion})` : ""}`
      : "";
    row("Version", server + api);
  } else {
    row("Version", unknown);
  }
  const g = r.gvisor;
  switch (g.status) {
    case "registered":
      row("gVisor", `registered as "${g.runtime}" (${[g.path ?? "?", ...g.runtimeArgs].join(" ")})`);
      break;
    case "missing":
      row(
        "gVisor",
        `not registered: the engine has no runtime "${g.runtime}" (it has: ${
          g.registeredRuntimes?.length ? g.registeredRuntimes.join(", ") : "none listed"
        })`,
      );
      break;
    case "not-gvisor":
      row("gVisor", `runtime "${g.runtime}" is registered but is not gVisor (it runs ${g.path ?? "?"})`);
      break;
    case "unknown":
      row("gVisor", unknown);
      break;
  }
  const runs = r.runs;
  row(
    "Runs",
    `${runs.running} running, ${runs.stopped} stopped` + (runs.lost ? `, ${runs.lost} lost` : "") +
      (runs.damaged ? `, ${runs.damaged} damaged` : "") +
      ` (${runs.total} in total${runs.statesFrom === "records" ? ", states as recorded" : ""})`,
  );
  row("Records", `${formatBytes(r.records.bytes)} in ${r.records.path}`);

  lines.push("Health:");
  const ok = (text: string) => lines.push(`  ✓ ${text}`);
  const bad = (text: string, fix: string) => lines.push(`  ✗ ${text}`, `      fix: ${fix}`);
  const info = (text: string) => lines.push(`  • ${text}`);
  if (failed && e.timedOut) {
    bad(
      `the engine answers, but ${failed}`,
      `MOAT_ENGINE_TIMEOUT=${
        Math.max(30, e.timeoutSeconds * 2)
      } moat status   (or check the engine:  docker info)`,
    );
  } else if (e.error) {
    bad(`the engine could not be asked: ${e.error}`, e.hint?.split("\n")[0] ?? "docker info");
  } else ok("the engine answers");
  if (g.status === "missing" || g.status === "not-gvisor") {
    const other = g.otherGvisorRuntimes[0];
    bad(
      `sandboxed runs will be refused: gVisor is not registered as "${g.runtime}"`,
      other ? `MOAT_RUNTIME=${other}  (a gVisor runtime is registered under that name)` : "moat doctor",
    );
  } else if (g.status === "not-default") {
    // Its /info lists runsc, but its Docker-compatible API ignores the runtime a container is created with.
    bad(
      `sandboxed runs will be refused: Podman lists "${g.runtime}", but it runs every container under its ` +
        `default runtime (${g.defaultRuntime ?? "not said"}), whatever is asked`,
      `podman --runtime ${g.runtime} system service   (gVisor as Podman's default), then:  moat doctor`,
    );
  } else if (g.status === "registered") {
    ok(
      `sandboxed runs can use gVisor ("${g.runtime}"${
        e.product === "Podman" ? ", Podman's default runtime: it runs every container" : ""
      })`,
    );
  }
  const orphans = r.orphanedContainers;
  if (orphans === null) info(`orphaned containers: ${unknown}`);
  else if (orphans.length === 0) ok("no orphaned containers");
  else {
    bad(
      `${plural(orphans.length, "orphaned container")} (moat's labels, no live moat process): ${
        someIds(orphans.map((o) => o.id.slice(0, 12)))
      }`,
      "moat clean",
    );
  }
  const ahead = r.madeAhead;
  if (ahead && ahead.sandboxes + ahead.networks > 0) {
    const what = [
      ahead.sandboxes ? plural(ahead.sandboxes, "warm sandbox", "warm sandboxes") : "",
      ahead.networks ? plural(ahead.networks, "network") : "",
    ].filter(Boolean).join(" and ");
    info(`${what} made ahead, waiting for the next run (they go by themselves):  moat clean --standby`);
  }
  if (r.otherHomesContainers) {
    info(
      `${
        plural(r.otherHomesContainers, "container")
      } of other MOAT_HOMEs on this engine, not counted here:  ` +
        "moat system containers --all-homes",
    );
  }
  const damaged = r.damagedRecords;
  if (damaged.length > 0) {
    lines.push(`  ✗ ${plural(damaged.length, "damaged run record")} (moat list shows them):`);
    for (const d of damaged.slice(0, MAX_IDS)) lines.push(`      ${d.id}: ${d.path}: ${d.problem}`);
    if (damaged.length > MAX_IDS) lines.push(`      … (${damaged.length - MAX_IDS} more)`);
    lines.push("      fix: moat clean");
  }
  const cleanable = r.cleanableRuns;
  if (cleanable.length === 0) ok("no finished runs to clean up");
  else {
    const withContainer = cleanable.filter((c) => c.containerState !== null && c.containerState !== "absent")
      .length;
    info(
      `${plural(cleanable.length, "finished run")} can be cleaned up` +
        (withContainer
          ? ` (${withContainer} still ${withContainer === 1 ? "has a container" : "have containers"})`
          : "") +
        ":  moat clean",
    );
  }
  return lines.join("\n") + "\n";
}

type EngineFacts = Pick<
  StatusFacts,
  "endpoint" | "ping" | "info" | "containers" | "error" | "answered" | "failedCall"
>;

/** An answer, even an error status; not an engine that could not be reached or was too slow. */
function isAnswer(r: PromiseSettledResult<unknown>): boolean {
  return r.status === "fulfilled" || !(r.reason instanceof EngineUnavailableError);
}

/**
 * Ask the engine: ping, then `/info` and one container listing together. Failures are returned, with the
 * call that failed; whatever did answer is kept (a slow `/info` does not lose the container listing).
 * `pinned`: DOCKER_API_VERSION is set, so the ping makes no request and proves nothing.
 */
async function askEngine(client: () => DockerClient, pinned: boolean): Promise<EngineFacts> {
  const facts: EngineFacts = {
    endpoint: null,
    ping: undefined,
    info: undefined,
    containers: undefined,
    error: undefined,
    answered: false,
    failedCall: null,
  };
  const fail = (err: unknown, call: string | null) => {
    if (!(err instanceof MoatError)) throw err;
    facts.error ??= err;
    if (facts.failedCall === null) facts.failedCall = call;
  };
  let c: DockerClient;
  try {
    c = client();
    facts.endpoint = {
      url: endpointUrl(c.endpoint),
      source: c.endpoint.source,
      ...(c.endpoint.context ? { context: c.endpoint.context } : {}),
    };
  } catch (err) {
    fail(err, null);
    return facts;
  }
  const ping = await Promise.allSettled([c.systemPing()]);
  if (ping[0].status === "rejected") {
    facts.answered = isAnswer(ping[0]);
    fail(ping[0].reason, "GET /_ping");
    return facts;
  }
  facts.ping = ping[0].value;
  facts.answered = !pinned;
  const [info, containers] = await Promise.allSettled([
    c.systemInfo(),
    c.containerList([MANAGED_FILTER]),
  ]);
  facts.answered ||= isAnswer(info) || isAnswer(containers);
  if (info.status === "fulfilled") facts.info = info.value;
  else fail(info.reason, "GET /info");
  if (containers.status === "fulfilled") facts.containers = containers.value;
  else fail(containers.reason, "GET /containers/json");
  return facts;
}

export async function command(args: string[]): Promise<number> {
  const opts = parseStatusArgs(args);
  const ctx = cliContext();
  if (opts.help) {
    await ctx.out(STATUS_HELP);
    return 0;
  }
  ctx.checkEnv();
  const home = ctx.home;
  const runsDir = `${home}/runs`;
  // Asked first (neither rejects): the engine's answers and the size walk overlap reading the records.
  const pinned = Boolean(ctx.env["DOCKER_API_VERSION"]?.trim());
  const asked = Promise.all([askEngine(ctx.client, pinned), directorySize(runsDir).then((n) => n ?? 0)]);
  const { records, damaged } = scanRuns(home);
  const [engine, bytes] = await asked;
  const byId = new Map(records.map((r) => [r.id, r]));
  const isAlive = ownerLiveness();
  const liveRuns = liveOwners(records, engine.containers, isAlive);
  const liveContainers = liveContainerOwners(engine.containers, (id) => byId.get(id), isAlive);
  const report = summarizeStatus({
    ...engine,
    runtimeName: ctx.env["MOAT_RUNTIME"]?.trim() || DEFAULT_RUNTIME,
    records,
    damaged,
    liveRuns,
    liveContainers,
    homeId: maybeHomeId(home),
    timeoutMs: engineTimeoutMs(ctx.env),
    runsDir,
    bytes,
  });
  const text = opts.json ? JSON.stringify(report, null, 2) + "\n" : formatStatus(report);
  try {
    await ctx.out(text);
  } catch (err) {
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
  return report.engine.error === null ? EXIT.ok : EXIT.problem;
}
