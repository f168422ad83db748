/**
 * The pure half of a run: what the user asked for (a `RunSpec`) → the exact `POST /containers/create`
 * body. No I/O; the lifecycle sends what this returns.
 */
import { LABELS } from "./labels.ts";
import type { ContainerCreateBody } from "../docker/types.ts";
import { type Profile, profileFor, profileHostConfig } from "./profile.ts";
import { type RunTrust, trustEnv } from "./trust.ts";

/** Where the workspace appears inside the container; also the working directory. */
export const WORKSPACE_TARGET = "/workspace";
/** HOME for a user the image has no writable home for. Exists (mode 1777) in every usable image. */
export const FALLBACK_HOME = "/tmp";

export interface RunSpec {
  runId: string;
  name: string | undefined;
  image: string;
  /** `undefined`: the image's own CMD. */
  command: string[] | undefined;
  env: Record<string, string>;
  /** Absolute host path. */
  workspace: string;
  /** `uid:gid` (or any `User` value) the process runs as. */
  user: string;
  /** OCI runtime to request; `undefined` leaves the daemon's default (e.g. runc, or nvidia). */
  runtime: string | undefined;
  interactive: boolean;
  /** `-t`: a pseudo-terminal in the container; output arrives raw (not multiplexed). */
  tty?: boolean;
  /** The host terminal's size at create (rows, columns), for `ConsoleSize`; only with `tty`. */
  consoleSize?: { rows: number; cols: number };
  /** The hardened profile (resources, network, mounts); the default one when absent. */
  profile?: Profile;
  /** `--keep`: the container stays after the run; labelled so it is not taken for an orphan. */
  keep?: boolean;
  moatVersion: string;
  /** The moat process driving the run; labelled so a container whose owner died can be found. */
  owner?: { pid: number; bootId: string };
  /** The id of the MOAT_HOME the run is recorded in (`ensureHomeId`); labelled so each home sees its own. */
  homeId?: string;
  /** With the `allowlist` network: the run's own network, and what the sandbox needs on it (lib/run/egress.ts). */
  egress?: EgressSpec;
}

/** Where a run with the `allowlist` network is joined: its network, its relay, its resolver file. */
export interface EgressSpec {
  network: string;
  relayAddress: string;
  /** Host path of the `resolv.conf` naming the relay as the only nameserver. */
  resolvConf: string;
  /** When the policy point reads TLS: the CA bundle with the run's CA, and where it goes (lib/run/trust.ts). */
  trust?: RunTrust;
}

/** The relay's explicit proxy port (lib/net/policy_point.ts `PORTS.proxy`). */
const PROXY_PORT = 3128;

/**
 * The environment a sandbox on a run's network gets for its proxy: every usual spelling, the relay's address
 * (no name to resolve), loopback excepted. A variable the user set is left as set. Pure.
 */
export function proxyEnv(relayAddress: string, env: Record<string, string>): Record<string, string> {
  const proxy = `http://${relayAddress}:${PROXY_PORT}`;
  const wanted: Record<string, string> = {
    HTTP_PROXY: proxy,
    HTTPS_PROXY: proxy,
    http_proxy: proxy,
    https_proxy: proxy,
    NO_PROXY: "localhost,127.0.0.1,::1",
    no_proxy: "localhost,127.0.0.1,::1",
  };
  return Object.fromEntries(Object.entries(wanted).filter(([k]) => !(k in env)));
}

/** The labels every container moat creates carries; `dev.moat.managed=true` finds them all. */
export function runLabels(spec: RunSpec): Record<string, string> {
  const labels: Record<string, string> = {
    [LABELS.managed]: "true",
    [LABELS.runId]: spec.runId,
    [LABELS.workspace]: spec.workspace,
    [LABELS.sandbox]: spec.runtime === undefined ? "none" : "gvisor",
    [LABELS.runtime]: spec.runtime ?? "default",
    [LABELS.version]: spec.moatVersion,
  };
  if (spec.name) labels[LABELS.name] = spec.name;
  if (spec.keep) labels[LABELS.keep] = "true";
  if (spec.owner) {
    labels[LABELS.ownerPid] = String(spec.owner.pid);
    labels[LABELS.bootId] = spec.owner.bootId;
  }
  if (spec.homeId) labels[LABELS.home] = spec.homeId;
  return labels;
}

/** Container name: unique per run, recognisable in `docker ps`. */
export function containerName(spec: RunSpec): string {
  return spec.name ? `moat-${spec.name}-${spec.runId}` : `moat-${spec.runId}`;
}

/** Build the create body. */
export function planContainer(spec: RunSpec): { name: string; body: ContainerCreateBody } {
  // A spec without a profile (moat's own probes; tests) gets the hardened one with no network at all: what
  // fails closed without the run's own network, which only a run makes (lib/run/egress.ts).
  const profile = spec.profile ?? profileFor({ network: "none" });
  // Fail closed: a run whose policy is an allow list never gets the engine's default network.
  if (profile.network === "allowlist" && !spec.egress) {
    throw new Error("a run with the allowlist network needs its own network (EgressSpec): none was given");
  }
  const body: ContainerCreateBody = {
    Image: spec.image,
    Env: Object.entries({
      ...spec.env,
      ...(spec.egress ? proxyEnv(spec.egress.relayAddress, spec.env) : {}),
      ...(spec.egress?.trust ? trustEnv(spec.egress.trust.target, spec.env) : {}),
    }).map(([k, v]) => `${k}=${v}`),
    WorkingDir: WORKSPACE_TARGET,
    User: spec.user,
    Labels: runLabels(spec),
    Tty: spec.tty ?? false,
    OpenStdin: spec.interactive,
    StdinOnce: spec.interactive,
    AttachStdin: spec.interactive,
    AttachStdout: true,
    AttachStderr: true,
    HostConfig: {
      // `Mounts`, not `Binds`: a host path containing ':' would break the Binds syntax.
      Mounts: [
        { Type: "bind", Source: spec.workspace, Target: WORKSPACE_TARGET, ReadOnly: false },
        ...profile.mounts.map((m) => ({
          Type: "bind",
          Source: m.source,
          Target: m.target,
          ReadOnly: m.readonly,
        })),
        // The relay is the only resolver: Docker's own (127.0.0.11) would pass questions on.
        ...(spec.egress
          ? [{ Type: "bind", Source: spec.egress.resolvConf, Target: "/etc/resolv.conf", ReadOnly: true }]
          : []),
        ...(spec.egress?.trust
          ? [{
            Type: "bind",
            Source: spec.egress.trust.source,
            Target: spec.egress.trust.target,
            ReadOnly: true,
          }]
          : []),
      ],
      AutoRemove: false,
      ...profileHostConfig(profile, spec.runtime !== undefined),
    },
  };
  if (spec.command) body.Cmd = spec.command;
  // Honoured from API 1.42; older engines get the size from the resize right after start.
  if (spec.tty && spec.consoleSize) {
    body.HostConfig.ConsoleSize = [spec.consoleSize.rows, spec.consoleSize.cols];
  }
  if (spec.egress) {
    body.HostConfig.NetworkMode = spec.egress.network;
    // Docker's own resolver (127.0.0.11) is still there for a process that asks it by address; it passes
    // on what it cannot answer to these servers, so it passes on to moat too. Left to the host's, it would
    // pass questions on from the host's network namespace when the host's resolver is a loopback address
    // (systemd-resolved's 127.0.0.53): a way out.
    body.HostConfig.Dns = [spec.egress.relayAddress];
  }
  // Left unset when the sandbox is off, so the daemon's default runtime applies.
  if (spec.runtime !== undefined) body.HostConfig.Runtime = spec.runtime;
  return { name: containerName(spec), body };
}

/** Who the process runs as, for a passwd lookup: a numeric uid or a user name. */
export type UserRef = number | string;

/**
 * The home directory `/etc/passwd` gives `who` (uid or name), or `undefined` when the image has no usable
 * one for it (no entry, or `/`, or `/nonexistent`). Pure.
 */
export function homeFromPasswd(passwd: string, who: UserRef): string | undefined {
  for (const line of passwd.split("\n")) {
    const f = line.split(":");
    if (f.length < 7 || f[2] === "") continue;
    if (typeof who === "number" ? Number(f[2]) !== who : f[0] !== who) continue;
    const home = f[5]!;
    if (home === "" || home === "/" || home.startsWith("/nonexistent")) return undefined;
    return home;
  }
  return undefined;
}

/**
 * Whether moat must set `HOME`: the user did not set it, and the process does not run as root or as a
 * user the image gives a home. `passwd` is the image's `/etc/passwd` (undefined when the image has none).
 */
export function needsFallbackHome(
  env: Record<string, string>,
  who: UserRef | undefined,
  passwd: string | undefined,
) {
  if ("HOME" in env) return false;
  if (who === undefined || who === 0 || who === "root") return false;
  return passwd === undefined || homeFromPasswd(passwd, who) === undefined;
}

/** Parse `-e KEY=VALUE` / `-e KEY` (the latter takes KEY from moat's own environment, like docker). */
export function parseEnvArg(
  arg: string,
  hostEnv: Record<string, string | undefined>,
): [string, string] | undefined {
  const eq = arg.indexOf("=");
  if (eq === -1) {
    const v = hostEnv[arg];
    return v === undefined ? undefined : [arg, v];
  }
  return [arg.slice(0, eq), arg.slice(eq + 1)];
}
