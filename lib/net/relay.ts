/**
 * The relay: moat's helper on a run's network (lib/run/network.ts), the only way out of it. It listens on
 * the given TCP ports and passes each connection, as it comes, to moat on the host over a unix socket
 * bind-mounted into its container: one socket connection per TCP connection, which starts with a PROXY
 * protocol v2 header (lib/net/proxy_header.ts) saying who connected and to which port, then carries the
 * bytes both ways. It holds no secret and decides nothing: what a connection may do is moat's to say on the
 * host. Once every port listens it connects once with a `LOCAL` header: moat's sign that it is ready.
 */
import { encodeLocalHeader, encodeProxyHeader } from "./proxy_header.ts";

export interface RelayOptions {
  /** moat's unix socket, as the relay's container sees it. */
  socket: string;
  /** TCP ports to listen on, on every address of the container. */
  ports: number[];
  /** Address to listen on (default every address). */
  hostname?: string;
  /** Called once every port listens (port 0 is given one by the system), before moat is told. */
  onListening?: (ports: number[]) => void;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.byteLength) off += await conn.write(bytes.subarray(off));
}

/**
 * Copy `from` into `to` until `from` ends, then end `to`'s writing side (a half close, so the other
 * direction goes on: a client that ends its request still gets the answer). Errors end the copy.
 */
async function copyThenCloseWrite(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      await writeAll(to, buf.subarray(0, n));
    }
  } catch { /* either side went away: the connection is over */ }
  try {
    await to.closeWrite();
  } catch { /* closed already */ }
}

/** Carry bytes both ways between `a` and `b` until both directions have ended; then close both. */
export async function splice(a: Deno.Conn, b: Deno.Conn): Promise<void> {
  await Promise.all([copyThenCloseWrite(a, b), copyThenCloseWrite(b, a)]);
  for (const c of [a, b]) {
    try {
      c.close();
    } catch { /* closed already */ }
  }
}

/** Pass one accepted connection to moat: the header, then its bytes both ways. */
async function pass(conn: Deno.TcpConn, socket: string): Promise<void> {
  let upstream: Deno.UnixConn;
  try {
    upstream = await Deno.connect({ transport: "unix", path: socket });
  } catch {
    conn.close(); // moat is gone: nothing to pass the connection to
    return;
  }
  const from = conn.remoteAddr as Deno.NetAddr;
  const to = conn.localAddr as Deno.NetAddr;
  try {
    await writeAll(
      upstream,
      encodeProxyHeader({
        transport: "stream",
        source: { address: from.hostname, port: from.port },
        destination: { address: to.hostname, port: to.port },
      }),
    );
  } catch {
    conn.close();
    upstream.close();
    return;
  }
  await splice(conn, upstream);
}

/**
 * Listen on every port, say so to moat, then pass connections until `signal` aborts (or forever). Throws
 * when a port cannot be listened on or moat cannot be told.
 */
export async function runRelay(opts: RelayOptions, signal?: AbortSignal): Promise<void> {
  const listeners = opts.ports.map((port) => Deno.listen({ hostname: opts.hostname ?? "0.0.0.0", port }));
  const stop = () => listeners.forEach((l) => l.close());
  signal?.addEventListener("abort", stop, { once: true });
  try {
    opts.onListening?.(listeners.map((l) => (l.addr as Deno.NetAddr).port));
    const ready = await Deno.connect({ transport: "unix", path: opts.socket });
    try {
      await writeAll(ready, encodeLocalHeader());
    } finally {
      ready.close();
    }
    const open = new Set<Promise<void>>();
    await Promise.all(listeners.map(async (listener) => {
      try {
        for await (const conn of listener) {
          const p = pass(conn, opts.socket).finally(() => open.delete(p));
          open.add(p);
        }
      } catch (err) {
        if (!signal?.aborted) throw err;
      }
    }));
    await Promise.all(open);
  } finally {
    signal?.removeEventListener("abort", stop);
    for (const l of listeners) {
      try {
        l.close();
      } catch { /* closed by stop */ }
    }
  }
}
