/** Black-box `moat run` against the fake engine: the engine's answers that decide what moat may do. */
import assert from "node:assert/strict";
import { moat, moatEnv, ROOT, scratch } from "../engine/helpers.ts";
import { FakeEngine } from "../fake_engine.ts";
import { record, writeRecord } from "./records_fixture.ts";
import type { Owner } from "../../lib/store/records.ts";

const RUNC_ONLY = { Runtimes: { runc: { path: "runc" }, "io.containerd.runc.v2": { path: "runc" } } };

/**
 * The engine calls of a run, without the read-only listing that looks for containers left behind by dead
 * moat processes (it runs alongside the checks).
 */
const engineCalls = (engine: FakeEngine) => engine.calls().filter((c) => c !== "GET /containers/json");

/**
 * `moat run` against the fake engine, on the engine's network (`--network default`): the fake engine has no
 * networks or relay for a run's own (tests/engine/egress_*_test.ts test those).
 */
async function run(engine: FakeEngine, args: string[], env: Record<string, string> = {}) {
  const s = await scratch();
  try {
    const r = await moat(["run", "--network", "default", s.ws, "--", "true", ...args], {
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
      args: ["run", "-A", `${ROOT}/main.ts`, "run", "--network", "default", s.ws, "--", "true"],
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

/**
 * `moat run ARGS` through bash, so arguments and environment can hold bytes that are not UTF-8 (`$'\xff'`
 * in `script`); Deno.Command only passes strings. `script` runs with `"$@"` = deno run -A main.ts run WS.
 */
async function runRaw(engine: FakeEngine, script: string) {
  const s = await scratch();
  try {
    const out = await new Deno.Command("bash", {
      args: [
        "-c",
        script,
        "bash",
        Deno.execPath(),
        "run",
        "-A",
        `${ROOT}/main.ts`,
        "run",
        "--network",
        "default",
        s.ws,
      ],
      env: moatEnv(s.home, { DOCKER_HOST: `unix://${engine.endpoint.path}` }),
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const records = await Array.fromAsync(Deno.readDir(`${s.home}/runs`)).catch(() => []);
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr), records: records.length };
  } finally {
    await s.cleanup();
  }
}

for (
  const [label, script, first] of [
    [
      "an -e value",
      `exec "$@" -e $'K=\\xe9t\\xe9' -- true`,
      String
        .raw`moat: -e "K=\xE9t\xE9" is not valid UTF-8; moat would pass it on altered (the engine's API takes text)`,
    ],
    [
      "the value -e KEY copies from moat's environment",
      `K=$'caf\\xe9' exec "$@" -e K -- true`,
      "moat: -e K: moat's environment variable K is not valid UTF-8, so it cannot be passed on unchanged",
    ],
    [
      "an argument of the command",
      `exec "$@" -- printf $'\\xff'`,
      String
        .raw`moat: Argument "\xFF" is not valid UTF-8; moat would pass it on altered (the engine's API takes text)`,
    ],
  ] as const
) {
  Deno.test(`${label} that is not UTF-8 is refused with exit 2 before the engine is asked anything`, async () => {
    await using engine = await FakeEngine.start();
    const r = await runRaw(engine, script);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.split("\n")[0], first);
    assert.deepEqual(engine.calls(), []);
    assert.equal(r.records, 0);
  });
}

for (
  const [label, args, first] of [
    [
      "-u with an id beyond the engine's range",
      ["-u", "99999999999"],
      'moat: User "99999999999" has a user id out of range: 99999999999 is more than 2147483647',
    ],
    [
      "an --image that is not an image reference",
      ["--image", "UPPER:bad"],
      'moat: Image "UPPER:bad" (--image) is not a valid image reference: the repository name must be lowercase',
    ],
  ] as const
) {
  Deno.test(`${label} is a usage error before the engine is asked anything`, async () => {
    await using engine = await FakeEngine.start();
    const s = await scratch();
    try {
      const r = await moat(["run", ...args, s.ws, "--", "true"], {
        home: s.home,
        env: { DOCKER_HOST: `unix://${engine.endpoint.path}` },
      });
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.split("\n")[0], first);
      assert.doesNotMatch(r.stderr, /gVisor|runsc/);
      assert.deepEqual(engine.calls(), []);
    } finally {
      await s.cleanup();
    }
  });
}

Deno.test("a directory mounted onto a file of the image is refused at its config line before the run's container is made", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", { status: 200, json: { Runtimes: { runsc: { path: "/usr/bin/runsc" } } } });
  engine.on("GET /images/:name/json", IMAGE);
  engine.on("GET /containers/json", { status: 200, json: [] });
  engine.on("POST /containers/create", { status: 201, json: { Id: CONTAINER, Warnings: [] } });
  engine.on("DELETE /containers/:id", { status: 204 });
  engine.on("HEAD /containers/:id/archive", async (req, res) => {
    assert.equal(req.query.get("path"), "/etc/passwd");
    const stat = { name: "passwd", size: 82, mode: 0o644, mtime: "", linkTarget: "" };
    await res.head(200, { "X-Docker-Container-Path-Stat": btoa(JSON.stringify(stat)) });
  });
  const s = await scratch();
  try {
    await Deno.mkdir(`${s.ws}/d`);
    await Deno.writeTextFile(`${s.ws}/moat.yaml`, "mounts:\n  - source: ./d\n    target: /etc/passwd\n");
    // As root, who needs no HOME from the image's passwd (that would be a probe of its own).
    const r = await moat(["run", "-u", "0:0", s.ws, "--", "true"], {
      home: s.home,
      env: { DOCKER_HOST: `unix://${engine.endpoint.path}` },
    });
    assert.equal(r.code, 2, r.stderr);
    const file = `${await Deno.realPath(s.ws)}/moat.yaml`;
    assert.equal(
      r.stderr.split("\n")[0],
      `moat: ${file}:2:5: mounts[0].target: "/etc/passwd" is a file in the image debian:bookworm-slim, and ` +
        'the source "./d" is a directory: the container runtime cannot mount a directory onto a file',
    );
    // One container: the never started probe, removed; the run's own was never asked for.
    const creates = engine.requestsTo("POST /containers/create");
    assert.equal(creates.length, 1);
    assert.equal((creates[0]!.json as { Labels: Record<string, string> }).Labels["dev.moat.probe"], "paths");
    assert.equal(engine.requestsTo("DELETE /containers/:id").length, 1);
    assert.ok(!engineCalls(engine).some((c) => /attach|wait|start/.test(c)));
    const records = await Array.fromAsync(Deno.readDir(`${s.home}/runs`)).catch(() => []);
    assert.equal(records.length, 0);
  } finally {
    await s.cleanup();
  }
});

/** Settles when the fake engine shuts down, so a handler waiting for the test never outlives it. */
const aborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));

/**
 * An engine whose container starts only when `release` is called, then runs (writing `running` on stdout)
 * until it is stopped. `startAsked` resolves when moat asks to start it.
 */
function startableEngine(engine: FakeEngine) {
  const startAsked = Promise.withResolvers<void>();
  const released = Promise.withResolvers<void>();
  const started = Promise.withResolvers<void>();
  const stopped = Promise.withResolvers<void>();
  engine.on("GET /info", { status: 200, json: { Runtimes: { runsc: { path: "/usr/bin/runsc" } } } });
  engine.on("GET /images/:name/json", IMAGE);
  engine.on("GET /containers/json", { status: 200, json: [] });
  engine.on("POST /containers/create", { status: 201, json: { Id: CONTAINER, Warnings: [] } });
  engine.on("POST /containers/:id/attach", async (_req, res) => {
    const h = await res.hijack();
    await Promise.race([started.promise, aborted(res.signal)]);
    await h.writeFrame(1, "running\n");
    await Promise.race([stopped.promise, aborted(res.signal)]);
  });
  engine.on("POST /containers/:id/wait", async (_req, res) => {
    await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    await Promise.race([stopped.promise, aborted(res.signal)]);
    await res.chunk(JSON.stringify({ StatusCode: 143 }) + "\n");
    await res.endChunks();
  });
  engine.on("POST /containers/:id/start", async (_req, res) => {
    startAsked.resolve();
    await Promise.race([released.promise, aborted(res.signal)]);
    started.resolve();
    await res.empty(204);
  });
  engine.on("POST /containers/:id/stop", (_req, res) => {
    stopped.resolve();
    return res.empty(204);
  });
  engine.on("GET /containers/:id/json", {
    status: 200,
    json: { Id: CONTAINER, Name: "/x", State: {}, Config: {}, HostConfig: { Runtime: "runsc" } },
  });
  engine.on("DELETE /containers/:id", { status: 204 });
  return { startAsked: startAsked.promise, release: () => released.resolve() };
}

/** `moat run WS -- true` on a pseudo-terminal (tests/engine/pty_helper.py), driven one step at a time. */
function onPty(engine: FakeEngine, ws: string, home: string) {
  const child = new Deno.Command("python3", {
    args: [
      `${ROOT}/tests/engine/pty_helper.py`,
      "--timeout",
      "20",
      "--",
      Deno.execPath(),
      "run",
      "-A",
      `${ROOT}/main.ts`,
      "run",
      "--network",
      "default",
      ws,
      "--",
      "true",
    ],
    env: moatEnv(home, { DOCKER_HOST: `unix://${engine.endpoint.path}` }),
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const nextLine = async (): Promise<Record<string, unknown>> => {
    while (!buffered.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`pty_helper.py ended early: ${buffered}`);
      buffered += value;
    }
    const at = buffered.indexOf("\n");
    const line = buffered.slice(0, at);
    buffered = buffered.slice(at + 1);
    return JSON.parse(line);
  };
  return {
    /** Run one step; fails the test when it fails. */
    async step(step: Record<string, unknown>) {
      await writer.write(new TextEncoder().encode(JSON.stringify(step) + "\n"));
      const report = await nextLine();
      assert.equal(report.ok, true, JSON.stringify(report));
    },
    /** End the script; what the helper says once moat has exited. */
    async done() {
      await writer.close();
      const done = await nextLine();
      while (!(await reader.read()).done) { /* the helper has nothing more to say */ }
      await child.status;
      return done as { exit: number | null; output: string };
    },
  };
}

Deno.test("an interrupt while the container is starting says so when moat stops the command that just started", async () => {
  await using engine = await FakeEngine.start();
  const script = startableEngine(engine);
  const s = await scratch();
  try {
    const pty = onPty(engine, s.ws, s.home);
    await pty.step({ expect: "Starting container…" });
    await script.startAsked;
    await pty.step({ signal: "SIGINT" });
    // moat took the signal: it erased its spinner line (a frame would follow the erase with the spinner).
    await pty.step({ expect: "\\r\\x1b\\[2K$" });
    script.release();
    await pty.step({
      expect: "moat: stopping run \\w+ \\(SIGINT\\), interrupted while its container was starting: " +
        "the command has 5 s to exit; press Ctrl-C again to stop it now",
    });
    const done = await pty.done();
    assert.equal(done.exit, 130, done.output);
  } finally {
    await s.cleanup();
  }
});

Deno.test("an interrupt while the command runs says the command has the grace period to exit", async () => {
  await using engine = await FakeEngine.start();
  const script = startableEngine(engine);
  script.release();
  const s = await scratch();
  try {
    const pty = onPty(engine, s.ws, s.home);
    await pty.step({ expect: "running" });
    await pty.step({ signal: "SIGINT" });
    await pty.step({
      expect:
        "moat: stopping run \\w+ \\(SIGINT\\): the command has 5 s to exit; press Ctrl-C again to stop it now",
    });
    const done = await pty.done();
    assert.equal(done.exit, 130, done.output);
    assert.doesNotMatch(done.output, /while its container was starting/);
  } finally {
    await s.cleanup();
  }
});

/** A record of run `id` named `name`, in progress, owned by `owner` (this test process is a live one). */
async function runningRecord(home: string, id: string, name: string, owner: Owner): Promise<void> {
  await writeRecord(
    home,
    record({
      id,
      name,
      containerId: "d".repeat(64),
      state: "running",
      exitCode: null,
      removed: false,
      finishedAt: null,
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
