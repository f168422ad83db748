/** Container operations (swagger Container* operations). Statuses are classified here, not by callers. */
import { EngineApiError, EngineUnavailableError, MoatError } from "../errors.ts";
import { engineProduct } from "./endpoint.ts";
import { BufferedReader, readAll } from "./http.ts";
import { type Conn, type EngineHttp, type Hijacked, writeAll } from "./transport.ts";
import type {
  ContainerCreateBody,
  ContainerCreateResponse,
  ContainerInspect,
  ContainerSummary,
  WaitResponse,
} from "./types.ts";

/** `POST /containers/create[?name=]` → 201 `{Id, Warnings}`; 404 image, 409 name, 400 runtime. */
export async function containerCreate(
  http: EngineHttp,
  body: ContainerCreateBody,
  name?: string,
): Promise<ContainerCreateResponse> {
  const res = await http.call<ContainerCreateResponse>("POST", "/containers/create", {
    query: { name },
    json: body,
    slow: true,
  });
  return res.body;
}

/** A hijacked attach: read output from `reader` (multiplexed unless Tty), write raw stdin. */
export interface AttachStream {
  /**
   * `Content-Type` of the upgrade reply; informational only (raw-stream on every engine before API 1.42) —
   * demux is decided by our own `Tty`.
   */
  mediaType: string | undefined;
  reader: BufferedReader;
  write(bytes: Uint8Array): Promise<void>;
  /** Half-close: stdin EOF for the container (`StdinOnce`). */
  closeWrite(): Promise<void>;
  close(): void;
}

/** `POST /containers/{id}/attach?stream=1…` over its own connection, upgraded (swagger ContainerAttach). */
export async function containerAttach(
  http: EngineHttp,
  id: string,
  opts: { stdin: boolean; stdout?: boolean; stderr?: boolean },
): Promise<AttachStream> {
  const h = await http.hijack("POST", `/containers/${id}/attach`, {
    query: { stream: true, stdin: opts.stdin, stdout: opts.stdout ?? true, stderr: opts.stderr ?? true },
    slow: true,
  });
  return attachStreamOf(h);
}

/** A hijacked connection (an attach, an exec's start) as the stream moat reads and writes. */
export function attachStreamOf(h: Hijacked): AttachStream {
  const conn: Conn = h.conn;
  return {
    mediaType: h.head.headers.get("content-type"),
    reader: h.reader,
    write: (bytes) => writeAll(conn, bytes),
    closeWrite: () => conn.closeWrite(),
    close: h.close,
  };
}

/** A container's log stream: multiplexed (moat's containers have `Tty: false`), already de-chunked. */
export interface LogStream {
  /** The body as it arrives. Slices are valid until the next iteration; frames straddle them at any byte. */
  body: AsyncGenerator<Uint8Array>;
  close(): void;
}

/**
 * `GET /containers/{id}/logs?stdout=1&stderr=1&timestamps=0[&follow=1][&since=]` → 200, a chunked body in
 * the multiplexed stream format (swagger ContainerLogs). The logs replay everything from the container's
 * start; with `follow` the stream stays open until the container stops. The daemon only follows a
 * container that runs: for one that does not, it sends what is stored and ends. `since` is Unix seconds
 * (fractions allowed). 404: no such container.
 */
export async function containerLogs(
  http: EngineHttp,
  id: string,
  opts: { follow: boolean; since?: number },
): Promise<LogStream> {
  const res = await http.stream("GET", `/containers/${id}/logs`, {
    query: {
      follow: opts.follow,
      stdout: true,
      stderr: true,
      timestamps: false,
      since: opts.since === undefined ? undefined : opts.since.toFixed(9).replace(/\.?0+$/, ""),
    },
  });
  return { body: res.body, close: res.close };
}

/**
 * A registered wait: headers were read (so it is ordered before `start`, as moby client/container_wait.go
 * does); the result comes later.
 */
export interface PendingWait {
  result: Promise<WaitResponse>;
  close(): void;
}

/**
 * `POST /containers/{id}/wait?condition=…`. Resolves once the engine acknowledged the wait (status line +
 * headers), which the caller must await before `containerStart`. `next-exit` before start is the race-free
 * choice without AutoRemove (docker/cli waitExitOrRemoved makes it too).
 */
export async function containerWait(
  http: EngineHttp,
  id: string,
  condition: "not-running" | "next-exit" | "removed" = "next-exit",
): Promise<PendingWait> {
  const res = await http.stream("POST", `/containers/${id}/wait`, { query: { condition }, slow: true });
  const result = (async () => {
    try {
      const bytes = await readAll(res.body, 1024 * 1024);
      const text = new TextDecoder().decode(bytes);
      try {
        return JSON.parse(text) as WaitResponse;
      } catch {
        throw new EngineUnavailableError(
          http.url,
          "closed",
          `wait for ${id.slice(0, 12)} ended without a result: ${JSON.stringify(text.slice(0, 200))}`,
        );
      }
    } finally {
      res.close();
    }
  })();
  // Callers may race this against a signal; never leave a rejection unobserved.
  result.catch(() => {});
  return { result, close: res.close };
}

/**
 * `POST /containers/{id}/start` → 204, or 304 when already started (not an error). No body, ever (moby
 * postContainersStart refuses one).
 */
export async function containerStart(http: EngineHttp, id: string): Promise<void> {
  await http.call("POST", `/containers/${id}/start`, { slow: true });
}

/**
 * `POST /containers/{id}/resize?h=&w=` → 200: the size of a `Tty` container's pty. Only while it runs: 409
 * before start or after exit (moby daemon/resize.go), which callers racing the exit treat as harmless.
 */
export async function containerResize(
  http: EngineHttp,
  id: string,
  rows: number,
  cols: number,
): Promise<void> {
  await http.call("POST", `/containers/${id}/resize`, { query: { h: rows, w: cols } });
}

/** `POST /containers/{id}/kill?signal=` → 204; a container that is not running (409) is not an error. */
export async function containerKill(http: EngineHttp, id: string, signal = "SIGKILL"): Promise<void> {
  try {
    await http.call("POST", `/containers/${id}/kill`, { query: { signal } });
  } catch (err) {
    if (err instanceof EngineApiError && err.isConflict) return;
    throw err;
  }
}

/**
 * `POST /containers/{id}/stop?t=` → 204, 304 already stopped. The engine blocks up to `t` seconds (swagger
 * ContainerStop).
 */
export async function containerStop(http: EngineHttp, id: string, graceSeconds: number): Promise<void> {
  await http.call("POST", `/containers/${id}/stop`, {
    query: { t: graceSeconds },
    timeoutMs: http.startTimeoutMs + graceSeconds * 1000,
    slow: true,
  });
}

/**
 * `GET /containers/{id}/json`; `undefined` when it does not exist. `slow`: bounded by the start budget. The
 * engine answers only once a start or stop in progress on the container is over (both hold the container's
 * lock), which is what a caller whose start timed out needs to learn how it ended.
 */
export async function maybeContainerInspect(
  http: EngineHttp,
  id: string,
  opts: { slow?: boolean } = {},
): Promise<ContainerInspect | undefined> {
  const slow = opts.slow ?? false;
  try {
    const c = (await http.call<ContainerInspect>("GET", `/containers/${id}/json`, { slow })).body;
    if (c.HostConfig?.Runtime === "oci" && engineProduct(http.server ?? undefined) === "Podman") {
      // Podman's Docker-compatible inspect says `oci` whatever runs the container; its own API says which.
      const own = await http.call<{ OCIRuntime?: string }>("GET", `/libpod/containers/${id}/json`, { slow });
      c.HostConfig.Runtime = own.body.OCIRuntime;
    }
    return c;
  } catch (err) {
    if (err instanceof EngineApiError && err.isNotFound) return undefined;
    throw err;
  }
}

/**
 * `DELETE /containers/{id}?force=1&v=1`. Gone already (404) or being removed (409 "already in progress")
 * count as removed (moby daemon/delete.go).
 */
export async function containerRemove(http: EngineHttp, id: string): Promise<void> {
  try {
    await http.call("DELETE", `/containers/${id}`, { query: { force: true, v: true }, slow: true });
  } catch (err) {
    if (err instanceof EngineApiError && (err.isNotFound || /already in progress/i.test(err.daemonMessage))) {
      return;
    }
    throw err;
  }
}

/**
 * `GET /containers/json?all=1&filters={"label":[…]}[&size=1]`: every container carrying all the given labels.
 * With `size` the engine also computes each container's `SizeRw`, which walks its layer: slower, so the
 * call gets four times the usual bound.
 */
export async function containerList(
  http: EngineHttp,
  labels: string[],
  opts: { size?: boolean } = {},
): Promise<ContainerSummary[]> {
  const res = await http.call<ContainerSummary[]>("GET", "/containers/json", {
    query: { all: true, filters: { label: labels }, size: opts.size ? true : undefined },
    ...(opts.size ? { timeoutMs: http.timeoutMs * 4 } : {}),
  });
  return res.body;
}

/** What `HEAD /containers/{id}/archive` says of a path (the `X-Docker-Container-Path-Stat` header). */
export interface PathStat {
  name: string;
  size: number;
  /** Go's `os.FileMode`: permission bits, plus `MODE_DIR`, `MODE_SYMLINK` and other type bits. */
  mode: number;
  mtime: string;
  /** For a symbolic link: where it leads, as an absolute path in the container, links resolved. */
  linkTarget: string;
}

/** Go's `os.ModeDir` and `os.ModeSymlink` bits of `PathStat.mode`. */
export const MODE_DIR = 2 ** 31;
export const MODE_SYMLINK = 2 ** 27;

/**
 * What a path in a container's filesystem is (`HEAD /containers/{id}/archive?path=`, swagger
 * ContainerArchiveInfo): the path itself, a symbolic link not followed. Works on a created, never started
 * container. `undefined` when the path does not exist (404).
 */
export async function maybeContainerArchiveInfo(
  http: EngineHttp,
  id: string,
  path: string,
): Promise<PathStat | undefined> {
  try {
    const res = await http.stream("HEAD", `/containers/${id}/archive`, { query: { path } });
    res.close();
    const header = res.head.headers.get("x-docker-container-path-stat");
    if (!header) {
      throw new MoatError(
        `The engine's answer to HEAD /containers/${id}/archive has no X-Docker-Container-Path-Stat header`,
      );
    }
    const stat = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(header), (c) => c.charCodeAt(0))));
    return stat as PathStat;
  } catch (err) {
    if (err instanceof EngineApiError && err.isNotFound) return undefined;
    throw err;
  }
}

/**
 * One file out of a container's filesystem (`GET /containers/{id}/archive?path=`, a tar stream); works on a
 * created, never started container. `undefined` when the path does not exist.
 */
export async function maybeContainerFile(
  http: EngineHttp,
  id: string,
  path: string,
): Promise<Uint8Array | undefined> {
  try {
    const res = await http.stream("GET", `/containers/${id}/archive`, { query: { path } });
    try {
      return firstTarEntry(await readAll(res.body, 16 * 1024 * 1024));
    } finally {
      res.close();
    }
  } catch (err) {
    if (err instanceof EngineApiError && err.isNotFound) return undefined;
    throw err;
  }
}

/** The contents of the first regular file in a ustar archive. */
export function firstTarEntry(tar: Uint8Array): Uint8Array | undefined {
  let off = 0;
  while (off + 512 <= tar.byteLength) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) return undefined;
    const sizeText = new TextDecoder().decode(header.subarray(124, 136)).replace(/\0.*$/s, "").trim();
    const size = parseInt(sizeText || "0", 8);
    const type = String.fromCharCode(header[156]!);
    const dataStart = off + 512;
    if (type === "0" || type === "\0") return tar.slice(dataStart, dataStart + size);
    off = dataStart + Math.ceil(size / 512) * 512;
  }
  return undefined;
}
