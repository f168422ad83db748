/**
 * Whether a run is sandboxed, and by which OCI runtime. Pure: flags, config and environment in, a
 * decision or a typed error out. The precedence is one table (docs/concepts/sandboxing.md):
 *
 * | source                      | wins over          |
 * | --------------------------- | ------------------ |
 * | `--no-sandbox` / `--sandbox`| everything         |
 * | config `sandbox:`           | the environment    |
 * | `MOAT_NO_SANDBOX=1`         | the default        |
 * | default                     | gVisor (`runsc`)   |
 *
 * The runtime name (for a differently registered gVisor, e.g. `runsc-kvm`) comes from config `runtime:`,
 * else `MOAT_RUNTIME`, else `runsc`; `resolveRuntime` then checks it against the engine's `/info`.
 */
import { SandboxUnavailableError, UsageError } from "../errors.ts";
import type { RuntimeInfo, SystemInfo } from "../docker/types.ts";

export const DEFAULT_RUNTIME = "runsc";
export const SANDBOX_VALUES = ["gvisor", "none"] as const;
export type SandboxSetting = typeof SANDBOX_VALUES[number];

export interface SandboxInputs {
  flags: { sandbox?: boolean; noSandbox?: boolean };
  config: { sandbox?: SandboxSetting; runtime?: string };
  env: Record<string, string | undefined>;
}

/** Where the deciding value came from, for the warning and the run record. */
export type DecisionSource = "flag" | "config" | "env" | "default";

export type SandboxDecision =
  | { sandbox: "gvisor"; runtime: string; source: DecisionSource }
  | { sandbox: "none"; source: DecisionSource };

/** Decide from flags, config and environment. Throws `UsageError` for contradictory or malformed input. */
export function decideSandbox(inputs: SandboxInputs): SandboxDecision {
  const { flags, config, env } = inputs;
  if (flags.sandbox && flags.noSandbox) {
    throw new UsageError(
      "--sandbox and --no-sandbox contradict each other",
      "Keep one: --sandbox runs under gVisor, --no-sandbox runs without it",
    );
  }
  // The runtime name matters (and is checked) only when the sandbox is on.
  const on = (source: DecisionSource): SandboxDecision => ({
    sandbox: "gvisor",
    runtime: runtimeName(config.runtime, env),
    source,
  });
  if (flags.noSandbox) return { sandbox: "none", source: "flag" };
  if (flags.sandbox) return on("flag");
  if (config.sandbox === "none") return { sandbox: "none", source: "config" };
  if (config.sandbox === "gvisor") return on("config");
  if (envNoSandbox(env)) return { sandbox: "none", source: "env" };
  return on("default");
}

function envNoSandbox(env: Record<string, string | undefined>): boolean {
  const raw = env["MOAT_NO_SANDBOX"];
  if (raw === undefined) return false;
  const v = raw.trim().toLowerCase();
  if (v === "1" || v === "true") return true;
  if (v === "" || v === "0" || v === "false") return false;
  throw new UsageError(
    `MOAT_NO_SANDBOX "${raw}" is not one of 1, true, 0, false`,
    "Use MOAT_NO_SANDBOX=1 to run without gVisor, or unset it:  unset MOAT_NO_SANDBOX",
  );
}

const RUNTIME_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function runtimeName(configRuntime: string | undefined, env: Record<string, string | undefined>): string {
  const fromEnv = env["MOAT_RUNTIME"]?.trim();
  const name = configRuntime ?? (fromEnv || DEFAULT_RUNTIME);
  if (!RUNTIME_NAME.test(name)) {
    throw new UsageError(
      `Runtime name "${name}" is not a valid Docker runtime name`,
      `Use the name gVisor is registered under in daemon.json, e.g.  MOAT_RUNTIME=${DEFAULT_RUNTIME}`,
    );
  }
  return name;
}

/** True when a registered runtime is gVisor: its binary, shim type or (for path-less shims) name says runsc. */
export function looksLikeGvisor(name: string, info: RuntimeInfo): boolean {
  const base = info.path?.split("/").pop() ?? "";
  if (base) return /runsc|gvisor/i.test(base);
  if (info.runtimeType) return /runsc|gvisor/i.test(info.runtimeType);
  return /runsc|gvisor/i.test(name);
}

/**
 * True when `got`, the runtime an engine says it made a container with, is the runtime `wanted` moat asked
 * for: the same name, or a path to a binary of that name (Podman names its runtime by path when it was
 * given one, e.g. `/usr/bin/runsc`). Pure.
 */
export function sameRuntime(got: string | undefined, wanted: string): boolean {
  return got !== undefined && (got === wanted || got.endsWith(`/${wanted}`));
}

/**
 * On Podman, whose Docker-compatible API runs every container under its own default runtime whatever is
 * asked: why that default (`/info` `DefaultRuntime`) is not the gVisor runtime `name`; `undefined` when it
 * is (the name or a path to it, and gVisor by the same test as a registered runtime). Pure.
 */
export function podmanDefaultProblem(name: string, info: SystemInfo): string | undefined {
  const def = info.DefaultRuntime;
  if (!def) return `Podman does not say which runtime it runs containers under, so it cannot be "${name}"`;
  const base = def.split("/").pop() ?? def;
  const entry = info.Runtimes?.[def] ?? info.Runtimes?.[base] ?? (def.includes("/") ? { path: def } : {});
  if (sameRuntime(def, name) && looksLikeGvisor(base, entry)) return undefined;
  return `Podman runs every container under its default runtime, ${def}, whatever is asked, and that is not ` +
    `the gVisor runtime "${name}"`;
}

/** How to make gVisor Podman's default runtime, for `podmanDefaultProblem`'s refusals. */
export function podmanGvisorHint(name: string): string {
  return `Start Podman's service with gVisor as its default runtime:  podman --runtime ${name} system service\n` +
    `(or set  runtime = "${name}"  under [engine] in containers.conf), then check:  moat doctor`;
}

/**
 * Check the decided gVisor runtime against the engine's `/info`. Fails closed: a missing runtime, or one
 * registered under the name but not gVisor (e.g. `runc`), is a `SandboxUnavailableError`; so is, on Podman
 * (`product`), a default runtime other than it, since Podman runs every container under its default.
 */
export function resolveRuntime(
  decision: Extract<SandboxDecision, { sandbox: "gvisor" }>,
  info: SystemInfo,
  endpoint: string,
  product: "Docker" | "Podman" = "Docker",
): string {
  const name = decision.runtime;
  const runtimes = info.Runtimes;
  if (product === "Podman") {
    const problem = podmanDefaultProblem(name, info);
    if (problem) {
      throw new SandboxUnavailableError(
        `${problem}; refusing to run without a sandbox (the engine at ${endpoint} is Podman)`,
        podmanGvisorHint(name),
      );
    }
    return name;
  }
  const entry = runtimes?.[name];
  if (!entry) throw gvisorMissingError(name, endpoint, Object.keys(runtimes ?? {}));
  if (!looksLikeGvisor(name, entry)) {
    throw new SandboxUnavailableError(
      `Runtime "${name}" on the Docker engine is not gVisor (it runs ${
        entry.path ?? entry.runtimeType ?? "?"
      }); ` +
        "refusing to run without a sandbox",
      `Name the runtime gVisor is registered under:  MOAT_RUNTIME=runsc  (or  runtime: runsc  in moat.yaml)\n` +
        "See what is registered:  docker info --format '{{json .Runtimes}}'",
    );
  }
  return name;
}

/** Steps 1 and 2 of the fail-closed hint (install runsc, register it as `name`); `moat doctor` shows them too. */
export function gvisorInstallSteps(name: string): string[] {
  return [
    `1. Install gVisor (Debian/Ubuntu, from gVisor's own apt repository):`,
    `     curl -fsSL https://gvisor.dev/archive.key | sudo gpg --dearmor -o /usr/share/keyrings/gvisor-archive-keyring.gpg`,
    `     echo "deb [arch=$(dpkg --print-architecture) signed-by=/usr/share/keyrings/gvisor-archive-keyring.gpg] https://storage.googleapis.com/gvisor/releases release main" | sudo tee /etc/apt/sources.list.d/gvisor.list`,
    `     sudo apt-get update && sudo apt-get install -y runsc`,
    `2. Register it with Docker: add to /etc/docker/daemon.json (keep the keys already there)`,
    `     { "runtimes": { "${name}": { "path": "/usr/bin/runsc" } } }`,
    `   or let runsc write it:  sudo runsc install --runtime ${name}`,
    `   then reload the engine:  sudo systemctl reload docker   (no systemd: sudo kill -HUP "$(pidof dockerd)")`,
  ];
}

/** The fail-closed error when gVisor is not registered. Written to be acted on without reading docs. */
export function gvisorMissingError(
  name: string,
  endpoint: string,
  registered: string[],
): SandboxUnavailableError {
  const others = registered.filter((r) => /runsc|gvisor/i.test(r));
  const lines = [
    `moat runs every command under gVisor unless you opt out, so nothing was created.`,
    `Runtimes this engine (${endpoint}) has: ${registered.length ? registered.join(", ") : "none listed"}.`,
    ...(others.length
      ? [`A gVisor runtime is registered as ${others.join(", ")}: select it with MOAT_RUNTIME=${others[0]}`]
      : []),
    ``,
    ...gvisorInstallSteps(name),
    `3. Verify:  moat doctor   or   docker info --format '{{json .Runtimes}}'   (must list "${name}")`,
    `   then run moat again`,
    ``,
    `To run without gVisor, knowingly (isolation is then only a plain container):`,
    `   for one run:           add --no-sandbox to the moat command`,
    `   for this workspace:    put  sandbox: none  in moat.yaml`,
  ];
  return new SandboxUnavailableError(
    `gVisor runtime "${name}" is not registered with the Docker engine; refusing to run without a sandbox`,
    lines.join("\n"),
  );
}

/** The one warning printed when the sandbox is off, naming what turned it off. */
export function noSandboxWarning(source: DecisionSource): string {
  const why = source === "flag"
    ? "--no-sandbox"
    : source === "config"
    ? "sandbox: none in the config"
    : "MOAT_NO_SANDBOX=1";
  return `moat: warning: gVisor sandbox disabled by ${why}; the command runs in a plain container with reduced isolation`;
}
