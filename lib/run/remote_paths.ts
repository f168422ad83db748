/**
 * With an engine on another host, the workspace and the mounted directories are that host's directories of
 * the same path (docs/concepts/engines.md). One of the same name that is not the user's would be mounted
 * silently, so before a run moat checks each: it writes a marker file into each directory here and looks for
 * it through a created, never started container that binds the directories on the engine's host (the archive
 * API reads a container's binds without running anything, like the passwd probe). Every marker is removed
 * again. Mounted files are not checked (a marker cannot go into a file).
 */
import type { EngineClient } from "../docker/client.ts";
import { EngineApiError, MoatError } from "../errors.ts";
import { LABELS } from "./labels.ts";

/** The directory each checked directory is bound at in the probe container. */
const PROBE_ROOT = "/moat-path-check";

/** The marker's name for one check (a random token, so that no file of the user's can pass for it). Pure. */
export function markerName(token: string): string {
  return `.moat-same-directory-${token}`;
}

/**
 * Check that each of `dirs` (absolute paths on this host) is the same directory on the engine's host (`url`,
 * for messages). Throws `MoatError` naming the first that is not (or is absent there).
 */
export async function checkRemoteDirectories(
  client: EngineClient,
  url: string,
  imageId: string,
  labels: Record<string, string>,
  dirs: readonly string[],
): Promise<void> {
  if (dirs.length === 0) return;
  const token = crypto.randomUUID().replaceAll("-", "");
  const marker = markerName(token);
  const written: string[] = [];
  let id: string | undefined;
  try {
    for (const dir of dirs) {
      await Deno.writeTextFile(
        `${dir}/${marker}`,
        "moat checks that the engine's host sees this directory\n",
        {
          createNew: true,
        },
      );
      written.push(`${dir}/${marker}`);
    }
    try {
      ({ Id: id } = await client.containerCreate({
        Image: imageId,
        // Never started: the command only has to be non-empty for create to accept an image without CMD.
        Cmd: ["/moat-path-check"],
        Labels: { ...labels, [LABELS.probe]: "paths" },
        HostConfig: {
          NetworkMode: "none",
          Mounts: dirs.map((dir, i) => ({
            Type: "bind",
            Source: dir,
            Target: `${PROBE_ROOT}/${i}`,
            ReadOnly: true,
          })),
        },
      }));
    } catch (err) {
      const said = err instanceof EngineApiError ? err.daemonMessage : "";
      const missing = /bind source path does not exist: (.*)$/im.exec(said);
      if (!missing) throw err;
      throw notThere(url, missing[1]!.trim(), "does not exist there");
    }
    for (const [i, dir] of dirs.entries()) {
      const seen = await client.maybeContainerArchiveInfo(id, `${PROBE_ROOT}/${i}/${marker}`);
      if (seen === undefined) throw notThere(url, dir, "is another directory there");
    }
  } finally {
    if (id) await client.containerRemove(id).catch(() => {});
    for (const path of written) await Deno.remove(path).catch(() => {});
  }
}

function notThere(url: string, dir: string, what: string): MoatError {
  return new MoatError(
    `${dir} ${what}: the engine at ${url} runs on another host, and mounts that host's ${dir}, not this one's ` +
      "(a file moat put here is not there)",
    "Make the same directory there (e.g. rsync it, or share it at the same path), or use an engine on this " +
      "host:  unset DOCKER_HOST   (or  docker context use default)",
  );
}
