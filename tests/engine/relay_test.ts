/**
 * A run's relay on the real engine: moat's own files, run by the host's dynamic loader inside a container
 * of a busybox image (no C library of its own), on a run's network (lib/run/network.ts). A sandbox under
 * gVisor on that network reaches moat on the host only through the relay's ports: each connection arrives
 * on moat's unix socket with a PROXY header naming the sandbox and the port it asked for. Only containers
 * and networks the test made are talked to.
 */
import assert from "node:assert/strict";
import { decodeProxyHeader } from "../../lib/net/proxy_header.ts";
import { docker, requireEngine } from "./helpers.ts";
import { inSandbox, withRunNetwork } from "./run_network.ts";

/**
 * moat's side of the socket, for the test: says when the relay is ready, answers each TCP connection with
 * what its header says, and each DNS question (a datagram) with "no such name", its question kept.
 */
function serveMoat(listener: Deno.Listener, ready: () => void, questions: string[]): Promise<void> {
  return (async () => {
    for await (const conn of listener) {
      (async () => {
        const buf = new Uint8Array(2048);
        let got = 0;
        let header;
        for (;;) {
          const n = await conn.read(buf.subarray(got));
          if (n === null) break;
          got += n;
          header ??= decodeProxyHeader(buf.subarray(0, got));
          if (!header || "local" in header.connection || header.connection.transport === "stream") break;
          const length = got >= header.size + 2 ? (buf[header.size]! << 8) | buf[header.size + 1]! : Infinity;
          if (got >= header.size + 2 + length) break;
        }
        const c = header?.connection;
        if (!c) return conn.close();
        if ("local" in c) ready();
        else if (c.transport === "stream") {
          await conn.write(
            new TextEncoder().encode(`moat: ${c.destination.port} from ${c.source.address}\n`),
          );
        } else {
          // A DNS question: the same message back as an answer saying the name does not exist (NXDOMAIN).
          const query = buf.slice(header!.size + 2, got);
          questions.push(`${c.destination.port}:${query.byteLength}`);
          query[2] = query[2]! | 0x80;
          query[3] = (query[3]! & 0xf0) | 3;
          await conn.write(new Uint8Array([query.byteLength >> 8, query.byteLength & 255, ...query]));
        }
        conn.close();
      })().catch(() => {});
    }
  })().catch(() => {});
}

Deno.test("a sandbox on a run's network reaches moat on the host through the relay's ports, and nothing else", async () => {
  await requireEngine();
  const questions: string[] = [];
  await withRunNetwork(
    "relay",
    { tcp: [80, 3128], udp: [53] },
    (listener, ready) => serveMoat(listener, ready, questions),
    async (n) => {
      const script = [80, 3128, 22]
        .map((port) => `nc -w 3 ${n.relayAddress} ${port} </dev/null || echo "nothing on ${port}"`)
        .concat(`nslookup -timeout=3 example.com ${n.relayAddress} 2>&1 | grep -c NXDOMAIN`)
        .join("; ");
      const lines = (await inSandbox(n, script)).trim().split("\n");
      const out = lines.join("\n");
      assert.equal(lines.length, 4, out);
      const from = /^moat: (\d+) from (\d+\.\d+\.\d+\.\d+)$/;
      assert.deepEqual(lines.slice(0, 2).map((l) => from.exec(l)?.[1]), ["80", "3128"], out);
      const sandbox = from.exec(lines[0]!)![2]!;
      assert.ok(
        sandbox !== n.relayAddress && sandbox.startsWith(n.subnet.split(".").slice(0, 3).join(".")),
        out,
      );
      assert.equal(lines[2], "nothing on 22", "a port the relay does not listen on is closed");
      // DNS over UDP: each question reached moat as a datagram to port 53, and moat's answer came back.
      assert.ok(Number(lines[3]) >= 1, out);
      assert.ok(questions.length >= 1 && questions.every((q) => q.startsWith("53:")), `${questions}`);
    },
  );
  assert.equal(await docker("ps", "-aq", "--filter", "label=dev.moat.test=relay"), "");
});
