/**
 * Extra bind mounts (`mounts:` in moat.yaml, issue 5): which targets are allowed (pure), and turning each
 * source into a real host path that exists and is safe to hand to the command (the edge). Free of the YAML
 * parser and zod, which load only with a config file.
 */
import { DEFAULT_SOCKET } from "../docker/endpoint.ts";
import { ConfigError, type ConfigPosition } from "../errors.ts";
import { WORKSPACE_TARGET } from "./plan.ts";

/** One `mounts:` entry of the config. `where` is the entry's position, for errors found later (a missing source). */
export interface MountEntry {
  /** As written: absolute, or relative to the workspace. */
  source: string;
  target: string;
  readonly: boolean;
  where: ConfigPosition;
}

/** A mount ready for the create body: `source` is an absolute, resolved host path. */
export interface ResolvedMount {
  source: string;
  target: string;
  readonly: boolean;
}

/** The first thing wrong with a list of mounts: which one, what (completes "mounts[i].target: …"), the fix. */
export interface MountProblem<M> {
  mount: M;
  index: number;
  problem: string;
  hint: string;
}

/** Where `read_only: true` puts a writable tmpfs; a bind mount there is a "Duplicate mount point". */
const READ_ONLY_TMPFS = "/tmp";

/**
 * Check every target. Allowed: an absolute, plainly written path (no `.` or `..` parts, no `//`, no trailing
 * `/`) used by one mount only, that neither is, contains nor lies inside `/workspace`, is not `/`, not `/proc`
 * or inside it (runc refuses those at start), not `/dev` or `/sys` themselves (the container needs what the
 * runtime puts there), and not `/tmp` when `readOnly` (the tmpfs is there). Nested targets (`/data` and
 * `/data/cache`) are fine: the engine mounts the outer one first.
 */
export function checkMountTargets<M extends { target: string }>(
  mounts: readonly M[],
  options: { readOnly?: boolean } = {},
): MountProblem<M> | undefined {
  const seen = new Map<string, number>();
  for (const [index, mount] of mounts.entries()) {
    const t = mount.target;
    const q = JSON.stringify(t);
    const fail = (problem: string, hint: string) => ({ mount, index, problem, hint });
    const elsewhere = "Mount it at a directory of its own, e.g.  target: /data";
    if (!t.startsWith("/")) {
      return fail(
        `must be an absolute path in the container, such as /data; got ${q}`,
        `Write  target: ${normalisePath(`/${t}`)}`,
      );
    }
    if (normalisePath(t) !== t) {
      return fail(
        `must be written plainly, without "." or ".." parts, "//" or a trailing "/"; got ${q}`,
        `Write  target: ${normalisePath(t)}`,
      );
    }
    // Only "/" contains /workspace today; the general test keeps holding if the workspace moves deeper.
    if (t === "/" || WORKSPACE_TARGET.startsWith(`${t}/`)) {
      return fail(
        `${q} would hide ${WORKSPACE_TARGET}` +
          (t === "/" ? " and replace the container's whole filesystem" : ", where moat mounts the workspace"),
        elsewhere,
      );
    }
    if (t === WORKSPACE_TARGET || t.startsWith(`${WORKSPACE_TARGET}/`)) {
      return fail(
        `${q} is ${t === WORKSPACE_TARGET ? "" : "inside "}${WORKSPACE_TARGET}, ` +
          "where moat mounts the workspace",
        "Put the files in the workspace itself, or mount them elsewhere, e.g.  target: /data",
      );
    }
    if (t === "/proc" || t.startsWith("/proc/")) {
      return fail(
        `${q} is in /proc, which the container's kernel provides; ` +
          "runc refuses mounts there",
        elsewhere,
      );
    }
    if (t === "/dev" || t === "/sys") {
      return fail(
        `${q} would replace the ${t} the container runtime provides`,
        elsewhere,
      );
    }
    if (options.readOnly && t === READ_ONLY_TMPFS) {
      return fail(
        `"/tmp" is where read_only: true puts a writable tmpfs`,
        "Mount it elsewhere or inside /tmp, e.g.  target: /tmp/data",
      );
    }
    const first = seen.get(t);
    if (first !== undefined) {
      return fail(
        `${q} is also the target of mounts[${first}]`,
        "Give each mount a target of its own",
      );
    }
    seen.set(t, index);
  }
  return undefined;
}

/** Whether a path is a directory or something else; `absent` when it does not exist. */
export type PathKind = "directory" | "file" | "absent";

/**
 * The targets whose kind in the image matters: a target inside another mount's target is hidden from the
 * image by that mount, so only the others are looked up. Pure.
 */
export function targetsToProbe(mounts: readonly { target: string }[]): string[] {
  const targets = mounts.map((m) => m.target);
  return targets.filter((t) => !targets.some((o) => t.startsWith(`${o}/`)));
}

/**
 * The first mount whose source and target differ in kind: a directory onto a file of the image, or a file
 * onto a directory. The runtime refuses such a mount when it starts the container (runc says "not a
 * directory"; under gVisor the sandbox only fails to start). `sourceKinds[i]` is mount i's source on the
 * host; `targetKinds` the image's path at each target looked up (`targetsToProbe`), after following links;
 * an unknown or absent target is fine (the runtime creates it). Pure.
 */
export function checkMountKinds<M extends { source: string; target: string }>(
  mounts: readonly M[],
  sourceKinds: readonly PathKind[],
  targetKinds: ReadonlyMap<string, PathKind>,
  image: string,
): MountProblem<M> | undefined {
  for (const [index, mount] of mounts.entries()) {
    const source = sourceKinds[index];
    const target = targetKinds.get(mount.target);
    if (source === undefined || target === undefined || target === "absent" || source === target) continue;
    const q = JSON.stringify(mount.target);
    const name = baseName(mount.source.replace(/\/+$/, ""));
    const base = name === "" || name === "." || name === ".." ? "data" : name;
    return source === "directory"
      ? {
        mount,
        index,
        problem:
          `${q} is a file in the image ${image}, and the source ${JSON.stringify(mount.source)} is a ` +
          "directory: the container runtime cannot mount a directory onto a file",
        hint: `Mount the directory at a path that is not a file in the image, e.g.  target: /mnt/${base}`,
      }
      : {
        mount,
        index,
        problem:
          `${q} is a directory in the image ${image}, and the source ${JSON.stringify(mount.source)} is ` +
          "a file: the container runtime cannot mount a file onto a directory",
        hint: `Mount the file inside that directory instead, e.g.  target: ${mount.target}/${base}`,
      };
  }
  return undefined;
}

/** A problem `checkMountKinds` found, as the config error at the entry's position (`mounts[i].target`). */
export function mountKindError(bad: MountProblem<MountEntry>): ConfigError {
  return mountError(bad.mount, `mounts[${bad.index}].target`, bad.problem, bad.hint);
}

/** `/a//b/./c/../d/` → `/a/b/d`. Lexical: symlinks are not followed. `path` must be absolute. */
function normalisePath(path: string): string {
  const parts: string[] = [];
  for (const seg of path.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") parts.pop();
    else parts.push(seg);
  }
  return `/${parts.join("/")}`;
}

/** The name refused wherever it appears: the engine's conventional socket. */
const SOCKET_NAME = "docker.sock";

const SOCKET_WHY = "whoever can connect to it controls the engine, and through it the host (it can start a " +
  "privileged container with the host's root mounted), which would undo the sandbox; read-only does not " +
  "help, since connecting to a socket needs no write access";

/**
 * Check the targets (as `checkMountTargets`), then resolve each source: relative to `workspace` unless
 * absolute, symlinks followed, and it must exist. Refused: the host root, the engine's socket
 * (`engineSocket`, and the default `/var/run/docker.sock` in any case), a directory containing it, and any
 * path named `docker.sock` or directory holding one. Errors are `ConfigError`s at the entry's `where`, with
 * the field path `mounts[i].source` (`i` is the index in `mounts`). `workspace` must be absolute.
 */
export async function resolveMounts(
  mounts: readonly MountEntry[],
  workspace: string,
  engineSocket: string | undefined,
  options: { readOnly?: boolean } = {},
): Promise<ResolvedMount[]> {
  const bad = checkMountTargets(mounts, options);
  if (bad) throw mountError(bad.mount, `mounts[${bad.index}].target`, bad.problem, bad.hint);

  const sockets = await Promise.all(
    [...new Set([DEFAULT_SOCKET, ...(engineSocket ? [engineSocket] : [])])].map(async (given) => ({
      given,
      real: await canonical(given),
      stat: await Deno.stat(given).catch(() => undefined),
    })),
  );

  const out: ResolvedMount[] = [];
  for (const [i, m] of mounts.entries()) {
    const field = `mounts[${i}].source`;
    const shown = JSON.stringify(m.source);
    const onlyWhatItNeeds = "Mount only the directories the command needs, e.g.  source: ./data";
    if (m.source === "") throw mountError(m, field, "must not be empty", onlyWhatItNeeds);
    const resolved = normalisePath(m.source.startsWith("/") ? m.source : `${workspace}/${m.source}`);
    let real: string;
    try {
      real = await Deno.realPath(resolved);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        const relative = m.source.startsWith("/") ? "" : ` (relative to the workspace ${workspace})`;
        throw mountError(
          m,
          field,
          `${shown} does not exist: no ${resolved}${relative}`,
          m.source.startsWith("~")
            ? "moat does not expand ~; write the absolute path, e.g.  source: /home/me/data"
            : `Create it first:  mkdir -p ${resolved}\nor correct the source`,
        );
      }
      throw mountError(
        m,
        field,
        `${shown} cannot be used (${resolved}): ${err instanceof Error ? err.message : String(err)}`,
        `Check the path and its permissions:  ls -ld ${resolved}`,
      );
    }

    if (real === "/") {
      throw mountError(
        m,
        field,
        `${shown} is the host's root directory: the command would get every file on the host, ` +
          "the engine's socket included, which would undo the sandbox",
        onlyWhatItNeeds,
      );
    }
    const stat = await Deno.stat(real).catch(() => undefined);
    for (const s of sockets) {
      const same = real === s.real ||
        (stat?.ino != null && stat.ino === s.stat?.ino && stat.dev === s.stat.dev);
      if (same) {
        throw mountError(
          m,
          field,
          `${shown} is the Docker engine's socket: ${SOCKET_WHY}`,
          onlyWhatItNeeds,
        );
      }
      if (s.real.startsWith(`${real}/`)) {
        throw mountError(
          m,
          field,
          `${shown} (${real}) contains the Docker engine's socket ${s.real}: ${SOCKET_WHY}`,
          `Mount only what the command needs, from a directory that does not hold ${s.real}`,
        );
      }
    }
    if (baseName(real) === SOCKET_NAME || baseName(resolved) === SOCKET_NAME) {
      throw mountError(
        m,
        field,
        `${shown} is named ${SOCKET_NAME}, a Docker engine's socket: ${SOCKET_WHY}`,
        onlyWhatItNeeds,
      );
    }
    if (stat?.isDirectory && await exists(`${real}/${SOCKET_NAME}`)) {
      throw mountError(
        m,
        field,
        `${shown} (${real}) holds ${real}/${SOCKET_NAME}, a Docker engine's socket: ${SOCKET_WHY}`,
        `Mount only what the command needs, from a directory that does not hold a ${SOCKET_NAME}`,
      );
    }
    out.push({ source: real, target: m.target, readonly: m.readonly });
  }
  return out;
}

/** A problem with one entry, reported at its position in the config file. */
function mountError(m: MountEntry, path: string, problem: string, hint: string): ConfigError {
  return new ConfigError(m.where.file, m.where.line, m.where.col, path, problem, hint);
}

/**
 * The socket's real path when it exists; else its directory's real path and its name (`/var/run` is often
 * a link to `/run`), else the path as given.
 */
async function canonical(path: string): Promise<string> {
  const p = normalisePath(path);
  try {
    return await Deno.realPath(p);
  } catch { /* absent: resolve what we can */ }
  const cut = p.lastIndexOf("/");
  try {
    const dir = await Deno.realPath(p.slice(0, cut) || "/");
    return dir === "/" ? `/${p.slice(cut + 1)}` : `${dir}/${p.slice(cut + 1)}`;
  } catch {
    return p;
  }
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
