/**
 * Warm sandboxes: a run's sandbox booted before the run asks for it. Booting gVisor is most of a short run's
 * time, so with warm runs on (`--warm`, `warm: true` in moat.yaml, `MOAT_WARM=1`) the background
 * `moat standby` (lib/run/standby.ts) creates and starts the sandbox of the next run with the same settings
 * once a run has ended: the container a cold run would create, but with an idle main process
 * (`IDLE_SCRIPT`) instead of the command. The next run that matches it (`warmKey`) takes it, runs its
 * command in it through the engine's exec API (lib/run/exec.ts `execInSandbox`), and removes it: a warm
 * sandbox serves one run, as a cold one does, so runs share nothing.
 *
 * The idle main process waits `MOAT_STANDBY_IDLE` seconds (default 600), and then for as long as a command
 * runs in the sandbox, and exits: the engine removes the container (`AutoRemove`), so nothing lingers when
 * moat is not used. A run's interrupt stops the container: the main process passes the SIGTERM on to every
 * process of the sandbox, the command's included, which get the same grace as a cold run's command before
 * the engine kills the sandbox.
 *
 * What differs between runs is given to the exec, not to the sandbox: the command, the variables (`-e`,
 * `env:`, HOME), `-i` and `-t`. Everything else is the sandbox's (image, user, workspace, mounts, profile,
 * network mode, runtime): any difference makes a different key. The allow list is not the sandbox's: the
 * policy is served when the run takes it. Runs that must differ in what the sandbox is made with start
 * cold (`coldReason`).
 */
import type { ContainerCreateBody, ContainerInspect, ImageInspect } from "../docker/types.ts";
import { LABELS } from "./labels.ts";
import { sameRuntime } from "../sandbox/decide.ts";
import { type EgressSpec, planContainer, type RunSpec } from "./plan.ts";

/** The name the idle shell calls itself (`$0`). */
const IDLE_NAME = "moat-warm";

/**
 * The main process of a waiting sandbox, for `/bin/sh -c` with its idle time in seconds as `$1`: it waits
 * that long, then as long as another process of the sandbox lives (a taken sandbox's command: `kill -0 -1`
 * asks about every process but itself and init), and exits. SIGTERM, SIGHUP and SIGINT (the engine's stop,
 * through docker-init, which passes signals on) go on as SIGTERM to every other process, the command's
 * included; SIGPIPE (moat's reader went away) as SIGPIPE.
 */
export const IDLE_SCRIPT = [
  "trap 'kill -TERM -1 2>/dev/null' TERM HUP INT",
  "trap 'kill -PIPE -1 2>/dev/null' PIPE",
  'sleep "$1" & wait $!',
  "while kill -0 -1 2>/dev/null; do sleep 1 & wait $!; done",
].join("\n");

/** Whether warm runs are on: `--warm`, else `MOAT_WARM` (`1` or `0`), else `warm:` in moat.yaml. Pure. */
export function warmWanted(
  flag: boolean,
  env: Record<string, string | undefined>,
  config: boolean | undefined,
): boolean | string {
  if (flag) return true;
  const v = env["MOAT_WARM"];
  if (v === "1") return true;
  if (v === "0") return false;
  if (v !== undefined && v !== "") return `MOAT_WARM must be 1 or 0 (it is "${v}")`;
  return config ?? false;
}

/** What about a run makes it start cold although warm runs are on; `undefined` when it can be warm. Pure. */
export function coldReason(r: {
  detach: boolean;
  keep: boolean;
  name: string | undefined;
  profile: { tcp?: readonly string[]; rules?: readonly unknown[]; grants?: readonly string[] };
}): string | undefined {
  if (r.detach) return "-d";
  if (r.keep) return "--keep";
  if (r.name !== undefined) return "a run name";
  if ((r.profile.tcp ?? []).length > 0) return "mapped ports";
  if ((r.profile.grants ?? []).length > 0) return "grants";
  if ((r.profile.rules ?? []).length > 0) return "rules";
  return undefined;
}

/**
 * The settings a warm sandbox for runs like `spec` is made with: `spec` without what differs from run to
 * run (what the exec gets, the policy) or from sandbox to sandbox (its id, its owner). Pure.
 */
export function warmSpec(spec: RunSpec): RunSpec {
  const profile = spec.profile ? { ...spec.profile } : undefined;
  if (profile?.allow) profile.allow = [];
  return {
    runId: "",
    name: undefined,
    image: spec.image,
    command: undefined,
    env: {},
    workspace: spec.workspace,
    user: spec.user,
    runtime: spec.runtime,
    interactive: false,
    tty: false,
    ...(profile ? { profile } : {}),
    keep: false,
    moatVersion: spec.moatVersion,
  };
}

/**
 * The create body of a waiting sandbox: `spec` (a `warmSpec` given its id, owner, home and network) with the
 * idle main process, which expires after `idleSeconds`, and the `dev.moat.standby` label giving when
 * (`expiresAt`, ms since the epoch). Pure.
 */
export function planWarm(
  spec: RunSpec,
  expiresAt: number,
  idleSeconds: number,
): { name: string; body: ContainerCreateBody } {
  const { name, body } = planContainer(spec);
  body.Entrypoint = ["/bin/sh"];
  body.Cmd = ["-c", IDLE_SCRIPT, IDLE_NAME, String(idleSeconds)];
  body.AttachStdout = false;
  body.AttachStderr = false;
  body.Labels = { ...body.Labels, [LABELS.standby]: String(expiresAt) };
  // Gone by itself once it expires.
  body.HostConfig.AutoRemove = true;
  return { name, body };
}

/** Where a key's sandbox joins a network made ahead: stand-ins, the same for every sandbox. */
const KEY_EGRESS: EgressSpec = { network: "moat-net-0", relayAddress: "0.0.0.0", resolvConf: "/resolv.conf" };

/**
 * What a run (`spec`, with image `imageId`) must share with a waiting sandbox to take it: the body the
 * sandbox was made with, but for its id, owner and expiry; on a network made ahead, that network's own key
 * (`netKey`, lib/run/standby.ts `standbyKey`); and the identity of the host directories and files it binds
 * (`sources`, lib/run/standby.ts `bindSources`: a workspace removed and made again at the same path after
 * the sandbox was booted is another directory, which the sandbox does not see). Pure.
 */
export function warmKey(spec: RunSpec, imageId: string, netKey: string | undefined, sources = ""): string {
  const base = warmSpec(spec);
  const { body } = planWarm(
    { ...base, runId: "0", ...(netKey !== undefined ? { egress: KEY_EGRESS } : {}) },
    0,
    0,
  );
  return JSON.stringify({ warm: 1, imageId, net: netKey ?? null, sources, body });
}

/**
 * The command a warm run executes: what a cold run's container would start, the image's entrypoint followed
 * by the run's command or else the image's; empty when there is none (the run then starts cold, and the
 * engine says so). Pure.
 */
export function warmCommand(config: ImageInspect["Config"], command: string[] | undefined): string[] {
  return [...(config?.Entrypoint ?? []), ...(command ?? config?.Cmd ?? [])];
}

/**
 * Why the sandbox the engine shows (`c`) is not the waiting sandbox of run `id` that this run may take;
 * `undefined` when it is: it runs, under the runtime the run asked for (the gVisor check applies to it as
 * to a cold run's), from the run's image, under the run's name, as a sandbox made ahead. Pure.
 */
export function warmProblem(
  c: ContainerInspect | undefined,
  expect: { id: string; name: string; imageId: string; runtime: string | undefined; homeId: string },
): string | undefined {
  if (!c?.State.Running) return "is not running";
  if (expect.runtime !== undefined && !sameRuntime(c.HostConfig.Runtime, expect.runtime)) {
    return `runs under ${c.HostConfig.Runtime ?? "the engine's default runtime"}, not ${expect.runtime}`;
  }
  if (c.Image !== expect.imageId) return "runs another image";
  const labels = c.Config.Labels ?? {};
  if (
    c.Name !== `/${expect.name}` || labels[LABELS.runId] !== expect.id ||
    labels[LABELS.home] !== expect.homeId ||
    labels[LABELS.standby] === undefined
  ) {
    return "is not a sandbox moat made ahead for this MOAT_HOME";
  }
  return undefined;
}

/**
 * `warmSpec`'s JSON, as `moat standby --warm` reads it from the run that asked for the sandbox;
 * `undefined` for anything else. Pure.
 */
export function parseWarmSpec(text: string): RunSpec | undefined {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  const str = (x: unknown) => typeof x === "string";
  const p = v?.profile as Record<string, unknown> | undefined;
  const ok = v && typeof v === "object" && str(v.image) && str(v.workspace) && str(v.user) &&
    (v.runtime === undefined || str(v.runtime)) && str(v.moatVersion) && v.runId === "" &&
    v.command === undefined && v.interactive === false && v.tty === false && v.keep === false &&
    typeof v.env === "object" && v.env !== null && Object.keys(v.env).length === 0 &&
    p && typeof p === "object" && ["default", "none", "allowlist"].includes(p.network as string) &&
    Array.isArray(p.mounts) && Array.isArray(p.capDrop) && Array.isArray(p.capAdd) &&
    typeof p.pids === "number";
  return ok ? v as unknown as RunSpec : undefined;
}
