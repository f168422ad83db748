import type { ConfigPosition } from "../errors.ts";
import type { HostRules } from "../store/records.ts";
import type { MountEntry } from "../run/mounts.ts";

/** The validated config (`moat.yaml`). Every field is optional; absent means "use the default". */
export interface MoatConfig {
  name?: string;
  image?: string;
  /** Always a list here: a string in the file becomes `["/bin/sh", "-c", string]`. */
  command?: string[];
  env?: Record<string, string>;
  sandbox?: "gvisor" | "none";
  /** Name of the gVisor runtime registered with Docker (default `runsc`). */
  runtime?: string;
  /** Memory limit in bytes (`memory: 2g`); absent: unlimited. */
  memory?: number;
  /** CPU limit in CPUs (`cpus: 1.5`); absent: unlimited. Checked against the host's CPU count at run time. */
  cpus?: number;
  /** Where `cpus` is written, for that later check's error. */
  cpusWhere?: ConfigPosition;
  /** Most processes and threads at once (`pids: 1024`); absent: moat's default. */
  pids?: number;
  /** `none`: loopback only; `allowlist`: only the hosts of `allow` (`network:` as a map). */
  network?: "default" | "none" | "allowlist";
  /** With `allowlist`: the hosts a run may reach, as written (lib/net/host_policy.ts). */
  allow?: string[];
  /**
   * With `allowlist`: rules for the HTTP requests to some of `allow`'s entries (`host` as written there),
   * as moat writes them back (lib/net/http_rules.ts), in order.
   */
  rules?: HostRules[];
  /** With `allowlist`: mapped TCP ports, `PORT=HOST:PORT` as moat writes them (lib/net/tcp_map.ts). */
  tcp?: string[];
  /** `read_only: true` in the file: read-only root filesystem with a writable `/tmp`. */
  readOnly?: boolean;
  /** Grants (`moat grant NAME`) whose credentials moat adds to the run's requests; names, checked at run time. */
  grants?: string[];
  /** Extra bind mounts, as written; targets already checked, sources checked at run time. */
  mounts?: ConfigMount[];
  /** `warm: true`: runs take a sandbox booted ahead (lib/run/warm.ts). */
  warm?: boolean;
}

/** An allow entry's rules (`- host: api.example.com` with `rules: [...]`). */
export type { HostRules };

/** One `mounts:` entry, as lib/run/mounts.ts takes it. */
export type ConfigMount = MountEntry;

/** A loaded config and where it came from (`undefined` file: no config). */
export interface LoadedConfig {
  file: string | undefined;
  config: MoatConfig;
}
