/**
 * `deno run -A scripts/bench_decisions.ts audit|none N`: N network decisions through moat's policy point, in
 * this process, on loopback: a relay (lib/net/relay.ts) and the policy point behind it (lib/run/egress.ts
 * `servePolicy`), asked N DNS questions one after another, half for an allowed name, half for another. With
 * `audit`, each decision goes to the run's audit log as in a run (lib/audit/log.ts), with its checkpoints;
 * with `none`, to the network log only. For scripts/bench.ts: the audit log's cost on the path of each
 * decision, without a sandbox's own time around it (which would only make the ratio smaller).
 */
import { AuditLog, settleAuditLogs } from "../lib/audit/log.ts";
import { runRelay } from "../lib/net/relay.ts";
import { servePolicy } from "../lib/run/egress.ts";

const [mode, count] = Deno.args;
if ((mode !== "audit" && mode !== "none") || !Number.isSafeInteger(Number(count))) {
  throw new Error("usage: bench_decisions.ts audit|none N");
}
const n = Number(count);
const home = await Deno.makeTempDir({ prefix: "moat-bench-decisions-" });
try {
  const runDir = `${home}/runs/b1`;
  await Deno.mkdir(runDir, { recursive: true });
  const socket = `${home}/relay.sock`;
  const service = servePolicy({
    socketPath: socket,
    runDir,
    allow: ["allowed.bench.test"],
    relayAddress: "10.237.0.2",
    ...(mode === "audit" ? { audit: AuditLog.for(home, "b1", runDir) } : {}),
  }, {});
  const listening = Promise.withResolvers<number>();
  const stop = new AbortController();
  const relay = runRelay({
    socket,
    ports: [0, 0, 0],
    udpPorts: [0],
    hostname: "127.0.0.1",
    onListening: (_tcp, udp) => listening.resolve(udp[0]!),
  }, stop.signal);
  const port = await listening.promise;
  const client = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const query = (name: string, id: number) => {
    const labels = name.split(".").flatMap((l) => [l.length, ...new TextEncoder().encode(l)]);
    return new Uint8Array([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1]);
  };
  for (let i = 0; i < n; i++) {
    await client.send(query(i % 2 ? "allowed.bench.test" : "other.bench.test", i & 0xffff), {
      transport: "udp",
      hostname: "127.0.0.1",
      port,
    });
    await client.receive();
  }
  client.close();
  stop.abort();
  await service.close();
  await relay.catch(() => {});
  await settleAuditLogs();
  const lines = (await Deno.readTextFile(`${runDir}/network.jsonl`)).split("\n").length - 1;
  if (lines !== n) throw new Error(`${lines} decisions logged, not ${n}`);
} finally {
  await Deno.remove(home, { recursive: true });
}
