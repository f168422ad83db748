/**
 * The relay: moat's helper on a run's network (lib/run/network.ts), the only way out of it. It listens on
 * the given TCP ports and passes each connection, as it comes, to moat on the host over a unix socket
 * bind-mounted into its container: one socket connection per TCP connection, which starts with a PROXY
 * protocol v2 header (lib/net/proxy_header.ts) saying who connected and to which port, then carries the
 * bytes both ways. It holds no secret and decides nothing: what a connection may do is moat's to say on the
 * host. Once every port listens it connects once with a `LOCAL` header: moat's sign that it is ready.
 *
 * UDP ports (DNS) are passed the same way, one socket connection per datagram: the header (transport
 * `datagram`), then the datagram framed as DNS over TCP frames its messages (a 2-byte big-endian length,
 * RFC 1035 4.2.2); moat answers with one framed datagram, which goes back to the sender. Deno listens on UDP
 * only with `--unstable-net`.
 */
import { after } from "../timer.ts";
import { encodeLocalHeader, encodeProxyHeader } from "./proxy_header.ts";

export interface RelayOptions {
  /** moat's unix socket, as the relay's container sees it. */
  socket: string;
  /** TCP ports to listen on, on every address of the container. */
  ports: number[];
  /** UDP ports to listen on (DNS). */
  udpPorts?: number[];
  /** Address to listen on (default every address). */
  hostname?: string;
  /** Called once every port listens (port 0 is given one by the system), before moat is told. */
  onListening?: (ports: number[], udpPorts: number[]) => void;
  /**
   * A relay made ahead of its run (lib/run/standby.ts): at this time (ms since the epoch) it asks whether a
   * run has taken it, by connecting to the socket: when nobody listens there, it stops and returns. Once a
   * connection succeeds (a run serves its policy there), it never expires.
   */
  expireAt?: number;
}

/** The longest a datagram's answer may take from moat before the relay gives up on it. */
export const DATAGRAM_ANSWER_MS = 5000;
/** The largest datagram passed either way (DNS over TCP's own limit). */
const MAX_DATAGRAM = 65535;

/** Read exactly `n` bytes; `undefined` when the connection ends first. */
async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array | undefined> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await conn.read(out.subarray(got));
    if (r === null) return undefined;
    got += r;
  }
  return out;
}

/** Pass one datagram to moat and send its answer, if one comes in time, back to `from`. */
async function passDatagram(
  listener: Deno.DatagramConn,
  data: Uint8Array,
  from: Deno.NetAddr,
  socket: string,
): Promise<void> {
  if (data.byteLength > MAX_DATAGRAM) return;
  let upstream: Deno.UnixConn;
  try {
    upstream = await Deno.connect({ transport: "unix", path: socket });
  } catch {
    return; // moat is gone: the sender's resolver times out
  }
  const stop = after(DATAGRAM_ANSWER_MS, () => upstream.close());
  try {
    const to = listener.addr as Deno.NetAddr;
    const header = encodeProxyHeader({
      transport: "datagram",
      source: { address: from.hostname, port: from.port },
      destination: { address: to.hostname, port: to.port },
    });
    const framed = new Uint8Array(header.byteLength + 2 + data.byteLength);
    framed.set(header);
    framed[header.byteLength] = data.byteLength >> 8;
    framed[header.byteLength + 1] = data.byteLength & 0xff;
    framed.set(data, header.byteLength + 2);
    await writeAll(upstream, framed);
    const length = await readExactly(upstream, 2);
    if (!length) return;
    const answer = await readExactly(upstream, (length[0]! << 8) | length[1]!);
    if (answer) await listener.send(answer, from);
  } catch {
    /* moat went away, or took too long: no answer */
  } finally {
    stop();
    try {
      upstream.close();
    } catch { /* closed by the deadline */ }
  }
}

/**
 * Both directions of a connection, as moat carries them: a socket (`Deno.Conn`), or the plaintext side of a
 * TLS connection moat ended itself (lib/net/tls_server.ts).
 */
export interface ByteStream {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  /** End the writing side; reading goes on. */
  closeWrite(): Promise<void>;
  close(): void;
}

/** Write all of `bytes` to `conn`. */
export async function writeAll(conn: ByteStream, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.byteLength) off += await conn.write(bytes.subarray(off));
}

/**
 * Copy `from` into `to` until `from` ends; the bytes copied. Errors end the copy. With `limit`, only that
 * many bytes are passed on; the rest is read and dropped.
 */
export async function copy(from: ByteStream, to: ByteStream, limit = Infinity): Promise<number> {
  const buf = new Uint8Array(64 * 1024);
  let copied = 0;
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      const pass = Math.min(n, limit - copied);
      if (pass > 0) await writeAll(to, buf.subarray(0, pass));
      copied += pass;
    }
  } catch { /* either side went away: the connection is over */ }
  return copied;
}

/**
 * `copy`, then end `to`'s writing side (a half close, so the other direction goes on: a client that ends
 * its request still gets the answer).
 */
export async function copyThenCloseWrite(
  from: ByteStream,
  to: ByteStream,
  limit = Infinity,
): Promise<number> {
  const copied = await copy(from, to, limit);
  try {
    await to.closeWrite();
  } catch { /* closed already */ }
  return copied;
}

/**
 * Carry bytes both ways between `a` and `b` until both directions have ended; then close both. The bytes
 * carried from `a` to `b`, and back. `limit`: the most bytes passed from `a` to `b` (what comes after is
 * dropped).
 */
export async function splice(
  a: ByteStream,
  b: ByteStream,
  limit?: number,
): Promise<{ sent: number; received: number }> {
  const [sent, received] = await Promise.all([copyThenCloseWrite(a, b, limit), copyThenCloseWrite(b, a)]);
  for (const c of [a, b]) {
    try {
      c.close();
    } catch { /* closed already */ }
  }
  return { sent, received };
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
  const hostname = opts.hostname ?? "0.0.0.0";
  const listeners = opts.ports.map((port) => Deno.listen({ hostname, port }));
  const datagrams = (opts.udpPorts ?? []).map((port) =>
    (Deno as unknown as { listenDatagram(o: object): Deno.DatagramConn }).listenDatagram({
      hostname,
      port,
      transport: "udp",
    })
  );
  let stopped = false;
  const stop = () => {
    stopped = true;
    for (const l of [...listeners, ...datagrams]) {
      try {
        l.close();
      } catch { /* closed already */ }
    }
  };
  signal?.addEventListener("abort", stop, { once: true });
  let expiry: (() => void) | undefined;
  try {
    opts.onListening?.(
      listeners.map((l) => (l.addr as Deno.NetAddr).port),
      datagrams.map((d) => (d.addr as Deno.NetAddr).port),
    );
    const ready = await Deno.connect({ transport: "unix", path: opts.socket });
    try {
      await writeAll(ready, encodeLocalHeader());
    } finally {
      ready.close();
    }
    if (opts.expireAt !== undefined) {
      expiry = after(Math.max(0, opts.expireAt - Date.now()), () => {
        Deno.connect({ transport: "unix", path: opts.socket }).then(
          (taken) => writeAll(taken, encodeLocalHeader()).finally(() => taken.close()).catch(() => {}),
          stop, // nobody serves this relay: no run took it
        );
      });
    }
    const open = new Set<Promise<void>>();
    const track = (p: Promise<void>) => {
      open.add(p);
      p.finally(() => open.delete(p));
    };
    const streams = listeners.map(async (listener) => {
      try {
        for await (const conn of listener) track(pass(conn, opts.socket));
      } catch (err) {
        if (!stopped) throw err;
      }
    });
    const packets = datagrams.map(async (d) => {
      try {
        for (;;) {
          const [data, from] = await d.receive();
          track(passDatagram(d, data, from as Deno.NetAddr, opts.socket));
        }
      } catch (err) {
        if (!stopped) throw err;
      }
    });
    await Promise.all([...streams, ...packets]);
    await Promise.all(open);
  } finally {
    expiry?.();
    signal?.removeEventListener("abort", stop);
    stop();
  }
}
