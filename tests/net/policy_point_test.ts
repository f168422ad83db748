/**
 * The policy point with a relay in this process, on loopback: DNS, the explicit proxy, plain HTTP and TLS
 * made straight to a name, and a mapped TCP port, each allowed or denied by the allow list and logged.
 * Upstreams are servers of the test's own on 127.0.0.1, reached through a dialer that maps the test's names
 * to them: no traffic leaves this machine.
 */
import assert from "node:assert/strict";
import { type HostPattern, parseHostPattern } from "../../lib/net/host_policy.ts";
import { type Decision, PolicyPoint, type Upstreams } from "../../lib/net/policy_point.ts";
import { runRelay } from "../../lib/net/relay.ts";
import { policyPatterns } from "../../lib/run/egress.ts";
import { readClientHello } from "../../lib/net/tls_hello.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: number[] = [];
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) break;
    chunks.push(...buf.subarray(0, n));
  }
  return new Uint8Array(chunks);
}

/** A TCP server on loopback that keeps what each connection sent and echoes it back. */
function echoServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received: Uint8Array[] = [];
  const done = (async () => {
    for await (const conn of listener) {
      (async () => {
        const buf = new Uint8Array(65536);
        const got: number[] = [];
        for (;;) {
          const n = await conn.read(buf).catch(() => null);
          if (n === null) break;
          got.push(...buf.subarray(0, n));
          received.push(new Uint8Array(got)); // kept before the echo, which the client may act on at once
          await conn.write(buf.subarray(0, n)).catch(() => {});
        }
        conn.close();
      })();
    }
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, received, close: () => (listener.close(), done) };
}

/** An HTTP server on loopback that answers with the Host, path and Connection header it was sent. */
function httpServer() {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      const url = new URL(req.url);
      return new Response(
        `host=${req.headers.get("host")} path=${url.pathname} connection=${req.headers.get("connection")}`,
      );
    },
  );
  return { port: server.addr.port, close: () => (ac.abort(), server.finished) };
}

/** A query for `name` (type A or AAAA), as a stub resolver sends it. */
function query(name: string, type = 1): Uint8Array {
  const labels = name.split(".").flatMap((l) => [l.length, ...encoder.encode(l)]);
  return new Uint8Array([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, type, 0, 1]);
}

Deno.test("the policy point answers, passes or refuses each kind of connection, and logs each", async () => {
  const dir = await Deno.makeTempDir({ prefix: "moat-policy-" });
  const socket = `${dir}/relay.sock`;
  const echo = echoServer();
  const web = httpServer();
  const upstreamOf: Record<string, number> = {
    "api.allowed.test": echo.port,
    "tls.allowed.test": echo.port,
    "web.allowed.test": web.port,
    "git.only.test": echo.port,
  };
  const dialed: string[] = [];
  const upstreams: Upstreams = {
    dial(host, port, rule: HostPattern) {
      dialed.push(`${host}:${port} by ${rule.text}`);
      const at = upstreamOf[host];
      if (at === undefined) return Promise.reject(new Error("no address for it"));
      return Deno.connect({ hostname: "127.0.0.1", port: at });
    },
  };
  const allow = ["api.allowed.test", "*.allowed.test", "lost.example:443"].map((t) =>
    parseHostPattern(t) as HostPattern
  );
  const log: Decision[] = [];
  const listener = Deno.listen({ transport: "unix", path: socket });
  const relayReady = Promise.withResolvers<{ tcp: number[]; udp: number[] }>();
  const stop = new AbortController();
  const relay = runRelay({
    socket,
    ports: [0, 0, 0, 0, 0, 0],
    udpPorts: [0],
    hostname: "127.0.0.1",
    onListening: (tcp, udp) => relayReady.resolve({ tcp, udp }),
  }, stop.signal);
  const { tcp, udp } = await relayReady.promise;
  const [proxy, http, tls, mapped, lostMapped, nothing] = tcp as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const point = new PolicyPoint(
    {
      allow,
      // Mapped hosts outside the allow list: the mapping alone lets their names resolve, and their port.
      tcp: new Map([[mapped, { host: "git.only.test", port: 22 }], [lostMapped, {
        host: "lost.test",
        port: 22,
      }]]),
      relayAddress: "10.237.0.2",
    },
    upstreams,
    (d) => log.push(d),
    { dns: udp[0]!, proxy, http, tls },
  );
  const served = point.serve(listener);
  const client = (Deno as unknown as { listenDatagram(o: object): Deno.DatagramConn }).listenDatagram({
    hostname: "127.0.0.1",
    port: 0,
    transport: "udp",
  });
  const talk = async (port: number, text: string | Uint8Array) => {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    await c.write(typeof text === "string" ? encoder.encode(text) : text);
    await c.closeWrite();
    const answer = decoder.decode(await readAll(c));
    c.close();
    return answer;
  };
  try {
    // DNS: an allowed name gets the relay's address; any other does not exist; AAAA gets nothing.
    const ask = async (name: string, type = 1) => {
      await client.send(query(name, type), { transport: "udp", hostname: "127.0.0.1", port: udp[0]! });
      const [reply] = await client.receive();
      return {
        rcode: reply[3]! & 0x0f,
        answers: (reply[6]! << 8) | reply[7]!,
        last4: [...reply.slice(-4)].join("."),
      };
    };
    assert.deepEqual(await ask("API.allowed.test"), { rcode: 0, answers: 1, last4: "10.237.0.2" });
    assert.deepEqual(await ask("deep.sub.allowed.test"), { rcode: 0, answers: 1, last4: "10.237.0.2" });
    assert.equal((await ask("evil.example")).rcode, 3, "NXDOMAIN");
    assert.equal((await ask("allowed.test")).rcode, 3, "a wildcard does not cover its own domain");
    assert.deepEqual((await ask("api.allowed.test", 28)).answers, 0, "no AAAA: IPv4 only");
    assert.deepEqual(
      await ask("GIT.only.test"),
      { rcode: 0, answers: 1, last4: "10.237.0.2" },
      "a mapped host",
    );

    // The explicit proxy: CONNECT allowed (the tunnel's bytes both ways), CONNECT denied (a 403 saying what to add).
    assert.equal(
      await talk(proxy, "CONNECT api.allowed.test:443 HTTP/1.1\r\nHost: api.allowed.test:443\r\n\r\nhello"),
      "HTTP/1.1 200 Connection Established\r\n\r\nhello",
    );
    const denied = await talk(proxy, "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n");
    assert.match(denied, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.match(
      denied,
      /moat: evil\.example:443 is not allowed by this run's network policy\.\nTo allow it, run moat with {2}--allow evil\.example {2}or add to moat\.yaml:\n.*\n.*\n {6}- evil\.example\n$/,
    );
    assert.match(
      await talk(proxy, "CONNECT api.allowed.test:8443 HTTP/1.1\r\nHost: api.allowed.test:8443\r\n\r\n"),
      /403 Forbidden[\s\S]*- api\.allowed\.test:8443\n$/,
      "another port must be named",
    );
    // The proxy with a URL: sent upstream in origin form, one request per connection.
    const viaUrl = await talk(
      proxy,
      "GET http://web.allowed.test/a/b?token=secret HTTP/1.1\r\nHost: web.allowed.test\r\n\r\n",
    );
    assert.match(
      viaUrl,
      /^HTTP\/1\.1 200 OK\r\n[\s\S]*host=web\.allowed\.test path=\/a\/b connection=close$/,
    );
    // An allowed name moat cannot connect to: a 502 saying so.
    assert.match(
      await talk(proxy, "CONNECT lost.example:443 HTTP/1.1\r\n\r\n"),
      /^HTTP\/1\.1 502 [\s\S]*no address for it/,
    );

    // Plain HTTP straight to a name: by its Host header.
    assert.match(
      await talk(http, "GET /x HTTP/1.1\r\nHost: web.allowed.test\r\nConnection: keep-alive\r\n\r\n"),
      /path=\/x connection=close$/,
    );
    assert.match(await talk(http, "GET /x HTTP/1.1\r\nHost: evil.example\r\n\r\n"), /^HTTP\/1\.1 403/);

    // TLS straight to a name: by the server name of its hello, passed through as it came.
    const hello = async (serverName: string) => {
      const tcpConn = await Deno.connect({ hostname: "127.0.0.1", port: tls });
      // The hello goes out with the handshake, which then fails: what comes back is not a server's.
      const t = await Deno.startTls(tcpConn, { hostname: serverName });
      await t.handshake().catch(() => {});
      t.close();
    };
    const before = echo.received.length;
    await hello("tls.allowed.test");
    const passed = echo.received.slice(before).map((b) => readClientHello(b)).find((r) => r.kind === "hello");
    assert.deepEqual(passed && "serverName" in passed ? passed.serverName : undefined, "tls.allowed.test");
    await hello("evil.example");

    // A mapped TCP port: to its one upstream; a port with nothing behind it: closed.
    assert.equal(await talk(mapped, "SSH-2.0-test\r\n"), "SSH-2.0-test\r\n");
    assert.equal(await talk(lostMapped, "SSH-2.0-test\r\n"), "", "an upstream moat cannot reach: closed");
    // A mapped host is reached on its mapped port only: not by the proxy, nor on 443.
    assert.match(await talk(proxy, "CONNECT git.only.test:22 HTTP/1.1\r\n\r\n"), /^HTTP\/1\.1 403/);
    assert.equal(await talk(nothing, "hi"), "");
  } finally {
    client.close();
    stop.abort();
    await relay;
    listener.close();
    await served;
    await echo.close();
    await web.close();
    await Deno.remove(dir, { recursive: true });
  }
  // An allowed connection is logged when it is over (with its bytes), so in the order the connections end.
  const sorted = (rows: unknown[][]) => rows.map((r) => JSON.stringify(r)).sort();
  const summary = log.map((d) => [d.via, d.host, d.decision, d.rule ?? d.reason]);
  assert.deepEqual(
    sorted(summary),
    sorted([
      ["dns", "api.allowed.test", "allow", "api.allowed.test"],
      ["dns", "deep.sub.allowed.test", "allow", "*.allowed.test"],
      ["dns", "evil.example", "deny", "not in the allow list"],
      ["dns", "allowed.test", "deny", "not in the allow list"],
      ["dns", "api.allowed.test", "allow", "api.allowed.test"],
      ["proxy", "api.allowed.test", "allow", "api.allowed.test"],
      ["proxy", "evil.example", "deny", "not in the allow list"],
      ["proxy", "api.allowed.test", "deny", "not in the allow list"],
      ["proxy", "web.allowed.test", "allow", "*.allowed.test"],
      ["proxy", "lost.example", "allow", "lost.example:443"],
      ["http", "web.allowed.test", "allow", "*.allowed.test"],
      ["http", "evil.example", "deny", "not in the allow list"],
      ["tls", "tls.allowed.test", "allow", "*.allowed.test"],
      ["tls", "evil.example", "deny", "not in the allow list"],
      ["dns", "git.only.test", "allow", `tcp ${mapped}=git.only.test:22`],
      ["tcp", "git.only.test", "allow", `tcp ${mapped}=git.only.test:22`],
      ["tcp", "lost.test", "allow", `tcp ${lostMapped}=lost.test:22`],
      ["proxy", "git.only.test", "deny", "not in the allow list"],
      ["tcp", null, "deny", "no service on that port"],
    ]),
  );
  const url = log.find((d) => d.via === "proxy" && d.method === "GET")!;
  assert.equal(url.path, "/a/b", "the query string is not logged");
  assert.match(log.find((d) => d.host === "lost.example")!.reason!, /^cannot connect: no address for it$/);
  assert.match(log.find((d) => d.host === "lost.test")!.reason!, /^cannot connect: no address for it$/);
  const piped = log.find((d) => d.via === "tcp" && d.host === "git.only.test")!;
  assert.deepEqual(
    [piped.port, piped.sent, piped.received],
    [22, 14, 14],
    "the upstream's port, bytes each way",
  );
  const tunnel = log.find((d) => d.via === "proxy" && d.decision === "allow")!;
  assert.deepEqual([tunnel.sent, tunnel.received], [5, 5], "bytes each way, once the connection is over");
  assert.ok(dialed.every((d) => !d.startsWith("evil")), "nothing denied was dialed");
  assert.ok(dialed.includes(`git.only.test:22 by tcp ${mapped}=git.only.test:22`), dialed.join("\n"));
});

Deno.test("a host with rules: each plain-HTTP request checked by them, CONNECT and TLS to it refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "moat-policy-" });
  const socket = `${dir}/relay.sock`;
  const web = httpServer();
  const echo = echoServer();
  const dialed: string[] = [];
  const upstreams: Upstreams = {
    dial(host, port) {
      dialed.push(`${host}:${port}`);
      return Deno.connect({ hostname: "127.0.0.1", port: host === "api.ruled.test" ? web.port : echo.port });
    },
  };
  const allow = policyPatterns(
    ["*.ruled.test", "api.ruled.test", "free.test", "echo.ruled.test"],
    [
      { host: "api.ruled.test", rules: ["allow GET /v1/*", "deny * /v1/admin*", "allow POST /v2/*"] },
      { host: "echo.ruled.test", rules: ["allow POST /in"] },
    ],
  );
  const log: Decision[] = [];
  const listener = Deno.listen({ transport: "unix", path: socket });
  const relayReady = Promise.withResolvers<number[]>();
  const stop = new AbortController();
  const relay = runRelay({
    socket,
    ports: [0, 0, 0],
    hostname: "127.0.0.1",
    onListening: (tcp) => relayReady.resolve(tcp),
  }, stop.signal);
  const [proxy, http, tls] = await relayReady.promise as [number, number, number];
  const point = new PolicyPoint(
    { allow, tcp: new Map(), relayAddress: "10.237.0.2" },
    upstreams,
    (d) => log.push(d),
    {
      proxy,
      http,
      tls,
    },
  );
  const served = point.serve(listener);
  const talk = async (port: number, text: string) => {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    await c.write(encoder.encode(text));
    await c.closeWrite();
    const answer = decoder.decode(await readAll(c));
    c.close();
    return answer;
  };
  const get = (port: number, method: string, target: string) =>
    talk(port, `${method} ${target} HTTP/1.1\r\nHost: api.ruled.test\r\nContent-Length: 0\r\n\r\n`);
  try {
    // Straight to port 80, by Host: the first rule that matches decides; the query string is not matched.
    assert.match(await get(http, "GET", "/v1/repos?token=x"), /^HTTP\/1\.1 200 OK[\s\S]*path=\/v1\/repos /);
    assert.match(
      await get(http, "GET", "/v1/admin/x"),
      /^HTTP\/1\.1 200 /,
      "the first rule that matches wins",
    );
    const denied = await get(http, "DELETE", "/v1/admin/users?id=1");
    assert.match(denied, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.match(
      denied,
      /\r\n\r\nmoat: DELETE \/v1\/admin\/users to api\.ruled\.test is denied by this run's network policy: the rule "deny \* \/v1\/admin\*"\.\nTo allow it, add a rule before "deny \* \/v1\/admin\*" in moat\.yaml, such as:\n {2}network:\n {4}allow:\n {6}- host: api\.ruled\.test\n {8}rules: \["allow DELETE \/v1\/admin\/users"\]\n$/,
    );
    const none = await get(http, "PUT", "/v3/x");
    assert.match(
      none,
      /^HTTP\/1\.1 403 [\s\S]*PUT \/v3\/x to api\.ruled\.test .*: no rule for api\.ruled\.test matches it\./,
    );
    assert.match(await get(http, "GET", "/v1/../v3/x"), /^HTTP\/1\.1 403 [\s\S]*"\." or "\.\." segment/);
    assert.match(await get(http, "GET", "/v%31/x"), /^HTTP\/1\.1 403 [\s\S]*%31, an encoded "1"/);
    // Through the proxy, by URL: the same rules.
    assert.match(
      await get(proxy, "POST", "http://api.ruled.test/v2/items"),
      /^HTTP\/1\.1 200 [\s\S]*path=\/v2\/items /,
    );
    assert.match(
      await get(proxy, "POST", "http://api.ruled.test/v1/items"),
      /^HTTP\/1\.1 403 [\s\S]*no rule for/,
    );
    // CONNECT to it, on any port: refused, since this policy point (given no CA) cannot read the tunnel.
    const tunnel = await talk(proxy, "CONNECT api.ruled.test:443 HTTP/1.1\r\n\r\n");
    assert.match(tunnel, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.match(
      tunnel,
      /moat: api\.ruled\.test:443 is refused: rules for api\.ruled\.test are checked on plain HTTP only: this policy point reads no TLS\.\n/,
    );
    assert.match(
      await talk(proxy, "CONNECT api.ruled.test:80 HTTP/1.1\r\n\r\n"),
      /^HTTP\/1\.1 403 [\s\S]*reads no TLS/,
    );
    // TLS straight to it: closed, nothing passed on.
    const before = echo.received.length;
    const t = await Deno.startTls(await Deno.connect({ hostname: "127.0.0.1", port: tls }), {
      hostname: "api.ruled.test",
    });
    await t.handshake().catch(() => {});
    t.close();
    assert.equal(echo.received.length, before, "nothing reached an upstream");
    // Only the body the head declares is passed on: a request sent after it, unchecked, never is.
    const pipelined = "POST /in HTTP/1.1\r\nHost: echo.ruled.test\r\nContent-Length: 5\r\n\r\nhello" +
      "DELETE /all HTTP/1.1\r\nHost: echo.ruled.test\r\n\r\n";
    assert.equal(
      await talk(http, pipelined),
      "POST /in HTTP/1.1\r\nHost: echo.ruled.test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert.equal(
      await talk(http, "POST /in HTTP/1.1\r\nHost: echo.ruled.test\r\n\r\nGET /secret HTTP/1.1\r\n\r\n"),
      "POST /in HTTP/1.1\r\nHost: echo.ruled.test\r\nConnection: close\r\n\r\n",
      "no Content-Length: no body",
    );
    // A chunked body's end is not tracked: refused for a host with rules.
    const chunked = await talk(
      http,
      "POST /in HTTP/1.1\r\nHost: echo.ruled.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    assert.match(chunked, /^HTTP\/1\.1 411 Length Required\r\n/);
    assert.match(
      chunked,
      /POST \/in to echo\.ruled\.test is refused: requests to echo\.ruled\.test, which has rules, need a Content-Length/,
    );
    // Hosts the wildcard covers without rules are not checked by them.
    assert.match(
      await talk(http, "DELETE /anything HTTP/1.1\r\nHost: other.ruled.test\r\n\r\n"),
      /^DELETE \/anything HTTP\/1\.1\r\nHost: other\.ruled\.test\r\n/,
      "passed on (to the echo server)",
    );
  } finally {
    stop.abort();
    await relay;
    listener.close();
    await served;
    await web.close();
    await echo.close();
    await Deno.remove(dir, { recursive: true });
  }
  const summary = log.map((d) =>
    `${d.via} ${d.method ?? "-"} ${d.path ?? "-"} ${d.decision} [${d.rule}] ${d.reason ?? ""}`
  )
    .sort();
  assert.deepEqual(
    summary,
    [
      "http DELETE /anything allow [*.ruled.test] ",
      "http DELETE /v1/admin/users deny [api.ruled.test: deny * /v1/admin*] denied by a rule",
      'http GET /v%31/x deny [api.ruled.test] the path cannot be checked by rules: it has %31, an encoded "1"',
      'http GET /v1/../v3/x deny [api.ruled.test] the path cannot be checked by rules: it has a "." or ".." segment',
      "http GET /v1/admin/x allow [api.ruled.test: allow GET /v1/*] ",
      "http GET /v1/repos allow [api.ruled.test: allow GET /v1/*] ",
      "http POST /in allow [echo.ruled.test: allow POST /in] ",
      "http POST /in allow [echo.ruled.test: allow POST /in] ",
      "http POST /in deny [echo.ruled.test] requests to echo.ruled.test, which has rules, need a Content-Length (a chunked body is not passed on)",
      "http PUT /v3/x deny [api.ruled.test] no rule matches it",
      "proxy CONNECT  deny [api.ruled.test] rules for api.ruled.test are checked on plain HTTP only: this policy point reads no TLS",
      "proxy CONNECT  deny [api.ruled.test] rules for api.ruled.test are checked on plain HTTP only: this policy point reads no TLS",
      "proxy POST /v1/items deny [api.ruled.test] no rule matches it",
      "proxy POST /v2/items allow [api.ruled.test: allow POST /v2/*] ",
      "tls - - deny [api.ruled.test] rules for api.ruled.test are checked on plain HTTP only: this policy point reads no TLS",
    ].sort(),
  );
  assert.ok(!dialed.some((d) => d.endsWith(":443")), `nothing dialed for CONNECT or TLS: ${dialed}`);
  assert.equal(dialed.length, 6, dialed.join(" "));
  const sent = log.filter((d) => d.host === "echo.ruled.test" && d.decision === "allow").map((d) => d.sent)
    .sort();
  assert.deepEqual(sent, [0, 5], "the body's bytes, not the dropped request's");
});
