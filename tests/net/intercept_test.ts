/**
 * TLS moat reads inside (lib/net/intercept.ts, lib/net/tls_server.ts), through the policy point with a relay
 * in this process on loopback: a granted host's requests get the credential, and only they; rules decide
 * requests inside TLS; the upstream is verified; a client that does not trust the run's CA gets nothing.
 * Upstreams are HTTPS servers of the test's own on 127.0.0.1, with certificates of a test CA.
 */
import assert from "node:assert/strict";
import type { HostPattern } from "../../lib/net/host_policy.ts";
import { type Decision, PolicyPoint, upstreamHead, type Upstreams } from "../../lib/net/policy_point.ts";
import { runRelay } from "../../lib/net/relay.ts";
import { policyPatterns } from "../../lib/run/egress.ts";
import { makeRunCa, type RunCa } from "../../lib/net/x509.ts";
import { httpsUpstream } from "../https_upstream.ts";
import { BodyError, BodyScanner } from "../../lib/net/http_body.ts";
import { CREDENTIAL_HEADERS, forwardedHead } from "../../lib/net/intercept.ts";
import { readRequestHead } from "../../lib/net/http_head.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const SECRET = "sk-test-4f9a0c11-secret";

/** An HTTPS server for `host` on loopback, with a leaf of `ca`, answering with what it was sent. */
async function upstream(ca: RunCa, host: string) {
  const seen: Array<
    { method: string; path: string; host: string | null; headers: Record<string, string>; body: string }
  > = [];
  const server = await httpsUpstream(ca, host, async (req) => {
    const url = new URL(req.url);
    const body = await req.text();
    seen.push({
      method: req.method,
      path: url.pathname,
      host: req.headers.get("host"),
      headers: Object.fromEntries(req.headers),
      body,
    });
    return new Response(`${host} saw ${req.method} ${url.pathname} (${body.length} bytes)`);
  });
  return { ...server, seen };
}

/** A relay and a policy point on loopback for `allow` (with `rules`) and a grant on `api.granted.test`. */
async function setUp(t: { upstreamCaCerts: string[]; upstreamOf: Record<string, number> }) {
  const dir = await Deno.makeTempDir({ prefix: "moat-intercept-" });
  const socket = `${dir}/relay.sock`;
  const ca = await makeRunCa("intercept-test");
  const allow = policyPatterns(
    ["api.granted.test:443", "other.allowed.test", "ruled.test", "bad.granted.test:443", "ruled.test:8443"],
    [
      { host: "ruled.test", rules: ["allow GET /ok", "deny * /*"] },
      { host: "ruled.test:8443", rules: ["allow GET /ok"] },
    ],
  );
  const log: Decision[] = [];
  const dialed: string[] = [];
  const upstreams: Upstreams = {
    dial(host, port, rule: HostPattern) {
      dialed.push(`${host}:${port} by ${rule.text}`);
      const at = t.upstreamOf[host];
      if (at === undefined) return Promise.reject(new Error("no address for it"));
      return Deno.connect({ hostname: "127.0.0.1", port: at });
    },
  };
  const listener = Deno.listen({ transport: "unix", path: socket });
  const relayReady = Promise.withResolvers<number[]>();
  const stop = new AbortController();
  const relay = runRelay({
    socket,
    ports: [0, 0, 0],
    udpPorts: [0],
    hostname: "127.0.0.1",
    onListening: (tcp) => relayReady.resolve(tcp),
  }, stop.signal);
  const [proxy, http, tls] = await relayReady.promise as [number, number, number];
  const grant = { name: "anth", header: "x-api-key", value: SECRET };
  const point = new PolicyPoint(
    {
      allow,
      tcp: new Map(),
      relayAddress: "10.237.0.2",
      grants: new Map([["api.granted.test", grant], ["bad.granted.test", { ...grant, name: "bad" }]]),
      tls: { ca, upstreamCaCerts: t.upstreamCaCerts },
    },
    upstreams,
    (d) => log.push(d),
    { proxy, http, tls, dns: 0 },
  );
  const served = point.serve(listener);
  return {
    ca,
    log,
    dialed,
    ports: { proxy, http, tls },
    async close() {
      listener.close();
      stop.abort();
      await Promise.all([served, relay.catch(() => {})]);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * TLS to the relay's port `port` with server name `name`, trusting `caCerts`, offering `alpn` (moat picks
 * HTTP/1.1 when it reads the connection; an upstream passed through picks what it likes).
 */
async function tlsTo(
  port: number,
  name: string,
  caCerts: string[],
  alpn = ["http/1.1"],
): Promise<Deno.TlsConn> {
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  const conn = await Deno.startTls(tcp, { hostname: name, caCerts, alpnProtocols: alpn });
  try {
    await conn.handshake();
  } catch (err) {
    conn.close();
    throw err;
  }
  return conn;
}

/** Read one HTTP/1.1 response with a Content-Length (or one that ends the connection) from `conn`. */
async function response(conn: Deno.Conn): Promise<{ status: number; body: string; close: boolean }> {
  let bytes = new Uint8Array(0);
  const buf = new Uint8Array(16 * 1024);
  for (;;) {
    const text = decoder.decode(bytes);
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      const head = text.slice(0, end);
      const length = /content-length: (\d+)/i.exec(head);
      if (length && bytes.byteLength >= end + 4 + Number(length[1])) {
        return {
          status: Number(head.split(" ")[1]),
          body: text.slice(end + 4, end + 4 + Number(length[1])),
          close: /connection: close/i.test(head),
        };
      }
    }
    const n = await conn.read(buf).catch(() => null);
    if (n === null) throw new Error(`the connection ended after: ${JSON.stringify(text)}`);
    const next = new Uint8Array(bytes.byteLength + n);
    next.set(bytes);
    next.set(buf.subarray(0, n), bytes.byteLength);
    bytes = next;
  }
}

Deno.test("a granted host's requests get the credential in place of the sandbox's, and nothing else does", async () => {
  const testCa = await makeRunCa("upstream-test");
  const granted = await upstream(testCa, "api.granted.test");
  const other = await upstream(testCa, "other.allowed.test");
  const ruled = await upstream(testCa, "ruled.test");
  const stranger = await upstream(await makeRunCa("not-trusted"), "bad.granted.test");
  const env = await setUp({
    upstreamCaCerts: [testCa.certPem],
    upstreamOf: {
      "api.granted.test": granted.port,
      "other.allowed.test": other.port,
      "ruled.test": ruled.port,
      "bad.granted.test": stranger.port,
    },
  });
  try {
    // Straight to port 443, two requests on one connection (the second with a chunked body): each gets the
    // credential, and the sandbox's own credential headers are dropped, never sent next to it.
    const c = await tlsTo(env.ports.tls, "api.granted.test", [env.ca.certPem], ["h2", "http/1.1"]);
    await c.write(encoder.encode(
      "GET /v1/models HTTP/1.1\r\nHost: api.granted.test\r\nx-api-key: moat-placeholder\r\n" +
        "Authorization: Bearer sandbox-own\r\nX-API-Key: again\r\n\r\n",
    ));
    assert.deepEqual(await response(c), {
      status: 200,
      body: "api.granted.test saw GET /v1/models (0 bytes)",
      close: false,
    });
    await c.write(encoder.encode(
      "POST /v1/messages HTTP/1.1\r\nHost: API.granted.test\r\nTransfer-Encoding: chunked\r\n\r\n" +
        "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    ));
    assert.equal((await response(c)).body, "api.granted.test saw POST /v1/messages (11 bytes)");
    // A request for another host on the same connection: refused, never passed on.
    await c.write(encoder.encode("GET /steal HTTP/1.1\r\nHost: other.allowed.test\r\n\r\n"));
    const misdirected = await response(c);
    assert.equal(misdirected.status, 421);
    assert.match(
      misdirected.body,
      /names other\.allowed\.test, but this connection is to api\.granted\.test/,
    );
    c.close();
    assert.deepEqual(
      granted.seen.map((s) => [s.method, s.path, s.headers["x-api-key"], s.headers.authorization]),
      [
        ["GET", "/v1/models", SECRET, undefined],
        ["POST", "/v1/messages", SECRET, undefined],
      ],
    );
    assert.equal(granted.seen[1]!.body, "hello world");
    assert.equal(other.seen.length, 0);

    // Through the explicit proxy (CONNECT), with Deno's own client: the same.
    const client = Deno.createHttpClient({
      proxy: { url: `http://127.0.0.1:${env.ports.proxy}` },
      caCerts: [env.ca.certPem],
    });
    const res = await fetch("https://api.granted.test/v1/complete", {
      client,
      method: "POST",
      body: "{}",
      headers: { "x-api-key": "moat-placeholder" },
    });
    assert.equal(await res.text(), "api.granted.test saw POST /v1/complete (2 bytes)");
    assert.equal(granted.seen[2]!.headers["x-api-key"], SECRET);

    // An allowed host without a grant: passed through unread, even with the granted host's name as its Host
    // (a forged pair gets no credential); the sandbox's client sees the upstream's own certificate.
    const o = await tlsTo(env.ports.tls, "other.allowed.test", [testCa.certPem]);
    await o.write(encoder.encode("GET /x HTTP/1.1\r\nHost: api.granted.test\r\nConnection: close\r\n\r\n"));
    await response(o);
    o.close();
    assert.equal(other.seen.length, 1);
    assert.equal(other.seen[0]!.host, "api.granted.test");
    assert.equal(other.seen[0]!.headers["x-api-key"], undefined);
    // The granted host's name on another host's connection: the client does not trust what it gets.
    await assert.rejects(tlsTo(env.ports.tls, "other.allowed.test", [env.ca.certPem]));

    // Rules decide inside TLS: GET /ok passes (no credential: no grant), POST is refused with a 403.
    const r = await fetch("https://ruled.test/ok", { client });
    assert.equal(await r.text(), "ruled.test saw GET /ok (0 bytes)");
    const no = await fetch("https://ruled.test/no", { client, method: "POST", body: "x" });
    assert.equal(no.status, 403);
    assert.match(
      await no.text(),
      /POST \/no to ruled\.test is denied by this run's network policy: the rule "deny \* \/\*"/,
    );
    assert.deepEqual(ruled.seen.map((s) => [s.method, s.path, s.headers["x-api-key"]]), [[
      "GET",
      "/ok",
      undefined,
    ]]);
    // An upgrade on a host with rules: refused, since nothing after it could be checked.
    const u = await tlsTo(env.ports.tls, "ruled.test", [env.ca.certPem]);
    await u.write(encoder.encode(
      "GET /ok HTTP/1.1\r\nHost: ruled.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    ));
    const upgraded = await response(u);
    u.close();
    assert.equal(upgraded.status, 403);
    assert.match(
      upgraded.body,
      /a connection upgrade \(websocket\) cannot be checked by the rules of ruled\.test/,
    );
    assert.equal(ruled.seen.length, 1, "not passed on");

    // A tunnel to a host with rules on a port other than 443: refused, since moat reads TLS on 443 only.
    const tunnel = await Deno.connect({ hostname: "127.0.0.1", port: env.ports.proxy });
    await tunnel.write(encoder.encode("CONNECT ruled.test:8443 HTTP/1.1\r\n\r\n"));
    assert.match(
      (await response(tunnel)).body,
      /rules for ruled\.test are checked on HTTPS \(port 443\) and plain HTTP \(port 80\) only/,
    );
    tunnel.close();

    // An upstream whose certificate moat cannot verify: a 502 saying so, and no credential sent.
    const bad = await fetch("https://bad.granted.test/x", { client });
    assert.equal(bad.status, 502);
    assert.match(await bad.text(), /TLS with bad\.granted\.test failed/);
    assert.equal(stranger.seen.length, 0);
    client.close();

    // A client that does not trust the run's CA: its handshake fails, nothing is dialled for it.
    const before = env.dialed.length;
    await assert.rejects(tlsTo(env.ports.tls, "api.granted.test", [testCa.certPem]));

    // The log names the grant, and never holds the secret.
    const waitFor = async (ok: () => boolean) => {
      for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
    };
    await waitFor(() => env.log.some((d) => d.reason?.startsWith("TLS with the sandbox failed")));
    assert.equal(env.dialed.length, before);
    const grantedLog = env.log.filter((d) => d.grant);
    assert.deepEqual(grantedLog.map((d) => [d.via, d.method, d.path, d.grant]), [
      ["tls", "GET", "/v1/models", "anth"],
      ["tls", "POST", "/v1/messages", "anth"],
      ["proxy", "POST", "/v1/complete", "anth"],
    ]);
    assert.ok(env.log.some((d) => d.decision === "deny" && d.path === "/steal"));
    assert.ok(
      env.log.some((d) => d.decision === "deny" && d.path === "/no" && d.rule === "ruled.test: deny * /*"),
    );
    assert.ok(!JSON.stringify(env.log).includes(SECRET), "the secret is never logged");
  } finally {
    await env.close();
    await Promise.all([granted.close(), other.close(), ruled.close(), stranger.close()]);
  }
});

Deno.test("forwardedHead drops every credential header of a granted host's request and adds the grant's", () => {
  const raw = encoder.encode(
    "GET /a HTTP/1.1\r\nHost: h\r\nAuthorization: x\r\nproxy-authorization: y\r\nX-Api-Key: z\r\n" +
      "Private-Token: p\r\nX-Custom: c\r\nAccept: */*\r\n\r\n",
  );
  const r = readRequestHead(raw);
  assert.equal(r.kind, "head");
  if (r.kind !== "head") return;
  const grant = { name: "g", header: "X-Custom", value: "secret" };
  assert.equal(
    decoder.decode(forwardedHead(r.head, raw, grant)),
    "GET /a HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nX-Custom: secret\r\n\r\n",
  );
  assert.equal(
    decoder.decode(forwardedHead(r.head, raw)),
    "GET /a HTTP/1.1\r\nHost: h\r\nAuthorization: x\r\nX-Api-Key: z\r\nPrivate-Token: p\r\nX-Custom: c\r\nAccept: */*\r\n\r\n",
    "without a grant only the proxy's header goes",
  );
  assert.ok(CREDENTIAL_HEADERS.every((h) => h === h.toLowerCase()));
});

Deno.test("BodyScanner finds where a body ends, fed a byte at a time or all at once", () => {
  const cases: Array<[framing: number | "chunked", body: string, next: string]> = [
    [0, "", "GET"],
    [5, "hello", "GET"],
    ["chunked", "5\r\nhello\r\n0\r\n\r\n", "GET"],
    ["chunked", "A;name=v\r\n0123456789\r\n1\r\nx\r\n0\r\nA: b\r\nC: d\r\n\r\n", "POST /"],
    ["chunked", "0\r\n\r\n", ""],
  ];
  for (const [framing, body, next] of cases) {
    const bytes = encoder.encode(body + next);
    const whole = new BodyScanner(framing);
    assert.equal(whole.feed(bytes), body.length, `${JSON.stringify(body)} at once`);
    assert.ok(whole.done);
    const bytewise = new BodyScanner(framing);
    let used = 0;
    for (let i = 0; i < bytes.byteLength && !bytewise.done; i++) {
      used += bytewise.feed(bytes.subarray(i, i + 1));
    }
    assert.equal(used, body.length, `${JSON.stringify(body)} a byte at a time`);
    assert.ok(bytewise.done);
  }
  const bad: Array<[string, RegExp]> = [
    ["5\nhello\r\n", /bare LF/],
    ["x\r\n", /not hex/],
    ["5\r\nhelloXX", /not followed by CRLF/],
    ["1000000000000000\r\n", /not hex/],
    [" 5\r\n", /not hex/],
    ["0\r\nno colon\r\n\r\n", /not a header field/],
    [`1;${"e".repeat(5000)}`, /too long/],
  ];
  for (const [body, reason] of bad) {
    assert.throws(() => new BodyScanner("chunked").feed(encoder.encode(body)), (e) => {
      assert.ok(e instanceof BodyError);
      assert.match(e.message, reason);
      return true;
    }, body.slice(0, 20));
  }
  const half = new BodyScanner("chunked");
  assert.equal(half.feed(encoder.encode("5\r\nhel")), 6);
  assert.ok(!half.done);
});

Deno.test("a head passed upstream keeps a header value's bytes as sent (0x80-0xFF too); the grant's goes as UTF-8", () => {
  const raw = new Uint8Array([
    ...encoder.encode("GET /a HTTP/1.1\r\nHost: h\r\nX-Obs: "),
    0x80,
    0x9f,
    0xa0,
    0xe9,
    0xff,
    ...encoder.encode("\r\nConnection: keep-alive\r\n\r\n"),
  ]);
  const r = readRequestHead(raw);
  assert.equal(r.kind, "head");
  if (r.kind !== "head") return;
  const obs = [0x80, 0x9f, 0xa0, 0xe9, 0xff];
  const has = (bytes: Uint8Array, seq: number[]) =>
    bytes.some((_, i) => seq.every((b, k) => bytes[i + k] === b));
  const forwarded = forwardedHead(r.head, raw, { name: "g", header: "X-Key", value: "s€cret" });
  assert.ok(has(forwarded, obs), "forwardedHead");
  assert.ok(has(forwarded, [...encoder.encode("X-Key: s€cret\r\n")]), "the grant's value in UTF-8");
  const upstream = upstreamHead(r.head, raw);
  assert.ok(has(upstream, obs), "upstreamHead");
  assert.ok(decoder.decode(upstream).endsWith("\r\nConnection: close\r\n\r\n"));
  assert.doesNotMatch(decoder.decode(upstream), /keep-alive/);
});
