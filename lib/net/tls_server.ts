/**
 * The server end of TLS, for the connections moat's policy point reads inside (a host with a grant, or with
 * rules: lib/net/intercept.ts): moat answers the sandbox's ClientHello with a leaf of the run's CA
 * (lib/net/x509.ts) and gets the plaintext.
 *
 * Deno's own TLS server (`Deno.listenTls`) takes TCP listeners only, and there is no server-side
 * `Deno.startTls`; the sandbox's connections reach moat on a unix socket, already accepted, with their
 * ClientHello read. `node:tls` can be a server over any stream, so it is used here, imported on the first
 * connection that needs it: a run without grants or rules never loads it (a `node:` module costs startup).
 */
import type { Leaf } from "./x509.ts";
import { type ByteStream, writeAll } from "./relay.ts";

/** The only application protocol moat reads inside TLS: HTTP/1.1 (a client offering h2 falls back to it). */
export const ALPN = ["http/1.1"];

/** A Node-style stream's side moat uses. */
interface NodeSocket {
  on(event: string, listener: (arg?: unknown) => void): unknown;
  once(event: string, listener: (arg?: unknown) => void): unknown;
  pause(): unknown;
  resume(): unknown;
  write(chunk: Uint8Array, cb: (err?: Error | null) => void): boolean;
  end(cb: () => void): unknown;
  destroy(): unknown;
}

/**
 * End TLS on `conn`, whose first bytes (`first`: the ClientHello and whatever came with it) were read
 * already, with `leaf` as the server's certificate; the plaintext once the handshake is done. Throws when the
 * handshake fails (e.g. the client does not trust the run's CA) or takes longer than `ms`; `conn` is closed
 * then.
 */
export async function acceptTls(
  conn: ByteStream,
  first: Uint8Array,
  leaf: Leaf,
  ms: number,
): Promise<ByteStream> {
  const [{ TLSSocket }, { Duplex }] = await Promise.all([import("node:tls"), import("node:stream")]);
  let reading = false;
  const raw = new Duplex({
    read() {
      if (reading) return;
      reading = true;
      const buf = new Uint8Array(64 * 1024);
      conn.read(buf).then(
        (n) => {
          reading = false;
          this.push(n === null ? null : buf.subarray(0, n));
        },
        (err) => this.destroy(err),
      );
    },
    write(chunk: Uint8Array, _encoding: string, cb: (err?: Error | null) => void) {
      writeAll(conn, chunk).then(() => cb(), (err) => cb(err));
    },
    final(cb: () => void) {
      conn.closeWrite().then(cb, cb);
    },
    destroy(err: Error | null, cb: (err: Error | null) => void) {
      try {
        conn.close();
      } catch { /* closed already */ }
      cb(err);
    },
  });
  raw.push(first);
  const socket = new TLSSocket(
    raw,
    {
      isServer: true,
      cert: leaf.certPem,
      key: leaf.keyPem,
      ALPNProtocols: ALPN,
      allowHalfOpen: true,
    } as ConstructorParameters<typeof TLSSocket>[1],
  ) as unknown as NodeSocket;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the TLS handshake took too long")), ms);
      socket.once("secure", () => (clearTimeout(timer), resolve()));
      socket.once("error", (err) => (clearTimeout(timer), reject(err)));
      socket.once("close", () => (clearTimeout(timer), reject(new Error("the connection ended"))));
    });
  } catch (err) {
    socket.destroy();
    raw.destroy();
    throw err;
  }
  return plaintext(socket);
}

/** A TLS socket's plaintext as a `ByteStream`. */
function plaintext(socket: NodeSocket): ByteStream {
  const chunks: Uint8Array[] = [];
  let ended = false;
  let failed: unknown;
  let wake: (() => void) | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  socket.pause();
  socket.on("data", (d) => {
    const b = d as Uint8Array;
    chunks.push(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    socket.pause();
    poke();
  });
  socket.on("end", () => (ended = true, poke()));
  socket.on("close", () => (ended = true, poke()));
  socket.on("error", (err) => (failed = err, poke()));
  return {
    async read(p) {
      while (chunks.length === 0 && !ended && failed === undefined) {
        const woken = new Promise<void>((resolve) => wake = resolve);
        socket.resume();
        await woken;
      }
      const c = chunks[0];
      if (c) {
        const n = Math.min(c.byteLength, p.byteLength);
        p.set(c.subarray(0, n));
        if (n < c.byteLength) chunks[0] = c.subarray(n);
        else chunks.shift();
        return n;
      }
      if (failed !== undefined) throw failed;
      return null;
    },
    write(p) {
      // A copy: the caller reuses its buffer once this resolves, and the socket may hold the chunk longer.
      return new Promise((resolve, reject) =>
        socket.write(p.slice(), (err) => err ? reject(err) : resolve(p.byteLength))
      );
    },
    closeWrite() {
      return new Promise((resolve) => socket.end(resolve));
    },
    close() {
      socket.destroy();
    },
  };
}
