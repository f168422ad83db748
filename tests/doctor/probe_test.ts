/** The doctor's probe run against the fake engine: labelled like a run, bounded, and always removed. */
import assert from "node:assert/strict";
import { DockerClient } from "../../lib/docker/client.ts";
import { unixTransport } from "../../lib/docker/transport.ts";
import { PROBE_COMMAND } from "../../lib/doctor/checks.ts";
import { type ProbeOptions, runProbe } from "../../lib/doctor/probe.ts";
import { InterruptedError } from "../../lib/errors.ts";
import { FakeEngine, frame } from "../fake_engine.ts";

const ID = "d".repeat(64);

const options = (extra: Partial<ProbeOptions> = {}): ProbeOptions => ({
  runId: "0123456789ab",
  image: "debian:bookworm-slim",
  runtime: "runsc",
  workspace: "/tmp/moat-doctor-x",
  user: "1000:1000",
  owner: { pid: 4242, startTicks: 1, bootId: "boot-1" },
  homeId: "0123456789abcdef0123456789abcdef",
  moatVersion: "0.0.0",
  timeoutMs: 10_000,
  ...extra,
});

/** An engine that runs the probe: output after start, exit code after the output (or after a stop). */
function scriptEngine(
  engine: FakeEngine,
  o: { frames: Uint8Array[]; exitCode: number; hang?: boolean; onStart?: () => void },
) {
  const started = Promise.withResolvers<void>();
  const done = Promise.withResolvers<void>();
  engine.on("POST /containers/create", { status: 201, json: { Id: ID, Warnings: [] } });
  engine.on("POST /containers/:id/attach", async (_req, res) => {
    const h = await res.hijack();
    await Promise.race([started.promise, res.delay(5000)]);
    for (const f of o.frames) await h.write(f);
    if (o.hang) await Promise.race([done.promise, res.delay(5000)]);
    done.resolve();
  });
  engine.on("POST /containers/:id/wait", async (_req, res) => {
    await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    await Promise.race([done.promise, res.delay(5000)]);
    await res.chunk(JSON.stringify({ StatusCode: o.exitCode }) + "\n");
    await res.endChunks();
  });
  engine.on("POST /containers/:id/start", (_req, res) => {
    started.resolve();
    o.onStart?.();
    return res.empty(204);
  });
  engine.on("GET /containers/:id/json", {
    status: 200,
    json: { Id: ID, Name: "/x", State: {}, Config: {}, HostConfig: { Runtime: "runsc" } },
  });
  engine.on("POST /containers/:id/stop", (_req, res) => {
    done.resolve();
    return res.empty(204);
  });
  engine.on("DELETE /containers/:id", { status: 204 });
}

const clientFor = (engine: FakeEngine) =>
  new DockerClient(unixTransport(engine.endpoint), { timeoutMs: 3000 });

Deno.test("the probe is created with every moat label, the probe label, the runtime and the probe command", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { frames: [frame(1, "4.4.0\n[    0.000000] Starting gVisor...\n")], exitCode: 0 });
  const facts = await runProbe(clientFor(engine), options());
  const create = engine.requestsTo("POST /containers/create")[0]!;
  assert.equal(create.query.get("name"), "moat-doctor-0123456789ab");
  const body = create.json as {
    Cmd: string[];
    Labels: Record<string, string>;
    HostConfig: { Runtime: string };
  };
  assert.deepEqual(body.Cmd, PROBE_COMMAND);
  assert.equal(body.HostConfig.Runtime, "runsc");
  assert.deepEqual(body.Labels, {
    "dev.moat.managed": "true",
    "dev.moat.run-id": "0123456789ab",
    "dev.moat.workspace": "/tmp/moat-doctor-x",
    "dev.moat.sandbox": "gvisor",
    "dev.moat.runtime": "runsc",
    "dev.moat.version": "0.0.0",
    "dev.moat.owner-pid": "4242",
    "dev.moat.boot-id": "boot-1",
    "dev.moat.home": "0123456789abcdef0123456789abcdef",
    "dev.moat.probe": "doctor",
  });
  assert.deepEqual(facts.outcome, {
    exitCode: 0,
    stdout: "4.4.0\n[    0.000000] Starting gVisor...\n",
    stderr: "",
    engineRuntime: "runsc",
  });
  assert.equal(facts.removed, true);
  assert.equal(facts.containerId, ID);
  assert.equal(facts.timedOut, false);
  assert.equal(engine.requestsTo("DELETE /containers/:id").length, 1);
});

Deno.test("a probe that does not finish in time is stopped, removed and reported as timed out", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { frames: [], exitCode: 137, hang: true });
  const facts = await runProbe(clientFor(engine), options({ timeoutMs: 200 }));
  assert.equal(facts.timedOut, true);
  assert.equal(facts.outcome, undefined);
  assert.equal(facts.removed, true);
  assert.equal(engine.requestsTo("POST /containers/:id/stop").length, 1);
  assert.equal(engine.requestsTo("DELETE /containers/:id").length, 1);
});

Deno.test("a probe the runtime cannot start becomes a problem, and its container is removed", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { frames: [], exitCode: 0 });
  engine.on("POST /containers/:id/start", {
    status: 500,
    json: { message: "OCI runtime create failed: cannot run with network enabled in root network namespace" },
  });
  const facts = await runProbe(clientFor(engine), options());
  assert.match(facts.problem!.message, /cannot run with network enabled in root network namespace/);
  assert.equal(facts.removed, true);
  assert.equal(engine.requestsTo("DELETE /containers/:id").length, 1);
});

Deno.test("a probe the engine refuses to create leaves nothing to remove", async () => {
  await using engine = await FakeEngine.start();
  engine.on("POST /containers/create", {
    status: 400,
    json: { message: "unknown or invalid runtime name: runsc" },
  });
  const facts = await runProbe(clientFor(engine), options());
  assert.match(facts.problem!.message, /refused the gVisor runtime "runsc"/);
  assert.equal(facts.containerId, undefined);
  assert.equal(facts.removed, undefined);
  assert.deepEqual(engine.calls().filter((c) => c.startsWith("DELETE")), []);
});

Deno.test("a user interrupt during the probe removes the container, then throws", async () => {
  await using engine = await FakeEngine.start();
  const controller = new AbortController();
  scriptEngine(engine, { frames: [], exitCode: 130, hang: true, onStart: () => controller.abort("SIGINT") });
  await assert.rejects(runProbe(clientFor(engine), options({ interrupt: controller.signal })), (err) => {
    assert.ok(err instanceof InterruptedError);
    assert.equal(err.exitCode, 130);
    return true;
  });
  assert.equal(engine.requestsTo("DELETE /containers/:id").length, 1);
});
