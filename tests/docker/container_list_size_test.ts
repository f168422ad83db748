/** `containerList(labels, { size })`: the query the engine gets, and `SizeRw` as it answers. */
import assert from "node:assert/strict";
import { DockerClient } from "../../lib/docker/client.ts";
import { unixTransport } from "../../lib/docker/transport.ts";
import { FakeEngine } from "../fake_engine.ts";

const SUMMARY = {
  Id: "c".repeat(64),
  Names: ["/moat-x"],
  Image: "busybox",
  State: "exited",
  Status: "Exited (0) 1 second ago",
  Labels: { "dev.moat.managed": "true" },
  Created: 1,
};

Deno.test("containerList with size asks for size=1 and returns each container's SizeRw", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/json", { status: 200, json: [{ ...SUMMARY, SizeRw: 4096 }] });
  const client = new DockerClient(unixTransport(engine.endpoint), { timeoutMs: 2000 });
  const list = await client.containerList(["dev.moat.managed=true"], { size: true });
  assert.equal(list[0]!.SizeRw, 4096);
  const q = engine.requestsTo("GET /containers/json")[0]!.query;
  assert.equal(q.get("size"), "1");
  assert.equal(q.get("all"), "1");
  assert.deepEqual(JSON.parse(q.get("filters")!), { label: ["dev.moat.managed=true"] });
});

Deno.test("containerList without size leaves size out of the query", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/json", { status: 200, json: [SUMMARY] });
  const client = new DockerClient(unixTransport(engine.endpoint), { timeoutMs: 2000 });
  const list = await client.containerList(["dev.moat.run-id=abc"]);
  assert.equal(list[0]!.SizeRw, undefined);
  const q = engine.requestsTo("GET /containers/json")[0]!.query;
  assert.equal(q.has("size"), false);
  assert.deepEqual(JSON.parse(q.get("filters")!), { label: ["dev.moat.run-id=abc"] });
});
