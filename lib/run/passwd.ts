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
  const key = imageId.replace(/^sha256:/, "").replace(/[^a-f0-9]/g, "").slice(0, 64);
  const cacheFile = `${home}/cache/passwd/${key}`;
  try {
    const cached = await Deno.readTextFile(cacheFile);
    return cached.startsWith("absent\n") ? undefined : cached.slice("present\n".length);
  } catch { /* not cached yet */ }

  // The probe carries the run's labels (so `docker ps --filter label=dev.moat.run-id=…` finds it) and the
  // run's runtime, though it is never started.
  const { Id } = await client.containerCreate({
    Image: imageId,
    // Never started: the command only has to be non-empty for create to accept an image without CMD.
    Cmd: ["/moat-passwd-probe"],
    Labels: { ...labels, [LABELS.probe]: "passwd" },
    HostConfig: runtime === undefined ? {} : { Runtime: runtime },
  });
  let passwd: string | undefined;
  try {
    const bytes = await client.maybeContainerFile(Id, "/etc/passwd");
    passwd = bytes === undefined ? undefined : new TextDecoder().decode(bytes);
  } finally {
    await client.containerRemove(Id).catch(() => {});
  }
  try {
    await Deno.mkdir(`${home}/cache/passwd`, { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(cacheFile, passwd === undefined ? "absent\n" : `present\n${passwd}`);
  } catch { /* a cache that cannot be written only costs time */ }
  return passwd;
}
