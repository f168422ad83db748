/**
 * The hardened profile every container moat creates gets, with or without gVisor: what it is (a `Profile`,
 * stored in the run record) and how it becomes `HostConfig` fields. Pure. docs/concepts/sandboxing.md
 * explains each choice.
 */
import type { HostRules, Profile, ProfileMount } from "../store/records.ts";

/** The recorded profile's type lives with the record (lib/store sits below lib/run). */
export type { Profile };

/**
 * Capabilities kept after dropping all of them. They only matter when the command runs as root (uid 0);
 * a process running as the workspace owner (the default) has none in effect either way.
 */
export const KEPT_CAPABILITIES = [
  // Package managers and archive tools give installed files their owners.
  "CHOWN",
  // Root reading and writing files whatever their mode bits (e.g. the workspace owner's files).
  "DAC_OVERRIDE",
  // chmod, utime and the like on files root does not own (`cp -p`, `tar`, dpkg).
  "FOWNER",
  // Keeping set-user/group-ID bits on files root modifies (installing packages).
  "FSETID",
  // Signalling processes of other users (stopping a server started as another user).
  "KILL",
  // Switching to another user or group: apt's _apt sandbox, su, setpriv, gosu.
  "SETGID",
  "SETUID",
] as const;

/** Processes (and threads) per run unless `pids` says otherwise: ample for builds, a wall for fork loops. */
export const DEFAULT_PIDS = 1024;

/**
 * Under gVisor the engine's pids limit applies to the sandbox's own host threads, not to the command's
 * processes (those live inside gVisor's kernel), and a sandbox that cannot create a thread dies. The
 * command's processes are limited inside the sandbox by RLIMIT_NPROC instead, and the host limit is kept
 * at least this high.
 */
export const GVISOR_MIN_HOST_PIDS = 1024;

/** The settings a user may change; everything else in the profile is fixed. */
export interface ProfileSettings {
  pids?: number;
  memory?: number;
  cpus?: number;
  network?: "default" | "none" | "allowlist";
  /** With `allowlist`: the allow list's entries. */
  allow?: string[];
  /** With `allowlist`: mapped TCP ports, `PORT=HOST:PORT` (lib/net/tcp_map.ts). */
  tcp?: string[];
  /** With `allowlist`: rules for the HTTP requests to some of `allow`'s entries (lib/net/http_rules.ts). */
  rules?: HostRules[];
  /** With `allowlist`: the grants whose credentials the policy point adds (names; `moat grant`). */
  grants?: string[];
  readOnly?: boolean;
  mounts?: ProfileMount[];
}

/**
 * The network of a run that states none: an allow list with nothing in it. The run gets its own network,
 * relay and policy point (lib/run/egress.ts), and every name and connection is refused and logged until the
 * user allows a host (`--allow`, `network:` in moat.yaml); `--network default` is the engine's network.
 */
export const DEFAULT_NETWORK = "allowlist";

export function profileFor(settings: ProfileSettings): Profile {
  const network = settings.network ?? DEFAULT_NETWORK;
  return {
    capDrop: ["ALL"],
    capAdd: [...KEPT_CAPABILITIES],
    noNewPrivileges: true,
    init: true,
    pids: settings.pids ?? DEFAULT_PIDS,
    memory: settings.memory ?? null,
    cpus: settings.cpus ?? null,
    network,
    ...(network === "allowlist" ? { allow: settings.allow ?? [] } : {}),
    ...(network === "allowlist" && settings.tcp?.length ? { tcp: settings.tcp } : {}),
    ...(network === "allowlist" && settings.rules?.length ? { rules: settings.rules } : {}),
    ...(network === "allowlist" && settings.grants?.length ? { grants: settings.grants } : {}),
    readOnly: settings.readOnly ?? false,
    mounts: settings.mounts ?? [],
  };
}

/**
 * Where a read-only root still lets programs write; mode 1777 like a normal /tmp. `exec` is explicit: Docker
 * mounts a tmpfs `noexec` unless told otherwise, and a scratch directory is where tools unpack and run
 * helpers (the docs suggest pointing caches at /tmp). `nosuid` and `nodev` stay.
 */
export const TMPFS_OPTIONS = "rw,exec,nosuid,nodev,mode=1777";

/**
 * The `HostConfig` fields (and `Ulimits`) of a profile. `gvisor`: the run uses a gVisor runtime, which
 * changes how the pids limit is enforced (see `GVISOR_MIN_HOST_PIDS`).
 */
export function profileHostConfig(p: Profile, gvisor: boolean): Record<string, unknown> {
  const host: Record<string, unknown> = {
    CapDrop: p.capDrop,
    CapAdd: p.capAdd,
    SecurityOpt: p.noNewPrivileges ? ["no-new-privileges"] : [],
    Init: p.init,
    Privileged: false,
    PidsLimit: gvisor ? Math.max(p.pids, GVISOR_MIN_HOST_PIDS) : p.pids,
  };
  // RLIMIT_NPROC counts a user's processes across the whole kernel: inside gVisor that is the sandbox
  // alone, but on the host kernel (no sandbox) it would count the user's own host processes too.
  if (gvisor) host.Ulimits = [{ Name: "nproc", Soft: p.pids, Hard: p.pids }];
  if (p.memory !== null) {
    host.Memory = p.memory;
    // No swap on top of the limit: the limit is what the command gets.
    host.MemorySwap = p.memory;
  }
  if (p.cpus !== null) host.NanoCpus = Math.round(p.cpus * 1e9);
  if (p.network === "none") host.NetworkMode = "none";
  if (p.readOnly) {
    host.ReadonlyRootfs = true;
    host.Tmpfs = { "/tmp": TMPFS_OPTIONS };
  }
  return host;
}
