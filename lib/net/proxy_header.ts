/**
 * The PROXY protocol, version 2 (HAProxy's "proxy-protocol.txt", section 2.2): the binary header a relay
 * writes at the start of a connection it passes on, saying where the connection came from and which address
 * it was made to. A run's relay (lib/net/relay.ts) writes one at the start of each connection it passes to
 * moat over its unix socket: moat learns the sandbox's address and port, and which of the relay's ports
 * (and so which service: DNS, the proxy, HTTP, TLS, a mapped TCP port) the sandbox asked for. Pure.
 *
 *   12 bytes  signature \r\n\r\n\0\r\nQUIT\n
 *    1 byte   version 2 (high nibble), command: 0 LOCAL, 1 PROXY (low nibble)
 *    1 byte   family: 1 IPv4, 2 IPv6, 3 unix (high nibble); transport: 1 stream, 2 datagram (low nibble)
 *    2 bytes  length of what follows, big-endian
 *   IPv4:     source address (4), destination address (4), source port (2), destination port (2), then
 *             optional TLVs up to the length (skipped here)
 */

export const SIGNATURE = new Uint8Array([
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
]);

/** Bytes of the fixed part, before the addresses. */
export const FIXED_SIZE = 16;

/** What a header says about an IPv4 connection. */
export interface ProxiedConnection {
  /** `stream` for TCP, `datagram` for UDP. */
  transport: "stream" | "datagram";
  source: { address: string; port: number };
  destination: { address: string; port: number };
}

/** A header that says nothing about the connection (`LOCAL`: the relay's own, e.g. a health check). */
export interface LocalConnection {
  local: true;
}

function ipv4Bytes(address: string): number[] {
  const parts = address.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new RangeError(`not an IPv4 address: ${JSON.stringify(address)}`);
  }
  return parts;
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`not a port: ${port}`);
  return port;
}

/** The header for an IPv4 connection (throws `RangeError` for an address or port that is not one). */
export function encodeProxyHeader(c: ProxiedConnection): Uint8Array {
  const out = new Uint8Array(FIXED_SIZE + 12);
  out.set(SIGNATURE, 0);
  out[12] = 0x21; // version 2, PROXY
  out[13] = 0x10 | (c.transport === "stream" ? 1 : 2);
  out[14] = 0;
  out[15] = 12;
  out.set(ipv4Bytes(c.source.address), 16);
  out.set(ipv4Bytes(c.destination.address), 20);
  const view = new DataView(out.buffer);
  view.setUint16(24, checkPort(c.source.port));
  view.setUint16(26, checkPort(c.destination.port));
  return out;
}

/** The `LOCAL` header: a connection of the relay's own, with no addresses. */
export function encodeLocalHeader(): Uint8Array {
  const out = new Uint8Array(FIXED_SIZE);
  out.set(SIGNATURE, 0);
  out[12] = 0x20; // version 2, LOCAL
  return out;
}

/** Why `bytes` do not start with a header moat takes. */
export class ProxyHeaderError extends Error {}

/**
 * Read the header at the start of `bytes`: what it says and its size in bytes, or `undefined` when more
 * bytes are needed to tell. Throws `ProxyHeaderError` for anything else: another signature or version, an
 * unknown command, a family other than IPv4 for `PROXY`, or a length too short for its addresses.
 */
export function decodeProxyHeader(
  bytes: Uint8Array,
): { connection: ProxiedConnection | LocalConnection; size: number } | undefined {
  const known = Math.min(bytes.byteLength, SIGNATURE.byteLength);
  for (let i = 0; i < known; i++) {
    if (bytes[i] !== SIGNATURE[i]) throw new ProxyHeaderError("not a PROXY protocol v2 header");
  }
  if (bytes.byteLength < FIXED_SIZE) return undefined;
  const versionCommand = bytes[12]!;
  if (versionCommand >> 4 !== 2) throw new ProxyHeaderError(`PROXY protocol version ${versionCommand >> 4}`);
  const command = versionCommand & 0x0f;
  const length = (bytes[14]! << 8) | bytes[15]!;
  const size = FIXED_SIZE + length;
  if (command === 0) return bytes.byteLength < size ? undefined : { connection: { local: true }, size };
  if (command !== 1) throw new ProxyHeaderError(`PROXY protocol command ${command}`);
  const family = bytes[13]! >> 4;
  const transport = bytes[13]! & 0x0f;
  if (family !== 1) throw new ProxyHeaderError(`address family ${family}: only IPv4 is taken`);
  if (transport !== 1 && transport !== 2) throw new ProxyHeaderError(`transport ${transport}`);
  if (length < 12) throw new ProxyHeaderError(`an IPv4 header of ${length} bytes`);
  if (bytes.byteLength < size) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const address = (at: number) => `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}`;
  return {
    connection: {
      transport: transport === 1 ? "stream" : "datagram",
      source: { address: address(16), port: view.getUint16(24) },
      destination: { address: address(20), port: view.getUint16(26) },
    },
    size,
  };
}
