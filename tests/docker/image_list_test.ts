/** `imageList(filters?)`: `GET /images/json`, with and without label filters. */
import assert from "node:assert/strict";
import { DockerClient } from "../../lib/docker/client.ts";
import { unixTransport } from "../../lib/docker/transport.ts";
import { EngineApiError } from "../../lib/errors.ts";
import { FakeEngine } from "../fake_engine.ts";

const IMAGE = {
  Id: "sha256:" + "a".repeat(64),
  RepoTags: ["moat-test/busybox:latest"],
  Size: 2_000_000,
  Created: 1700000000,
  Labels: { "dev.moat.built-by": "setup" },
};

function clientFor(engine: FakeEngine): DockerClient {
  return new DockerClient(unixTransport(engine.endpoint), { timeoutMs: 2000 });
}

Deno.test("imageList sends the label filters as JSON and returns the summaries", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /images/json", { status: 200, json: [IMAGE] });
  const list = await clientFor(engine).imageList({ label: ["dev.moat.built-by=setup"] });
  assert.deepEqual(list, [IMAGE]);
  const q = engine.requestsTo("GET /images/json")[0]!.query;
  assert.deepEqual(JSON.parse(q.get("filters")!), { label: ["dev.moat.built-by=setup"] });
});

Deno.test("imageList without filters sends no filters parameter", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /images/json", { status: 200, json: [] });
  assert.deepEqual(await clientFor(engine).imageList(), []);
  assert.deepEqual(await clientFor(engine).imageList({}), []);
  for (const req of engine.requestsTo("GET /images/json")) assert.equal(req.query.has("filters"), false);
});

Deno.test("imageList turns an engine error into an EngineApiError", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /images/json", { status: 500, json: { message: "boom" } });
  await assert.rejects(
    clientFor(engine).imageList(),
    (err) => err instanceof EngineApiError && err.status === 500,
  );
});
