/**
 * `tcp:` and rules per host from moat.yaml on the real engine, under gVisor: the sandbox reaches a TCP echo
 * server through a mapped port (by the mapped host's name, which resolves to the relay), and a host with
 * rules answers an allowed path and refuses another with a 403 naming the rule; each decision is logged with
 * the rule that made it. The upstreams are servers of the test's own on loopback, named through
 * `MOAT_TEST_UPSTREAMS`: no traffic leaves this machine.
 */
import assert from "node:assert/strict";
import { docker, moat, onlyRecord, requireEngine, withScratch } from "./helpers.ts";

/** A TCP server on 127.0.0.1 that echoes what each connection sends. */
function echoServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Promise<void>>();
  const accepting = (async () => {
    for await (const conn of listener) {
      const p = (async () => {
        const buf = new Uint8Array(4096);
        try {
          for (;;) {
            const n = await conn.read(buf);
            if (n === null) break;
            await conn.write(buf.subarray(0, n));
          }
        } catch { /* the client went away */ }
        conn.close();
      })();
      conns.add(p);
      p.finally(() => conns.delete(p));
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      await accepting;
      await Promise.all(conns);
    },
  };
}

for (const detach of [false, true]) {
  Deno.test(`a run${detach ? " -d" : ""} with tcp: and rules in moat.yaml reaches the mapped echo server, and gets a 403 from a rule`, async () => {
    await requireEngine();
    const echo = echoServer();
    const ac = new AbortController();
    const web = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
      (req) => new Response(`host=${req.headers.get("host")} path=${new URL(req.url).pathname}\n`),
    );
    try {
      await withScratch(async ({ ws, home }) => {
        await Deno.writeTextFile(
          `${ws}/moat.yaml`,
          [
            "network:",
            "  allow:",
            "    - host: web.ruled.test",
            '      rules: ["allow GET /ok/*", "deny * /*"]',
            "  tcp:",
            '    - "2222=echo.mapped.test:22"',
            "",
          ].join("\n"),
        );
        const http = (fd: number, path: string) =>
          `exec ${fd}<>/dev/tcp/web.ruled.test/80 && printf 'GET ${path} HTTP/1.0\\r\\nHost: web.ruled.test\\r\\n\\r\\n' >&${fd}`;
        const script = [
          // The mapped host's name resolves (to the relay), and its port reaches the echo server.
          `getent hosts echo.mapped.test | cut -d' ' -f2- | tr -s ' '`,
          `exec 3<>/dev/tcp/echo.mapped.test/2222 && printf 'ping over tcp\\n' >&3 && timeout 5 head -1 <&3`,
          // The relay's address (the sandbox's resolver) on that port: the same.
          `r=$(awk '/^nameserver/ { print $2 }' /etc/resolv.conf) && exec 7<>/dev/tcp/$r/2222 && printf 'by address\\n' >&7 && timeout 5 head -1 <&7`,
          // A path the rules allow, and one they deny: its status line, and the line that names the rule.
          `${http(4, "/ok/x?q=1")} && timeout 5 cat <&4 | tail -1`,
          `${
            http(5, "/secret?token=x")
          } && timeout 5 cat <&5 > /tmp/denied && head -1 /tmp/denied | tr -d '\\r' && grep -o 'denied by .*' /tmp/denied`,
          // Through the proxy: a tunnel to the host with rules is opened, for moat to read the TLS in it and
          // check each request (what it does then: tests/engine/grants_test.ts).
          `p=\${HTTP_PROXY#http://}; exec 6<>/dev/tcp/\${p%:*}/\${p##*:} && printf 'CONNECT web.ruled.test:443 HTTP/1.1\\r\\n\\r\\n' >&6 && timeout 5 head -1 <&6 | tr -d '\\r'`,
        ].join("\n");
        const started = await moat(
          [
            "run",
            ...(detach ? ["-d"] : []),
            "--image",
            "debian:bookworm-slim",
            ws,
            "--",
            "bash",
            "-c",
            script,
          ],
          {
            home,
            env: {
              MOAT_TEST_UPSTREAMS: JSON.stringify({
                "echo.mapped.test": `127.0.0.1:${echo.port}`,
                "web.ruled.test": `127.0.0.1:${web.addr.port}`,
              }),
            },
          },
        );
        assert.equal(started.code, 0, started.stderr);
        // Detached, the run's recorder serves the policy (mappings and rules included): its output once over.
        let r = started;
        if (detach) {
          const id = started.out.trim();
          const waited = await moat(["wait", id], { home });
          assert.equal(waited.code, 0, waited.stderr);
          r = await moat(["logs", id], { home });
        }
        assert.deepEqual(r.out.trim().split("\n"), [
          "echo.mapped.test",
          "ping over tcp",
          "by address",
          "host=web.ruled.test path=/ok/x",
          "HTTP/1.1 403 Forbidden",
          `denied by this run's network policy: the rule "deny * /*".`,
          "HTTP/1.1 200 Connection Established",
        ], r.stderr);
        const record = await onlyRecord(home) as {
          id: string;
          sandbox: string;
          profile: { network: string; allow: string[]; tcp: string[]; rules: unknown };
        };
        assert.equal(record.sandbox, "gvisor");
        assert.deepEqual(
          [record.profile.network, record.profile.allow, record.profile.tcp, record.profile.rules],
          [
            "allowlist",
            ["web.ruled.test"],
            ["2222=echo.mapped.test:22"],
            [{ host: "web.ruled.test", rules: ["allow GET /ok/*", "deny * /*"] }],
          ],
        );
        const decisions = (await Deno.readTextFile(`${home}/runs/${record.id}/network.jsonl`)).trim().split(
          "\n",
        )
          .map((l) =>
            JSON.parse(l) as {
              via: string;
              host: string;
              port: number;
              path?: string;
              decision: string;
              rule?: string;
              sent?: number;
              received?: number;
            }
          );
        const seen = decisions.map((d) =>
          `${d.via} ${d.host}:${d.port} ${d.path || "-"} ${d.decision} [${d.rule}]`
        );
        for (
          const want of [
            "dns echo.mapped.test:null - allow [tcp 2222=echo.mapped.test:22]",
            "tcp echo.mapped.test:22 - allow [tcp 2222=echo.mapped.test:22]",
            "http web.ruled.test:80 /ok/x allow [web.ruled.test: allow GET /ok/*]",
            "http web.ruled.test:80 /secret deny [web.ruled.test: deny * /*]",
            "proxy web.ruled.test:443 - deny [web.ruled.test]",
          ]
        ) {
          assert.ok(seen.includes(want), `${want}:\n${seen.join("\n")}`);
        }
        const piped = decisions.filter((d) => d.via === "tcp").map((d) => [d.sent, d.received]);
        assert.deepEqual(piped.sort(), [[11, 11], [14, 14]], "the echo's bytes, each way, per connection");
        assert.equal(
          await docker("ps", "-aq", "--filter", `label=dev.moat.run-id=${record.id}`),
          "",
          "no container",
        );
        assert.equal(
          await docker("network", "ls", "-q", "--filter", `name=moat-net-${record.id}`),
          "",
          "no network",
        );
      });
    } finally {
      ac.abort();
      await web.finished;
      await echo.close();
    }
  });
}
