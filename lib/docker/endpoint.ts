/**
 * Where the engine lives. Pure: environment in, endpoint out. Only `unix://` is spoken today; other
 * `DOCKER_HOST` forms are recognised and refused with a clear message, so tcp/TLS (and the docker CLI's
 * contexts) can be added here later without touching callers.
 */
import { UsageError } from "../errors.ts";

export const DEFAULT_SOCKET = "/var/run/docker.sock";

export interface UnixEndpoint {
  kind: "unix";
  path: string;
  /** Why this endpoint was chosen, for messages and `moat doctor`. */
  source: "DOCKER_HOST" | "default";
}

export type Endpoint = UnixEndpoint;

/** Human-readable address, e.g. `unix:///var/run/docker.sock`. */
export function endpointUrl(ep: Endpoint): string {
  return `unix://${ep.path}`;
}

/** Resolve the engine endpoint from `DOCKER_HOST`, else the default socket. */
export function resolveEndpoint(env: Record<string, string | undefined>): Endpoint {
  const host = env["DOCKER_HOST"]?.trim();
  if (!host) return { kind: "unix", path: DEFAULT_SOCKET, source: "default" };
  if (host.startsWith("unix://")) {
    const path = host.slice("unix://".length);
    if (path === "") return { kind: "unix", path: DEFAULT_SOCKET, source: "DOCKER_HOST" };
    if (!path.startsWith("/")) {
      throw new UsageError(
        `DOCKER_HOST "${host}" must name an absolute socket path`,
        "Use the form:  DOCKER_HOST=unix:///var/run/docker.sock",
      );
    }
    return { kind: "unix", path, source: "DOCKER_HOST" };
  }
  const scheme = /^([a-z0-9+.-]+):\/\//i.exec(host)?.[1] ?? "tcp";
  throw new UsageError(
    `DOCKER_HOST "${host}" uses ${scheme}://, which moat does not support yet; only unix:// sockets work`,
    "Unset it to use the local engine:  unset DOCKER_HOST\n" +
      "or name a unix socket:  DOCKER_HOST=unix:///var/run/docker.sock",
  );
}
