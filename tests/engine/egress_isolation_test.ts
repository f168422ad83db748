/**
 * What a `moat run --allow HOST` sandbox cannot reach, on the real engine under gVisor, through a real run
 * (not hand-made networks): by raw TCP, no address of this host (every IPv4 address of its interfaces —
 * loopback, eth0, docker0, every bridge — and the run network's own gateway), no container of the test's on
 * the default bridge or on another network, the relay on none of its ports but its own, and no IPv6 address
 * of this host (the sandbox has no IPv6 address of its own); by UDP, no service of this host; a DNS question
 * for a name not allowed, sent to the relay, is answered "no such name" by moat and logged, never passed on.
 * In the same run, the allowed name is reached (the control: the probes can see a connection). The host's
 * test servers and the test's container see no connection at all.
 *
 * Only this machine's own addresses are tried, and the containers and networks the test made.
 */
import assert from "node:assert/strict";
import { docker, moatEnv, requireEngine, ROOT, TEST_IMAGE, withScratch } from "./helpers.ts";
import { addressIn } from "../../lib/run/network.ts";

/** Every IPv4 address of this host's interfaces, or every IPv6 one of global scope. */
async function hostAddresses(family: "4" | "6"): Promise<string[]> {
  const args = family === "4" ? ["-4", "-o", "addr"] : ["-6", "-o", "addr", "show", "scope", "global"];
  const { stdout } = await new Deno.Command("ip", { args }).output();
  const re = family === "4" ? / inet (\d+\.\d+\.\d+\.\d+)\//g : / inet6 ([0-9a-f:]+)\//g;
  return [...new TextDecoder().decode(stdout).matchAll(re)].map((m) => m[1]!);
}

/** A DNS question (RFC 1035 4.1) for `name`'s record of `type` (1 A, 28 AAAA), as `printf` escapes. */
function dnsQuery(name: string, type: number): string {
  const bytes = [0x4d, 0x54, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
  for (const label of name.split(".")) bytes.push(label.length, ...new TextEncoder().encode(label));
  bytes.push(0, 0, type, 0, 1);
  return bytes.map((b) => `\\x${b.toString(16).padStart(2, "0")}`).join("");
}

/** A name that carries data in its labels, as DNS tunnelling does: fresh each test run, so no cache has it. */
function dataLikeName(): string {
  const secret = crypto.getRandomValues(new Uint8Array(24));
  const hex = [...secret].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 32)}.${hex.slice(32)}.s1.q${hex.slice(0, 6)}.exfil.test`;
}

/**
 * The sandbox's script. It says which relay its resolver names, then takes targets from stdin, one a line
 * (`tcp HOST PORT`: connect, and if it connects send an HTTP request naming the probe; `udp HOST PORT`: a
 * datagram), a line each; then the fixed checks: its IPv6 addresses, DNS questions, the allowed name.
 */
function sandboxScript(denied: string, deniedByLibc: string, hostService: string): string {
  return [
    `relay=$(awk '/^nameserver/ { print $2; exit }' /etc/resolv.conf)`,
    `echo "relay $relay"`,
    // Whether the other side answers: a connection is made and a line comes back (every server of the
    // test's answers with one, the relay's port 80 too). A connect reported made with no answer is not
    // counted as a reach; the other side's own log (checked below) would show a real one. The request
    // is for that log.
    `probe() {`,
    `  if timeout 10 bash -c 'trap "" PIPE; exec 3<>"/dev/tcp/$0/$1" || exit 1; printf "GET /moat-isolation-probe HTTP/1.0\\r\\n\\r\\n" >&3; IFS= read -r -t 8 line <&3 && [ -n "$line" ]' "$1" "$2" 2>/dev/null`,
    `  then echo "reached $1 $2"; else echo "blocked $1 $2"; fi`,
    `}`,
    // All at once, each bounded only against a hang (a target that drops what it is sent fails when the
    // bound passes; none does here), printed in the order given.
    `n=0`,
    `while read -r kind host port; do`,
    `  n=$((n + 1))`,
    `  case $kind in`,
    `    tcp) probe "$host" "$port" >/tmp/probe.$n &`,
    `      ;;`,
    `    udp) (timeout 10 bash -c "printf moat-isolation-probe >/dev/udp/$host/$port" 2>/dev/null; echo "sent $host $port") >/tmp/probe.$n &`,
    `      ;;`,
    `  esac`,
    `done`,
    `wait`,
    `for i in $(seq 1 $n); do cat /tmp/probe.$i; done`,
    // Its own IPv6 addresses, loopback and link-local ones aside (gVisor's /proc/net/ipv6_route is empty
    // whatever the routes; its if_inet6 lists the addresses, as a sandbox on an IPv6 network shows).
    `awk '$1 != "00000000000000000000000000000001" && $1 !~ /^fe80/ { print "v6address", $1, $6 }' /proc/net/if_inet6`,
    // A question for a name nobody allowed, straight to the relay's port 53: its answer's code.
    `exec 5<>/dev/udp/$relay/53 && printf '${
      dnsQuery(denied, 1)
    }' >&5 && timeout 10 head -c 4 <&5 | od -An -tu1 | awk '{ print "denied rcode", $4 % 16 }'`,
    // An IPv6 question for the allowed name: answered with no address (code and answer count).
    `exec 6<>/dev/udp/$relay/53 && printf '${
      dnsQuery("web.allowed.test", 28)
    }' >&6 && timeout 10 head -c 8 <&6 | od -An -tu1 | awk '{ print "aaaa rcode", $4 % 16, "answers", $7 * 256 + $8 }'`,
    // Through the C library's resolver (resolv.conf names the relay).
    `getent hosts ${deniedByLibc} || echo "no address for the second name"`,
    // This host's service through moat itself: by the proxy moat set, and by plain HTTP naming it.
    `p=\${HTTP_PROXY#http://}; exec 4<>/dev/tcp/\${p%:*}/\${p##*:} && printf 'CONNECT ${hostService} HTTP/1.1\\r\\n\\r\\n' >&4 && timeout 10 head -1 <&4 | tr -d '\\r'`,
    `exec 7<>/dev/tcp/$relay/80 && printf 'GET /moat-isolation-probe HTTP/1.0\\r\\nHost: ${hostService}\\r\\n\\r\\n' >&7 && timeout 10 head -1 <&7 | tr -d '\\r'`,
    // The control: the allowed name, by DNS and plain HTTP without the proxy.
    `exec 3<>/dev/tcp/web.allowed.test/80 && printf 'GET /control HTTP/1.0\\r\\nHost: web.allowed.test\\r\\n\\r\\n' >&3 && timeout 10 cat <&3 | tail -1`,
  ].join("\n");
}

/** Receive datagrams on `socket` until it is closed; each one's sender is pushed to `seen`. */
function recordDatagrams(socket: Deno.DatagramConn, seen: string[]): Promise<void> {
  return (async () => {
    for (;;) {
      const [, from] = await socket.receive();
      seen.push(`udp from ${(from as Deno.NetAddr).hostname}`);
    }
  })().catch(() => {});
}

/** The port a datagram socket is bound to. */
function portOf(socket: Deno.DatagramConn): number {
  return (socket.addr as Deno.NetAddr).port;
}

/**
 * Accept connections on `listener` until it is closed; each one's remote address is pushed to `seen`, and it
 * is answered with a line (what the sandbox's probe takes for "reached").
 */
function recordConnections(listener: Deno.TcpListener, seen: string[]): Promise<void> {
  return (async () => {
    for await (const conn of listener) {
      seen.push(`${conn.remoteAddr.hostname}:${conn.remoteAddr.port}`);
      await conn.write(new TextEncoder().encode("moat-isolation-host\n")).catch(() => {});
      conn.close();
    }
  })().catch(() => {});
}

Deno.test("an --allow run reaches nothing of this host, no other container, no other relay port, no IPv6, and no DNS upstream", async () => {
  await requireEngine();
  const t0 = performance.now();
  const tag = crypto.randomUUID().slice(0, 8);
  const label = `dev.moat.test=egress-isolation-${tag}`;
  // Services of this host on every address, as a developer's often are: TCP on IPv4 and IPv6, and UDP (a
  // stand-in for a DNS server of the host's).
  const tcp4 = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  const tcp6 = Deno.listen({ hostname: "::", port: 0 });
  const udp4 = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 0 });
  const udp6 = Deno.listenDatagram({ transport: "udp", hostname: "::", port: 0 });
  const seen: string[] = [];
  const served = [
    recordConnections(tcp4, seen),
    recordConnections(tcp6, seen),
    recordDatagrams(udp4, seen),
    recordDatagrams(udp6, seen),
  ];
  // The allowed name's upstream: the test's own HTTP server on loopback.
  const ac = new AbortController();
  const web = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => new Response(`host=${req.headers.get("host")} path=${new URL(req.url).pathname}\n`),
  );
  const otherNet = `moat-test-isolation-${tag}`;
  let otherNetMade = false;
  let serverId: string | undefined;
  const denied = dataLikeName();
  const deniedByLibc = dataLikeName();
  try {
    // A container of the test's on the default bridge and on a network of its own (an ordinary one, whose
    // bridge has an address on this host), serving HTTP and logging each request.
    await docker("network", "create", "--label", label, otherNet);
    otherNetMade = true;
    serverId = (await docker(
      "run",
      "-d",
      "--label",
      label,
      TEST_IMAGE,
      "httpd",
      "-f",
      "-vv",
      "-p",
      "8080",
      "-h",
      "/tmp",
    )).trim();
    await docker("network", "connect", otherNet, serverId);
    const serverAddresses = (await docker(
      "inspect",
      "-f",
      "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
      serverId,
    )).trim().split(" ");
    assert.equal(serverAddresses.length, 2, `${serverAddresses}`);
    // The control for the container: from this host it answers, and logs the request.
    for (const a of serverAddresses) {
      const r = await fetch(`http://${a}:8080/control`, { signal: AbortSignal.timeout(10_000) });
      await r.body?.cancel();
      assert.equal(r.status, 404, `${a}: the test's container answers this host`);
    }

    // This host's addresses, read once the test's network (and its bridge address) is there: skip none.
    const v4 = await hostAddresses("4");
    const v6 = await hostAddresses("6");
    assert.ok(v4.includes("127.0.0.1") && v4.length >= 3, `${v4}`);

    await withScratch(async ({ ws, home }) => {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          `${ROOT}/main.ts`,
          "run",
          "-i",
          "--image",
          "debian:bookworm-slim",
          "--allow",
          "web.allowed.test",
          ws,
          "--",
          "bash",
          "-c",
          sandboxScript(denied, deniedByLibc, `127.0.0.1:${tcp4.addr.port}`),
        ],
        env: moatEnv(home, {
          MOAT_TEST_UPSTREAMS: JSON.stringify({ "web.allowed.test": `127.0.0.1:${web.addr.port}` }),
        }),
        clearEnv: true,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stderr = new Response(child.stderr).text();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let out = "";
      while (!out.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        out += value;
      }
      const stdin = child.stdin.getWriter();
      let runId: string | undefined;
      let targets: string[] = [];
      try {
        const first = /^relay (\S+)\n/.exec(out);
        if (!first) {
          await stdin.close().catch(() => {});
          assert.fail(`the run did not start its command: ${out} ${await stderr}`);
        }
        const relay = first[1]!;
        // While the run is going: its network, as the engine has it; the sandbox joined it alone.
        const ids = [...Deno.readDirSync(`${home}/runs`)].map((e) => e.name);
        assert.equal(ids.length, 1, `${ids}`);
        runId = ids[0]!;
        const net = JSON.parse(await docker("network", "inspect", `moat-net-${runId}`))[0];
        const subnet: string = net.IPAM.Config[0].Subnet;
        const gateway = addressIn(subnet, 1)!;
        assert.ok(subnet.startsWith("10.237."), subnet);
        assert.equal(relay, addressIn(subnet, 2), "the resolver is the relay");
        const sandbox = (await docker(
          "ps",
          "-q",
          "--filter",
          `label=dev.moat.run-id=${runId}`,
          "--filter",
          "label=dev.moat.sandbox",
        )).trim().split("\n").filter(Boolean);
        const inspected = JSON.parse(await docker("inspect", ...sandbox));
        const sandboxes = inspected.filter((c: { Config: { Labels: Record<string, string> } }) =>
          c.Config.Labels["dev.moat.probe"] !== "relay"
        );
        assert.equal(sandboxes.length, 1, "one sandbox");
        assert.deepEqual(Object.keys(sandboxes[0].NetworkSettings.Networks), [`moat-net-${runId}`]);
        assert.equal(sandboxes[0].HostConfig.Runtime, "runsc");
        assert.equal(sandboxes[0].NetworkSettings.Networks[`moat-net-${runId}`].GlobalIPv6Address, "");

        targets = [
          ...v4.map((a) => `tcp ${a} ${tcp4.addr.port}`),
          `tcp ${gateway} ${tcp4.addr.port}`,
          ...serverAddresses.map((a) => `tcp ${a} 8080`),
          ...[22, 8080, 3129, 53, 8443].map((p) => `tcp ${relay} ${p}`),
          `tcp ${relay} 80`, // the control: the relay's own port answers
          ...v6.map((a) => `tcp ${a} ${tcp6.addr.port}`),
          ...[...v4, gateway].map((a) => `udp ${a} ${portOf(udp4)}`),
          ...v6.map((a) => `udp ${a} ${portOf(udp6)}`),
        ];
        await stdin.write(new TextEncoder().encode(targets.join("\n") + "\n"));
      } catch (err) {
        // The run goes on to its end once its stdin closes: wait for it, so nothing of it outlives the test.
        await stdin.close().catch(() => {});
        for (;;) if ((await reader.read()).done) break;
        await child.status;
        await stderr;
        throw err;
      } finally {
        await stdin.close().catch(() => {});
      }
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out += value;
      }
      const status = await child.status;
      const err = await stderr;
      assert.equal(status.code, 0, err);
      const lines = out.trim().split("\n");
      const relay = lines[0]!.split(" ")[1]!;
      const want = [
        `relay ${relay}`,
        ...targets.map((t) => {
          const [kind, host, port] = t.split(" ");
          if (kind === "udp") return `sent ${host} ${port}`;
          return `${host === relay && port === "80" ? "reached" : "blocked"} ${host} ${port}`;
        }),
        "denied rcode 3", // NXDOMAIN, from moat
        "aaaa rcode 0 answers 0",
        "no address for the second name",
        "HTTP/1.1 403 Forbidden",
        "HTTP/1.1 403 Forbidden",
        "host=web.allowed.test path=/control",
      ];
      // What the other sides saw, read before the sandbox's own account is checked: a failure says both.
      const logged = await new Deno.Command("docker", { args: ["logs", serverId!] }).output();
      const logs = new TextDecoder().decode(logged.stdout) + new TextDecoder().decode(logged.stderr);
      const sides = `this host's services saw ${JSON.stringify(seen)}; the test's container logged:\n${logs}`;
      assert.deepEqual(lines, want, `${err}\n${sides}`);
      assert.deepEqual(seen, [], "no service of this host saw a connection or a datagram");
      assert.match(logs, /url:\/control/, "the container logs requests");
      assert.doesNotMatch(logs, /moat-isolation-probe/, "the test's container saw no probe");

      // moat answered the questions and logged them; it passed none on.
      const decisions = (await Deno.readTextFile(`${home}/runs/${runId}/network.jsonl`)).trim().split("\n")
        .map((l) => JSON.parse(l) as { via: string; host: string | null; decision: string });
      const said = decisions.map((d) => `${d.via} ${d.host} ${d.decision}`);
      for (
        const w of [
          `dns ${denied} deny`,
          `dns ${deniedByLibc} deny`,
          "proxy 127.0.0.1 deny",
          "http 127.0.0.1 deny",
          "http web.allowed.test allow",
        ]
      ) {
        assert.ok(said.includes(w), `${w}: ${said.join("; ")}`);
      }
      assert.ok(!said.some((s) => /allow$/.test(s) && !s.includes("web.allowed.test")), said.join("; "));

      // Nothing of the run is left.
      assert.equal(await docker("ps", "-aq", "--filter", `label=dev.moat.run-id=${runId}`), "");
      assert.equal(await docker("network", "ls", "-q", "--filter", `name=moat-net-${runId}`), "");
    });
  } finally {
    if (serverId) await docker("rm", "-f", serverId).catch(() => {});
    if (otherNetMade) await docker("network", "rm", otherNet).catch(() => {});
    tcp4.close();
    tcp6.close();
    udp4.close();
    udp6.close();
    await Promise.all(served);
    ac.abort();
    await web.finished;
  }
  assert.equal(await docker("ps", "-aq", "--filter", `label=${label}`), "");
  console.log(`egress isolation: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
});
