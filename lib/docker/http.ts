/**
 * HTTP/1.1 framing for the engine socket, written for the daemon's Go `net/http` server
 * (Go src/net/http/server.go): request serialisation, the response head, Content-Length, chunked and
 * close-delimited bodies, bodiless 1xx/204/304/HEAD replies, and the raw stream after a `101` upgrade.
 * No sockets here: everything reads from a `ByteSource`, so tests feed bytes split at any point.
 */

/** Anything with `Deno.Conn`'s read shape. */
export interface ByteSource {
  read(p: Uint8Array): Promise<number | null>;
}

/** A parsed status line and header block. Header names are lower-cased. */
export interface ResponseHead {
  status: number;
  reason: string;
  headers: Map<string, string>;
}

/** An outgoing request. `path` includes the query string. */
export interface RequestInit {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The Host value is ignored on unix sockets but required by HTTP/1.1; the Go client sends this one. */
export const DUMMY_HOST = "api.moby.localhost";

/**
 * Serialise a request. A POST without body gets `Content-Length: 0` (the daemon rejects chunked or
 * non-empty bodies on `/start`, moby postContainersStart). One request per connection: `Connection: close`
 * unless the caller asks for an upgrade.
 */
export function serializeRequest(req: RequestInit): Uint8Array {
  const headers: Record<string, string> = { "Host": DUMMY_HOST, "User-Agent": "moat", ...req.headers };
  const lower = new Set(Object.keys(headers).map((h) => h.toLowerCase()));
  if (!lower.has("connection")) headers["Connection"] = "close";
  const body = req.body;
  if (body !== undefined || req.method === "POST" || req.method === "PUT") {
    headers["Content-Length"] = String(body?.byteLength ?? 0);
  }
  let head = `${req.method} ${req.path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  head += "\r\n";
  const headBytes = encoder.encode(head);
  if (!body || body.byteLength === 0) return headBytes;
  const out = new Uint8Array(headBytes.byteLength + body.byteLength);
  out.set(headBytes, 0);
  out.set(body, headBytes.byteLength);
  return out;
}

/** Raised when the peer's bytes are not HTTP we can read, or end too early. */
export class HttpProtocolError extends Error {
  override name = "HttpProtocolError";
}

/** Parse the text of a head (status line + headers, without the final blank line). */
export function parseHead(text: string): ResponseHead {
  const lines = text.split("\r\n");
  const statusLine = lines[0] ?? "";
  // Parse the code only: the daemon's 101 says "UPGRADED", not "Switching Protocols" (postContainersAttach).
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
  if (!m) throw new HttpProtocolError(`malformed status line: ${JSON.stringify(statusLine.slice(0, 80))}`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) {
      throw new HttpProtocolError(`malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
    }
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prev = headers.get(name);
    headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
  }
  return { status: Number(m[1]), reason: m[2] ?? "", headers };
}

const MAX_HEAD = 64 * 1024;
const READ_SIZE = 64 * 1024;

/**
 * A buffered reader over a `ByteSource`. It owns one fixed read buffer; slices it hands out are valid
 * until the next read call.
 */
export class BufferedReader {
  #src: ByteSource;
  #buf = new Uint8Array(READ_SIZE);
  #start = 0;
  #end = 0;
  #eof = false;

  constructor(src: ByteSource) {
    this.#src = src;
  }

  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Read more bytes into the buffer; false at EOF. Grows only while a head or line needs it. */
  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    if (this.#start > 0 && this.#start === this.#end) {
      this.#start = this.#end = 0;
    }
    if (this.#end === this.#buf.byteLength) {
      if (this.#start > 0) {
        this.#buf.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      } else {
        const bigger = new Uint8Array(this.#buf.byteLength * 2);
        bigger.set(this.#buf.subarray(0, this.#end));
        this.#buf = bigger;
      }
    }
    const n = await this.#src.read(this.#buf.subarray(this.#end));
    if (n === null || n === 0) {
      this.#eof = true;
      return false;
    }
    this.#end += n;
    return true;
  }

  /** Read through the blank line that ends a response head and parse it. */
  async readHead(): Promise<ResponseHead> {
    let scanned = 0; // bytes after #start already searched; relative, so compaction in #fill is harmless
    for (;;) {
      const idx = indexOfCrlfCrlf(this.#buf, this.#start + scanned, this.#end);
      if (idx >= 0) {
        const text = decoder.decode(this.#buf.subarray(this.#start, idx));
        this.#start = idx + 4;
        return parseHead(text);
      }
      if (this.buffered > MAX_HEAD) throw new HttpProtocolError("response head larger than 64 KiB");
      scanned = Math.max(0, this.buffered - 3);
      if (!(await this.#fill())) {
        throw new HttpProtocolError(
          this.buffered === 0
            ? "connection closed before a response"
            : "connection closed inside a response head",
        );
      }
    }
  }

  /** Read one CRLF-terminated line (without the CRLF). */
  async readLine(): Promise<string> {
    let scanned = 0;
    for (;;) {
      for (let i = this.#start + scanned; i + 1 < this.#end; i++) {
        if (this.#buf[i] === 13 && this.#buf[i + 1] === 10) {
          const line = decoder.decode(this.#buf.subarray(this.#start, i));
          this.#start = i + 2;
          return line;
        }
      }
      if (this.buffered > MAX_HEAD) throw new HttpProtocolError("line longer than 64 KiB");
      scanned = Math.max(0, this.buffered - 1);
      if (!(await this.#fill())) throw new HttpProtocolError("connection closed inside a line");
    }
  }

  /** Up to `max` bytes: buffered ones first, else one read. `null` at EOF. */
  async readSome(max = Infinity): Promise<Uint8Array | null> {
    if (this.buffered === 0 && !(await this.#fill())) return null;
    const n = Math.min(this.buffered, max);
    const out = this.#buf.subarray(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }

  /** Exactly `n` bytes as a fresh copy, or a protocol error at early EOF. */
  async readExact(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const part = await this.readSome(n - got);
      if (part === null) throw new HttpProtocolError(`connection closed after ${got} of ${n} bytes`);
      out.set(part, got);
      got += part.byteLength;
    }
    return out;
  }
}

function indexOfCrlfCrlf(buf: Uint8Array, from: number, to: number): number {
  for (let i = from; i + 3 < to; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

/** How a response body is delimited (RFC 9112 §6.3 as the Go server applies it). */
export type BodyFraming =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "close" };

/** Decide the body framing from the request method and the response head. */
export function bodyFraming(method: string, head: ResponseHead): BodyFraming {
  const s = head.status;
  if (method === "HEAD" || (s >= 100 && s < 200) || s === 204 || s === 304) return { kind: "none" };
  const te = head.headers.get("transfer-encoding");
  if (te !== undefined && te.toLowerCase().split(",").map((t) => t.trim()).includes("chunked")) {
    return { kind: "chunked" };
  }
  const cl = head.headers.get("content-length");
  if (cl !== undefined) {
    if (!/^\d+$/.test(cl)) throw new HttpProtocolError(`bad Content-Length ${JSON.stringify(cl)}`);
    return { kind: "length", length: Number(cl) };
  }
  return { kind: "close" };
}

/**
 * Stream a response body. Yielded slices are only valid until the next iteration (they may point into the
 * reader's buffer); copy what you keep.
 */
export async function* readBody(reader: BufferedReader, framing: BodyFraming): AsyncGenerator<Uint8Array> {
  switch (framing.kind) {
    case "none":
      return;
    case "length": {
      let left = framing.length;
      while (left > 0) {
        const part = await reader.readSome(left);
        if (part === null) {
          throw new HttpProtocolError(`body ended after ${framing.length - left} of ${framing.length} bytes`);
        }
        left -= part.byteLength;
        yield part;
      }
      return;
    }
    case "close":
      for (;;) {
        const part = await reader.readSome();
        if (part === null) return;
        yield part;
      }
    case "chunked":
      for (;;) {
        const sizeLine = await reader.readLine();
        // Chunk extensions (";name=value") are allowed and ignored.
        const hex = sizeLine.split(";", 1)[0]!.trim();
        if (!/^[0-9a-fA-F]+$/.test(hex)) {
          throw new HttpProtocolError(`bad chunk size line ${JSON.stringify(sizeLine.slice(0, 40))}`);
        }
        let left = parseInt(hex, 16);
        if (left === 0) {
          // Trailers, then the blank line.
          while ((await reader.readLine()) !== "");
          return;
        }
        while (left > 0) {
          const part = await reader.readSome(left);
          if (part === null) throw new HttpProtocolError("connection closed inside a chunk");
          left -= part.byteLength;
          yield part;
        }
        const crlf = await reader.readLine();
        if (crlf !== "") throw new HttpProtocolError("chunk not followed by CRLF");
      }
  }
}

/** Collect a whole body (for small JSON replies), capped to protect memory. */
export async function readAll(body: AsyncIterable<Uint8Array>, cap = 64 * 1024 * 1024): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const part of body) {
    total += part.byteLength;
    if (total > cap) throw new HttpProtocolError(`response body larger than ${cap} bytes`);
    parts.push(part.slice());
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}
