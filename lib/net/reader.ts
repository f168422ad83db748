/** Reading the start of a connection a piece at a time: what moat's policy point decides on. */
import type { ByteStream } from "./relay.ts";

/** Bytes read so far from a connection, and a way to read more of them. */
export class Reader {
  #conn: ByteStream;
  bytes: Uint8Array = new Uint8Array(0);

  constructor(conn: ByteStream) {
    this.#conn = conn;
  }

  /** Read more; false when the connection ended. */
  async more(): Promise<boolean> {
    const buf = new Uint8Array(16 * 1024);
    const n = await this.#conn.read(buf);
    if (n === null) return false;
    const next = new Uint8Array(this.bytes.byteLength + n);
    next.set(this.bytes);
    next.set(buf.subarray(0, n), this.bytes.byteLength);
    this.bytes = next;
    return true;
  }

  /** Read until `parse` says something other than "more" (`undefined` when the connection ends first). */
  async until<T extends { kind: string }>(
    parse: (b: Uint8Array) => T,
  ): Promise<Exclude<T, { kind: "more" }> | undefined> {
    for (;;) {
      const r = parse(this.bytes);
      if (r.kind !== "more") return r as Exclude<T, { kind: "more" }>;
      if (!(await this.more())) return undefined;
    }
  }
}
