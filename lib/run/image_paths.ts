/**
 * What some paths are in an image's filesystem (a directory, something else, or absent), for the mounts
 * check: the runtime refuses a directory mounted onto a file and a file onto a directory. Read like the
 * passwd probe (passwd.ts), through a created, never started container, so no runtime runs; cached per image
 * id under `MOAT_HOME/cache/paths/`.
 */
import { LABELS } from "./labels.ts";
import type { EngineClient } from "../docker/client.ts";
import { MODE_DIR, MODE_SYMLINK, type PathStat } from "../docker/containers.ts";
import type { PathKind } from "./mounts.ts";

/** Links followed at most this many times (each answer has the link's target already resolved). */
const MAX_LINKS = 8;

const hasBit = (mode: number, bit: number) => Math.floor(mode / bit) % 2 === 1;

/**
 * The kind of each of `paths` in the image `imageId`, symbolic links followed. A path the engine could not
 * say anything about is left out of the map. `labels` and `runtime` are the run's, as for the passwd probe.
 */
export async function imagePathKinds(
  client: EngineClient,
  home: string,
  imageId: string,
  labels: Record<string, string>,
  runtime: string | undefined,
  paths: readonly string[],
): Promise<Map<string, PathKind>> {
  const key = imageId.replace(/^sha256:/, "").replace(/[^a-f0-9]/g, "").slice(0, 64);
  const cacheFile = `${home}/cache/paths/${key}.json`;
  let cached: Record<string, PathKind> = {};
  try {
    cached = JSON.parse(await Deno.readTextFile(cacheFile));
  } catch { /* not cached yet */ }
  const kinds = new Map<string, PathKind>();
  for (const p of paths) if (Object.hasOwn(cached, p)) kinds.set(p, cached[p]!);
  const missing = paths.filter((p) => !kinds.has(p));
  if (missing.length === 0) return kinds;

  const { Id } = await client.containerCreate({
    Image: imageId,
    // Never started: the command only has to be non-empty for create to accept an image without CMD.
    Cmd: ["/moat-path-probe"],
    Labels: { ...labels, [LABELS.probe]: "paths" },
    HostConfig: runtime === undefined ? {} : { Runtime: runtime },
  });
  try {
    for (const path of missing) {
      const kind = await pathKind(client, Id, path).catch(() => undefined);
      if (kind === undefined) continue;
      kinds.set(path, kind);
      cached[path] = kind;
    }
  } finally {
    await client.containerRemove(Id).catch(() => {});
  }
  try {
    await Deno.mkdir(`${home}/cache/paths`, { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(cacheFile, JSON.stringify(cached));
  } catch { /* a cache that cannot be written only costs time */ }
  return kinds;
}

async function pathKind(client: EngineClient, id: string, path: string): Promise<PathKind | undefined> {
  let at = path;
  for (let hop = 0; hop <= MAX_LINKS; hop++) {
    const stat: PathStat | undefined = await client.maybeContainerArchiveInfo(id, at);
    if (stat === undefined) return "absent";
    if (!hasBit(stat.mode, MODE_SYMLINK)) return hasBit(stat.mode, MODE_DIR) ? "directory" : "file";
    if (!stat.linkTarget || stat.linkTarget === at) return undefined;
    at = stat.linkTarget;
  }
  return undefined;
}
