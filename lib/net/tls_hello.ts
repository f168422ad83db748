/**
 * The first bytes of a TLS connection: the client's ClientHello, read for the host name it asks for (the
 * server_name extension, "SNI", RFC 6066 section 3) without decrypting anything. moat's egress policy
 * (issue 13) catches the TLS connections a sandbox makes to port 443 without a proxy and decides each by
 * that name; the caller reads from the connection, calls `readClientHello` with every byte so far, and
 * reads more while the answer is `more`. Pure.
 *
 *   record     1 byte type (22: handshake), 2 bytes version (major 3), 2 bytes length (1 .. 2^14), payload
 *   handshake  1 byte type (1: ClientHello), 3 bytes length, body; it may be cut across several handshake
 *              records, which then follow one another with no other record between (RFC 8446, 5.1)
 *   body       version (2), random (32), session id (<1> up to 32), cipher suites (<2>), compression
 *              methods (<1>), and, optional before TLS 1.3, extensions (<2>): each a type (2) and data (<2>)
 *   server_name  a list (<2>) of entries: a name type (1; 0 is host_name) and the name (<2>)
 *
 * (<n> is a vector: an n-byte big-endian length, then that many bytes.)
 *
 * What is taken, strictly, since whatever passes here decides where a sandbox may connect:
 * - every length is checked against what holds it, and each vector must fill its parent exactly;
 * - the ClientHello must end with its last record (a client sends nothing else in that flight, and in
 *   TLS 1.3 a key change may follow it, which must start on a record boundary); records after it are the
 *   caller's, and `size` says where they start;
 * - no extension twice (RFC 8446, 4.2), so no second server_name extension;
 * - exactly one server name, of type host_name (as OpenSSL takes it); none at all is a hello without SNI;
 * - the host name is letters, digits, hyphens and dots, labels of 1 to 63 characters, at most 253 in all
 *   once one trailing dot is dropped (clients should not send one; some do); it comes back lowercased.
 *   Hyphens are taken anywhere in a label: they cannot make a name match a policy it should not;
 * - an IP literal is refused as `not-tls`, not read as "no SNI": RFC 6066 forbids it in HostName, and a
 *   policy that decides by name has no name to decide by. A name is taken for an address when its last
 *   label is all digits or `0x` and hex digits (as resolvers in the inet_aton tradition and URL parsers
 *   read `127.1` or `0x7f000001`; no top-level domain is all digits); IPv6 has colons, which no host name
 *   has.
 *
 * What this does not see: with Encrypted Client Hello (extension 0xfe0d) the name read here is the outer,
 * public one of the client-facing server; the name the client really wants is encrypted inside.
 */

/**
 * Largest ClientHello body taken, in bytes (the handshake message after its 4-byte header). Browsers and
 * TLS libraries send a few hundred bytes to about 2 KB (a post-quantum key share is 1.2 KB of it); 16 KiB,
 * a full record's worth, leaves ample room for tickets and padding, and bounds what a caller buffers before
 * it can decide.
 */
export const MAX_HELLO_SIZE = 16 * 1024;

/**
 * Most records a ClientHello may be cut into. Clients send it in one record; tools that cut it up to slip
 * past filters use a few. Each record is 5 more bytes to buffer and one more turn of the loop on every call,
 * so with the size above the records of a hello never exceed 4 + MAX_HELLO_SIZE + 5 * MAX_RECORDS bytes.
 */
export const MAX_RECORDS = 64;

/** Largest record payload TLS allows (2^14, RFC 8446 5.1 and RFC 5246 6.2.1). */
const MAX_RECORD_LENGTH = 1 << 14;
const RECORD_HEADER_SIZE = 5;
const HANDSHAKE_HEADER_SIZE = 4;
const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const SERVER_NAME = 0;
const HOST_NAME = 0;
const MAX_HOST_NAME = 253;
const MAX_LABEL = 63;

/** What the bytes at the start of a connection are. */
export type ClientHelloResult =
  /** Not enough bytes yet to tell: call again with more. */
  | { kind: "more" }
  /**
   * A ClientHello. `serverName`: its SNI host name, lowercased, or `undefined` when it has none. `size`:
   * how many bytes at the start of the input the records carrying it take.
   */
  | { kind: "hello"; serverName: string | undefined; size: number }
  /** Not a TLS ClientHello moat takes, and why. */
  | { kind: "not-tls"; reason: string };

const MORE: ClientHelloResult = Object.freeze({ kind: "more" });

/** Why the bytes are not a ClientHello; caught in `readClientHello`, never seen outside. */
class Refusal extends Error {}

function refuse(reason: string): never {
  throw new Refusal(reason);
}

const hex = (n: number, digits = 2) => `0x${n.toString(16).padStart(digits, "0")}`;

/**
 * Read the ClientHello at the start of `bytes` (everything read from the connection so far): `more`
 * while the bytes could still begin one, `hello` with its server name and size once the records carrying
 * all of it are there, `not-tls` with a reason as soon as the bytes cannot be one moat takes. Looks at no
 * more than 4 + MAX_HELLO_SIZE + 5 * MAX_RECORDS bytes.
 */
export function readClientHello(bytes: Uint8Array): ClientHelloResult {
  try {
    return read(bytes);
  } catch (e) {
    if (e instanceof Refusal) return { kind: "not-tls", reason: e.message };
    throw e;
  }
}

function read(bytes: Uint8Array): ClientHelloResult {
  /** The handshake header's 4 bytes, as far as they have come. */
  const header: number[] = [];
  /** The whole handshake message's size, once its header is there. */
  let messageSize: number | undefined;
  /** Bytes of the handshake message in the whole records so far. */
  let got = 0;
  const fragments: Uint8Array[] = [];
  let at = 0;
  for (let records = 1;; records++) {
    // Each turn either returns or moves `at` past a record of at least one byte.
    if (at === bytes.byteLength) return MORE;
    if (records > MAX_RECORDS) refuse(`a ClientHello cut into more than ${MAX_RECORDS} records`);
    const length = recordLength(bytes, at, records === 1);
    if (length === undefined) return MORE;
    const start = at + RECORD_HEADER_SIZE;
    const payload = bytes.subarray(start, Math.min(start + length, bytes.byteLength));
    for (let i = 0; header.length < HANDSHAKE_HEADER_SIZE && i < payload.byteLength; i++) {
      header.push(payload[i]!);
    }
    if (header.length > 0 && header[0] !== CLIENT_HELLO) {
      refuse(
        `a handshake message of type ${header[0]}${HANDSHAKE_NAMES[header[0]!] ?? ""}, not a ClientHello`,
      );
    }
    if (messageSize === undefined && header.length === HANDSHAKE_HEADER_SIZE) {
      const bodySize = (header[1]! << 16) | (header[2]! << 8) | header[3]!;
      if (bodySize > MAX_HELLO_SIZE) {
        refuse(`a ClientHello of ${bodySize} bytes, larger than the ${MAX_HELLO_SIZE} taken`);
      }
      messageSize = HANDSHAKE_HEADER_SIZE + bodySize;
    }
    if (messageSize !== undefined && got + length > messageSize) {
      refuse("a record that carries bytes after the ClientHello");
    }
    if (payload.byteLength < length) return MORE;
    fragments.push(payload);
    got += length;
    at = start + length;
    if (got === messageSize) {
      const message = fragments.length === 1 ? fragments[0]! : concat(fragments, got);
      return {
        kind: "hello",
        serverName: helloServerName(message.subarray(HANDSHAKE_HEADER_SIZE)),
        size: at,
      };
    }
  }
}

const HANDSHAKE_NAMES: Record<number, string> = {
  0: " (HelloRequest)",
  2: " (ServerHello)",
  11: " (Certificate)",
  16: " (ClientKeyExchange)",
  20: " (Finished)",
};

const RECORD_NAMES: Record<number, string> = {
  20: "change_cipher_spec",
  21: "alert",
  23: "application_data",
  24: "heartbeat",
};

/**
 * The payload length of the handshake record at `at`, or `undefined` when its header has not all come.
 * Refuses as soon as the bytes there show it is not one.
 */
function recordLength(bytes: Uint8Array, at: number, first: boolean): number | undefined {
  const have = bytes.byteLength - at;
  if (have < 1) return undefined;
  const type = bytes[at]!;
  if (type !== HANDSHAKE) {
    const name = RECORD_NAMES[type];
    if (!first) {
      refuse(`a ${name ?? `type ${type}`} record in the middle of the ClientHello`);
    } else if (name !== undefined) {
      refuse(`a TLS ${name} record, not a handshake`);
    } else if (type >= 0x80) {
      refuse(`an SSL 2 record header (first byte ${hex(type)}): SSL 2 hellos are not taken`);
    } else if (type >= 0x20 && type < 0x7f) {
      refuse(`plain text (first byte ${hex(type)} '${String.fromCharCode(type)}'), not a TLS record`);
    }
    refuse(`not a TLS record (first byte ${hex(type)})`);
  }
  if (have < 2) return undefined;
  if (bytes[at + 1] !== 3) refuse(`a record of version major ${bytes[at + 1]}, not 3 (SSL 3 and TLS)`);
  if (have < RECORD_HEADER_SIZE) return undefined;
  const length = (bytes[at + 3]! << 8) | bytes[at + 4]!;
  if (length === 0) refuse("an empty handshake record");
  if (length > MAX_RECORD_LENGTH) {
    refuse(`a record of ${length} bytes, longer than TLS allows (${MAX_RECORD_LENGTH})`);
  }
  return length;
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** A cursor over one vector of the ClientHello; every read is checked against what is left in it. */
class Reader {
  #at = 0;
  constructor(readonly bytes: Uint8Array, readonly what: string) {}

  get left(): number {
    return this.bytes.byteLength - this.#at;
  }

  take(n: number, what: string): Uint8Array {
    if (n > this.left) {
      refuse(`${what} (${n} bytes) runs past the end of the ${this.what} (${this.left} left)`);
    }
    const out = this.bytes.subarray(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }

  u8(what: string): number {
    return this.take(1, what)[0]!;
  }

  u16(what: string): number {
    const b = this.take(2, what);
    return (b[0]! << 8) | b[1]!;
  }

  /** A vector with a 1- or 2-byte length, as a reader of its own. */
  vector(lengthSize: 1 | 2, what: string): Reader {
    const length = lengthSize === 1
      ? this.u8(`the length of the ${what}`)
      : this.u16(`the length of the ${what}`);
    return new Reader(this.take(length, `the ${what}`), what);
  }

  /** Nothing may follow what was read. */
  end(): void {
    const n = this.left;
    if (n !== 0) refuse(`${n} byte${n === 1 ? "" : "s"} after the end of the ${this.what}`);
  }
}

/** The server name in a ClientHello's body, or `undefined` when it has none. */
function helloServerName(body: Uint8Array): string | undefined {
  const hello = new Reader(body, "ClientHello");
  const version = hello.u16("the version");
  if (version >> 8 !== 3) refuse(`a ClientHello of version ${hex(version, 4)}`);
  hello.take(32, "the random");
  const sessionId = hello.vector(1, "session id");
  if (sessionId.left > 32) refuse(`a session id of ${sessionId.left} bytes (at most 32)`);
  const suites = hello.vector(2, "cipher suites");
  if (suites.left === 0 || suites.left % 2 !== 0) refuse(`cipher suites of ${suites.left} bytes`);
  const compressions = hello.vector(1, "compression methods");
  if (compressions.left === 0) refuse("no compression method");
  // Before TLS 1.3 a ClientHello may end here: no extensions, so no SNI.
  if (hello.left === 0) return undefined;
  const extensions = hello.vector(2, "extensions");
  hello.end();
  const seen = new Set<number>();
  let name: string | undefined;
  while (extensions.left > 0) {
    const type = extensions.u16("an extension type");
    const data = extensions.vector(2, `extension ${type}`);
    if (seen.has(type)) refuse(`extension ${type} twice`);
    seen.add(type);
    if (type === SERVER_NAME) name = serverName(data);
  }
  return name;
}

/** The host name in a server_name extension's data. */
function serverName(data: Reader): string {
  const list = data.vector(2, "server name list");
  data.end();
  if (list.left === 0) refuse("an empty server name list");
  let name: string | undefined;
  while (list.left > 0) {
    const type = list.u8("a server name type");
    if (type !== HOST_NAME) refuse(`a server name of type ${type}: only host_name (0) is taken`);
    const entry = list.vector(2, "host name");
    if (name !== undefined) refuse("more than one host_name in server_name");
    name = hostName(entry.bytes);
  }
  return name!;
}

/** The host name of an SNI entry, checked, without a trailing dot and lowercased. */
function hostName(bytes: Uint8Array): string {
  if (bytes.byteLength === 0) refuse("an empty host name");
  // One more than the longest name, for its trailing dot; checked before the bytes become a string.
  if (bytes.byteLength > MAX_HOST_NAME + 1) {
    refuse(`a host name of ${bytes.byteLength} bytes (at most ${MAX_HOST_NAME})`);
  }
  let text = "";
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    if (c === ":" || c === "[") refuse("an IPv6 address as the host name (RFC 6066 forbids IP literals)");
    if (!/[A-Za-z0-9.-]/.test(c)) {
      refuse(`a host name with byte ${hex(b)}: only letters, digits, hyphens and dots are taken`);
    }
    text += c;
  }
  if (text.endsWith(".")) text = text.slice(0, -1);
  if (text.length > MAX_HOST_NAME) {
    refuse(`a host name of ${text.length} characters (at most ${MAX_HOST_NAME})`);
  }
  const labels = text.split(".");
  for (const label of labels) {
    if (label.length === 0) refuse("a host name with an empty label");
    if (label.length > MAX_LABEL) {
      refuse(`a host name label of ${label.length} characters (at most ${MAX_LABEL})`);
    }
  }
  if (/^(?:[0-9]+|0x[0-9a-f]*)$/i.test(labels[labels.length - 1]!)) {
    refuse(`an IP address as the host name (${text}): RFC 6066 forbids IP literals`);
  }
  return text.toLowerCase();
}
