/**
 * Which hosts a run may reach: the `allow` list of its network policy (issue 13), as patterns, and the
 * decision for one host and port. Pure.
 *
 * A pattern is a host name (`api.github.com`), a wildcard for every name under a domain (`*.npmjs.org`:
 * `registry.npmjs.org` and `a.b.npmjs.org`, not `npmjs.org` itself, which needs its own entry), or an IPv4
 * address (the one way to reach a private address on purpose), each with an optional port
 * (`api.example.com:8443`). Without a port a pattern allows 80 and 443, the ports of HTTP and HTTPS; any
 * other port must be named. Names compare without case and without a trailing dot.
 *
 * An entry may carry rules for the HTTP requests sent to its hosts (lib/net/http_rules.ts). Such an entry
 * comes first: for a host and port that it and an entry without rules both cover, its rules apply (a host
 * with rules is never passed unchecked because a broader entry names it too).
 */
import type { HttpRule } from "./http_rules.ts";

/** One entry of an allow list, checked. */
export interface HostPattern {
  /** The entry as written (for logs: the rule that allowed a connection). */
  text: string;
  /** The name or address, lowercased; for a wildcard, the domain after `*.`. */
  host: string;
  wildcard: boolean;
  /** The ports it allows. */
  ports: readonly number[];
  /** Rules for the HTTP requests to its hosts (`host:` with `rules:` in moat.yaml); absent: any request. */
  rules?: readonly HttpRule[];
}

/** The ports a pattern without one allows. */
export const DEFAULT_PORTS: readonly number[] = [80, 443];

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Whether `name` (lowercased, no trailing dot) is a DNS host name: labels of letters, digits and hyphens. */
export function isHostName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split(".");
  return labels.every((l) => LABEL.test(l)) && !/^\d+$/.test(labels.at(-1)!);
}

/** Whether `text` is an IPv4 address in dotted decimal. */
export function isIpv4(text: string): boolean {
  const m = IPV4.exec(text);
  return !!m && m.slice(1).every((o) => Number(o) <= 255 && (o === "0" || !o.startsWith("0")));
}

/** A name as patterns compare it: lowercased, without a trailing dot. Pure. */
export function normalizeHost(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
}

/** Parse one allow-list entry; a string is what is wrong with it (for a config error). Pure. */
export function parseHostPattern(text: string): HostPattern | string {
  const trimmed = text.trim();
  if (trimmed === "") return "an empty host";
  let host = trimmed;
  let ports: readonly number[] = DEFAULT_PORTS;
  const colon = trimmed.lastIndexOf(":");
  if (colon >= 0) {
    const port = trimmed.slice(colon + 1);
    if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
      return `"${port}" is not a port (1 to 65535)`;
    }
    host = trimmed.slice(0, colon);
    ports = [Number(port)];
  }
  host = normalizeHost(host);
  const wildcard = host.startsWith("*.");
  if (wildcard) host = host.slice(2);
  if (host.includes("*")) return "a wildcard is only allowed as the whole first label, as in *.example.com";
  if (isIpv4(host)) {
    return wildcard ? "a wildcard cannot go before an address" : { text: trimmed, host, wildcard, ports };
  }
  if (!isHostName(host)) {
    return `"${host}" is not a host name (letters, digits and hyphens, in labels of 1 to 63 separated by dots)`;
  }
  return { text: trimmed, host, wildcard, ports };
}

/** Whether `pattern` covers `host` (normalized) on `port`. Pure. */
export function matches(pattern: HostPattern, host: string, port: number): boolean {
  if (!pattern.ports.includes(port)) return false;
  return pattern.wildcard ? host.endsWith(`.${pattern.host}`) : host === pattern.host;
}

/**
 * The first of `patterns` with rules that allows `host` on `port`, else the first without; `undefined`:
 * denied. Pure.
 */
export function allowedBy(
  patterns: readonly HostPattern[],
  host: string,
  port: number,
): HostPattern | undefined {
  const name = normalizeHost(host);
  return patterns.find((p) => p.rules !== undefined && matches(p, name, port)) ??
    patterns.find((p) => matches(p, name, port));
}
