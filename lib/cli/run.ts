/**
 * `moat run`: the edge that gathers flags, config and environment into a `RunRequest`, and hands it with
 * the process's stdio, signals and status line to lib/run/start.ts, which runs it. Returns the exit code;
 * only main.ts exits.
 */
import { startRun } from "../run/start.ts";
import { loadConfig } from "../config/load.ts";
import { clientFromEnv, type EngineClient, engineTimeoutMs } from "../docker/client.ts";
import { ConfigError, UsageError } from "../errors.ts";
import { parseCommandArgs } from "./args.ts";
import { parseHostPattern } from "../net/host_policy.ts";
import { grantNameProblem, loadRunGrants, type RunGrants } from "../run/grant_kinds.ts";
import { checkArgsAreUtf8, checkEnvIsUtf8 } from "./raw_args.ts";
import { chooseImage, maybeImageRefProblem } from "../run/image.ts";
import { parseEnvArg, type UserRef } from "../run/plan.ts";
import { checkNameFree } from "../run/names.ts";
import { claimStandby, ownStandbyKey, spawnStandby, standbySettings } from "../run/standby.ts";
import { warmWanted } from "../run/warm.ts";
import { DEFAULT_NETWORK, profileFor, type ProfileSettings } from "../run/profile.ts";
import { endpointUrl, engineProduct, isLocalEndpoint, plainTcpWarning } from "../docker/endpoint.ts";
import { type PathKind, resolveMounts } from "../run/mounts.ts";
import { parseCpus, parseMemory, parsePids, type ParseResult } from "../run/resources.ts";
import type { MoatConfig } from "../config/types.ts";
import { decideSandbox } from "../sandbox/decide.ts";
import { currentOwner } from "../store/owner.ts";
import { moatHome, newRunId } from "../store/records.ts";
import { RUN_HELP } from "./help.ts";
import { noSpinner, type Spinner, startSpinner } from "./spinner.ts";
import { maybeFindOrphans, orphanNotice } from "./orphan_notice.ts";
import { hostTerminal } from "./terminal.ts";
import { fdSink, outputSink } from "./sinks.ts";

export interface ParsedRunArgs {
  help: boolean;
  sandbox: boolean;
  noSandbox: boolean;
  image: string | undefined;
  env: string[];
  name: string | undefined;
  user: string | undefined;
  interactive: boolean;
  /** `-t`: a pseudo-terminal in the container, attached to the host terminal. */
  tty: boolean;
  keep: boolean;
  /** `--warm`: take a sandbox booted ahead, and boot the next one after the run (lib/run/warm.ts). */
  warm: boolean;
  /** Resource and isolation flags, as written; they beat the config. */
  memory: string | undefined;
  cpus: string | undefined;
  pids: string | undefined;
  network: string | undefined;
  /** `--allow HOST`: an allow-list entry (implies `--network allowlist`). */
  allow: string[];
  /** `--grant NAME`: a grant whose credential moat adds to the run's requests (`moat grant`). */
  grants: string[];
  readOnly: boolean;
  /** `-d`: start the container, print the run id, return; a recorder process records the output. */
  detach: boolean;
  /** Internal (hidden): `--record-detached <id>` makes this process the recorder of a detached run. */
  recordDetached: string | undefined;
  workspace: string | undefined;
  command: string[] | undefined;
}

/**
 * Parse `moat run` arguments. Pure; throws `UsageError`. `isDirectory` says whether a path names an existing
 * directory: with more than one word before `--`, it decides whether the first was meant as the workspace
 * or as the command (`moat run echo hi`).
 */
export function parseRunArgs(
  args: string[],
  isDirectory: (path: string) => boolean = () => false,
): ParsedRunArgs {
  const { values, positionals, beforeTerminator } = parseCommandArgs("run", args, {
    help: { type: "boolean", short: "h" },
    sandbox: { type: "boolean" },
    "no-sandbox": { type: "boolean" },
    image: { type: "string" },
    env: { type: "string", short: "e", multiple: true },
    name: { type: "string" },
    user: { type: "string", short: "u" },
    interactive: { type: "boolean", short: "i" },
    tty: { type: "boolean", short: "t" },
    keep: { type: "boolean" },
    warm: { type: "boolean" },
    memory: { type: "string", short: "m" },
    cpus: { type: "string" },
    pids: { type: "string" },
    network: { type: "string" },
    allow: { type: "string", multiple: true },
    grant: { type: "string", multiple: true },
    "read-only": { type: "boolean" },
    detach: { type: "boolean", short: "d" },
    "record-detached": { type: "string" },
  });
  const before = positionals.slice(0, beforeTerminator);
  const after = positionals.slice(beforeTerminator ?? positionals.length);
  if (before.length > 1) {
    const workspace = isDirectory(before[0]!);
    const command = (workspace ? before.slice(1) : before).map(shellQuote).join(" ");
    throw new UsageError(
      `Unexpected argument "${before[1]}": moat run takes one WORKSPACE, and the command goes after --`,
      `For example:  moat run ${workspace ? `${shellQuote(before[0]!)} ` : ""}-- ${command}`,
    );
  }
  if (beforeTerminator !== undefined && after.length === 0) {
    throw new UsageError("Nothing follows --: give the command to run", "For example:  moat run -- ls -la");
  }
  if (values.name !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(values.name)) {
    throw new UsageError(
      `Run name "${values.name}" is not valid: use letters, digits, '.', '_' or '-' (at most 64)`,
      "For example:  --name fix-tests",
    );
  }
  if (values.detach && values.interactive) {
    throw new UsageError(
      "-d (detach) and -i (interactive) cannot be combined: a detached run has no stdin",
      "Drop one of them, e.g.:  moat run -d -- make test",
    );
  }
  if (values.network === "open") values.network = "default";
  if (
    values.network !== undefined && values.network !== "default" && values.network !== "none" &&
    values.network !== "allowlist"
  ) {
    throw new UsageError(
      `--network "${values.network}" is not one of default (or open), none, allowlist`,
      "Use  --allow HOST  to reach only the hosts named,  --network none  for loopback only, or " +
        "--network default  for the engine's network",
    );
  }
  const allow = values.allow ?? [];
  for (const entry of allow) {
    const pattern = parseHostPattern(entry);
    if (typeof pattern === "string") {
      throw new UsageError(
        `--allow "${entry}": ${pattern}`,
        "For example:  --allow api.github.com  --allow '*.npmjs.org'",
      );
    }
  }
  if (allow.length > 0 && values.network !== undefined && values.network !== "allowlist") {
    throw new UsageError(
      `--allow names hosts a run may reach, which --network ${values.network} does not limit`,
      "Drop --network, or use  --network allowlist",
    );
  }
  const grants = [...new Set(values.grant ?? [])];
  for (const name of grants) {
    const problem = grantNameProblem(name);
    if (problem) {
      throw new UsageError(`--grant "${name}": ${problem}`, "See the grants there are:  moat grant list");
    }
  }
  if (grants.length > 0 && values.network !== undefined && values.network !== "allowlist") {
    throw new UsageError(
      `--grant adds a credential through moat's network policy, which --network ${values.network} does not use`,
      "Drop --network: a run with grants reaches the granted hosts and those of --allow only",
    );
  }
  if (values.detach && values.tty) {
    throw new UsageError(
      "-d (detach) and -t (terminal) cannot be combined: a detached run has no terminal attached",
      "Drop -t and read the output later:  moat run -d -- make test   then   moat logs -f",
    );
  }
  if (values["record-detached"] !== undefined && args.length !== 2) {
    throw new UsageError(
      "--record-detached is internal to moat run -d and takes nothing else",
      "Start a detached run with:  moat run -d -- COMMAND",
    );
  }
  return {
    help: values.help ?? false,
    sandbox: values.sandbox ?? false,
    noSandbox: values["no-sandbox"] ?? false,
    image: values.image,
    env: values.env ?? [],
    name: values.name,
    user: values.user,
    interactive: values.interactive ?? false,
    tty: values.tty ?? false,
    keep: values.keep ?? false,
    warm: values.warm ?? false,
    memory: values.memory,
    cpus: values.cpus,
    pids: values.pids,
    network: allow.length > 0 ? "allowlist" : values.network,
    allow,
    grants,
    readOnly: values["read-only"] ?? false,
    detach: values.detach ?? false,
    recordDetached: values["record-detached"],
    workspace: before[0],
    command: after.length ? after : undefined,
  };
}

/** `word` as a shell would need it typed: as it is when plain, else in single quotes. */
function shellQuote(word: string): string {
  return /^[A-Za-z0-9_.,:=@%+\/-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

const encoder = new TextEncoder();

/**
 * The resource and isolation settings of a run: each flag beats its config field. Pure; a bad flag value
 * is a usage error. `hostCpus`: more CPUs than the host has is refused here, as the engine would.
 */
export function resourceSettings(
  opts: Pick<ParsedRunArgs, "memory" | "cpus" | "pids" | "network" | "readOnly"> & {
    allow?: string[];
    grants?: string[];
  },
  config: MoatConfig,
  hostCpus: number | undefined,
): ProfileSettings {
  const flag = <T>(
    name: string,
    raw: string | undefined,
    parse: (v: string) => ParseResult<T>,
    eg: string,
  ) => {
    if (raw === undefined) return undefined;
    const r = parse(raw);
    if (!r.ok) {
      throw new UsageError(`--${name} "${raw}" must be ${r.expected}`, `For example:  --${name} ${eg}`);
    }
    return r.value;
  };
  const cpus = flag("cpus", opts.cpus, (v) => parseCpus(v, hostCpus), "1.5") ?? config.cpus;
  if (cpus !== undefined && hostCpus !== undefined && cpus > hostCpus) {
    const where = config.cpusWhere ?? { file: "the config", line: 0, col: 0 };
    throw new ConfigError(
      where.file,
      where.line,
      where.col,
      "cpus",
      `must be at most ${hostCpus}: this host has ${hostCpus} CPUs; got ${cpus}`,
      `Lower it, or override it for this run:  --cpus ${hostCpus}`,
    );
  }
  const settings: ProfileSettings = {};
  const memory = flag("memory", opts.memory, parseMemory, "2g") ?? config.memory;
  const pids = flag("pids", opts.pids, parsePids, "512") ?? config.pids;
  const network = (opts.network as ProfileSettings["network"]) ?? config.network;
  if (memory !== undefined) settings.memory = memory;
  if (cpus !== undefined) settings.cpus = cpus;
  if (pids !== undefined) settings.pids = pids;
  if (network !== undefined) settings.network = network;
  // The hosts of moat.yaml's allow list, and those of --allow on top.
  if (network === "allowlist") {
    const fromConfig = config.network === "allowlist" ? config.allow ?? [] : [];
    settings.allow = [...new Set([...fromConfig, ...(opts.allow ?? [])])];
    if (config.network === "allowlist" && config.tcp?.length) settings.tcp = config.tcp;
    if (config.network === "allowlist" && config.rules?.length) settings.rules = config.rules;
  }
  // moat.yaml's grants, and those of --grant on top: only through moat's own network.
  const grants = [...new Set([...(config.grants ?? []), ...(opts.grants ?? [])])];
  if (grants.length > 0) {
    if (network !== undefined && network !== "allowlist") {
      throw new UsageError(
        `Grants (${
          grants.join(", ")
        }) add credentials through moat's network policy, which network ${network} ` +
          "does not use",
        "Drop  network: " + network +
          "  (or --network) to give the run its own network with the granted hosts",
      );
    }
    settings.grants = grants;
  }
  if (opts.readOnly || config.readOnly) settings.readOnly = true;
  return settings;
}

function stderrLine(line: string) {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
}

/** Synchronous, like the record writes: an async file call costs a thread-pool hop (1–3 ms) on every run. */
function resolveWorkspace(arg: string | undefined): { path: string; uid: number | null; gid: number | null } {
  const given = arg ?? ".";
  let path: string;
  try {
    path = Deno.realPathSync(given);
  } catch {
    throw new UsageError(
      `Workspace "${given}" does not exist`,
      "Give an existing directory:  moat run path/to/project -- …",
    );
  }
  const st = Deno.statSync(path);
  if (!st.isDirectory) {
    throw new UsageError(
      `Workspace "${given}" is not a directory`,
      "Give a directory:  moat run path/to/project -- …",
    );
  }
  return { path, uid: st.uid, gid: st.gid };
}

/**
 * Refuse an image reference the engine would refuse (its answer would be a bare 400), naming where it came
 * from: `--image`, the config file, or `MOAT_IMAGE` (the default is valid).
 */
function checkImageRef(image: string, source: string | undefined): void {
  const bad = maybeImageRefProblem(image);
  if (!bad) return;
  const where = source === "--image" || source === "MOAT_IMAGE" ? source : `image: in ${source}`;
  const write = (ref: string) =>
    source === "--image" ? `--image ${ref}` : source === "MOAT_IMAGE" ? `MOAT_IMAGE=${ref}` : `image: ${ref}`;
  throw new UsageError(
    `Image "${image}" (${where}) is not a valid image reference: ${bad.problem}`,
    bad.suggestion
      ? `In lowercase:  ${write(bad.suggestion)}`
      : `An image reference is [REGISTRY/]NAME[:TAG][@DIGEST], e.g.:  ${write("debian:bookworm-slim")}\n` +
        "or list the engine's images:  docker images",
  );
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/** The highest user or group id the engine accepts (moby/sys/user: "uids and gids must be in range"). */
const MAX_ID = 2 ** 31 - 1;

/** `-u`/`--user` → what the create body says and who runs the command. Pure; throws `UsageError`. */
export function parseUser(user: string): { user: string; who: UserRef } {
  if (!/^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/.test(user)) {
    throw new UsageError(
      `User "${user}" is not of the form UID[:GID] or NAME[:GROUP]`,
      "For example:  --user 1000:1000",
    );
  }
  const [first, group] = user.split(":") as [string, string | undefined];
  for (const [id, what] of [[first, "user"], [group, "group"]] as const) {
    if (id !== undefined && /^\d+$/.test(id) && Number(id) > MAX_ID) {
      throw new UsageError(
        `User "${user}" has a ${what} id out of range: ${id} is more than ${MAX_ID}`,
        "Give an id from 0 to 2147483647, e.g.:  --user 1000:1000",
      );
    }
  }
  return { user, who: /^\d+$/.test(first) ? Number(first) : first };
}

/** `moat run …` → exit code. */
export async function runCommand(args: string[]): Promise<number> {
  checkArgsAreUtf8(args, () => Deno.readFileSync("/proc/self/cmdline"));
  const opts = parseRunArgs(args, isDirectory);
  if (opts.help) {
    await fdSink(Deno.stdout).write(encoder.encode(RUN_HELP));
    return 0;
  }
  if (opts.recordDetached !== undefined) {
    const { recordCommand } = await import("./detach.ts");
    return await recordCommand(moatHome(Deno.env.toObject()), opts.recordDetached);
  }
  if (opts.tty && !Deno.stdin.isTerminal()) {
    throw new UsageError(
      "-t needs a terminal, but moat's standard input is not one",
      "Run it from a terminal, or drop -t (-i alone pipes input):  echo hi | moat run -i -- cat",
    );
  }
  const env = Deno.env.toObject();
  const tty = Deno.stderr.isTerminal();
  const spinner: Spinner = tty
    ? startSpinner((b) => Deno.stderr.writeSync(b), "Preparing sandbox…")
    : noSpinner;
  // While the terminal is raw (`-it`) a line feed does not return the cursor; the "\r" is harmless after.
  const raw = opts.tty && opts.interactive;
  const say = (line: string) => {
    spinner.stop();
    stderrLine(raw ? line.replaceAll("\n", "\r\n") + "\r" : line);
  };
  // From here on an interrupt is ours to handle: nothing may be left behind, at any phase. The first
  // signal stops the run (gracefully once the container runs); any further one forces it at once. The
  // listeners stay until main.ts exits: without them a signal in that last instant would kill moat the
  // default way, and its exit status would contradict the record it just wrote.
  const controller = new AbortController();
  const force = new AbortController();
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    Deno.addSignalListener(sig, () => {
      spinner.stop();
      if (!controller.signal.aborted) controller.abort(sig);
      else if (!force.signal.aborted) force.abort(sig);
    });
  }
  try {
    return await prepareAndRun(opts, env, spinner, say, tty, {
      interrupt: controller.signal,
      force: force.signal,
    });
  } finally {
    spinner.stop();
  }
}

async function prepareAndRun(
  opts: ParsedRunArgs,
  env: Record<string, string | undefined>,
  spinner: Spinner,
  say: (line: string) => void,
  tty: boolean,
  signals: { interrupt: AbortSignal; force: AbortSignal },
): Promise<number> {
  const workspace = resolveWorkspace(opts.workspace);
  const { config, file: configFile } = await loadConfig(workspace.path);
  const decision = decideSandbox({
    flags: { sandbox: opts.sandbox, noSandbox: opts.noSandbox },
    config: {
      ...(config.sandbox ? { sandbox: config.sandbox } : {}),
      ...(config.runtime ? { runtime: config.runtime } : {}),
    },
    env,
  });
  const runEnv: Record<string, string> = { ...config.env };
  for (const arg of opts.env) {
    if (arg === "" || arg.startsWith("=")) {
      throw new UsageError(`-e "${arg}" has no variable name`, "Use:  -e KEY=VALUE");
    }
    const kv = parseEnvArg(arg, env);
    if (kv) runEnv[kv[0]] = kv[1];
    else checkEnvIsUtf8(arg, (key) => Deno.env.get(key));
  }
  const image = chooseImage(opts.image, config.image, env);
  if (image.trim() === "") {
    throw new UsageError("The image name is empty", "Name one:  --image debian:bookworm-slim");
  }
  checkImageRef(
    image,
    opts.image !== undefined ? "--image" : config.image !== undefined ? configFile : "MOAT_IMAGE",
  );
  const home = moatHome(env);
  checkNameFree(home, opts.name ?? config.name);
  const user = opts.user !== undefined
    ? parseUser(opts.user)
    : workspace.uid === null
    ? { user: "", who: undefined }
    : { user: `${workspace.uid}:${workspace.gid ?? workspace.uid}`, who: workspace.uid };

  // -d needs to start a recorder process: refuse before anything is created when Deno would not allow it.
  const detach = opts.detach ? await import("./detach.ts") : undefined;
  detach?.checkRecorderAllowed();
  const terminal = opts.tty ? hostTerminal() : undefined;

  const settings = resourceSettings(opts, config, navigator.hardwareConcurrency);
  // Grants: read here, so that a missing one fails before anything is made. Their hosts are allowed (HTTPS),
  // their variables get placeholders; the credentials go only to the policy point.
  let grants: RunGrants | undefined;
  if (settings.grants) {
    const made = loadRunGrants(moatHome(env), settings.grants);
    grants = made;
    settings.allow = [...new Set([...(settings.allow ?? []), ...made.allow])];
    for (const [k, v] of Object.entries(made.env)) {
      if (k in runEnv) {
        // Set by the user (-e, env:): that value is in the sandbox, where the grant's placeholder would be.
        say(
          `moat: warning: ${k} is set for this run (-e or env: in moat.yaml), so the sandbox holds that value, ` +
            `not the placeholder of grant ${
              v.replace(/^moat-grant-(.*)-placeholder$/, "$1")
            }; drop it to keep a key out of the sandbox`,
        );
      } else runEnv[k] = v;
    }
  }
  const standby = standbySettings(env);
  if (typeof standby === "string") {
    throw new UsageError(standby, "Set it in seconds (e.g. MOAT_STANDBY_IDLE=300), or unset it for 600");
  }
  const warm = warmWanted(opts.warm, env, config.warm);
  if (typeof warm === "string") throw new UsageError(warm, "Set MOAT_WARM=1 for warm runs, or unset it");
  const client: EngineClient = clientFromEnv(env);
  const warning = plainTcpWarning(client.endpoint);
  if (warning) say(warning);
  const onAllowList = (settings.network ?? DEFAULT_NETWORK) === "allowlist";
  if (!isLocalEndpoint(client.endpoint)) {
    // The allow list's relay joins moat's policy point through a socket directory on this host, which an
    // engine on another host cannot mount.
    const url = endpointUrl(client.endpoint);
    if (onAllowList) {
      throw new UsageError(
        `The allow-list network needs an engine on this host, and ${url} is on another: its relay reaches ` +
          "moat's policy point through a socket on this host",
        "Run without it (no network, or the engine's own):  --network none   or  --network default\n" +
          "or use an engine on this host:  unset DOCKER_HOST   (or  docker context use default)",
      );
    }
    say(
      `moat: the engine at ${url} is on another host: the workspace ${workspace.path} and every mount are ` +
        "that host's directories of those names",
    );
  }
  // Containers earlier moat processes left behind: looked for alongside the checks, reported before start.
  const orphans = maybeFindOrphans(() => client, home, engineTimeoutMs(env));
  // Extra mounts are checked on the host before anything is created on the engine.
  const socket = client.endpoint.kind === "unix" ? client.endpoint.path : undefined;
  const mounts = await resolveMounts(config.mounts ?? [], workspace.path, socket, {
    readOnly: settings.readOnly ?? false,
  });
  if (onAllowList) {
    // The relay runs under runc beside the sandbox; Podman runs every container under its default runtime.
    // (The ping is under way already: the orphan search's first request makes it.)
    const product = engineProduct((await client.systemPing()).server);
    if (product === "Podman") {
      throw new UsageError(
        `The allow-list network needs its relay to run under runc beside the sandbox, and the engine at ${
          endpointUrl(client.endpoint)
        } is Podman, which runs every container under its default runtime`,
        "Run without it (no network, or the engine's own):  --network none   or  --network default\n" +
          "or use Docker with gVisor registered (see moat doctor) for the allow list",
      );
    }
  }
  let pullLineShown = false;
  const result = await startRun({
    runId: newRunId(),
    name: opts.name ?? config.name,
    image,
    command: opts.command ?? config.command,
    env: runEnv,
    workspace: workspace.path,
    user,
    decision,
    keep: opts.keep,
    interactive: opts.interactive,
    tty: opts.tty,
    detach: opts.detach,
    profile: profileFor({ ...settings, mounts }),
    mounts,
    // What each source is, next to what the image has at its target: a directory onto a file fails.
    mountSourceKinds: mounts.map((m): PathKind => Deno.statSync(m.source).isDirectory ? "directory" : "file"),
    mountEntries: config.mounts ?? [],
    home,
    owner: currentOwner(),
    ...(grants ? { grants: grants.uses } : {}),
    warm,
  }, {
    client,
    env,
    interrupt: signals.interrupt,
    force: signals.force,
    io: {
      stdout: outputSink(1, Deno.stdout),
      stderr: outputSink(2, Deno.stderr),
      ...(opts.interactive ? { stdin: Deno.stdin } : {}),
      ...(terminal ? { terminal } : {}),
      now: () => Date.now(),
    },
    consoleSize: () => terminal?.size(),
    orphanNotice: orphans.then(orphanNotice),
    ...(detach ? { startRecorder: detach.startRecorder } : {}),
    ...(standby.enabled
      ? {
        standby: {
          claim: (key) => claimStandby(home, key),
          netKey: ownStandbyKey,
          spawn: (work) => spawnStandby(home, work),
        },
      }
      : {}),
  }, {
    phase: (text) => spinner.phase(text),
    progress: (line) => {
      if (tty) spinner.text(line);
      else if (!pullLineShown) {
        pullLineShown = true;
        stderrLine(`moat: ${line}`);
      }
    },
    say,
    started: () => spinner.stop(),
    stopping: (runId, sig, grace, starting) => {
      // In raw mode Ctrl-C is a key for the container, not a signal to moat.
      const again = sig === "SIGINT" && !(opts.tty && opts.interactive) && Deno.stdin.isTerminal()
        ? "press Ctrl-C again"
        : `signal again (kill -${sig.replace(/^SIG/, "")} ${Deno.pid})`;
      return `moat: stopping run ${runId} (${sig})${
        starting ? ", interrupted while its container was starting" : ""
      }: the command has ${grace} s to exit; ${again} to stop it now`;
    },
  });
  if ("exitCode" in result) return result.exitCode;
  try {
    await fdSink(Deno.stdout).write(encoder.encode(`${result.detached}\n`));
  } catch (err) {
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
  return 0;
}
