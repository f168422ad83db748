/**
 * Make sure the run's image is on the engine: inspect, else pull when a registry answers, else explain
 * how to bring an image to an air-gapped host. Never writes to stdout.
 */
import type { EngineClient, PullProgress } from "../docker/client.ts";
import type { ImageInspect } from "../docker/types.ts";
import { ImageMissingError, InterruptedError, MoatError } from "../errors.ts";

/** The image used when neither `--image`, config `image:` nor `MOAT_IMAGE` names one. */
export const DEFAULT_IMAGE = "debian:bookworm-slim";

/** `--image` beats config `image:` beats `MOAT_IMAGE` beats the default. Pure. */
export function chooseImage(
  flag: string | undefined,
  config: string | undefined,
  env: Record<string, string | undefined>,
) {
  return flag ?? config ?? (env["MOAT_IMAGE"]?.trim() || DEFAULT_IMAGE);
}

/**
 * The image's inspect, pulling it first when it is missing and a registry answers. `beforePull` is awaited
 * before a pull starts (the sandbox check: no download for a run that cannot happen).
 */
export async function ensureImage(
  client: EngineClient,
  ref: string,
  progress: (line: string) => void,
  signal?: AbortSignal,
  beforePull?: () => Promise<void>,
): Promise<ImageInspect> {
  const found = await client.maybeImageInspect(ref);
  if (found) return found;
  await beforePull?.();
  progress(`Image ${ref} is not on the engine; pulling it`);
  try {
    await client.imageCreate(ref, (p: PullProgress) => {
      const text = [p.id, p.status, p.progress].filter(Boolean).join(" ");
      if (text) progress(`Pulling ${ref}: ${text}`);
    }, signal);
  } catch (err) {
    if (signal?.aborted) throw new InterruptedError(String(signal.reason ?? "SIGINT"));
    const why = err instanceof MoatError ? err.message : String(err);
    throw new ImageMissingError(
      ref,
      `Image "${ref}" is not on the Docker engine and could not be pulled: ${why}`,
      [
        "On a host without a registry, bring the image as a file:",
        `  on a connected machine:  docker pull ${ref} && docker save ${ref} -o image.tar`,
        "  here:                    docker load -i image.tar",
        "or use an image this engine already has:  docker images   then  --image NAME  or  image: NAME  in moat.yaml",
      ].join("\n"),
    );
  }
  const pulled = await client.maybeImageInspect(ref);
  if (!pulled) {
    throw new ImageMissingError(
      ref,
      `Image "${ref}" was pulled but the engine does not list it`,
      "Check:  docker images",
    );
  }
  return pulled;
}
