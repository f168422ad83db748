/**
 * The ClientHello reader: real hellos from Deno's own TLS client (caught by a plain TCP listener, whose
 * silence then fails the handshake), the same cut into records and fed a byte at a time, and hand-built
 * hellos for every name it takes and every refusal (tables).
 */
import assert from "node:assert/strict";
import { MAX_HELLO_SIZE, MAX_RECORDS, readClientHello } from "../../lib/net/tls_hello.ts";

// --- Real hellos --------------------------------------------------------------------------------------

/**
 * The first bytes Deno's TLS client sends on a connection `start` makes to a plain TCP listener on
 * 127.0.0.1, read until `readClientHello` stops saying `more`. The listener answers nothing and closes, so
 * the client's handshake fails; that failure is awaited here, leaving no op or resource behind.
 */
async function firstBytes(start: (port: number) => Promise<Deno.TlsConn>): Promise<Uint8Array> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const handshake = start(listener.addr.port).then(async (conn) => {
    try {
      await conn.handshake();
    } finally {
      conn.close();
    }
  });
  const outcome = handshake.then(() => undefined, (e: unknown) => e);
  let bytes: Uint8Array = new Uint8Array(0);
  try {
    const server = await listener.accept();
    try {
      const buffer = new Uint8Array(4096);
      while (readClientHello(bytes).kind === "more") {
        const n = await server.read(buffer);
        if (n === null) break;
        bytes = join(bytes, buffer.subarray(0, n));
      }
    } finally {
      server.close();
    }
  } finally {
    listener.close();
    assert.ok((await outcome) instanceof Error, "the TLS handshake with a plain TCP listener failed");
  }
  return bytes;
}

/** A hello Deno's client sends when it connects by host name or address (SNI only for a name). */
const connectTls = (hostname: string) => firstBytes((port) => Deno.connectTls({ hostname, port }));

/** A hello Deno's client sends for `hostname` over a TCP connection to 127.0.0.1: any name, no lookup. */
const startTls = (hostname: string) =>
  firstBytes(async (port) =>
    Deno.startTls(await Deno.connect({ hostname: "127.0.0.1", port }), { hostname })
  );

function join(...parts: Array<Uint8Array | number[]>): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const contains = (bytes: Uint8Array, text: string) => new TextDecoder("latin1").decode(bytes).includes(text);

Deno.test("Deno's TLS client: its SNI read for a host name, none for an IP address", async () => {
  const cases: Array<[string, () => Promise<Uint8Array>, string | undefined]> = [
    ["connectTls to localhost", () => connectTls("localhost"), "localhost"],
    ["connectTls to 127.0.0.1", () => connectTls("127.0.0.1"), undefined],
    ["startTls for a name in mixed case", () => startTls("Example.COM"), "example.com"],
    ["startTls for a name with a trailing dot", () => startTls("api.example.org."), "api.example.org"],
    ["startTls for an IPv4 address", () => startTls("192.0.2.1"), undefined],
    ["startTls for an IPv6 address", () => startTls("::1"), undefined],
  ];
  for (const [name, hello, serverName] of cases) {
    const bytes = await hello();
    // Deno sends its hello in one record: the size is that record's, read here from its header.
    assert.equal(bytes.byteLength, 5 + ((bytes[3]! << 8) | bytes[4]!), name);
    assert.deepEqual(readClientHello(bytes), { kind: "hello", serverName, size: bytes.byteLength }, name);
  }
  // The client sends the name as it was given: the lowercase is the reader's.
  assert.ok(contains(await startTls("Example.COM"), "Example.COM"));
});

Deno.test("a real hello fed a byte at a time: more for every prefix, then the hello and its size", async () => {
  const bytes = await connectTls("localhost");
  for (let n = 0; n < bytes.byteLength; n++) {
    assert.deepEqual(readClientHello(bytes.subarray(0, n)), { kind: "more" }, `${n} bytes`);
  }
  const hello = { kind: "hello", serverName: "localhost", size: bytes.byteLength };
  assert.deepEqual(readClientHello(bytes), hello);
  // What follows the hello's records (here a change_cipher_spec record and early data) is the caller's.
  const after = [0x14, 3, 3, 0, 1, 1, 0x17, 3, 3, 0, 3, 9, 9, 9];
  assert.deepEqual(readClientHello(join(bytes, after)), hello);
  // A hello that starts part way into a buffer (a subarray) reads the same.
  assert.deepEqual(readClientHello(join([1, 2, 3], bytes).subarray(3)), hello);
});

Deno.test("a real hello cut into records: taken up to MAX_RECORDS, each prefix asking for more", async () => {
  const message = (await startTls("cut.example")).subarray(5);
  for (const cut of [Math.ceil(message.byteLength / MAX_RECORDS), 4, 16, 100, message.byteLength - 1]) {
    const bytes = records(message, cut);
    assert.deepEqual(
      readClientHello(bytes),
      { kind: "hello", serverName: "cut.example", size: bytes.byteLength },
      `records of ${cut} bytes`,
    );
    // Followed by the start of another record, the size is still the hello's.
    assert.equal((readClientHello(join(bytes, [0x14, 3])) as { size: number }).size, bytes.byteLength);
  }
  // MAX_RECORDS records (one byte in each but the last) are taken; one more is not.
  const most = records(message, filled(MAX_RECORDS - 1, 1));
  assert.equal(count(most), MAX_RECORDS);
  assert.deepEqual(readClientHello(most), {
    kind: "hello",
    serverName: "cut.example",
    size: most.byteLength,
  });
  for (let n = 0; n < most.byteLength; n++) {
    assert.deepEqual(readClientHello(most.subarray(0, n)), { kind: "more" }, `${n} bytes`);
  }
  const tooMany = records(message, filled(MAX_RECORDS, 1));
  assert.equal(count(tooMany), MAX_RECORDS + 1);
  const refused = readClientHello(tooMany);
  assert.equal(refused.kind, "not-tls");
  assert.match((refused as { reason: string }).reason, /more than 64 records/);
  // Refused as soon as the record after the last one taken begins: MAX_RECORDS records of 6 bytes, then 1.
  assert.deepEqual(readClientHello(tooMany.subarray(0, MAX_RECORDS * 6)), { kind: "more" });
  assert.equal(readClientHello(tooMany.subarray(0, MAX_RECORDS * 6 + 1)).kind, "not-tls");
});

/** How many records `bytes` holds, walked by their headers. */
function count(bytes: Uint8Array): number {
  let n = 0;
  for (let at = 0; at < bytes.byteLength; at += 5 + ((bytes[at + 3]! << 8) | bytes[at + 4]!)) n++;
  return n;
}

// --- Hand-built hellos --------------------------------------------------------------------------------

type Bytes = number[];
const u16 = (n: number): Bytes => [(n >> 8) & 0xff, n & 0xff];
const u24 = (n: number): Bytes => [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const vec8 = (b: Bytes): Bytes => [b.length, ...b];
const vec16 = (b: Bytes): Bytes => [...u16(b.length), ...b];
const ascii = (s: string): Bytes => Array.from(s, (c) => c.charCodeAt(0));
const filled = (n: number, value = 0): Bytes => new Array(n).fill(value);

/** An extension: its type and its data. */
const ext = (type: number, data: Bytes): Bytes => [...u16(type), ...vec16(data)];

/** A server_name extension naming each of `names` as a host_name. */
const sni = (...names: Array<string | Bytes>): Bytes =>
  ext(0, vec16(names.flatMap((n) => [0, ...vec16(typeof n === "string" ? ascii(n) : n)])));

/** The fields of a ClientHello's body, each as its bytes on the wire (vectors with their length). */
interface Parts {
  version?: Bytes;
  sessionId?: Bytes;
  suites?: Bytes;
  compressions?: Bytes;
  /** The extension block, its length first; `[]` for none at all. */
  extensions?: Bytes;
}

const GREASE = 0x0a0a;

/** A ClientHello's body, laid out as a TLS 1.3 client sends it unless `parts` says otherwise. */
function body(parts: Parts = {}): Bytes {
  return [
    ...(parts.version ?? [3, 3]),
    ...filled(32, 0x5a), // random
    ...(parts.sessionId ?? vec8(filled(32, 0x11))),
    ...(parts.suites ?? vec16([0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f])),
    ...(parts.compressions ?? vec8([0])),
    ...(parts.extensions ??
      vec16([...ext(GREASE, []), ...sni("example.com"), ...ext(43, [2, 3, 4]), ...ext(10, vec16([0, 29]))])),
  ];
}

/** A handshake message: its type (1, ClientHello, unless said), 3 bytes of length, its body. */
const handshake = (b: Bytes, type = 1): Bytes => [type, ...u24(b.length), ...b];

/**
 * `message` in handshake records: of `cut` bytes each (the last one shorter), or of the sizes `cut` lists
 * and then one record for the rest.
 */
function records(message: Bytes | Uint8Array, cut: number | number[] = 1 << 14): Uint8Array {
  const out: Bytes = [];
  for (let at = 0, i = 0; at < message.length; i++) {
    const size = typeof cut === "number" ? cut : cut[i] ?? message.length - at;
    const part = Array.from(message.slice(at, at + size));
    out.push(0x16, 3, 1, ...u16(part.length), ...part);
    at += size;
  }
  return new Uint8Array(out);
}

/** A ClientHello in one record, with `extensions` as its extension block. */
const hello = (...extensions: Bytes[]) => records(handshake(body({ extensions: vec16(extensions.flat()) })));

const label63 = "a".repeat(63);
/** 253 characters: three labels of 63, one of 61. */
const longest = `${label63}.${label63}.${label63}.${"b".repeat(61)}`;

Deno.test("hand-built hellos: the name read, or none", () => {
  const cases: Array<[string, Uint8Array, string | undefined]> = [
    ["the default hello", records(handshake(body())), "example.com"],
    ["no extensions at all (TLS 1.2 and before)", records(handshake(body({ extensions: [] }))), undefined],
    ["an empty extension block", hello(), undefined],
    ["extensions, but no server_name", hello(ext(43, [2, 3, 4]), ext(GREASE, [])), undefined],
    ["server_name last", hello(ext(43, [2, 3, 4]), sni("last.example")), "last.example"],
    ["upper case, lowered", hello(sni("WWW.Example.COM")), "www.example.com"],
    ["a trailing dot, dropped", hello(sni("example.com.")), "example.com"],
    ["one label", hello(sni("localhost")), "localhost"],
    ["hyphens and a punycode label", hello(sni("a-b.xn--bcher-kva.example")), "a-b.xn--bcher-kva.example"],
    ["hyphens at a label's ends", hello(sni("-a-.example")), "-a-.example"],
    ["digits, but not in the last label", hello(sni("1.2.3.example")), "1.2.3.example"],
    ["a last label that only starts like a hex number", hello(sni("cafe.0xg")), "cafe.0xg"],
    ["a label of 63", hello(sni(`${label63}.example`)), `${label63}.example`],
    ["a name of 253", hello(sni(longest)), longest],
    ["a name of 253 and a trailing dot", hello(sni(`${longest}.`)), longest],
    [
      "an old hello: TLS 1.0, no session id, one suite",
      records(handshake(body({ version: [3, 1], sessionId: vec8([]), suites: vec16([0, 0x2f]) }))),
      "example.com",
    ],
  ];
  for (const [name, bytes, serverName] of cases) {
    assert.deepEqual(readClientHello(bytes), { kind: "hello", serverName, size: bytes.byteLength }, name);
  }
});

Deno.test("a hello of MAX_HELLO_SIZE bytes is taken (over two records), one byte more is not", () => {
  const padded = (padding: number) =>
    body({ extensions: vec16([...sni("big.example"), ...ext(21, filled(padding))]) });
  const padding = MAX_HELLO_SIZE - padded(0).length;
  const largest = records(handshake(padded(padding)));
  assert.equal(largest.byteLength, 4 + MAX_HELLO_SIZE + 2 * 5);
  assert.deepEqual(readClientHello(largest), {
    kind: "hello",
    serverName: "big.example",
    size: largest.byteLength,
  });
  const larger = records(handshake(padded(padding + 1)));
  // Refused from the handshake header alone: nothing more is buffered.
  const refused = readClientHello(larger.subarray(0, 9));
  assert.equal(refused.kind, "not-tls");
  assert.match(
    (refused as { reason: string }).reason,
    /ClientHello of 16385 bytes, larger than the 16384 taken/,
  );
});

Deno.test("readClientHello refuses what is not a ClientHello moat takes", () => {
  const message = handshake(body());
  const alert = [0x15, 3, 3, 0, 2, 2, 40];
  const cases: Array<[string, Uint8Array | Bytes, RegExp]> = [
    // Not TLS, or not a handshake.
    [
      "plain HTTP",
      ascii("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
      /plain text \(first byte 0x47 'G'\)/,
    ],
    ["an SSL 2 ClientHello", [0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0, 0, 0, 0x10], /SSL 2/],
    ["a control byte", [0x05, 3, 1, 0, 1, 0], /not a TLS record \(first byte 0x05\)/],
    ["a TLS alert", alert, /TLS alert record, not a handshake/],
    ["application data", [0x17, 3, 3, 0, 1, 0], /TLS application_data record/],
    ["a record of version 2.0", [0x16, 2, 0, 0, 1, 1], /version major 2/],
    ["an empty record", [0x16, 3, 1, 0, 0], /empty handshake record/],
    ["a record over 2^14", [0x16, 3, 1, 0x40, 0x01], /record of 16385 bytes, longer than TLS allows/],
    ["a ServerHello", records(handshake(body(), 2)), /type 2 \(ServerHello\), not a ClientHello/],
    ["a handshake message of type 99", records(handshake(body(), 99)), /type 99, not a ClientHello/],
    // The records.
    [
      "an alert between two records of the hello",
      join(records(message.slice(0, 50)), alert, records(message.slice(50))),
      /alert record in the middle/,
    ],
    [
      "an unknown record between",
      join(records(message.slice(0, 3)), [99, 3, 3, 0, 1, 0]),
      /type 99 record in the middle/,
    ],
    [
      "a record going on after the hello",
      records([...message, 0x14]),
      /record that carries bytes after the ClientHello/,
    ],
    [
      "another handshake message in its record",
      records([...message, ...handshake([], 20)]),
      /after the ClientHello/,
    ],
    ["too many records", records(message, 1), /more than 64 records/],
    // The body's fields.
    [
      "a hello of version 2.0",
      records(handshake(body({ version: [2, 0] }))),
      /ClientHello of version 0x0200/,
    ],
    [
      "a body of 10 bytes",
      records(handshake(filled(10, 3))),
      /the random \(32 bytes\) runs past the end of the ClientHello \(8 left\)/,
    ],
    ["an empty body", records(handshake([])), /the version \(2 bytes\) runs past/],
    [
      "a session id of 33 bytes",
      records(handshake(body({ sessionId: vec8(filled(33)) }))),
      /session id of 33 bytes/,
    ],
    [
      "a session id past the end",
      records(handshake(body({ sessionId: [200, 1, 2] }))),
      /the session id \(200 bytes\) runs past the end of the ClientHello/,
    ],
    [
      "cipher suites of odd length",
      records(handshake(body({ suites: vec16([0x13, 1, 0x13]) }))),
      /cipher suites of 3 bytes/,
    ],
    ["no cipher suite", records(handshake(body({ suites: vec16([]) }))), /cipher suites of 0 bytes/],
    ["no compression method", records(handshake(body({ compressions: vec8([]) }))), /no compression method/],
    [
      "an extension block longer than the hello",
      records(handshake(body({ extensions: [...u16(100), ...sni("a.example")] }))),
      /the extensions \(100 bytes\) runs past/,
    ],
    [
      "bytes after the extension block",
      records(handshake(body({ extensions: [...vec16(sni("a.example")), 0, 0] }))),
      /2 bytes after the end of the ClientHello/,
    ],
    [
      "half an extension block length",
      records(handshake(body({ extensions: [0] }))),
      /the length of the extensions \(2 bytes\) runs past/,
    ],
    [
      "half an extension type",
      hello([0]),
      /an extension type \(2 bytes\) runs past the end of the extensions/,
    ],
    [
      "an extension past the block",
      hello([0, 0, 0, 50, 1, 2]),
      /the extension 0 \(50 bytes\) runs past the end of the extensions \(2 left\)/,
    ],
    ["server_name twice", hello(sni("a.example"), sni("b.example")), /extension 0 twice/],
    [
      "another extension twice",
      hello(ext(43, [2, 3, 4]), sni("a.example"), ext(43, [2, 3, 4])),
      /extension 43 twice/,
    ],
    // The server_name extension.
    ["two host names", hello(sni("a.example", "b.example")), /more than one host_name/],
    ["a host name twice", hello(sni("a.example", "a.example")), /more than one host_name/],
    [
      "a name of another type",
      hello(ext(0, vec16([1, ...vec16(ascii("a.example"))]))),
      /server name of type 1: only host_name \(0\)/,
    ],
    ["an empty server name list", hello(ext(0, vec16([]))), /empty server name list/],
    [
      "an empty server_name extension",
      hello(ext(0, [])),
      /the length of the server name list \(2 bytes\) runs past the end of the extension 0/,
    ],
    [
      "a byte after the server name list",
      hello(ext(0, [...vec16([0, ...vec16(ascii("a.example"))]), 9])),
      /1 byte after the end of the extension 0/,
    ],
    [
      "a host name past its list",
      hello(ext(0, vec16([0, ...u16(50), ...ascii("a.example")]))),
      /the host name \(50 bytes\) runs past the end of the server name list/,
    ],
    // The host name.
    ["an empty host name", hello(sni("")), /empty host name/],
    ["an underscore", hello(sni("exa_mple.com")), /byte 0x5f: only letters, digits, hyphens and dots/],
    ["a space", hello(sni("exa mple.com")), /byte 0x20/],
    ["a NUL", hello(sni("example.com\0.evil.example")), /byte 0x00/],
    ["a wildcard", hello(sni("*.example.com")), /byte 0x2a/],
    ["a slash", hello(sni("example.com/x")), /byte 0x2f/],
    ["UTF-8", hello(sni(Array.from(new TextEncoder().encode("bücher.example")))), /byte 0xc3/],
    ["a label of 64", hello(sni(`${"a".repeat(64)}.example`)), /label of 64 characters \(at most 63\)/],
    ["a name of 254", hello(sni(`c${longest}`)), /host name of 254 characters \(at most 253\)/],
    ["a name of 257 bytes", hello(sni(`${longest}.abc`)), /host name of 257 bytes/],
    ["an empty label", hello(sni("a..example")), /empty label/],
    ["a leading dot", hello(sni(".example")), /empty label/],
    ["two trailing dots", hello(sni("example.com..")), /empty label/],
    ["a dot alone", hello(sni(".")), /empty label/],
    ["an IPv4 address", hello(sni("127.0.0.1")), /IP address as the host name \(127\.0\.0\.1\): RFC 6066/],
    ["an IPv4 address and a dot", hello(sni("192.0.2.1.")), /IP address as the host name \(192\.0\.2\.1\)/],
    ["a short IPv4 address", hello(sni("127.1")), /IP address/],
    ["an IPv4 address as one number", hello(sni("2130706433")), /IP address/],
    ["an IPv4 address in hex", hello(sni("0x7f000001")), /IP address/],
    ["a name ending in a hex number", hello(sni("a.0X7F")), /IP address/],
    ["an IPv6 address", hello(sni("::1")), /IPv6 address as the host name/],
    ["an IPv6 address in brackets", hello(sni("[::1]")), /IPv6 address as the host name/],
    ["an IPv6 address with a zone", hello(sni("fe80::1%eth0")), /IPv6 address/],
  ];
  for (const [name, input, reason] of cases) {
    const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
    const result = readClientHello(bytes);
    assert.equal(result.kind, "not-tls", name);
    assert.match((result as { reason: string }).reason, reason, name);
    // No prefix of what is refused is taken as a hello.
    for (let n = 0; n < bytes.byteLength; n++) {
      assert.notEqual(readClientHello(bytes.subarray(0, n)).kind, "hello", `${name}, ${n} bytes`);
    }
  }
});

Deno.test("readClientHello refuses as soon as the bytes show it is no ClientHello", () => {
  const cases: Array<[string, Bytes, RegExp]> = [
    ["the first byte of HTTP", ascii("G"), /plain text/],
    ["the first byte of an SSL 2 hello", [0x80], /SSL 2/],
    ["a version byte", [0x16, 0x02], /version major 2/],
    ["an empty record's header", [0x16, 3, 1, 0, 0], /empty/],
    ["a ServerHello's first byte", [0x16, 3, 3, 0, 60, 2], /ServerHello/],
    ["a hello too large, from its header", [0x16, 3, 1, 0, 60, 1, 1, 0, 0], /larger than/],
    ["a record too long for the hello in it", [0x16, 3, 1, 0, 60, 1, 0, 0, 40], /after the ClientHello/],
    [
      "a second record that is not a handshake",
      [...records(handshake(body()), 4).subarray(0, 9), 0x15],
      /alert record in the middle/,
    ],
  ];
  for (const [name, bytes, reason] of cases) {
    const result = readClientHello(new Uint8Array(bytes));
    assert.equal(result.kind, "not-tls", name);
    assert.match((result as { reason: string }).reason, reason, name);
  }
});
