/**
 * What kind of IPv4 address an upstream name resolved to. moat connects a sandbox only to addresses it
 * resolved itself, and refuses those that are not on the public internet (this host, its networks, the
 * cloud's metadata service at 169.254.169.254) unless the policy names the address itself: a name the
 * sandbox may reach must not become a way into the host's own network by resolving to a private address.
 * Pure. Ranges from the IANA IPv4 Special-Purpose Address Registry (RFC 6890 and its updates).
 */

export type AddressKind =
  | "public"
  | "unspecified" // 0.0.0.0/8: "this network"
  | "private" // 10/8, 172.16/12, 192.168/16 (RFC 1918)
  | "shared" // 100.64/10, carrier-grade NAT (RFC 6598)
  | "loopback" // 127/8
  | "link-local" // 169.254/16, cloud metadata services among them
  | "reserved"; // protocol assignments, documentation, benchmarking, 240/4, multicast, broadcast

/** One range: first address, prefix length, kind. */
const RANGES: ReadonlyArray<readonly [string, number, AddressKind]> = [
  ["0.0.0.0", 8, "unspecified"],
  ["10.0.0.0", 8, "private"],
  ["100.64.0.0", 10, "shared"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local"],
  ["172.16.0.0", 12, "private"],
  ["192.0.0.0", 24, "reserved"], // IETF protocol assignments
  ["192.0.2.0", 24, "reserved"], // TEST-NET-1
  ["192.88.99.0", 24, "reserved"], // 6to4 relay anycast (deprecated)
  ["192.168.0.0", 16, "private"],
  ["198.18.0.0", 15, "reserved"], // benchmarking
  ["198.51.100.0", 24, "reserved"], // TEST-NET-2
  ["203.0.113.0", 24, "reserved"], // TEST-NET-3
  ["224.0.0.0", 4, "reserved"], // multicast
  ["240.0.0.0", 4, "reserved"], // future use, and the broadcast address
];

/** The address as an unsigned 32-bit number; `undefined` when it is not dotted-decimal IPv4. Pure. */
export function ipv4Number(address: string): number | undefined {
  const parts = address.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255)) {
    return undefined;
  }
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

/** The kind of an IPv4 address; `undefined` when it is not one. Pure. */
export function addressKind(address: string): AddressKind | undefined {
  const n = ipv4Number(address);
  if (n === undefined) return undefined;
  for (const [first, prefix, kind] of RANGES) {
    const size = 2 ** (32 - prefix);
    const base = ipv4Number(first)!;
    if (n >= base && n < base + size) return kind;
  }
  return "public";
}
