/**
 * `moat system containers` / `moat system images`: everything moat created or uses on the engine, found by
 * label, each with the `docker` command that removes it by hand. Read-only: nothing is changed, no record
 * is written.
 *
 * - containers: the containers labelled `dev.moat.managed=true` that are this MOAT_HOME's (`homeOf`; every
 *   one with `--all-homes`), with its role as `classifyContainer` sees it from this MOAT_HOME's records;
 * - images: the images those containers use, images labelled `dev.moat.built-by=setup` (scripts/setup.sh),
 *   and the default image (`debian:bookworm-slim`, and `$MOAT_IMAGE` when set) when present;
 * - networks: the networks labelled `dev.moat.managed=true` and named after their run (`moat-net-<id>`:
 *   an `--allow` run's, `moat doctor`'s) that are this MOAT_HOME's, with their role as `classifyNetwork`
 *   sees it — what `moat clean` removes (lib/run/clean.ts) is what this calls orphaned.
 */
import { labelOf, MANAGED_FILTER } from "../run/labels.ts";
import type { ContainerSummary, ImageSummary, NetworkInspect } from "../docker/types.ts";
import { UsageError } from "../errors.ts";
import { parseCommandArgs } from "./args.ts";
import { formatBytes } from "./format.ts";
import { DEFAULT_IMAGE } from "../run/image.ts";
import {
  classifyContainer,
  classifyNetwork,
  type ContainerHome,
  type ContainerRole,
  homeOf,
  liveContainerOwners,
  type NetworkRole,
  networkRunId,
  ownerLiveness,
  ownerOf,
  runIdOf,
} from "../run/orphans.ts";
import { maybeHomeId } from "../store/home_id.ts";
import type { Owner, RunRecord } from "../store/records.ts";
import { readRuns } from "../store/run_index.ts";
import { cliContext, formatTable } from "./context.ts";

export const SYSTEM_HELP = `Usage: moat system SUBCOMMAND [OPTIONS]

Show what moat created or uses on the Docker engine, found by label, with the docker command
that removes each by hand. Nothing is changed.

Subcommands:
  containers   This MOAT_HOME's containers (--all-homes: every one carrying dev.moat.managed=true)
  images       The images those containers use, images built by scripts/setup.sh
               (label dev.moat.built-by=setup), and the default image when present
  networks     This MOAT_HOME's run networks (moat-net-<id>: moat run --allow's, moat doctor's)

Options:
      --json     Print a JSON array instead of the table
  -h, --help     Print this help

Examples:
  moat system containers
  moat system images --json | jq -r '.[].remove'
  moat system networks
`;

export const SYSTEM_NETWORKS_HELP = `Usage: moat system networks [OPTIONS]

List the run networks of this MOAT_HOME on the engine (label dev.moat.managed=true, named
moat-net-<run id>: a moat run --allow's own network, or moat doctor's), by name, with the command
that removes it by hand. --all-homes lists every one, with a HOME column.

Columns:
  NETWORK      its name, moat-net-<run id>
  RUN          the run id (label dev.moat.run-id)
  ROLE         active (its moat process lives), standby (made ahead of the next --allow run;
               moat removes it once it has expired) or orphaned (no live moat process;
               moat clean removes it with its run); ", doctor" marks moat doctor's
  SUBNET       its IPv4 subnet (a /28 of 10.237.0.0/16)
  HOME         (--all-homes) this, other or unknown, as for containers
  REMOVE WITH  docker network rm <name> (remove the run's containers first)

Options:
      --all-homes  Every moat network on the engine, whichever MOAT_HOME made it
      --json       Print a JSON array: id, name, runId, runName, workspace, subnet, probe, role,
                   home, remove
  -h, --help       Print this help

Examples:
  moat system networks
  moat system networks --json | jq -r '.[] | select(.role == "orphaned") | .name'
`;

export const SYSTEM_CONTAINERS_HELP = `Usage: moat system containers [OPTIONS]

List the containers of this MOAT_HOME on the engine (label dev.moat.managed=true, and
dev.moat.home naming this MOAT_HOME, or a run recorded here), newest first, with the command
that removes it by hand. --all-homes lists every moat container, with a HOME column.

Columns:
  CONTAINER    the container id (12 characters)
  RUN          the run id (label dev.moat.run-id)
  ROLE         active (its moat process lives), kept (its run ended, kept with --keep),
               standby (a relay made ahead of the next --allow run; it stops by itself
               when no run takes it), or orphaned (no live moat process; moat clean
               removes it); ", probe" marks moat's helper containers (the passwd and
               paths probes, doctor's, a run's network relay)
  STATE        the engine's state: created, running, exited, …
  IMAGE        the image it was created from
  HOME         (--all-homes) this, other (another MOAT_HOME's), or unknown (made by a moat
               that did not label its MOAT_HOME, with no record here)
  REMOVE WITH  docker rm -f <id>

Options:
      --all-homes  Every moat container on the engine, whichever MOAT_HOME made it
      --json       Print a JSON array: id, name, image, state, status, created, runId, runName,
                   workspace, probe, role, home, remove
  -h, --help       Print this help

Examples:
  moat system containers
  moat system containers --all-homes
  moat system containers --json | jq -r '.[] | select(.role == "orphaned") | .id'
`;

export const SYSTEM_IMAGES_HELP = `Usage: moat system images [OPTIONS]

List the images moat uses on the engine: the images of moat's containers, the images
scripts/setup.sh built (label dev.moat.built-by=setup), and the default image
(${DEFAULT_IMAGE}, and $MOAT_IMAGE when set) when present.

Columns:
  IMAGE        its tags (or <none>)
  ID           the image id (12 characters)
  SIZE         the image's size
  WHY          used by N containers, built by setup, default image, MOAT_IMAGE
  REMOVE WITH  docker rmi <tags or id> (remove the containers that use it first)

Options:
      --json     Print a JSON array: id, tags, size, created, reasons, usedBy, remove
  -h, --help     Print this help

Examples:
  moat system images
  moat system images --json | jq -r '.[].remove'
`;

export interface ParsedSystemArgs {
  help: boolean;
  sub: "containers" | "images" | "networks" | undefined;
  json: boolean;
  /** `containers --all-homes`: every moat container, not only this MOAT_HOME's. */
  allHomes: boolean;
}

const SUBCOMMANDS_HINT = "List moat's containers:  moat system containers\n" +
  "List the images moat uses:  moat system images\nList moat's networks:  moat system networks";

/** Parse `moat system` arguments. Pure; throws `UsageError`. */
export function parseSystemArgs(args: string[]): ParsedSystemArgs {
  const parsed = parseCommandArgs("system", args, {
    help: { type: "boolean", short: "h" },
    json: { type: "boolean" },
    "all-homes": { type: "boolean" },
  });
  const { values, positionals } = parsed;
  const [sub, extra] = positionals;
  if (sub !== undefined && sub !== "containers" && sub !== "images" && sub !== "networks") {
    throw new UsageError(`Unknown subcommand "${sub}" for moat system`, SUBCOMMANDS_HINT);
  }
  if (values.help) return { help: true, sub, json: false, allHomes: false };
  if (sub === undefined) {
    throw new UsageError("moat system needs a subcommand: containers, images or networks", SUBCOMMANDS_HINT);
  }
  if (extra !== undefined) {
    throw new UsageError(
      `Unexpected argument "${extra}": moat system ${sub} takes no arguments`,
      `See:  moat system ${sub} --help`,
    );
  }
  if (values["all-homes"] && sub === "images") {
    throw new UsageError(
      `--all-homes is an option of moat system containers and networks, not of moat system ${sub}`,
      "List every moat container on the engine:  moat system containers --all-homes",
    );
  }
  return { help: false, sub, json: values.json ?? false, allHomes: values["all-homes"] ?? false };
}

/** One of moat's containers as `moat system containers` shows it. */
export interface SystemContainer {
  id: string;
  name: string;
  image: string;
  state: string;
  status: string;
  /** Unix seconds. */
  created: number;
  runId: string | null;
  runName: string | null;
  workspace: string | null;
  probe: boolean;
  role: ContainerRole;
  /** Whose it is, seen from this MOAT_HOME (`homeOf`). */
  home: ContainerHome;
  remove: string;
}

/**
 * Describe each container, newest first. `alive` says whether a container's owner lives; `homeId` is this
 * MOAT_HOME's id (`maybeHomeId`). Pure.
 */
export function systemContainers(
  containers: ContainerSummary[],
  records: RunRecord[],
  alive: (c: ContainerSummary, record: RunRecord | undefined) => boolean,
  homeId?: string,
): SystemContainer[] {
  const byId = new Map(records.map((r) => [r.id, r]));
  return [...containers].sort((a, b) => b.Created - a.Created).map((c) => {
    const runId = runIdOf(c) ?? null;
    const record = runId ? byId.get(runId) : undefined;
    return {
      id: c.Id,
      name: (c.Names[0] ?? "").replace(/^\//, ""),
      image: c.Image,
      state: c.State,
      status: c.Status,
      created: c.Created,
      runId,
      runName: labelOf(c, "name") ?? null,
      workspace: labelOf(c, "workspace") ?? null,
      probe: Boolean(labelOf(c, "probe")),
      role: classifyContainer(c, record, alive(c, record)),
      home: homeOf(c, homeId, (id) => byId.has(id)),
      remove: `docker rm -f ${c.Id.slice(0, 12)}`,
    };
  });
}

/** The table; `withHome` adds the HOME column (`--all-homes`). Pure. */
export function formatContainersTable(items: SystemContainer[], withHome = false): string {
  return formatTable(
    ["CONTAINER", "RUN", "ROLE", "STATE", "IMAGE", ...(withHome ? ["HOME"] : []), "REMOVE WITH"],
    items.map((c) => [
      c.id.slice(0, 12),
      c.runId ?? "-",
      c.probe ? `${c.role}, probe` : c.role,
      c.state,
      c.image,
      ...(withHome ? [c.home] : []),
      c.remove,
    ]),
  );
}

export type ImageReason = "in-use" | "built-by-setup" | "default-image" | "moat-image";

/** One image moat uses, as `moat system images` shows it. */
export interface SystemImage {
  id: string;
  tags: string[];
  size: number;
  /** Unix seconds. */
  created: number;
  reasons: ImageReason[];
  /** Ids of moat's containers created from it. */
  usedBy: string[];
  remove: string;
}

/** `busybox` → `busybox:latest`; references with a tag or a digest as given. Pure. */
export function withTag(ref: string): string {
  if (ref.includes("@")) return ref;
  return ref.lastIndexOf(":") > ref.lastIndexOf("/") ? ref : `${ref}:latest`;
}

/**
 * Select moat's images among all of the engine's: used by one of `containers`, labelled built-by=setup,
 * or tagged as one of `defaults` (the default image, `$MOAT_IMAGE`). Pure.
 */
export function systemImages(
  images: ImageSummary[],
  containers: ContainerSummary[],
  defaults: { ref: string; reason: ImageReason }[],
): SystemImage[] {
  const out: SystemImage[] = [];
  for (const img of images) {
    const tags = (img.RepoTags ?? []).filter((t) => t !== "<none>:<none>");
    const usedBy = containers.filter((c) =>
      c.ImageID === img.Id || c.Image === img.Id || `sha256:${c.Image}` === img.Id ||
      tags.includes(withTag(c.Image))
    ).map((c) => c.Id);
    const reasons: ImageReason[] = [];
    if (usedBy.length) reasons.push("in-use");
    if (labelOf(img, "builtBy") === "setup") reasons.push("built-by-setup");
    for (const d of defaults) {
      if (tags.includes(withTag(d.ref)) && !reasons.includes(d.reason)) reasons.push(d.reason);
    }
    if (reasons.length === 0) continue;
    out.push({
      id: img.Id,
      tags,
      size: img.Size,
      created: img.Created,
      reasons,
      usedBy,
      remove: `docker rmi ${tags.length ? tags.join(" ") : img.Id.replace(/^sha256:/, "").slice(0, 12)}`,
    });
  }
  return out.sort((a, b) => b.usedBy.length - a.usedBy.length || b.created - a.created);
}

/** The WHY column. Pure. */
export function reasonsText(img: SystemImage): string {
  return img.reasons.map((r) => {
    switch (r) {
      case "in-use":
        return `used by ${img.usedBy.length} container${img.usedBy.length === 1 ? "" : "s"}`;
      case "built-by-setup":
        return "built by setup";
      case "default-image":
        return "default image";
      case "moat-image":
        return "MOAT_IMAGE";
    }
  }).join(", ");
}

export function formatImagesTable(items: SystemImage[]): string {
  return formatTable(
    ["IMAGE", "ID", "SIZE", "WHY", "REMOVE WITH"],
    items.map((i) => [
      i.tags.length ? i.tags.join(",") : "<none>",
      i.id.replace(/^sha256:/, "").slice(0, 12),
      formatBytes(i.size),
      reasonsText(i),
      i.remove,
    ]),
  );
}

/** One of moat's networks as `moat system networks` shows it. */
export interface SystemNetwork {
  id: string;
  name: string;
  runId: string;
  runName: string | null;
  workspace: string | null;
  /** Its IPv4 subnet(s), comma-separated; `null` when the engine lists none. */
  subnet: string | null;
  /** `dev.moat.probe` (`doctor` for moat doctor's), `null` for a run's own. */
  probe: string | null;
  role: NetworkRole;
  home: ContainerHome;
  remove: string;
}

/**
 * Describe moat's run networks (only those named after their run, `networkRunId`), by name. `alive` says
 * whether a network's owner (`ownerOf` with its run's record) lives; `homeId`
 * is this MOAT_HOME's id. Pure.
 */
export function systemNetworks(
  networks: NetworkInspect[],
  records: RunRecord[],
  alive: (owner: Owner | undefined) => boolean,
  homeId?: string,
): SystemNetwork[] {
  const byId = new Map(records.map((r) => [r.id, r]));
  const out: SystemNetwork[] = [];
  for (const n of networks) {
    const runId = networkRunId(n);
    if (runId === undefined) continue;
    const subnets = (n.IPAM?.Config ?? []).map((c) => c.Subnet).filter((x): x is string => !!x);
    out.push({
      id: n.Id,
      name: n.Name,
      runId,
      runName: labelOf(n, "name") ?? null,
      workspace: labelOf(n, "workspace") ?? null,
      subnet: subnets.length ? subnets.join(",") : null,
      probe: labelOf(n, "probe") ?? null,
      role: classifyNetwork(n, byId.has(runId), alive(ownerOf(n, byId.get(runId)))),
      home: homeOf(n, homeId, (id) => byId.has(id)),
      remove: `docker network rm ${n.Name}`,
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** The networks table; `withHome` adds the HOME column (`--all-homes`). Pure. */
export function formatNetworksTable(items: SystemNetwork[], withHome = false): string {
  return formatTable(
    ["NETWORK", "RUN", "ROLE", "SUBNET", ...(withHome ? ["HOME"] : []), "REMOVE WITH"],
    items.map((n) => [
      n.name,
      n.runId,
      n.probe === "doctor" ? `${n.role}, doctor` : n.role,
      n.subnet ?? "-",
      ...(withHome ? [n.home] : []),
      n.remove,
    ]),
  );
}

export async function command(args: string[]): Promise<number> {
  const opts = parseSystemArgs(args);
  const ctx = cliContext();
  if (opts.help) {
    await ctx.out(
      opts.sub === "containers"
        ? SYSTEM_CONTAINERS_HELP
        : opts.sub === "images"
        ? SYSTEM_IMAGES_HELP
        : opts.sub === "networks"
        ? SYSTEM_NETWORKS_HELP
        : SYSTEM_HELP,
    );
    return 0;
  }
  ctx.checkEnv();
  const client = ctx.client();
  if (opts.sub === "networks") return await listNetworks(ctx, opts);
  const containers = await client.containerList([MANAGED_FILTER]);
  let text: string;
  if (opts.sub === "containers") {
    // The records of the runs the containers belong to (read from the index's summaries, not every one).
    const ids = new Set(containers.map(runIdOf));
    const records = readRuns(ctx.home).runs.filter((r) => ids.has(r.id)).map((r) => r.record);
    const byRun = new Map(records.map((r) => [r.id, r]));
    const alive = liveContainerOwners(containers, (id) => byRun.get(id), ownerLiveness());
    const all = systemContainers(containers, records, (c) => alive.has(c.Id), maybeHomeId(ctx.home));
    const items = opts.allHomes ? all : all.filter((c) => c.home === "this");
    if (!opts.json && all.length === 0) ctx.note("moat: no container on this engine carries moat's labels");
    else if (!opts.json && items.length === 0) {
      ctx.note(
        `moat: no container of this MOAT_HOME on this engine; ${all.length} of other MOAT_HOMEs:  ` +
          "moat system containers --all-homes",
      );
    }
    text = opts.json
      ? JSON.stringify(items, null, 2) + "\n"
      : items.length
      ? formatContainersTable(items, opts.allHomes)
      : "";
  } else {
    const defaults: { ref: string; reason: ImageReason }[] = [{
      ref: DEFAULT_IMAGE,
      reason: "default-image",
    }];
    const configured = ctx.env["MOAT_IMAGE"]?.trim();
    if (configured) defaults.push({ ref: configured, reason: "moat-image" });
    const items = systemImages(await client.imageList(), containers, defaults);
    if (!opts.json && items.length === 0) ctx.note("moat: moat uses no image on this engine");
    text = opts.json ? JSON.stringify(items, null, 2) + "\n" : items.length ? formatImagesTable(items) : "";
  }
  try {
    await ctx.out(text);
  } catch (err) {
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
  return 0;
}

async function listNetworks(ctx: ReturnType<typeof cliContext>, opts: ParsedSystemArgs): Promise<number> {
  const networks = await ctx.client().networkList([MANAGED_FILTER]);
  const ids = new Set(networks.map(networkRunId));
  const records = readRuns(ctx.home).runs.filter((r) => ids.has(r.id)).map((r) => r.record);
  const isAlive = ownerLiveness();
  const all = systemNetworks(networks, records, (o) => o !== undefined && isAlive(o), maybeHomeId(ctx.home));
  const items = opts.allHomes ? all : all.filter((n) => n.home === "this");
  if (!opts.json && all.length === 0) ctx.note("moat: no network on this engine carries moat's labels");
  else if (!opts.json && items.length === 0) {
    ctx.note(
      `moat: no network of this MOAT_HOME on this engine; ${all.length} of other MOAT_HOMEs:  ` +
        "moat system networks --all-homes",
    );
  }
  const text = opts.json
    ? JSON.stringify(items, null, 2) + "\n"
    : items.length
    ? formatNetworksTable(items, opts.allHomes)
    : "";
  try {
    await ctx.out(text);
  } catch (err) {
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
  return 0;
}
