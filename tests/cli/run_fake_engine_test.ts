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
    const records = await Array.fromAsync(Deno.readDir(`${s.home}/runs`)).catch(() => []);
    return { ...r, records: records.length };
  } finally {
    await s.cleanup();
  }
}

const IMAGE = { status: 200, json: { Id: "sha256:" + "1".repeat(64) } };
const CONTAINER = "c".repeat(64);

/** What a run asked the engine, sorted: the checks run concurrently, so their order varies. */
const asked = (engine: FakeEngine) => [...new Set(engineCalls(engine))].sort();

Deno.test("an engine without runsc gets the fail-closed error, exit 125, and no container is created", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", { status: 200, json: RUNC_ONLY });
  engine.on("GET /images/:name/json", IMAGE);
  // What dockerd answers for a runtime it does not have: nothing is created.
  engine.on("POST /containers/create", { status: 400, json: { message: "Unknown runtime specified runsc" } });
  const r = await run(engine, []);
  assert.equal(r.code, 125);
  assert.equal(r.out, "");
  assert.match(r.stderr, /^moat: gVisor runtime "runsc" is not registered with the Docker engine/);
  assert.match(r.stderr, /Runtimes this engine \(unix:\/\/.*\) has: runc, io\.containerd\.runc\.v2/);
  assert.deepEqual(asked(engine), [
    "GET /_ping",
    "GET /images/debian%3Abookworm-slim/json",
    "GET /info",
    "POST /containers/create",
  ]);
  assert.equal(r.records, 0, "no run record either");
});

for (const keep of [false, true]) {
  Deno.test(
    `a runtime named runsc that is not gVisor: its container is never started and is removed${
      keep ? " (--keep too)" : ""
    }`,
    async () => {
      await using engine = await FakeEngine.start();
      engine.on("GET /info", { status: 200, json: { Runtimes: { runsc: { path: "/usr/bin/runc" } } } });
      engine.on("GET /images/:name/json", IMAGE);
      engine.on("POST /containers/create", { status: 201, json: { Id: CONTAINER, Warnings: [] } });
      engine.on("DELETE /containers/:id", { status: 204 });
      const r = await run(engine, keep ? ["--keep"] : []);
      assert.equal(r.code, 125);
      assert.match(
        r.stderr,
        /^moat: Runtime "runsc" on the Docker engine is not gVisor \(it runs \/usr\/bin\/runc\)/,
      );
      const calls = engineCalls(engine);
      assert.ok(!calls.some((c) => /attach|wait|start/.test(c)), calls.join(", "));
      assert.equal(engine.requestsTo("DELETE /containers/:id").length, 1);
      assert.equal(r.records, 0, "a refused run leaves no record");
    },
  );
}

Deno.test("an /info slower than MOAT_ENGINE_TIMEOUT is an engine timeout, not a missing gVisor", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", async (_req, res) => {
    await res.delay(3000);
    await res.json(200, RUNC_ONLY);
  });
  engine.on("GET /images/:name/json", IMAGE);
  engine.on("POST /containers/create", { status: 201, json: { Id: CONTAINER, Warnings: [] } });
  engine.on("DELETE /containers/:id", { status: 204 });
  const r = await run(engine, [], { MOAT_ENGINE_TIMEOUT: "0.3" });
  assert.equal(r.code, 125);
  assert.match(
    r.stderr,
    /^moat: Docker engine at unix:\/\/.* did not answer in time \(GET \/v1\.44\/info took longer than 0\.3 s\)/,
  );
  assert.match(r.stderr, /MOAT_ENGINE_TIMEOUT=30/);
  assert.doesNotMatch(r.stderr, /gVisor/);
  const calls = engineCalls(engine);
  assert.ok(!calls.some((c) => /attach|wait|start/.test(c)), calls.join(", "));
  assert.equal(engine.requestsTo("DELETE /containers/:id").length, 1, "the unstarted container is removed");
  assert.equal(r.records, 0, "a run stopped by the check leaves no record");
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

Deno.test("an interrupt while the engine is being checked starts nothing, leaves no container and a final record", async () => {
  await using engine = await FakeEngine.start();
  const infoAsked = Promise.withResolvers<void>();
  engine.on("GET /info", async (_req, res) => {
    infoAsked.resolve();
    await res.delay(5000);
  });
  engine.on("GET /images/:name/json", IMAGE);
  engine.on("POST /containers/create", { status: 201, json: { Id: CONTAINER, Warnings: [] } });
  engine.on("DELETE /containers/:id", { status: 204 });
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
    await infoAsked.promise;
    child.kill("SIGTERM");
    const r = await child.output();
    assert.equal(r.code, 143, new TextDecoder().decode(r.stderr));
    assert.equal(r.stdout.byteLength, 0);
    const calls = engineCalls(engine);
    assert.ok(!calls.some((c) => /attach|wait|start/.test(c)), `nothing was started: ${calls.join(", ")}`);
    // Whether create got there before the signal or not, no container is left.
    const created = engine.requestsTo("POST /containers/create").length;
    assert.equal(engine.requestsTo("DELETE /containers/:id").length, created);
    const [dir] = await Array.fromAsync(Deno.readDir(`${s.home}/runs`));
    const rec = JSON.parse(await Deno.readTextFile(`${s.home}/runs/${dir!.name}/run.json`));
    assert.equal(rec.state, "interrupted");
    assert.equal(rec.signal, "SIGTERM");
    assert.equal(rec.startedAt, null);
    assert.ok(rec.finishedAt);
  } finally {
    await s.cleanup();
  }
});

/** A record of run `id` named `name`, in progress, owned by `owner` (this test process is a live one). */
async function runningRecord(home: string, id: string, name: string, owner: unknown): Promise<void> {
  await Deno.mkdir(`${home}/runs/${id}`, { recursive: true });
  await Deno.writeTextFile(
    `${home}/runs/${id}/run.json`,
    JSON.stringify({
      schema: 1,
      id,
      name,
      workspace: "/w",
      image: "moat-test/busybox:latest",
      command: ["sleep", "100"],
      sandbox: "gvisor",
      runtime: "runsc",
      containerId: "d".repeat(64),
      state: "running",
      exitCode: null,
      signal: null,
      error: null,
      kept: false,
      removed: false,
      createdAt: "2026-01-01T00:00:00.000Z",
      startedAt: "2026-01-01T00:00:01.000Z",
      finishedAt: null,
      moatVersion: "0.1.0",
      owner,
    }),
  );
}

Deno.test("a name a running run holds is refused at once: exit 125, which run, nothing asked of the engine", async () => {
  await using engine = await FakeEngine.start();
  const { currentOwner } = await import("../../lib/store/owner.ts");
  const s = await scratch();
  try {
    await runningRecord(s.home, "0123456789ab", "busy", currentOwner());
    const env = { DOCKER_HOST: `unix://${engine.endpoint.path}` };
    for (
      const [how, args] of [
        ["--name", ["run", "--name", "busy", s.ws, "--", "true"]],
        ["-d --name", ["run", "-d", "--name", "busy", s.ws, "--", "true"]],
      ] as const
    ) {
      const r = await moat([...args], { home: s.home, env });
      assert.equal(r.code, 125, `${how}: ${r.stderr}`);
      assert.equal(r.out, "");
      assert.equal(
        r.stderr,
        'moat: The name "busy" is in use by run 0123456789ab, which is still running\n' +
          "  Stop that run first:  moat stop 0123456789ab\n" +
          "  or give this run another name:  moat run --name busy-2 …\n",
      );
    }
    // The name from the workspace's config is the run's name too.
    await Deno.writeTextFile(`${s.ws}/moat.yaml`, "name: busy\n");
    const fromConfig = await moat(["run", s.ws, "--", "true"], { home: s.home, env });
    assert.equal(fromConfig.code, 125, fromConfig.stderr);
    assert.match(fromConfig.stderr, /^moat: The name "busy" is in use by run 0123456789ab/);
    assert.deepEqual(engine.calls(), [], "the engine is not asked anything");
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(`${s.home}/runs`))).map((e) => e.name),
      ["0123456789ab"],
      "no record is made",
    );
  } finally {
    await s.cleanup();
  }
});

Deno.test("a name held only by a run whose moat process is gone is free: the run goes on to the engine", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", { status: 200, json: RUNC_ONLY });
  const s = await scratch();
  try {
    await runningRecord(s.home, "0123456789ab", "busy", { pid: 1, bootId: "another-boot", startTicks: 1 });
    const r = await moat(["run", "--name", "busy", s.ws, "--", "true"], {
      home: s.home,
      env: { DOCKER_HOST: `unix://${engine.endpoint.path}` },
    });
    assert.doesNotMatch(r.stderr, /is in use/);
    assert.ok(engine.calls().includes("GET /_ping"), engine.calls().join(", "));
  } finally {
    await s.cleanup();
  }
});
