/** `containerLogs` against the fake engine: the query, a chunked multiplexed body, 404. */
import assert from "node:assert/strict";
import { DockerClient } from "../../lib/docker/client.ts";
import { Demuxer } from "../../lib/docker/demux.ts";
import { unixTransport } from "../../lib/docker/transport.ts";
import { EngineApiError } from "../../lib/errors.ts";
import { concat, FakeEngine, frame } from "../fake_engine.ts";

const dec = new TextDecoder();

function clientFor(engine: FakeEngine): DockerClient {
  return new DockerClient(unixTransport(engine.endpoint), { timeoutMs: 2000 });
}

async function demuxAll(
  body: AsyncIterable<Uint8Array>,
): Promise<{ out: string; err: string; chunks: number }> {
  const d = new Demuxer();
  let out = "", err = "", chunks = 0;
  for await (const chunk of body) {
    chunks++;
    for (const f of d.push(chunk)) {
      if (f.stream === 2) err += dec.decode(f.data);
      else out += dec.decode(f.data);
    }
  }
  assert.deepEqual(d.end(), { truncated: false });
  return { out, err, chunks };
}

const BODY = concat(frame(1, "one\n"), frame(2, "oops\n"), frame(1, "two\n"), frame(1, "three\n"));

Deno.test("containerLogs asks for both streams, no timestamps, and follow as given", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/:id/logs", async (_req, res) => {
    await res.chunked(200, BODY, {
      headers: { "Content-Type": "application/vnd.docker.multiplexed-stream" },
    });
  });
  const client = clientFor(engine);
  for (const follow of [true, false]) {
    const logs = await client.containerLogs("c1", { follow });
    try {
      await demuxAll(logs.body);
    } finally {
      logs.close();
    }
  }
  const [a, b] = engine.requestsTo("GET /containers/:id/logs");
  assert.equal(a!.path, "/containers/c1/logs");
  assert.deepEqual(Object.fromEntries(a!.query), { follow: "1", stdout: "1", stderr: "1", timestamps: "0" });
  assert.equal(b!.query.get("follow"), "0");
  assert.equal(a!.query.get("since"), null);
});

Deno.test("containerLogs sends since as Unix seconds with the fraction", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/:id/logs", async (_req, res) => await res.chunked(200, []));
  const client = clientFor(engine);
  for (const since of [1700000000.25, 1700000000]) {
    const logs = await client.containerLogs("c1", { follow: false, since });
    await demuxAll(logs.body);
    logs.close();
  }
  assert.deepEqual(engine.requestsTo("GET /containers/:id/logs").map((r) => r.query.get("since")), [
    "1700000000.25",
    "1700000000",
  ]);
});

Deno.test("containerLogs de-chunks, then frames straddling chunks demux at every split point", async () => {
  for (let cut = 1; cut < BODY.byteLength; cut++) {
    await using engine = await FakeEngine.start();
    engine.on("GET /containers/:id/logs", async (_req, res) => {
      await res.chunked(200, BODY, { splitAt: [cut, Math.min(cut + 3, BODY.byteLength - 1)] });
    });
    const logs = await clientFor(engine).containerLogs("c1", { follow: true });
    try {
      const got = await demuxAll(logs.body);
      assert.deepEqual([got.out, got.err], ["one\ntwo\nthree\n", "oops\n"], `split at ${cut}`);
    } finally {
      logs.close();
    }
  }
});

Deno.test("containerLogs streams: a chunk is readable before the engine sends the next", async () => {
  await using engine = await FakeEngine.start();
  const release = Promise.withResolvers<void>();
  engine.on("GET /containers/:id/logs", async (_req, res) => {
    await res.head(200, { "Transfer-Encoding": "chunked" });
    await res.chunk(frame(1, "early\n"));
    await Promise.race([release.promise, res.delay(5000)]);
    await res.chunk(frame(1, "late\n"));
    await res.endChunks();
  });
  const logs = await clientFor(engine).containerLogs("c1", { follow: true });
  try {
    const it = logs.body[Symbol.asyncIterator]();
    const first = await it.next();
    const d = new Demuxer();
    assert.equal(dec.decode(d.push(first.value!)[0]!.data), "early\n");
    release.resolve();
    const rest = await demuxAll({ [Symbol.asyncIterator]: () => it });
    assert.equal(rest.out, "late\n");
  } finally {
    logs.close();
  }
});

Deno.test("containerLogs of a container that does not exist is a not-found EngineApiError", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/:id/logs", { status: 404, json: { message: "No such container: c9" } });
  await assert.rejects(
    () => clientFor(engine).containerLogs("c9", { follow: true }),
    (err: unknown) =>
      err instanceof EngineApiError && err.isNotFound && /No such container: c9/.test(err.message),
  );
});
