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
 * Docker's image reference grammar (distribution/reference, `reference.go` and `regexp.go`; the domain rule
 * of `normalize.go`), which the engine applies to `GET /images/{name}/json` and `POST /containers/create`:
 *
 *     reference      := name [ ":" tag ] [ "@" digest ]
 *     name           := [ domain "/" ] path-component [ "/" path-component ]*      (255 characters at most)
 *     domain         := host [ ":" port ]; host a DNS name (letters, digits, '-', '.') or "[" IPv6 "]"
 *     path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *     tag            := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
 *     digest         := algorithm ":" at least 32 hex digits
 *
 * The first part of a name is a domain when it holds '.' or ':', is `localhost`, or has an upper-case letter.
 * Image ids (`sha256:…`, a short hex id) fit the grammar too, so they are never refused.
 */
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN =
  /^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const NAME_MAX = 255;

/** What is wrong with an image reference, and the reference corrected when that is plain. */
export interface ImageRefProblem {
  problem: string;
  suggestion?: string;
}

/** Why `ref` is not an image reference by Docker's grammar (above), or `undefined` when it is one. Pure. */
export function maybeImageRefProblem(ref: string): ImageRefProblem | undefined {
  if (/[^\x21-\x7e]/.test(ref)) {
    return { problem: "it may only hold printable ASCII characters, without spaces" };
  }
  const at = ref.indexOf("@");
  const digest = at === -1 ? undefined : ref.slice(at + 1);
  const nameTag = at === -1 ? ref : ref.slice(0, at);
  if (digest !== undefined && !DIGEST.test(digest)) {
    return { problem: `the digest "${digest}" is not ALGORITHM:HEX, e.g. sha256: and 64 hex digits` };
  }
  const colon = nameTag.lastIndexOf(":");
  const hasTag = colon > nameTag.lastIndexOf("/");
  const name = hasTag ? nameTag.slice(0, colon) : nameTag;
  const tag = hasTag ? nameTag.slice(colon + 1) : undefined;
  if (tag !== undefined && !TAG.test(tag)) {
    return {
      problem:
        `the tag "${tag}" must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'`,
    };
  }
  if (name === "") return { problem: "it has no name before the tag" };
  if (name.length > NAME_MAX) return { problem: `the name is longer than ${NAME_MAX} characters` };
  const slash = name.indexOf("/");
  const first = slash === -1 ? "" : name.slice(0, slash);
  const isDomain = slash !== -1 &&
    (/[.:]/.test(first) || first === "localhost" || first !== first.toLowerCase());
  if (isDomain && !DOMAIN.test(first)) {
    return { problem: `the registry "${first}" is not a host name with an optional :PORT` };
  }
  const path = isDomain ? name.slice(slash + 1) : name;
  const components = path.split("/");
  if (components.every((c) => PATH_COMPONENT.test(c))) return undefined;
  if (components.every((c) => PATH_COMPONENT.test(c.toLowerCase()))) {
    const fixed = (isDomain ? `${first}/` : "") + path.toLowerCase() + ref.slice(name.length);
    return { problem: "the repository name must be lowercase", suggestion: fixed };
  }
  const bad = components.find((c) => !PATH_COMPONENT.test(c.toLowerCase()))!;
  return {
    problem: `"${bad}" in the repository name may only hold lowercase letters and digits, ` +
      "joined by '.', '_', '__' or dashes",
  };
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
