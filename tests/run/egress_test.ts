/**
 * A run's egress set up against the fake engine: a relay that exits before it is ready fails the set-up at
 * once with what to do, and everything made so far (the relay, the network) is removed.
 */
import assert from "node:assert/strict";
import { DockerClient } from "../../lib/docker/client.ts";
import { unixTransport } from "../../lib/docker/transport.ts";
import { MoatError } from "../../lib/errors.ts";
import { deniedNotice, policyPatterns, startEgress } from "../../lib/run/egress.ts";
import { addressIn } from "../../lib/run/network.ts";
import { FakeEngine } from "../fake_engine.ts";
import { withHome } from "../temp_home.ts";

Deno.test("a relay that exits before it is ready: the set-up fails at once, and the relay and the network go", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /networks", {
    status: 200,
    json: [{ Name: "bridge", Id: "b", IPAM: { Config: [{ Subnet: "172.17.0.0/16" }] } }],
  });
  engine.on("POST /networks/create", { status: 201, json: { Id: "net1" } });
  engine.on("POST /containers/create", { status: 201, json: { Id: "relay1", Warnings: [] } });
  engine.on("POST /containers/:id/wait", async (_req, res) => {
    await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    await res.delay(20);
    await res.chunk(`{"StatusCode":1}\n`);
    await res.endChunks();
  });
  engine.on("POST /containers/:id/start", { status: 204 });
  engine.on("DELETE /containers/:id", { status: 204 });
  engine.on("DELETE /networks/:id", { status: 204 });
  const client = new DockerClient(unixTransport(engine.endpoint), { timeoutMs: 5000 });
  await withHome(async (home) => {
    const runDir = `${home}/runs/0123456789ab`;
    await Deno.mkdir(runDir, { recursive: true });
    const started = performance.now();
    await assert.rejects(
      startEgress(client, {
        runId: "0123456789ab",
        runDir,
        image: "img",
        allow: ["x.io"],
        tcp: ["2222=git.example:22", "5432=10.0.0.5:5432"],
        labels: {},
      }, {}),
      (err: unknown) =>
        err instanceof MoatError &&
        err.message === "The run's network relay exited (code 1) before it was ready" &&
        /docker logs relay1/.test(err.hint ?? ""),
    );
    assert.ok(performance.now() - started < 10_000, "not after the 30 s the relay may take to be ready");
    const create = engine.requestsTo("POST /networks/create")[0]!.json as {
      Name: string;
      Internal: boolean;
      IPAM: { Config: Array<{ Subnet: string }> };
    };
    const subnet = create.IPAM.Config[0]!.Subnet;
    assert.deepEqual([create.Name, create.Internal], ["moat-net-0123456789ab", true]);
    assert.match(subnet, /^10\.237\.\d+\.\d+\/28$/, "a /28 of the pool (from a random place in it)");
    const relay = engine.requestsTo("POST /containers/create")[0]!;
    assert.equal(relay.query.get("name"), "moat-net-0123456789ab-relay");
    const cmd = (relay.json as { Cmd: string[] }).Cmd.join(" ");
    assert.match(
      cmd,
      / --port 3128 --port 80 --port 443 --port 2222 --port 5432 --udp-port 53$/,
      "the mapped ports too",
    );
    assert.deepEqual(
      engine.calls().filter((c) => c.startsWith("DELETE")),
      ["DELETE /containers/relay1", "DELETE /networks/net1"],
      "the relay first, then its network",
    );
    assert.equal(
      await Deno.readTextFile(`${runDir}/resolv.conf`),
      `nameserver ${addressIn(subnet, 2)}\noptions ndots:0 timeout:2 attempts:2\n`,
    );
  });
});

Deno.test("the policy's allow list: each entry's pattern, with the rules of its host entry", () => {
  const patterns = policyPatterns(["a.io", "*.b.io", "c.io:8080"], [
    { host: "*.b.io", rules: ["allow GET /v1/*", "deny * /*"] },
  ]);
  assert.deepEqual(patterns.map((p) => [p.text, p.rules?.map((r) => r.text)]), [
    ["a.io", undefined],
    ["*.b.io", ["allow GET /v1/*", "deny * /*"]],
    ["c.io:8080", undefined],
  ]);
  assert.throws(
    () => policyPatterns(["a.io"], [{ host: "b.io", rules: ["allow * /*"] }]),
    /not in the allow list/,
  );
  assert.throws(
    () => policyPatterns(["a.io"], [{ host: "a.io", rules: ["allow get /"] }]),
    /was not checked/,
  );
});

Deno.test("deniedNotice: the hosts a run's policy refused, once each, and how to allow one", () => {
  const d = (host: string | null, decision: "allow" | "deny", via: "dns" | "proxy" | "tls" = "dns") => ({
    time: "t",
    via,
    source: "10.237.0.3:40000",
    host,
    port: 443,
    decision,
  });
  assert.equal(deniedNotice("abc", []), undefined);
  assert.equal(deniedNotice("abc", [d("ok.test", "allow")]), undefined, "nothing refused");
  assert.equal(
    deniedNotice("abc", [d(null, "deny", "tls"), d("3.0.237.10.in-addr.arpa", "deny")]),
    undefined,
  );
  assert.equal(
    deniedNotice("abc", [
      d("Registry.NPMjs.org.", "deny"),
      d("registry.npmjs.org", "deny", "proxy"),
      d("ok.test", "allow"),
    ]),
    "moat: run abc's network policy refused registry.npmjs.org: allow a host with  --allow HOST  " +
      "(every decision:  moat logs --network abc)",
  );
  const many = ["a", "b", "c", "d", "e", "f", "g"].map((h) => d(`${h}.test`, "deny"));
  assert.match(
    deniedNotice("abc", many)!,
    /refused a\.test, b\.test, c\.test, d\.test, e\.test and 2 more: /,
  );
});
