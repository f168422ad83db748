/**
 * The relay in this process, on loopback: each TCP connection reaches moat's unix socket with a PROXY
 * header naming its source and the port it was made to, and carries bytes both ways, half closes included.
 */
import assert from "node:assert/strict";
import { decodeProxyHeader, type ProxiedConnection } from "../../lib/net/proxy_header.ts";
import { runRelay } from "../../lib/net/relay.ts";

async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
  }
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) out.set(c, at), at += c.byteLength;
  return out;
}

/**
 * moat's side, for the test: each connection's header, then an answer naming it and echoing it. `onLocal`
 * is called for the relay's ready connection.
 */
async function serveMoat(
  listener: Deno.Listener,
  seen: Array<ProxiedConnection | "local">,
  onLocal: () => void = () => {},
) {
  for await (const conn of listener) {
    (async () => {
      const bytes = await readAll(conn); // the relay half-closes once the client has sent everything
      const h = decodeProxyHeader(bytes)!;
      if ("local" in h.connection) {
        seen.push("local");
        conn.close();
        onLocal();
        return;
      }
      seen.push(h.connection);
      const rest = new TextDecoder().decode(bytes.subarray(h.size));
      await conn.write(new TextEncoder().encode(`to ${h.connection.destination.port}: ${rest}`));
      conn.close();
    })();
  }
}

Deno.test("the relay passes each connection to moat's socket with its header, and the answer back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "moat-relay-" });
  const socket = `${dir}/relay.sock`;
  const moat = Deno.listen({ transport: "unix", path: socket });
  const seen: Array<ProxiedConnection | "local"> = [];
  const served = serveMoat(moat, seen);
  const stop = new AbortController();
  let ports: number[] = [];
  const listening = Promise.withResolvers<void>();
  const relay = runRelay({
    socket,
    ports: [0, 0],
    hostname: "127.0.0.1",
    onListening: (p) => {
      ports = p;
      listening.resolve();
    },
  }, stop.signal);
  try {
    await listening.promise;
    const ask = async (port: number, text: string) => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      await c.write(new TextEncoder().encode(text));
      await c.closeWrite();
      const answer = new TextDecoder().decode(await readAll(c));
      c.close();
      return answer;
    };
    assert.equal(await ask(ports[0]!, "ping"), `to ${ports[0]}: ping`);
    assert.equal(await ask(ports[1]!, "pong"), `to ${ports[1]}: pong`);
    assert.equal(seen[0], "local", "moat is told first that the relay listens");
    const conns = seen.slice(1) as ProxiedConnection[];
    assert.deepEqual(conns.map((c) => [c.transport, c.source.address, c.destination]), [
      ["stream", "127.0.0.1", { address: "127.0.0.1", port: ports[0] }],
      ["stream", "127.0.0.1", { address: "127.0.0.1", port: ports[1] }],
    ]);
  } finally {
    stop.abort();
    await relay;
    moat.close();
    await served.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a connection the relay cannot pass (moat's socket gone) is closed, and the relay goes on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "moat-relay-" });
  const socket = `${dir}/relay.sock`;
  const moat = Deno.listen({ transport: "unix", path: socket });
  const seen: Array<ProxiedConnection | "local"> = [];
  const ready = Promise.withResolvers<void>();
  const served = serveMoat(moat, seen, ready.resolve);
  const stop = new AbortController();
  const listening = Promise.withResolvers<number>();
  const relay = runRelay(
    { socket, ports: [0], hostname: "127.0.0.1", onListening: (p) => listening.resolve(p[0]!) },
    stop.signal,
  );
  try {
    const port = await listening.promise;
    await ready.promise;
    moat.close(); // removes the socket too
    await served.catch(() => {});
    await Deno.remove(socket).catch(() => {});
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    assert.equal((await readAll(c)).byteLength, 0, "closed without an answer");
    c.close();
  } finally {
    stop.abort();
    await relay;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the relay passes each datagram to moat's socket, framed after its header, and the answer back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "moat-relay-" });
  const socket = `${dir}/relay.sock`;
  const moat = Deno.listen({ transport: "unix", path: socket });
  const seen: ProxiedConnection[] = [];
  const served = (async () => {
    for await (const conn of moat) {
      const bytes = new Uint8Array(1024);
      let got = 0;
      let header;
      // The ready connection ends; a datagram's connection waits for its answer.
      for (;;) {
        const n = await conn.read(bytes.subarray(got));
        if (n === null) break;
        got += n;
        header = decodeProxyHeader(bytes.subarray(0, got));
        if (header && "local" in header.connection) break;
        if (
          header && got >= header.size + 2 &&
          got >= header.size + 2 + ((bytes[header.size]! << 8) | bytes[header.size + 1]!)
        ) break;
      }
      if (header && !("local" in header.connection)) {
        seen.push(header.connection);
        const question = new TextDecoder().decode(bytes.subarray(header.size + 2, got));
        const answer = new TextEncoder().encode(`answer to ${question}`);
        await conn.write(new Uint8Array([answer.byteLength >> 8, answer.byteLength & 255, ...answer]));
      }
      conn.close();
    }
  })().catch(() => {});
  const stop = new AbortController();
  const listening = Promise.withResolvers<number>();
  const relay = runRelay(
    {
      socket,
      ports: [],
      udpPorts: [0],
      hostname: "127.0.0.1",
      onListening: (_, udp) => listening.resolve(udp[0]!),
    },
    stop.signal,
  );
  const client = (Deno as unknown as { listenDatagram(o: object): Deno.DatagramConn }).listenDatagram({
    hostname: "127.0.0.1",
    port: 0,
    transport: "udp",
  });
  try {
    const port = await listening.promise;
    await client.send(new TextEncoder().encode("who is example.com"), {
      transport: "udp",
      hostname: "127.0.0.1",
      port,
    });
    const [reply] = await client.receive();
    assert.equal(new TextDecoder().decode(reply), "answer to who is example.com");
    assert.deepEqual(seen.map((c) => [c.transport, c.source.address, c.destination.port]), [[
      "datagram",
      "127.0.0.1",
      port,
    ]]);
  } finally {
    client.close();
    stop.abort();
    await relay;
    moat.close();
    await served;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a relay made ahead stops at its expiry when nobody serves its socket, and not when a run does", async () => {
  const dir = await Deno.makeTempDir({ prefix: "moat-relay-" });
  const socket = `${dir}/relay.sock`;
  try {
    // Nobody serves it at its expiry: it stops by itself (its ports closed), with no error.
    let moat = Deno.listen({ transport: "unix", path: socket });
    let seen: Array<ProxiedConnection | "local"> = [];
    let ready = Promise.withResolvers<void>();
    let served = serveMoat(moat, seen, ready.resolve);
    const listening = Promise.withResolvers<number>();
    const expireAt = Date.now() + 300;
    const alone = runRelay({
      socket,
      ports: [0],
      hostname: "127.0.0.1",
      onListening: (p) => listening.resolve(p[0]!),
      expireAt,
    });
    const port = await listening.promise;
    await ready.promise; // its maker heard it was ready, then went
    moat.close();
    await served.catch(() => {});
    await alone;
    assert.ok(Date.now() >= expireAt, "stopped before its time");
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port }), "its port still listens");

    // A run serves it by then: it is told the relay is still there, and the relay goes on passing.
    moat = Deno.listen({ transport: "unix", path: socket });
    seen = [];
    ready = Promise.withResolvers<void>();
    served = serveMoat(moat, seen, ready.resolve);
    const stop = new AbortController();
    const listening2 = Promise.withResolvers<number>();
    const taken = runRelay({
      socket,
      ports: [0],
      hostname: "127.0.0.1",
      onListening: (p) => listening2.resolve(p[0]!),
      expireAt: Date.now() + 300,
    }, stop.signal);
    try {
      const port2 = await listening2.promise;
      await ready.promise;
      while (seen.length < 2) await new Promise((r) => setTimeout(r, 50)); // the expiry's question
      assert.deepEqual(seen, ["local", "local"]);
      await new Promise((r) => setTimeout(r, 200));
      const c = await Deno.connect({ hostname: "127.0.0.1", port: port2 });
      await c.write(new TextEncoder().encode("hi"));
      await c.closeWrite();
      assert.equal(new TextDecoder().decode(await readAll(c)), `to ${port2}: hi`);
      c.close();
    } finally {
      stop.abort();
      await taken;
      moat.close();
      await served.catch(() => {});
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
