/**
 * `moat doctor`'s host-isolation probe, the pure parts: which of the host's addresses to try, the container
 * that tries them (moat's own `moat reach`, lib/cli/reach.ts, under the gVisor runtime on a run-style
 * network), and what its output proves.
 *
 * It fails closed: the host counts as unreachable only when the probe printed `REACH_READY` (after its own
 * loopback connection worked, so it can connect at all), then a `blocked` line for every target, then
 * `REACH_DONE`. Anything else — nothing printed, no marker, a target missing, an error moat does not know
 * as "nothing there" — is inconclusive, and one `reached` line is a leak.
 */
import type { ContainerCreateBody, NetworkInspect } from "../docker/types.ts";
import { MOAT_HELPER_ENV, moatBinds, moatCommand, type MoatRuntime } from "../run/relay_plan.ts";
import { addressIn, parseCidr } from "../run/network.ts";

/** Printed once the probe's own loopback connection worked, before any attempt. */
export const REACH_READY = "moat reach: ready";
/** Printed after the last attempt's line. */
export const REACH_DONE = "moat reach: done";
/** How long each attempt may take (they run at once): a host that is there answers in milliseconds. */
export const REACH_ATTEMPT_MS = 2_000;
/** At most this many host addresses are tried. */
export const MAX_TARGETS = 8;

/** How one connection attempt ended, as the probe prints it. */
export type AttemptResult =
  | { kind: "reached" }
  /** Nothing answered at that address and port: refused, no route, unreachable, timed out. */
  | { kind: "blocked"; why: string }
  /** Anything else: the attempt proves nothing. */
  | { kind: "error"; why: string };

/**
 * Which errors of `Deno.connect` mean "nothing there": the name of the error class, or the OS error
 * (ECONNREFUSED 111, ENETUNREACH 101, EHOSTUNREACH 113, ETIMEDOUT 110) in its message. Pure.
 */
export function classifyConnectError(name: string, message: string): AttemptResult {
  if (name === "ConnectionRefused" || /os error 111\b/.test(message)) {
    return { kind: "blocked", why: "refused" };
  }
  if (name === "TimeoutError" || /os error 110\b/.test(message)) return { kind: "blocked", why: "timed out" };
  if (/os error 113\b/.test(message)) return { kind: "blocked", why: "no route to host" };
  if (/os error 101\b/.test(message)) return { kind: "blocked", why: "network unreachable" };
  return { kind: "error", why: `${name}: ${message}`.split("\n")[0]! };
}

/** One attempt's line: `reached T`, `blocked T (why)` or `error T (why)`. Pure. */
export function attemptLine(target: string, r: AttemptResult): string {
  return r.kind === "reached" ? `reached ${target}` : `${r.kind} ${target} (${r.why})`;
}

/** What the probe's output proves. */
export type ReachVerdict =
  /** Every target was tried and nothing answered at any. */
  | { kind: "isolated"; blocked: { target: string; why: string }[] }
  /** The probe connected to the host at these targets. */
  | { kind: "reached"; reached: string[] }
  /** It proves nothing: why. */
  | { kind: "inconclusive"; why: string };

const LINE = /^(reached|blocked|error) (\S+)(?: \((.*)\))?$/;

/**
 * Read the probe's stdout against the targets it was given. A `reached` line for a target counts wherever
 * it is; a `blocked` line counts only between `REACH_READY` and `REACH_DONE`, and only when every target
 * has one and none has another result. Pure.
 */
export function parseReachOutput(stdout: string, targets: readonly string[]): ReachVerdict {
  const lines = stdout.split("\n").map((l) => l.trim()).filter(Boolean);
  const results = lines.map((l) => LINE.exec(l)).filter((m) => m !== null);
  const reached = [...new Set(results.filter((m) => m[1] === "reached").map((m) => m[2]!))];
  if (reached.length) return { kind: "reached", reached };
  if (targets.length === 0) return { kind: "inconclusive", why: "there was no address to try" };
  const ready = lines.indexOf(REACH_READY);
  if (ready < 0) {
    return {
      kind: "inconclusive",
      why: lines.length ? `it did not print "${REACH_READY}"` : "it printed nothing",
    };
  }
  const done = lines.indexOf(REACH_DONE, ready + 1);
  if (done < 0) return { kind: "inconclusive", why: `it did not print "${REACH_DONE}"` };
  const between = lines.slice(ready + 1, done).map((l) => LINE.exec(l));
  const blocked: { target: string; why: string }[] = [];
  for (const target of targets) {
    const mine = between.filter((m) => m?.[2] === target);
    const first = mine[0];
    if (!first) return { kind: "inconclusive", why: `it printed no result for ${target}` };
    const other = mine.find((m) => m![1] !== "blocked");
    if (other) {
      return { kind: "inconclusive", why: `${target}: ${other[1]}${other[3] ? ` (${other[3]})` : ""}` };
    }
    blocked.push({ target, why: first[3] ?? "" });
  }
  return { kind: "isolated", blocked };
}

/** An IPv4 address as moat writes targets (no prefix); `undefined` for anything else (IPv6 included). */
function ipv4(address: string | undefined): string | undefined {
  const a = address?.trim().replace(/\/\d+$/, "");
  return a && parseCidr(`${a}/32`) ? a : undefined;
}

/**
 * The host addresses to try from the probe's network: that network's gateway (its bridge's address, were it
 * given one: `Gateway`, else the subnet's first address), then the gateways of the engine's other bridge
 * networks — the default bridge (`docker0`) first — each an address of this host. At most `MAX_TARGETS`,
 * each once, with `port`. Pure.
 */
export function reachTargets(
  probeNet: NetworkInspect,
  others: readonly NetworkInspect[],
  port: number,
): string[] {
  const own = (probeNet.IPAM?.Config ?? []).map((c) =>
    ipv4(c.Gateway) ?? (c.Subnet && parseCidr(c.Subnet) ? addressIn(c.Subnet, 1) : undefined)
  );
  const isDefault = (n: NetworkInspect) =>
    n.Name === "bridge" || n.Options?.["com.docker.network.bridge.default_bridge"] === "true";
  const bridges = others
    .filter((n) => n.Id !== probeNet.Id && (n.Driver ?? "bridge") === "bridge")
    .sort((a, b) => Number(isDefault(b)) - Number(isDefault(a)));
  const host = bridges.flatMap((n) => (n.IPAM?.Config ?? []).map((c) => ipv4(c.Gateway)));
  const all = [...own, ...host].filter((a): a is string => a !== undefined);
  return [...new Set(all)].slice(0, MAX_TARGETS).map((a) => `${a}:${port}`);
}

/** What the reach probe's container is made of. */
export interface ReachPlan {
  /** The doctor's probe image, used only as a root filesystem (moat brings its own files, as the relay). */
  image: string;
  /** The gVisor runtime's name. */
  runtime: string;
  network: string;
  moat: MoatRuntime;
  /** `uid:gid` moat runs as. */
  user: string;
  labels: Record<string, string>;
  targets: string[];
  attemptMs: number;
}

/** The engine's body for the reach probe: `moat reach` under gVisor, nothing but the network. Pure. */
export function reachContainerBody(p: ReachPlan): ContainerCreateBody {
  const [entrypoint, ...cmd] = moatCommand(p.moat, [
    "reach",
    "--timeout-ms",
    String(p.attemptMs),
    ...p.targets,
  ]);
  return {
    Image: p.image,
    Entrypoint: [entrypoint!],
    Cmd: cmd,
    User: p.user,
    Env: [...MOAT_HELPER_ENV],
    WorkingDir: "/tmp",
    Labels: p.labels,
    AttachStdout: true,
    AttachStderr: true,
    HostConfig: {
      Runtime: p.runtime,
      NetworkMode: p.network,
      Binds: moatBinds(p.moat),
      AutoRemove: false,
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      ReadonlyRootfs: true,
      Tmpfs: { "/tmp": "rw,nosuid,nodev,size=64m" },
      PidsLimit: 64,
      Memory: 256 * 1024 * 1024,
    },
  };
}
