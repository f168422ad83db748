/**
 * A run's own network: the only network its sandbox joins, on which it reaches nothing but what moat puts
 * there. Pure: what to ask the engine for.
 *
 * The network is `Internal` (no route out) and its bridge gets no IPv4 address on the host
 * (`com.docker.network.bridge.inhibit_ipv4`). `Internal` alone is not enough: the bridge's host address
 * is the network's gateway, and a container on an internal network still reaches every host service
 * listening on all addresses through it (and through the host's other bridge addresses, such as
 * `docker0`'s). Without an address on the host there is nothing there to reach (tests/engine/
 * network_test.ts shows both on the real engine under gVisor). Containers on the network reach each other.
 *
 * Its subnet is moat's choice, so that the run can give its containers fixed addresses: a /28 from
 * `SUBNET_POOL` that no other network of the engine uses (the engine refuses overlapping subnets). Since
 * the bridge has no address on the host, the host has no route to the subnet, and the pool may overlap
 * networks the host itself is on.
 */
import type { NetworkCreateBody } from "../docker/types.ts";

/** Where runs' subnets come from: 4,096 /28s of a private range Docker's default address pools do not use. */
export const SUBNET_POOL = "10.237.0.0/16";
/** A run's subnet: 16 addresses, more than the few containers of a run need. */
export const SUBNET_PREFIX = 28;

/** The engine's body for a run's network `name` on `subnet`, carrying `labels`. Pure. */
export function isolatedNetworkBody(
  name: string,
  subnet: string,
  labels: Record<string, string>,
): NetworkCreateBody {
  return {
    Name: name,
    Driver: "bridge",
    Internal: true,
    Attachable: false,
    EnableIPv6: false,
    CheckDuplicate: true,
    IPAM: { Driver: "default", Config: [{ Subnet: subnet }] },
    Options: {
      "com.docker.network.bridge.inhibit_ipv4": "true",
      "com.docker.network.bridge.enable_icc": "true",
    },
    Labels: labels,
  };
}

/**
 * Whether the engine's `inspect` of network `name` is one `isolatedNetworkBody` makes: that name, `Internal`,
 * its bridge without a host address, no IPv6. Pure.
 */
export function isIsolatedNetwork(
  inspect: {
    Name: string;
    Internal?: boolean;
    EnableIPv6?: boolean;
    Options?: Record<string, string> | null;
  },
  name: string,
): boolean {
  return inspect.Name === name && inspect.Internal === true && inspect.EnableIPv6 !== true &&
    inspect.Options?.["com.docker.network.bridge.inhibit_ipv4"] === "true";
}

/** An IPv4 CIDR as its first address (an unsigned 32-bit number) and prefix length. */
export interface Cidr {
  base: number;
  prefix: number;
}

/** Parse `a.b.c.d/n` (the host bits cleared); `undefined` for anything else, IPv6 included. Pure. */
export function parseCidr(text: string): Cidr | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text.trim());
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255) || prefix > 32) return undefined;
  const address = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
  return { base: (address & mask(prefix)) >>> 0, prefix };
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** `a.b.c.d/n`. Pure. */
export function formatCidr(c: Cidr): string {
  const b = c.base;
  return `${b >>> 24}.${(b >>> 16) & 255}.${(b >>> 8) & 255}.${b & 255}/${c.prefix}`;
}

/** Whether two subnets share an address. Pure. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  const m = mask(Math.min(a.prefix, b.prefix));
  return ((a.base & m) >>> 0) === ((b.base & m) >>> 0);
}

/**
 * The first subnet of `prefix` bits in `pool` that overlaps none of `used` (the subnets of the engine's
 * networks; IPv6 ones and unreadable ones are ignored), looking from the `from`th on (and round); `undefined`
 * when the pool has none left. Pure.
 */
export function freeSubnet(
  used: readonly string[],
  pool: string = SUBNET_POOL,
  prefix: number = SUBNET_PREFIX,
  from = 0,
): string | undefined {
  const p = parseCidr(pool);
  if (!p || prefix < p.prefix) return undefined;
  const taken = used.map(parseCidr).filter((c): c is Cidr => c !== undefined);
  const size = 2 ** (32 - prefix);
  const count = 2 ** (prefix - p.prefix);
  for (let k = 0; k < count; k++) {
    const i = (((from + k) % count) + count) % count;
    const candidate = { base: p.base + i * size, prefix };
    if (!taken.some((t) => overlaps(t, candidate))) return formatCidr(candidate);
  }
  return undefined;
}

/** The `n`th address of `subnet` (`.1` is the first after the network's own address). Pure. */
export function addressIn(subnet: string, n: number): string | undefined {
  const c = parseCidr(subnet);
  if (!c || n < 1 || n >= 2 ** (32 - c.prefix) - 1) return undefined;
  return formatCidr({ base: c.base + n, prefix: 32 }).slice(0, -3);
}
