/**
 * Where the engine lives, found as the docker CLI finds it: `DOCKER_HOST` (with `DOCKER_TLS_VERIFY` and
 * `DOCKER_CERT_PATH`), else the context `DOCKER_CONTEXT` names, else the config's `currentContext`
 * (`$DOCKER_CONFIG/config.json`, default `~/.docker`), else the default socket; when that socket is absent,
 * rootless Docker's and then Podman's, which are said to be what was found. Pure: the environment and a view
 * of the host's files (`HostView`) in, an endpoint out; the transports (lib/docker/transport.ts) connect.
 * docs/reference/cli.md ("Which engine") describes the model for users.
 */
import { UsageError } from "../errors.ts";

export const DEFAULT_SOCKET = "/var/run/docker.sock";

/** Why this endpoint was chosen, for messages, `moat status` and `moat doctor`. */
export type EndpointSource = "DOCKER_HOST" | "default" | "context" | "rootless" | "podman";

interface Chosen {
  source: EndpointSource;
  /** The Docker context's name, when `source` is `context`. */
  context?: string;
}

export interface UnixEndpoint extends Chosen {
  kind: "unix";
  path: string;
}

/** The files of a TLS connection: the CA the engine's certificate must chain to, and this client's own. */
export interface TlsFiles {
  ca: string;
  cert?: string;
  key?: string;
}

export interface TcpEndpoint extends Chosen {
  kind: "tcp";
  host: string;
  port: number;
  /** TLS with verification; absent: plain TCP (loopback only, unless `MOAT_PLAIN_TCP=1`). */
  tls?: TlsFiles;
}

/** An engine reached through the system `ssh` running `docker system dial-stdio` on the far side. */
export interface SshEndpoint extends Chosen {
  kind: "ssh";
  host: string;
  user?: string;
  port?: number;
  /** The engine's socket on the far side; its docker's default when absent. */
  socket?: string;
}

export type Endpoint = UnixEndpoint | TcpEndpoint | SshEndpoint;

/** What `resolveEndpoint` may look at on this host. */
export interface HostView {
  exists(path: string): boolean;
  /** A file's text; `undefined` when it cannot be read. */
  read(path: string): string | undefined;
  /** The names in a directory; none when it cannot be read. */
  list(dir: string): string[];
}

/** A host where nothing exists: resolution from the environment alone. */
export const NO_HOST: HostView = { exists: () => false, read: () => undefined, list: () => [] };

/** Human-readable address, e.g. `unix:///var/run/docker.sock`, `tcp://10.0.0.2:2376`. */
export function endpointUrl(ep: Endpoint): string {
  switch (ep.kind) {
    case "unix":
      return `unix://${ep.path}`;
    case "tcp":
      return `tcp://${ep.host.includes(":") ? `[${ep.host}]` : ep.host}:${ep.port}`;
    case "ssh":
      return `ssh://${ep.user ? `${ep.user}@` : ""}${ep.host}${ep.port ? `:${ep.port}` : ""}${
        ep.socket ?? ""
      }`;
  }
}

/** Why the endpoint was chosen, in words: `DOCKER_HOST`, `context "rootless"`, … */
export function endpointSourceText(ep: Endpoint): string {
  switch (ep.source) {
    case "DOCKER_HOST":
      return "DOCKER_HOST";
    case "context":
      return `Docker context "${ep.context}"`;
    case "rootless":
      return `rootless Docker's socket (${DEFAULT_SOCKET} is absent)`;
    case "podman":
      return `Podman's socket (${DEFAULT_SOCKET} is absent)`;
    case "default":
      return "default socket";
  }
}

/** Whether the engine runs on this host: a unix socket, or TCP to a loopback address. */
export function isLocalEndpoint(ep: Endpoint): boolean {
  if (ep.kind === "unix") return true;
  return ep.kind === "tcp" && isLoopback(ep.host);
}

function isLoopback(host: string): boolean {
  return host === "localhost" || /^127\.\d+\.\d+\.\d+$/.test(host) || host === "::1";
}

/** The docker CLI's config directory: `DOCKER_CONFIG`, else `~/.docker`. */
export function dockerConfigDir(env: Record<string, string | undefined>): string | undefined {
  const dir = env["DOCKER_CONFIG"]?.trim();
  if (dir) return dir;
  return env["HOME"] ? `${env["HOME"]}/.docker` : undefined;
}

/** Resolve the engine endpoint (see the module doc). Throws `UsageError` for settings moat cannot use. */
export function resolveEndpoint(env: Record<string, string | undefined>, host: HostView = NO_HOST): Endpoint {
  const dockerHost = env["DOCKER_HOST"]?.trim();
  if (dockerHost) return parseHost(dockerHost, { source: "DOCKER_HOST" }, () => envTls(env, host), env);
  const configDir = dockerConfigDir(env);
  const named = env["DOCKER_CONTEXT"]?.trim();
  if (named && named !== "default") return fromContext(named, "DOCKER_CONTEXT", configDir, env, host);
  if (!named && configDir) {
    const current = currentContext(host.read(`${configDir}/config.json`));
    if (current && current !== "default") {
      return fromContext(current, `currentContext in ${configDir}/config.json`, configDir, env, host);
    }
  }
  return discoverSocket(env, host);
}

/** The default socket, else rootless Docker's, else Podman's (rootless, then rootful); the default if none. */
function discoverSocket(env: Record<string, string | undefined>, host: HostView): UnixEndpoint {
  if (host.exists(DEFAULT_SOCKET)) return { kind: "unix", path: DEFAULT_SOCKET, source: "default" };
  const runtimeDir = env["XDG_RUNTIME_DIR"]?.trim();
  const found: Array<[string, EndpointSource]> = [
    ...(runtimeDir ? [[`${runtimeDir}/docker.sock`, "rootless"] as [string, EndpointSource]] : []),
    ...(runtimeDir ? [[`${runtimeDir}/podman/podman.sock`, "podman"] as [string, EndpointSource]] : []),
    ["/run/podman/podman.sock", "podman"],
  ];
  for (const [path, source] of found) if (host.exists(path)) return { kind: "unix", path, source };
  return { kind: "unix", path: DEFAULT_SOCKET, source: "default" };
}

/** `currentContext` of a docker config.json's text; `undefined` when there is none. */
function currentContext(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text)?.currentContext;
    return typeof v === "string" && v.trim() !== "" ? v.trim() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The endpoint of Docker context `name` (`contexts/meta/<id>/meta.json` whose `Name` is it; its TLS files
 * in `contexts/tls/<id>/docker/`). `why` says where the name came from, for errors.
 */
function fromContext(
  name: string,
  why: string,
  configDir: string | undefined,
  env: Record<string, string | undefined>,
  host: HostView,
): Endpoint {
  const hint =
    "List the contexts:  docker context ls\nor name the engine yourself:  DOCKER_HOST=unix:///var/run/docker.sock";
  const metaDir = `${configDir}/contexts/meta`;
  for (const id of configDir ? host.list(metaDir) : []) {
    let meta: { Name?: unknown; Endpoints?: { docker?: { Host?: unknown; SkipTLSVerify?: unknown } } };
    try {
      meta = JSON.parse(host.read(`${metaDir}/${id}/meta.json`) ?? "null") ?? {};
    } catch {
      continue;
    }
    if (meta.Name !== name) continue;
    const ep = meta.Endpoints?.docker;
    if (typeof ep?.Host !== "string" || ep.Host.trim() === "") {
      throw new UsageError(`Docker context "${name}" (${why}) names no docker endpoint`, hint);
    }
    if (ep.SkipTLSVerify === true) {
      throw new UsageError(
        `Docker context "${name}" (${why}) skips TLS verification, which moat never does`,
        "Give the context the engine's CA:  docker context update " + name +
          " --docker host=…,ca=ca.pem,cert=cert.pem,key=key.pem",
      );
    }
    const tlsDir = `${configDir}/contexts/tls/${id}/docker`;
    const tls = host.exists(`${tlsDir}/ca.pem`) ? tlsFiles(tlsDir, host) : undefined;
    return parseHost(ep.Host.trim(), { source: "context", context: name }, () => tls, env);
  }
  throw new UsageError(`There is no Docker context "${name}" (${why}) in ${configDir ?? "~/.docker"}`, hint);
}

/** `ca.pem`, and `cert.pem` with `key.pem` when both are there, of `dir`. */
function tlsFiles(dir: string, host: HostView): TlsFiles {
  const both = host.exists(`${dir}/cert.pem`) && host.exists(`${dir}/key.pem`);
  return { ca: `${dir}/ca.pem`, ...(both ? { cert: `${dir}/cert.pem`, key: `${dir}/key.pem` } : {}) };
}

/**
 * TLS as `DOCKER_TLS_VERIFY`, `DOCKER_TLS` and `DOCKER_CERT_PATH` say, for a `DOCKER_HOST` on TCP: verified
 * when `DOCKER_TLS_VERIFY` is set (to anything), with the files of `DOCKER_CERT_PATH` (default the config
 * directory). `DOCKER_TLS` alone asks for TLS without verification, which moat refuses.
 */
function envTls(
  env: Record<string, string | undefined>,
  host: HostView,
): TlsFiles | "unverified" | undefined {
  const verify = (env["DOCKER_TLS_VERIFY"] ?? "") !== "";
  if (!verify) return (env["DOCKER_TLS"] ?? "") !== "" ? "unverified" : undefined;
  const dir = env["DOCKER_CERT_PATH"]?.trim() || dockerConfigDir(env);
  if (!dir || !host.exists(`${dir}/ca.pem`)) {
    throw new UsageError(
      `DOCKER_TLS_VERIFY is set, but there is no CA to verify the engine with: ${
        dir ?? "~/.docker"
      }/ca.pem is absent`,
      "Put the engine's CA, your cert.pem and key.pem in a directory and name it:  DOCKER_CERT_PATH=~/.docker/engine",
    );
  }
  return tlsFiles(dir, host);
}

/**
 * Parse a docker host (`unix://`, `tcp://`, `host:port`, `ssh://`) chosen for `chosen`'s reason; `tlsFor`
 * gives its TLS, asked only for TCP (the TLS settings say nothing about a socket or ssh).
 */
function parseHost(
  spec: string,
  chosen: Chosen,
  tlsFor: () => TlsFiles | "unverified" | undefined,
  env: Record<string, string | undefined>,
): Endpoint {
  const where = chosen.source === "context"
    ? `Docker context "${chosen.context}"'s host "${spec}"`
    : `DOCKER_HOST "${spec}"`;
  const unsetHint = chosen.source === "context"
    ? "Use another context:  docker context use default"
    : "Unset it to use the local engine:  unset DOCKER_HOST";
  if (spec.startsWith("unix://")) {
    const path = spec.slice("unix://".length);
    if (path === "") return { kind: "unix", path: DEFAULT_SOCKET, ...chosen };
    if (!path.startsWith("/")) {
      throw new UsageError(
        `${where} must name an absolute socket path`,
        "Use the form:  DOCKER_HOST=unix:///var/run/docker.sock",
      );
    }
    return { kind: "unix", path, ...chosen };
  }
  const scheme = /^([a-z0-9+.-]+):\/\//i.exec(spec)?.[1]?.toLowerCase();
  if (scheme === "ssh") return parseSsh(spec, where, chosen);
  if (scheme !== undefined && scheme !== "tcp") {
    throw new UsageError(
      `${where} uses ${
        /^([a-z0-9+.-]+):/i.exec(spec)![1]
      }://, which moat does not speak; it speaks unix://, tcp:// and ssh://`,
      `${unsetHint}\nor name a unix socket:  DOCKER_HOST=unix:///var/run/docker.sock`,
    );
  }
  const rest = scheme ? spec.slice("tcp://".length) : spec;
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:/\[\]]+)(?::(\d+))?(\/.*)?$/.exec(rest);
  if (!m || (m[3] !== undefined && m[3] !== "/")) {
    throw new UsageError(
      `${where} is not of the form tcp://HOST:PORT`,
      "For example:  DOCKER_HOST=tcp://build-box:2376  (with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH)",
    );
  }
  const hostname = m[1]!.replace(/^\[|\]$/g, "");
  const tls = tlsFor();
  if (tls === "unverified") {
    throw new UsageError(
      `${where} with DOCKER_TLS but without DOCKER_TLS_VERIFY asks for TLS without checking the engine's certificate, which moat never does`,
      "Verify it:  DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=<directory with ca.pem, cert.pem, key.pem>",
    );
  }
  const port = m[2] !== undefined ? Number(m[2]) : tls ? 2376 : 2375;
  if (!(port > 0 && port < 65536)) {
    throw new UsageError(`${where} has no valid port`, "For example:  DOCKER_HOST=tcp://build-box:2376");
  }
  if (!tls && !isLoopback(hostname) && env["MOAT_PLAIN_TCP"] !== "1") {
    throw new UsageError(
      `${where} is plain TCP to another host: anyone on the way could drive that engine, which is root on its host`,
      "Use TLS:  DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=<directory with ca.pem, cert.pem, key.pem>\n" +
        "or ssh://:  DOCKER_HOST=ssh://user@host\nor, on a network you trust, insist:  MOAT_PLAIN_TCP=1",
    );
  }
  return { kind: "tcp", host: hostname, port, ...(tls ? { tls } : {}), ...chosen };
}

function parseSsh(spec: string, where: string, chosen: Chosen): SshEndpoint {
  const m = /^ssh:\/\/(?:([^@/:\s]+)@)?([^@/:\s\[\]]+|\[[0-9a-fA-F:.]+\])(?::(\d+))?(\/[^\s]*)?$/i.exec(spec);
  const port = m?.[3] !== undefined ? Number(m[3]) : undefined;
  if (!m || (port !== undefined && !(port > 0 && port < 65536))) {
    throw new UsageError(
      `${where} is not of the form ssh://[USER@]HOST[:PORT][/SOCKET]`,
      "For example:  DOCKER_HOST=ssh://me@build-box",
    );
  }
  return {
    kind: "ssh",
    host: m[2]!.replace(/^\[|\]$/g, ""),
    ...(m[1] ? { user: m[1] } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(m[4] && m[4] !== "/" ? { socket: m[4] } : {}),
    ...chosen,
  };
}

/**
 * The product behind the engine, from `/_ping`'s `Server` header: Podman's Docker-compatible API says
 * `Libpod/<version>`, Docker's `Docker/<version>`. Pure.
 */
export function engineProduct(server: string | undefined): "Docker" | "Podman" {
  return server !== undefined && /^libpod\//i.test(server) ? "Podman" : "Docker";
}

/** The warning for plain TCP to another host that the user insisted on (`MOAT_PLAIN_TCP=1`). */
export function plainTcpWarning(ep: Endpoint): string | undefined {
  if (ep.kind !== "tcp" || ep.tls || isLoopback(ep.host)) return undefined;
  return `moat: warning: ${endpointUrl(ep)} is plain TCP to another host (MOAT_PLAIN_TCP=1): anyone on the ` +
    "way can drive that engine, which is root on its host";
}
