/** Image operations (swagger ImageInspect, ImageList, ImageCreate). */
import { EngineApiError, InterruptedError, MoatError } from "../errors.ts";
import type { EngineHttp } from "./transport.ts";
import type { ImageInspect, ImageSummary } from "./types.ts";

/** `GET /images/{name}/json`; `undefined` when the engine has no such image. */
export async function maybeImageInspect(http: EngineHttp, name: string): Promise<ImageInspect | undefined> {
  try {
    const { body } = await http.call<ImageInspect>("GET", `/images/${encodeURIComponent(name)}/json`);
    return body;
  } catch (err) {
    if (err instanceof EngineApiError && err.isNotFound) return undefined;
    throw err;
  }
}

/**
 * `GET /images/json[?filters={"label":[…]}]` (swagger ImageList): the engine's top-level images
 * (intermediate layers are not listed), optionally narrowed by filters such as
 * `{ label: ["dev.moat.built-by=setup"] }`.
 */
export async function imageList(
  http: EngineHttp,
  filters?: Record<string, string[]>,
): Promise<ImageSummary[]> {
  const res = await http.call<ImageSummary[]>("GET", "/images/json", {
    query: { filters: filters && Object.keys(filters).length ? filters : undefined },
  });
  return res.body;
}

/** One progress message of a pull (`{"status","id","progress"}` JSON lines). */
export interface PullProgress {
  status?: string;
  id?: string;
  progress?: string;
}

/** Split `name[:tag|@digest]` into the `fromImage`/`tag` query the engine expects. */
export function splitImageReference(ref: string): { fromImage: string; tag?: string } {
  if (ref.includes("@")) return { fromImage: ref };
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  if (colon > slash) return { fromImage: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { fromImage: ref, tag: "latest" };
}

/**
 * `POST /images/create?fromImage=…` (pull). The reply is 200 then JSON lines; failures arrive in-band as
 * `{"error": …}` (moby daemon/internal/streamformatter FormatError), which are thrown here.
 */
export async function imageCreate(
  http: EngineHttp,
  ref: string,
  onProgress: (p: PullProgress) => void,
  signal?: AbortSignal,
): Promise<void> {
  const res = await http.stream("POST", "/images/create", {
    query: splitImageReference(ref),
    timeoutMs: 0,
    ...(signal ? { signal } : {}),
  });
  const decoder = new TextDecoder();
  let pending = "";
  const handle = (line: string) => {
    if (line.trim() === "") return;
    let msg: { error?: string; errorDetail?: { message?: string } } & PullProgress;
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    if (msg.error || msg.errorDetail) {
      throw new MoatError(msg.errorDetail?.message ?? msg.error ?? "pull failed");
    }
    onProgress(msg);
  };
  // Closing the connection is how a pull is cancelled (moby postImagesCreate pulls in the request's context).
  const cancel = () => res.close();
  signal?.addEventListener("abort", cancel, { once: true });
  try {
    for await (const part of res.body) {
      pending += decoder.decode(part, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) handle(line);
    }
    handle(pending + decoder.decode());
  } catch (err) {
    if (signal?.aborted) throw new InterruptedError(String(signal.reason ?? "SIGINT"));
    throw err;
  } finally {
    signal?.removeEventListener("abort", cancel);
    res.close();
  }
  if (signal?.aborted) throw new InterruptedError(String(signal.reason ?? "SIGINT"));
}
