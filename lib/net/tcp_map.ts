/**
 * `tcp:` entries of a run's network policy (issue 13): a port of the relay passed, whatever it carries, to
 * one upstream, written `PORT=HOST:PORT` (`22=github.com:22`). The sandbox reaches it at the relay's address
 * on that port, or by the upstream's name (moat answers it with the relay's address, lib/net/policy_point.ts).
 * Pure.
 */
import { isHostName, isIpv4, normalizeHost } from "./host_policy.ts";

/** One mapping, checked. */
export interface TcpMapping {
  /** As moat writes it back: `22=github.com:22` (the host lowercased, without a trailing dot). */
  text: string;
  /** The relay's port the sandbox connects to. */
  port: number;
  /** The upstream: a host name or an IPv4 address. */
  host: string;
  /** The upstream's port. */
  hostPort: number;
}

/**
 * The relay's own ports (lib/net/policy_point.ts `PORTS`: 53 DNS, 80 HTTP, 443 TLS, 3128 the proxy); a
 * mapping cannot take one. Kept here so the config does not load the policy point (a test checks they agree).
 */
export const RELAY_SERVICE_PORTS: readonly number[] = [53, 80, 443, 3128];

const SHAPE = /^([^=]*)=(.*):([^:]*)$/;

function port(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** Parse one `tcp:` entry; a string is what is wrong with it (for a config error). Pure. */
export function parseTcpMapping(text: string): TcpMapping | string {
  const m = SHAPE.exec(text.trim());
  if (!m) return `"${text}" is not PORT=HOST:PORT, such as 22=github.com:22`;
  const [, local, rawHost, remote] = m as unknown as [string, string, string, string];
  const localPort = port(local.trim());
  if (localPort === undefined) return `"${local.trim()}" is not a port (1 to 65535)`;
  const hostPort = port(remote.trim());
  if (hostPort === undefined) return `"${remote.trim()}" is not a port (1 to 65535)`;
  if (RELAY_SERVICE_PORTS.includes(localPort)) {
    return `port ${localPort} is one of the relay's own (53 DNS, 80 HTTP, 443 TLS, 3128 the proxy)`;
  }
  const host = normalizeHost(rawHost.trim());
  if (host === "") return "an empty host";
  if (host.includes("*")) return "a mapping goes to one host: no wildcard";
  if (!isIpv4(host) && !isHostName(host)) {
    return `"${host}" is not a host name (letters, digits and hyphens, in labels of 1 to 63 separated by dots) ` +
      "or an IPv4 address";
  }
  return { text: `${localPort}=${host}:${hostPort}`, port: localPort, host, hostPort };
}
