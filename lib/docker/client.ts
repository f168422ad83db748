/**
 * The one engine client interface the rest of moat receives. `DockerClient` implements it over a
 * `Transport`; tests hand the same class a fake engine's socket, or implement the interface directly.
 */
import { UsageError } from "../errors.ts";
import { moatHome } from "../home.ts";
import * as containers from "./containers.ts";
import * as exec from "./exec.ts";
import { type Endpoint, type HostView, resolveEndpoint } from "./endpoint.ts";
import * as images from "./images.ts";
import * as networks from "./networks.ts";
import * as system from "./system.ts";
import { type SshOptions, sshTransport } from "./ssh.ts";
import { EngineHttp, tcpTransport, type Transport, unixTransport } from "./transport.ts";
import type {
  ContainerCreateBody,
  ContainerCreateResponse,
  ContainerInspect,
  ContainerSummary,
  ImageInspect,
  ImageSummary,
  NetworkCreateBody,
  NetworkInspect,
  PingResult,
  SystemInfo,
} from "./types.ts";

export type { AttachStream, LogStream, PendingWait } from "./containers.ts";
export type { PullProgress } from "./images.ts";

export interface EngineClient {
  readonly endpoint: Endpoint;
  systemPing(): Promise<PingResult>;
  /** `/info`, fetched once per client and bounded by the client's info timeout. */
  systemInfo(): Promise<SystemInfo>;
  /** The events the engine kept between two times (ms since the epoch; not later than now), filtered. */
  systemEvents(
    since: number,
    until: number,
    filters: Record<string, string[]>,
  ): Promise<system.EngineEvent[]>;
  maybeImageInspect(name: string): Promise<ImageInspect | undefined>;
  imageCreate(ref: string, onProgress: (p: images.PullProgress) => void, signal?: AbortSignal): Promise<void>;
  containerCreate(body: ContainerCreateBody, name?: string): Promise<ContainerCreateResponse>;
  containerAttach(id: string, opts: { stdin: boolean }): Promise<containers.AttachStream>;
  containerWait(
    id: string,
    condition?: "not-running" | "next-exit" | "removed",
  ): Promise<containers.PendingWait>;
  containerStart(id: string): Promise<void>;
  containerKill(id: string, signal?: string): Promise<void>;
  /** Set a `Tty` container's pty size; fails (409) unless it runs. */
  containerResize(id: string, rows: number, cols: number): Promise<void>;
  execCreate(containerId: string, body: exec.ExecCreateBody): Promise<string>;
  execStart(
    execId: string,
    tty: boolean,
    consoleSize?: { rows: number; cols: number },
  ): Promise<containers.AttachStream>;
  execInspect(execId: string): Promise<exec.ExecInspect>;
  execResize(execId: string, rows: number, cols: number): Promise<void>;
  containerStop(id: string, graceSeconds: number): Promise<void>;
  /** `slow`: bounded by the start budget, for a caller that must wait out a start or stop in progress. */
  maybeContainerInspect(id: string, opts?: { slow?: boolean }): Promise<ContainerInspect | undefined>;
  containerRemove(id: string): Promise<void>;
  /** Every container (running or not) carrying all `labels`; `size` adds `SizeRw` (slower). */
  containerList(labels: string[], opts?: { size?: boolean }): Promise<ContainerSummary[]>;
  /** The engine's images, optionally filtered (`{ label: ["k=v"] }`). */
  imageList(filters?: Record<string, string[]>): Promise<ImageSummary[]>;
  maybeContainerFile(id: string, path: string): Promise<Uint8Array | undefined>;
  /** What `path` is in a container's filesystem (a link not followed); `undefined` when it does not exist. */
  maybeContainerArchiveInfo(id: string, path: string): Promise<containers.PathStat | undefined>;
  /** A container's output stream from its start; `follow` keeps it open while the container runs. */
  containerLogs(id: string, opts: { follow: boolean; since?: number }): Promise<containers.LogStream>;
  /** Create a network; its id. */
  networkCreate(body: NetworkCreateBody): Promise<string>;
  maybeNetworkInspect(id: string): Promise<NetworkInspect | undefined>;
  /** Remove a network; one that is gone already is fine. */
  networkRemove(id: string): Promise<void>;
  /** Every network carrying all `labels`. */
  networkList(labels: string[]): Promise<NetworkInspect[]>;
}

export interface ClientOptions {
  /** Bound for short calls and for `/info`, in ms. */
  timeoutMs: number;
  /**
   * Bound for the calls whose time grows with the engine's load (create, attach, wait, start, stop, remove:
   * under gVisor, start includes booting the sandbox), in ms. Default: `DEFAULT_ENGINE_START_TIMEOUT_S`.
   */
  startTimeoutMs?: number;
  /** Pin the API version (`DOCKER_API_VERSION`), skipping negotiation. */
  apiVersion?: string;
}

export class DockerClient implements EngineClient {
  readonly http: EngineHttp;
  #info: Promise<SystemInfo> | undefined;

  constructor(transport: Transport, opts: ClientOptions) {
    this.http = new EngineHttp(transport, {
      ...opts,
      startTimeoutMs: opts.startTimeoutMs ?? DEFAULT_ENGINE_START_TIMEOUT_S * 1000,
    });
  }

  get endpoint(): Endpoint {
    return this.http.transport.endpoint;
  }

  systemPing() {
    return system.systemPing(this.http);
  }
  systemInfo() {
    // Cached for the process; a failed attempt is not cached.
    this.#info ??= system.systemInfo(this.http).catch((err) => {
      this.#info = undefined;
      throw err;
    });
    return this.#info;
  }
  systemEvents(since: number, until: number, filters: Record<string, string[]>) {
    return system.systemEvents(this.http, since, until, filters);
  }
  maybeImageInspect(name: string) {
    return images.maybeImageInspect(this.http, name);
  }
  imageCreate(ref: string, onProgress: (p: images.PullProgress) => void, signal?: AbortSignal) {
    return images.imageCreate(this.http, ref, onProgress, signal);
  }
  containerCreate(body: ContainerCreateBody, name?: string) {
    return containers.containerCreate(this.http, body, name);
  }
  containerAttach(id: string, opts: { stdin: boolean }) {
    return containers.containerAttach(this.http, id, opts);
  }
  containerWait(id: string, condition?: "not-running" | "next-exit" | "removed") {
    return containers.containerWait(this.http, id, condition);
  }
  containerStart(id: string) {
    return containers.containerStart(this.http, id);
  }
  containerKill(id: string, signal?: string) {
    return containers.containerKill(this.http, id, signal);
  }
  containerResize(id: string, rows: number, cols: number) {
    return containers.containerResize(this.http, id, rows, cols);
  }
  containerStop(id: string, graceSeconds: number) {
    return containers.containerStop(this.http, id, graceSeconds);
  }
  execCreate(containerId: string, body: exec.ExecCreateBody) {
    return exec.execCreate(this.http, containerId, body);
  }
  execStart(execId: string, tty: boolean, consoleSize?: { rows: number; cols: number }) {
    return exec.execStart(this.http, execId, tty, consoleSize);
  }
  execInspect(execId: string) {
    return exec.execInspect(this.http, execId);
  }
  execResize(execId: string, rows: number, cols: number) {
    return exec.execResize(this.http, execId, rows, cols);
  }
  maybeContainerInspect(id: string, opts?: { slow?: boolean }) {
    return containers.maybeContainerInspect(this.http, id, opts);
  }
  containerRemove(id: string) {
    return containers.containerRemove(this.http, id);
  }
  containerList(labels: string[], opts?: { size?: boolean }) {
    return containers.containerList(this.http, labels, opts);
  }
  imageList(filters?: Record<string, string[]>) {
    return images.imageList(this.http, filters);
  }
  maybeContainerFile(id: string, path: string) {
    return containers.maybeContainerFile(this.http, id, path);
  }
  maybeContainerArchiveInfo(id: string, path: string) {
    return containers.maybeContainerArchiveInfo(this.http, id, path);
  }
  containerLogs(id: string, opts: { follow: boolean; since?: number }) {
    return containers.containerLogs(this.http, id, opts);
  }
  networkCreate(body: NetworkCreateBody) {
    return networks.networkCreate(this.http, body);
  }
  maybeNetworkInspect(id: string) {
    return networks.maybeNetworkInspect(this.http, id);
  }
  networkRemove(id: string) {
    return networks.networkRemove(this.http, id);
  }
  networkList(labels: string[]) {
    return networks.networkList(this.http, labels);
  }
}

/** Default bound for short engine calls, overridable with `MOAT_ENGINE_TIMEOUT` (seconds). */
export const DEFAULT_ENGINE_TIMEOUT_S = 5;
/**
 * Default bound for the calls whose time grows with load (create, attach, wait, start, stop, remove),
 * overridable with `MOAT_ENGINE_START_TIMEOUT` (seconds). Under gVisor a start boots the sandbox, which on a
 * busy two-core host takes longer than the short bound (most of 10–20 starts at once went past 5 s); a
 * stuck engine is still noticed within two minutes.
 */
export const DEFAULT_ENGINE_START_TIMEOUT_S = 120;

/** Parse `MOAT_ENGINE_TIMEOUT` (seconds, > 0). Pure. */
export function engineTimeoutMs(env: Record<string, string | undefined>): number {
  return secondsVariable(env, "MOAT_ENGINE_TIMEOUT", DEFAULT_ENGINE_TIMEOUT_S);
}

/** Parse `MOAT_ENGINE_START_TIMEOUT` (seconds, > 0). Pure. */
export function engineStartTimeoutMs(env: Record<string, string | undefined>): number {
  return secondsVariable(env, "MOAT_ENGINE_START_TIMEOUT", DEFAULT_ENGINE_START_TIMEOUT_S);
}

function secondsVariable(env: Record<string, string | undefined>, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback * 1000;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    throw new UsageError(
      `${name} "${raw}" is not a positive number of seconds`,
      `Use e.g.:  ${name}=${fallback}`,
    );
  }
  return Math.round(n * 1000);
}

/** This host's files, as `resolveEndpoint` looks at them. */
export function hostView(): HostView {
  return {
    exists(path) {
      try {
        Deno.statSync(path);
        return true;
      } catch {
        return false;
      }
    },
    read(path) {
      try {
        return Deno.readTextFileSync(path);
      } catch {
        return undefined;
      }
    },
    list(dir) {
      try {
        return [...Deno.readDirSync(dir)].map((e) => e.name);
      } catch {
        return [];
      }
    },
  };
}

/**
 * The transport for `endpoint`: a unix socket, TCP (with TLS when it has TLS files), or ssh (sharing one ssh
 * connection per engine through `ssh.controlDir` when given).
 */
export function transportFor(endpoint: Endpoint, ssh: SshOptions = {}): Transport {
  switch (endpoint.kind) {
    case "unix":
      return unixTransport(endpoint);
    case "tcp":
      return tcpTransport(endpoint);
    case "ssh":
      return sshTransport(endpoint, ssh);
  }
}

/**
 * Where ssh engines share their connection: `MOAT_HOME/ssh` (else `~/.moat/ssh`), unless `MOAT_SSH_SHARE=0`.
 * Any other value than `0` or `1` is a usage error.
 */
export function sshOptions(env: Record<string, string | undefined>): SshOptions {
  const share = env["MOAT_SSH_SHARE"]?.trim();
  if (share !== undefined && share !== "" && share !== "0" && share !== "1") {
    throw new UsageError(
      `MOAT_SSH_SHARE "${share}" is not 0 or 1`,
      "MOAT_SSH_SHARE=0 gives every engine request over ssh its own connection; unset it to share one",
    );
  }
  if (share === "0") return {};
  try {
    return { controlDir: `${moatHome(env)}/ssh` };
  } catch {
    return {}; // neither MOAT_HOME nor HOME: nowhere to share from
  }
}

/**
 * Build the client for this environment (`DOCKER_HOST`, `DOCKER_API_VERSION`, `MOAT_ENGINE_TIMEOUT`,
 * `MOAT_ENGINE_START_TIMEOUT`).
 */
export function clientFromEnv(env: Record<string, string | undefined>): DockerClient {
  const endpoint = resolveEndpoint(env, hostView());
  const pinned = env["DOCKER_API_VERSION"]?.trim();
  if (pinned && !/^\d+\.\d+$/.test(pinned)) {
    throw new UsageError(
      `DOCKER_API_VERSION "${pinned}" is not an API version such as 1.44`,
      "Unset it to let moat negotiate:  unset DOCKER_API_VERSION",
    );
  }
  return new DockerClient(transportFor(endpoint, sshOptions(env)), {
    timeoutMs: engineTimeoutMs(env),
    startTimeoutMs: engineStartTimeoutMs(env),
    ...(pinned ? { apiVersion: pinned } : {}),
  });
}
