/** Black-box `moat run` against the fake engine: the engine's answers that decide what moat may do. */
import assert from "node:assert/strict";
import { moat, moatEnv, ROOT, scratch } from "../engine/helpers.ts";
import { FakeEngine } from "../fake_engine.ts";

const RUNC_ONLY = { Runtimes: { runc: { path: "runc" }, "io.containerd.runc.v2": { path: "runc" } } };

/**
 * The engine calls of a run, without the read-only listing that looks for containers left behind by dead
 * moat processes (it runs alongside the checks).
 */
const engineCalls = (engine: FakeEngine) => engine.calls().filter((c) => c !== "GET /containers/json");

async function run(engine: FakeEngine, args: string[], env: Record<string, string> = {}) {
  const s = await scratch();
  try {
    const r = await moat(["run", s.ws, "--", "true", ...args], {
      home: s.home,
      env: { DOCKER_HOST: `unix://${engine.endpoint.path}`, ...env },
    });
    const records = await Array.fromAsync(Deno.readDir(s.home));
    return { ...r, records: records.length };
  } finally {
    await s.cleanup();
  }
}

Deno.test("an engine without runsc gets the fail-closed error, exit 125, and no container is created", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", { status: 200, json: RUNC_ONLY });
  const r = await run(engine, []);
  assert.equal(r.code, 125);
  assert.equal(r.out, "");
  assert.match(r.stderr, /^moat: gVisor runtime "runsc" is not registered with the Docker engine/);
  assert.match(r.stderr, /Runtimes this engine \(unix:\/\/.*\) has: runc, io\.containerd\.runc\.v2/);
  assert.deepEqual(engineCalls(engine), ["GET /_ping", "GET /info"]);
  assert.equal(r.records, 0, "no run record either");
});

Deno.test("an /info slower than MOAT_ENGINE_TIMEOUT is an engine timeout, not a missing gVisor", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", async (_req, res) => {
    await res.delay(3000);
    await res.json(200, RUNC_ONLY);
  });
  const r = await run(engine, [], { MOAT_ENGINE_TIMEOUT: "0.3" });
  assert.equal(r.code, 125);
  assert.match(
    r.stderr,
    /^moat: Docker engine at unix:\/\/.* did not answer in time \(GET \/v1\.44\/info took longer than 0\.3 s\)/,
  );
  assert.match(r.stderr, /MOAT_ENGINE_TIMEOUT=30/);
  assert.doesNotMatch(r.stderr, /gVisor/);
  assert.deepEqual(engineCalls(engine), ["GET /_ping", "GET /info"]);
});

Deno.test("with the sandbox off moat never asks /info and leaves Runtime unset", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /images/:name/json", { status: 200, json: { Id: "sha256:" + "1".repeat(64) } });
  engine.on("POST /containers/create", { status: 500, json: { message: "stop here" } });
  const r = await run(engine, [], { MOAT_NO_SANDBOX: "1" });
  assert.equal(r.code, 125);
  assert.match(r.stderr, /warning: gVisor sandbox disabled by MOAT_NO_SANDBOX=1/);
  assert.equal(engine.requestsTo("GET /info").length, 0);
  const body = engine.requestsTo("POST /containers/create")[0]!.json as {
    HostConfig: Record<string, unknown>;
  };
  assert.ok(!("Runtime" in body.HostConfig));
});

Deno.test("an engine older than API 1.40 is refused with the versions named", async () => {
  await using engine = await FakeEngine.start({ apiVersion: "1.39", minApiVersion: "1.12" });
  const r = await run(engine, []);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /speaks API 1\.39, older than the 1\.40 moat needs/);
});

Deno.test("an interrupt while the engine is being checked creates nothing but still leaves a final record", async () => {
  await using engine = await FakeEngine.start();
  const asked = Promise.withResolvers<void>();
  engine.on("GET /info", async (_req, res) => {
    asked.resolve();
    await res.delay(5000);
  });
  const s = await scratch();
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}/main.ts`, "run", s.ws, "--", "true"],
      env: moatEnv(s.home, { DOCKER_HOST: `unix://${engine.endpoint.path}` }),
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await asked.promise;
    child.kill("SIGTERM");
    const r = await child.output();
    assert.equal(r.code, 143, new TextDecoder().decode(r.stderr));
    assert.equal(r.stdout.byteLength, 0);
    assert.deepEqual(engineCalls(engine), ["GET /_ping", "GET /info"], "nothing was created");
    const [dir] = await Array.fromAsync(Deno.readDir(`${s.home}/runs`));
    const rec = JSON.parse(await Deno.readTextFile(`${s.home}/runs/${dir!.name}/run.json`));
    assert.equal(rec.state, "interrupted");
    assert.equal(rec.signal, "SIGTERM");
    assert.equal(rec.containerId, null);
    assert.ok(rec.finishedAt);
  } finally {
    await s.cleanup();
  }
});
