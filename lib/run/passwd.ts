/**
 * The image's `/etc/passwd`, needed to know whether the workspace owner has a home in the image. Read once
 * per image id through the archive endpoint of a created, never started container (nothing runs, so no
 * runtime is involved), then cached under `MOAT_HOME/cache/passwd/`.
 */
import { LABELS } from "./labels.ts";
import type { EngineClient } from "../docker/client.ts";

/** The passwd text, or `undefined` when the image has none. */
export async function readImagePasswd(
  client: EngineClient,
  home: string,
  imageId: string,
  labels: Record<string, string>,
  runtime: string | undefined,
): Promise<string | undefined> {
  const found = await readImageFile(client, home, imageId, labels, runtime, "passwd", ["/etc/passwd"]);
  return found?.text;
}

/**
 * The first of `paths` that is a file in the image (a symbolic link is not followed: name its target too),
 * and its text; `undefined` when none is. Read through a created, never started container; cached per image
 * under `MOAT_HOME/cache/<what>/`.
 */
export async function readImageFile(
  client: EngineClient,
  home: string,
  imageId: string,
  labels: Record<string, string>,
  runtime: string | undefined,
  what: string,
  paths: readonly string[],
): Promise<{ path: string; text: string } | undefined> {
  const key = imageId.replace(/^sha256:/, "").replace(/[^a-f0-9]/g, "").slice(0, 64);
  const cacheFile = `${home}/cache/${what}/${key}`;
  try {
    const cached = await Deno.readTextFile(cacheFile);
    const nl = cached.indexOf("\n");
    const first = cached.slice(0, nl);
    if (first === "absent") return undefined;
    // `present` alone: written by an earlier moat, for the one path it read.
    const path = first === "present" ? paths[0]! : first.slice("present ".length);
    if (first === "present" || (first.startsWith("present ") && paths.includes(path))) {
      return { path, text: cached.slice(nl + 1) };
    }
  } catch { /* not cached yet */ }

  // The probe carries the run's labels (so `docker ps --filter label=dev.moat.run-id=…` finds it) and the
  // run's runtime, though it is never started.
  const { Id } = await client.containerCreate({
    Image: imageId,
    // Never started: the command only has to be non-empty for create to accept an image without CMD.
    Cmd: [`/moat-${what}-probe`],
    Labels: { ...labels, [LABELS.probe]: what },
    HostConfig: runtime === undefined ? {} : { Runtime: runtime },
  });
  let found: { path: string; text: string } | undefined;
  try {
    for (const path of paths) {
      const bytes = await client.maybeContainerFile(Id, path);
      if (bytes === undefined) continue;
      found = { path, text: new TextDecoder().decode(bytes) };
      break;
    }
  } finally {
    await client.containerRemove(Id).catch(() => {});
  }
  try {
    await Deno.mkdir(`${home}/cache/${what}`, { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(
      cacheFile,
      found === undefined ? "absent\n" : `present ${found.path}\n${found.text}`,
    );
  } catch { /* a cache that cannot be written only costs time */ }
  return found;
}
