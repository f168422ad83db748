/** Which resolved addresses moat connects to, and the dialer on loopback (no traffic leaves this machine). */
import assert from "node:assert/strict";
import { type HostPattern, parseHostPattern } from "../../lib/net/host_policy.ts";
import { hostUpstreams, usableAddresses } from "../../lib/net/upstream.ts";

const rule = (t: string) => parseHostPattern(t) as HostPattern;

Deno.test("usableAddresses: public ones, or the one address the allow list names", () => {
  assert.deepEqual(usableAddresses("api.example", ["140.82.112.3", "10.0.0.5"], rule("api.example")), {
    addresses: ["140.82.112.3"],
  });
  const refused = usableAddresses("api.example", ["127.0.0.1", "169.254.169.254"], rule("api.example"));
  assert.ok("refused" in refused);
  assert.match(refused.refused, /not public \(loopback, link-local: 127\.0\.0\.1, 169\.254\.169\.254\)/);
  assert.deepEqual(usableAddresses("api.example", [], rule("api.example")), {
    refused: "api.example has no IPv4 address",
  });
  assert.deepEqual(usableAddresses("10.0.0.5", ["10.0.0.5"], rule("10.0.0.5:5432")), {
    addresses: ["10.0.0.5"],
  });
  assert.ok("refused" in usableAddresses("db.internal", ["10.0.0.6"], rule("10.0.0.5:5432")));
  assert.ok(
    "refused" in usableAddresses("x.corp", ["10.0.0.5"], rule("*.corp")),
    "a wildcard names no address",
  );
});

Deno.test("hostUpstreams connects to a loopback address its rule names, and refuses a name that resolves there", async () => {
  const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (server.addr as Deno.NetAddr).port;
  const accepted = (async () => {
    const c = await server.accept();
    c.close();
  })();
  try {
    const upstreams = hostUpstreams(() => Promise.resolve(["127.0.0.1"]));
    const conn = await upstreams.dial("127.0.0.1", port, rule(`127.0.0.1:${port}`));
    conn.close();
    await accepted;
    await assert.rejects(
      upstreams.dial("rebound.example", port, rule(`rebound.example:${port}`)),
      /rebound\.example resolves only to addresses that are not public \(loopback: 127\.0\.0\.1\)/,
    );
    await assert.rejects(
      hostUpstreams(() => Promise.resolve([])).dial("gone.example", 443, rule("gone.example")),
      /gone\.example has no IPv4 address/,
    );
  } finally {
    server.close();
  }
});
