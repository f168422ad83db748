/**
 * Where a request's body ends (RFC 9112 6 and 7.1), for a connection moat reads inside TLS
 * (lib/net/intercept.ts): each request there is checked and given its credential before it goes upstream, so
 * moat must know where one request's body ends and the next request's head begins, without holding the body.
 * The head said how the body is framed (lib/net/http_head.ts checked that it says so once and clearly):
 * a length, or `chunked`. Pure: bytes in, how many of them belong to the body out.
 *
 * A chunked body is read strictly, for the same reason as heads are: the server upstream must see the end
 * where moat saw it. A chunk-size line is hex digits, optionally a chunk extension after `;`, then CRLF; the
 * data is followed by CRLF; the last chunk (size 0) by trailer lines and an empty line. A bare LF, a size
 * without digits or with more than 15, and lines or trailers past their bounds are refused.
 */

import type { RequestHead } from "./http_head.ts";

/** The longest chunk-size line (extension included) and the most trailer bytes taken. */
export const MAX_CHUNK_LINE = 4096;
export const MAX_TRAILERS = 16 * 1024;

/**
 * The length of a request's body as its head declares it (RFC 9112 6.3): its Content-Length (checked to be
 * one number by lib/net/http_head.ts), 0 with neither that nor a Transfer-Encoding, or `chunked`. Pure.
 */
export function declaredBody(head: RequestHead): number | "chunked" {
  if (head.headers.some(([name]) => name.toLowerCase() === "transfer-encoding")) return "chunked";
  const length = head.headers.find(([name]) => name.toLowerCase() === "content-length");
  return length ? Number(length[1].split(",")[0]!.trim()) : 0;
}

/** A body moat could not frame, so the connection cannot go on. */
export class BodyError extends Error {}

const CR = 0x0d;
const LF = 0x0a;

/** Follows one request's body as its bytes come. */
export class BodyScanner {
  #left: number;
  #chunked: boolean;
  /** chunked: reading a size line, a chunk's data, the CRLF after it, or the trailers. */
  #state: "size" | "data" | "crlf" | "trailers" = "size";
  #line: number[] = [];
  #trailerBytes = 0;
  #done: boolean;

  constructor(framing: number | "chunked") {
    this.#chunked = framing === "chunked";
    this.#left = framing === "chunked" ? 0 : framing;
    this.#done = framing === 0;
  }

  get done(): boolean {
    return this.#done;
  }

  /** How many of `bytes` (the next ones on the connection) belong to the body. Throws `BodyError`. */
  feed(bytes: Uint8Array): number {
    if (this.#done) return 0;
    if (!this.#chunked) {
      const used = Math.min(this.#left, bytes.byteLength);
      this.#left -= used;
      this.#done = this.#left === 0;
      return used;
    }
    let i = 0;
    while (i < bytes.byteLength && !this.#done) {
      if (this.#state === "data") {
        const used = Math.min(this.#left, bytes.byteLength - i);
        this.#left -= used;
        i += used;
        if (this.#left === 0) this.#state = "crlf";
        continue;
      }
      const b = bytes[i++]!;
      this.#line.push(b);
      if (this.#state === "crlf") {
        if (this.#line.length === 2) {
          if (this.#line[0] !== CR || this.#line[1] !== LF) {
            throw new BodyError("a chunk's data is not followed by CRLF");
          }
          this.#line = [];
          this.#state = "size";
        }
        continue;
      }
      if (this.#state === "trailers" && ++this.#trailerBytes > MAX_TRAILERS) {
        throw new BodyError("the trailers are too long");
      }
      if (b === LF) {
        if (this.#line.length < 2 || this.#line[this.#line.length - 2] !== CR) {
          throw new BodyError("a line in a chunked body ends in a bare LF");
        }
        const line = String.fromCharCode(...this.#line.slice(0, -2));
        this.#line = [];
        if (this.#state === "size") this.#sizeLine(line);
        else if (line === "") this.#done = true;
        else if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*$/.test(line)) {
          throw new BodyError("a trailer line is not a header field");
        }
      } else if (this.#state === "size" && this.#line.length > MAX_CHUNK_LINE) {
        throw new BodyError("a chunk-size line is too long");
      }
    }
    return i;
  }

  #sizeLine(line: string): void {
    const m = /^([0-9A-Fa-f]{1,15})(;[\t\x20-\x7e]*)?$/.exec(line);
    if (!m) throw new BodyError("a chunk-size line is not hex digits");
    const size = parseInt(m[1]!, 16);
    if (size === 0) {
      this.#state = "trailers";
    } else {
      this.#left = size;
      this.#state = "data";
    }
  }
}
