/**
 * The egress policy end to end on the real engine, under gVisor: a Debian sandbox on a run's network, its
 * resolver the relay, reaches an allowed name by DNS and plain HTTP without any proxy setting, and through
 * the explicit proxy; a name not allowed does not resolve, and the proxy refuses it with a 403 saying what
 * would allow it; moat logs every decision. moat's policy point runs in this test's process, and the
 * "upstream" is an HTTP server of the test's own on loopback, reached through a dialer that maps the test's
 * name to it: no traffic leaves this machine.
 */
import assert from "node:assert/strict";
import { type HostPattern, parseHostPattern } from "../../lib/net/host_policy.ts";
import { type Decision, PolicyPoint, type Upstreams } from "../../lib/net/policy_point.ts";
import { docker, requireEngine } from "./helpers.ts";
import { inSandbox, withRunNetwork } from "./run_network.ts";

const DEBIAN = "debian:bookworm-slim";

Deno.test("a sandbox reaches an allowed name with and without the proxy, and nothing else; each decision logged", async () => {
  await requireEngine();
  const ac = new AbortController();
  const web = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => new Response(`host=${req.headers.get("host")} path=${new URL(req.url).pathname}\n`),
  );
  const upstreams: Upstreams = {
    dial: (host) =>
      host === "web.allowed.test"
        ? Deno.connect({ hostname: "127.0.0.1", port: web.addr.port })
        : Promise.reject(new Error("not a name of this test")),
  };
  const log: Decision[] = [];
  let relayAddress = "";
  try {
    await withRunNetwork(
      "egress",
      { tcp: [80, 443, 3128], udp: [53] },
      (listener, ready) => {
        // The relay's address is known once the network is made: the policy reads it when asked.
        const point = new PolicyPoint(
          {
            allow: [parseHostPattern("web.allowed.test") as HostPattern],
            tcp: new Map(),
            get relayAddress() {
              return relayAddress;
            },
          },
          upstreams,
          (d) => log.push(d),
        );
        return point.serve(listener, ready);
      },
      async (n) => {
        relayAddress = n.relayAddress;
        await Deno.writeTextFile(
          `${n.dir}/resolv.conf`,
          `nameserver ${n.relayAddress}\noptions ndots:0 timeout:2 attempts:1\n`,
        );
        const r = n.relayAddress;
        const script = [
          `getent hosts web.allowed.test || echo "no web.allowed.test"`,
          `getent hosts evil.example || echo "no evil.example"`,
          // No proxy settings: a connection by name, caught by the relay's port 80.
          `exec 3<>/dev/tcp/web.allowed.test/80 && printf 'GET /direct HTTP/1.0\\r\\nHost: web.allowed.test\\r\\n\\r\\n' >&3 && timeout 5 cat <&3 | tail -1`,
          // The explicit proxy: a URL, and a CONNECT to a name not allowed.
          `exec 4<>/dev/tcp/${r}/3128 && printf 'GET http://web.allowed.test/proxied HTTP/1.1\\r\\nHost: web.allowed.test\\r\\n\\r\\n' >&4 && timeout 5 cat <&4 | tail -1`,
          `exec 5<>/dev/tcp/${r}/3128 && printf 'CONNECT evil.example:443 HTTP/1.1\\r\\n\\r\\n' >&5 && timeout 5 head -1 <&5 | tr -d '\\r'`,
        ].join("\n");
        const out = await inSandbox(n, script, {
          image: DEBIAN,
          shell: "bash",
          binds: [`${n.dir}/resolv.conf:/etc/resolv.conf:ro`],
        });
        const lines = out.trim().split("\n").map((l) => l.replace(/\s+/g, " ").trim());
        assert.deepEqual(lines, [
          `${n.relayAddress} web.allowed.test`,
          "no evil.example",
          "host=web.allowed.test path=/direct",
          "host=web.allowed.test path=/proxied",
          "HTTP/1.1 403 Forbidden",
        ], out);
      },
    );
  } finally {
    ac.abort();
    await web.finished;
  }
  const decisions = log.map((d) => `${d.via} ${d.host} ${d.decision}`);
  for (
    const want of [
      "dns web.allowed.test allow",
      "dns evil.example deny",
      "http web.allowed.test allow",
      "proxy web.allowed.test allow",
      "proxy evil.example deny",
    ]
  ) assert.ok(decisions.includes(want), `${want} in ${decisions.join(", ")}`);
  assert.ok(
    log.every((d) => d.source.startsWith(relayAddress.split(".").slice(0, 3).join("."))),
    "from the run's network",
  );
  assert.equal(await docker("ps", "-aq", "--filter", "label=dev.moat.test=egress"), "");
});
