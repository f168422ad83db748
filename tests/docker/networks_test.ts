/** Network calls against the fake engine: what is sent, what comes back, which errors are not errors. */
import assert from "node:assert/strict";
import { DockerClient } from "../../lib/docker/client.ts";
import { unixTransport } from "../../lib/docker/transport.ts";
import { EngineApiError } from "../../lib/errors.ts";
import { FakeEngine } from "../fake_engine.ts";

function clientFor(engine: FakeEngine): DockerClient {
  return new DockerClient(unixTransport(engine.endpoint), { timeoutMs: 2000 });
}

const NETWORK = {
  Name: "moat-net-abc",
  Id: "n".repeat(64),
  Driver: "bridge",
  Internal: true,
  IPAM: { Config: [{ Subnet: "10.237.0.0/28" }] },
  Options: { "com.docker.network.bridge.inhibit_ipv4": "true" },
  Labels: { "dev.moat.managed": "true" },
};

Deno.test("networkCreate posts the body as JSON and returns the new network's id", async () => {
  await using engine = await FakeEngine.start();
  engine.on("POST /networks/create", { status: 201, json: { Id: NETWORK.Id, Warning: "" } });
  const body = { Name: "moat-net-abc", Internal: true, Labels: { "dev.moat.managed": "true" } };
  assert.equal(await clientFor(engine).networkCreate(body), NETWORK.Id);
  const req = engine.requestsTo("POST /networks/create")[0]!;
  assert.deepEqual(JSON.parse(new TextDecoder().decode(req.body)), body);
});

Deno.test("networkCreate turns a refusal into an EngineApiError with the engine's words", async () => {
  await using engine = await FakeEngine.start();
  engine.on("POST /networks/create", {
    status: 403,
    json: { message: "Pool overlaps with other one on this address space" },
  });
  await assert.rejects(
    clientFor(engine).networkCreate({ Name: "x" }),
    (err) => err instanceof EngineApiError && err.status === 403 && /Pool overlaps/.test(err.daemonMessage),
  );
});

Deno.test("networkList sends the label filters; maybeNetworkInspect is undefined for a network that is gone", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /networks", { status: 200, json: [NETWORK] });
  engine.on(
    "GET /networks/:id",
    (req, res) =>
      req.path.endsWith(NETWORK.Id)
        ? res.json(200, NETWORK)
        : res.json(404, { message: "network not found" }),
  );
  const client = clientFor(engine);
  assert.deepEqual(await client.networkList(["dev.moat.managed=true"]), [NETWORK]);
  const q = engine.requestsTo("GET /networks")[0]!.query;
  assert.deepEqual(JSON.parse(q.get("filters")!), { label: ["dev.moat.managed=true"] });
  assert.deepEqual(await client.maybeNetworkInspect(NETWORK.Id), NETWORK);
  assert.equal(await client.maybeNetworkInspect("gone"), undefined);
});

Deno.test("networkRemove: a network that is gone already is fine; one in use is an error", async () => {
  await using engine = await FakeEngine.start();
  engine.on(
    "DELETE /networks/:id",
    (req, res) =>
      req.path.endsWith("gone")
        ? res.json(404, { message: "network gone not found" })
        : res.json(403, { message: "error while removing network: network has active endpoints" }),
  );
  const client = clientFor(engine);
  await client.networkRemove("gone");
  await assert.rejects(
    client.networkRemove("busy"),
    (err) =>
      err instanceof EngineApiError && err.status === 403 && /active endpoints/.test(err.daemonMessage),
  );
});
