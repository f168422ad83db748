/** The PROXY protocol v2 header: encoded, decoded, and what is refused (tables). */
import assert from "node:assert/strict";
import {
  decodeProxyHeader,
  encodeLocalHeader,
  encodeProxyHeader,
  type ProxiedConnection,
  ProxyHeaderError,
  SIGNATURE,
} from "../../lib/net/proxy_header.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("a TCP connection's header, byte for byte as the specification lays it out", () => {
  const c: ProxiedConnection = {
    transport: "stream",
    source: { address: "10.237.0.3", port: 40000 },
    destination: { address: "10.237.0.2", port: 443 },
  };
  const bytes = encodeProxyHeader(c);
  assert.equal(
    hex(bytes),
    "0d0a0d0a000d0a515549540a" + "21" + "11" + "000c" + "0aed0003" + "0aed0002" + "9c40" + "01bb",
  );
  assert.deepEqual(decodeProxyHeader(bytes), { connection: c, size: 28 });
});

Deno.test("decodeProxyHeader: round trips, what follows the header, TLVs skipped, LOCAL", () => {
  const udp: ProxiedConnection = {
    transport: "datagram",
    source: { address: "0.0.0.0", port: 0 },
    destination: { address: "255.255.255.255", port: 65535 },
  };
  assert.deepEqual(decodeProxyHeader(encodeProxyHeader(udp)), { connection: udp, size: 28 });
  // The bytes of the connection follow the header: its size says where they start.
  const withData = new Uint8Array([...encodeProxyHeader(udp), 1, 2, 3]);
  assert.equal(decodeProxyHeader(withData)!.size, 28);
  // A header with a TLV after the addresses: its length covers it, and it is skipped.
  const tlv = encodeProxyHeader(udp);
  const longer = new Uint8Array([...tlv, 0x04, 0x00, 0x01, 0xff]);
  longer[15] = 16;
  assert.deepEqual(decodeProxyHeader(longer), { connection: udp, size: 32 });
  assert.deepEqual(decodeProxyHeader(encodeLocalHeader()), { connection: { local: true }, size: 16 });
});

Deno.test("decodeProxyHeader asks for more bytes until it can tell", () => {
  const bytes = encodeProxyHeader({
    transport: "stream",
    source: { address: "1.2.3.4", port: 1 },
    destination: { address: "5.6.7.8", port: 2 },
  });
  for (let n = 0; n < bytes.byteLength; n++) {
    assert.equal(decodeProxyHeader(bytes.subarray(0, n)), undefined, `${n} bytes`);
  }
  assert.ok(decodeProxyHeader(bytes));
});

Deno.test("decodeProxyHeader refuses what is not a header moat takes", () => {
  const good = encodeProxyHeader({
    transport: "stream",
    source: { address: "1.2.3.4", port: 1 },
    destination: { address: "5.6.7.8", port: 2 },
  });
  const spoilt = (at: number, value: number, length?: number) => {
    const b = new Uint8Array(good);
    b[at] = value;
    if (length !== undefined) b[15] = length;
    return b;
  };
  const cases: Array<[string, Uint8Array, RegExp]> = [
    [
      "a text (version 1) header",
      new TextEncoder().encode("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
      /not a PROXY/,
    ],
    ["a wrong first byte", spoilt(0, 0x0e), /not a PROXY/],
    [
      "a signature wrong early, before the rest came",
      SIGNATURE.slice(0, 3).map((b, i) => i === 2 ? 0 : b),
      /not/,
    ],
    ["version 1 in the binary form", spoilt(12, 0x11), /version 1/],
    ["an unknown command", spoilt(12, 0x22), /command 2/],
    ["IPv6", spoilt(13, 0x21), /family 2/],
    ["unix sockets", spoilt(13, 0x31), /family 3/],
    ["an unknown transport", spoilt(13, 0x13), /transport 3/],
    ["a length too short for the addresses", spoilt(15, 8, 8), /8 bytes/],
  ];
  for (const [name, bytes, message] of cases) {
    assert.throws(
      () => decodeProxyHeader(bytes),
      (e) => e instanceof ProxyHeaderError && message.test(e.message),
      name,
    );
  }
  assert.throws(
    () => encodeProxyHeader({ ...goodConnection(), source: { address: "1.2.3", port: 1 } }),
    RangeError,
  );
  assert.throws(
    () => encodeProxyHeader({ ...goodConnection(), source: { address: "1.2.3.4", port: 70000 } }),
    RangeError,
  );
});

function goodConnection(): ProxiedConnection {
  return {
    transport: "stream",
    source: { address: "1.2.3.4", port: 1 },
    destination: { address: "5.6.7.8", port: 2 },
  };
}
