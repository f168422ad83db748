/**
 * How moat connects to an upstream its policy allowed (`Upstreams` of lib/net/policy_point.ts): it resolves
 * the name itself, on the host, and connects to one of the addresses it got, never to an address the
 * sandbox chose. An address that is not on the public internet (lib/net/addresses.ts: this host, its
 * networks, link-local metadata services) is refused unless the allow-list entry that allowed the
 * connection names that very address: a name must not become a way into the host's own network by what it
 * resolves to (DNS rebinding).
 */
import { after } from "../timer.ts";
import { addressKind } from "./addresses.ts";
import { type HostPattern, isIpv4 } from "./host_policy.ts";
import type { Upstreams } from "./policy_point.ts";

/**
 * The addresses of `resolved` moat may connect to for a connection `rule` allowed, in order; or why none.
 * Pure.
 */
export function usableAddresses(
  host: string,
  resolved: readonly string[],
  rule: HostPattern,
): { addresses: string[] } | { refused: string } {
  if (resolved.length === 0) return { refused: `${host} has no IPv4 address` };
  const named = !rule.wildcard && isIpv4(rule.host) ? rule.host : undefined;
  const usable = resolved.filter((a) => named ? a === named : addressKind(a) === "public");
  if (usable.length) return { addresses: usable };
  const kinds = [...new Set(resolved.map((a) => addressKind(a) ?? "unknown"))].join(", ");
  return {
    refused: `${host} resolves only to addresses that are not public (${kinds}: ${resolved.join(", ")}); ` +
      "a run reaches one only when its allow list names that address",
  };
}

/** How long one connection attempt upstream may take. */
export const CONNECT_MS = 10_000;

/** Resolves a name to its IPv4 addresses. */
export type Resolve = (host: string) => Promise<string[]>;

/** The host's resolver (the A records of `host`). */
export const hostResolve: Resolve = async (host) => {
  try {
    return await Deno.resolveDns(host, "A");
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
};

/** `Upstreams` that resolve with `resolve` and connect with `Deno.connect`, trying each usable address. */
export function hostUpstreams(resolve: Resolve = hostResolve): Upstreams {
  return {
    async dial(host, port, rule) {
      const resolved = isIpv4(host) ? [host] : await resolve(host);
      const usable = usableAddresses(host, resolved, rule);
      if ("refused" in usable) throw new Error(usable.refused);
      let last: unknown;
      for (const hostname of usable.addresses) {
        try {
          return await connectWithin(hostname, port, CONNECT_MS);
        } catch (err) {
          last = err;
        }
      }
      throw new Error(
        `cannot connect to ${host}:${port}: ${last instanceof Error ? last.message : String(last)}`,
      );
    },
  };
}

/** `Deno.connect`, given up after `ms` (a connection that comes later is closed). */
function connectWithin(hostname: string, port: number, ms: number): Promise<Deno.TcpConn> {
  let late = false;
  const attempt = Deno.connect({ hostname, port });
  attempt.then((c) => late && c.close(), () => {});
  let cancel = () => {};
  const timeout = new Promise<never>((_, reject) => {
    cancel = after(ms, () => {
      late = true;
      reject(new Error(`no answer within ${ms / 1000} s`));
    });
  });
  return Promise.race([attempt, timeout]).finally(cancel);
}
