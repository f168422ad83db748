/** The run lifecycle against the fake engine: order, output, exit codes, failures and interrupts. */
import assert from "node:assert/strict";
import { EngineApiError, ImageMissingError, SandboxUnavailableError } from "../../lib/errors.ts";
import {
  classifyStartError,
  ContainerStartError,
  driveRun,
  InterruptedError,
} from "../../lib/run/lifecycle.ts";
import { planContainer } from "../../lib/run/plan.ts";
import { concat, FakeEngine, frame } from "../fake_engine.ts";
import { clientFor, collectingIO, dec, ID, noHooks, opts, scriptEngine, spec } from "./lifecycle_fixture.ts";

Deno.test("a run goes create → attach → wait → start, pumps output, returns the exit code, then removes", async () => {
  await using engine = await FakeEngine.start();
  const script = scriptEngine(engine, {
    frames: [frame(1, "out\n"), frame(2, "err\n"), frame(1, "more")],
    exitCode: 7,
  });
  const c = collectingIO();
  const outcome = await driveRun(clientFor(engine), planContainer(spec), c.io, noHooks, opts());
  assert.equal(outcome.exitCode, 7);
  assert.equal(outcome.containerId, ID);
  assert.equal(outcome.runtime, "runsc");
  assert.equal(outcome.removed, true);
  assert.equal(c.stdout(), "out\nmore");
  assert.equal(c.stderr(), "err\n");
  assert.deepEqual(c.record, [[1, "out\n"], [2, "err\n"], [1, "more"]]);
  assert.ok(c.flushes() >= 1);
  assert.ok(script.waitSeenBeforeStart(), "the wait was registered before start");
  const calls = engine.calls().filter((x) => !x.startsWith("GET /containers/"));
  assert.deepEqual(calls, [
    "GET /_ping",
    "POST /containers/create",
    `POST /containers/${ID}/attach`,
    `POST /containers/${ID}/wait`,
    `POST /containers/${ID}/start`,
    `DELETE /containers/${ID}`,
  ]);
  const create = engine.requestsTo("POST /containers/create")[0]!;
  assert.equal(create.query.get("name"), "moat-0123456789ab");
  assert.equal((create.json as { HostConfig: { Runtime: string } }).HostConfig.Runtime, "runsc");
});

Deno.test("output that arrives together with the 101 head is not lost", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { initial: frame(1, "early "), frames: [frame(1, "late")], exitCode: 0 });
  const c = collectingIO();
  await driveRun(clientFor(engine), planContainer(spec), c.io, noHooks, opts());
  assert.equal(c.stdout(), "early late");
});

Deno.test("frames for one sink that arrive in one read leave in one write; the record keeps every frame", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, {
    frames: [concat(frame(1, "a"), frame(1, "bb"), frame(2, "c"), frame(3, "d"), frame(1, "e"))],
    exitCode: 0,
  });
  const c = collectingIO();
  const writes: string[] = [];
  const io = {
    ...c.io,
    stdout: { write: (b: Uint8Array) => Promise.resolve(void writes.push(`out ${dec.decode(b)}`)) },
    stderr: { write: (b: Uint8Array) => Promise.resolve(void writes.push(`err ${dec.decode(b)}`)) },
  };
  await driveRun(clientFor(engine), planContainer(spec), io, noHooks, opts());
  assert.deepEqual(writes, ["out abb", "err cd", "out e"]);
  assert.deepEqual(c.record, [[1, "a"], [1, "bb"], [2, "c"], [3, "d"], [1, "e"]]);
});

Deno.test("--keep leaves the container in place", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { frames: [], exitCode: 0 });
  const outcome = await driveRun(
    clientFor(engine),
    planContainer(spec),
    collectingIO().io,
    noHooks,
    opts(undefined, true),
  );
  assert.equal(outcome.removed, false);
  assert.equal(engine.requestsTo("DELETE /containers/:id").length, 0);
});

Deno.test("stdin is piped to the container and its EOF half-closes the attach connection", async () => {
  await using engine = await FakeEngine.start();
  const started = Promise.withResolvers<void>();
  const done = Promise.withResolvers<void>();
  scriptEngine(engine, { frames: [], exitCode: 0 });
  engine.on("POST /containers/:id/start", (_req, res) => {
    started.resolve();
    return res.empty(204);
  });
  engine.on("POST /containers/:id/attach", async (req, res) => {
    assert.equal(req.query.get("stdin"), "1");
    const h = await res.hijack();
    await Promise.race([started.promise, res.delay(5000)]);
    const got = await h.readToEof(res.delay(5000));
    await h.writeFrame(1, `got:${dec.decode(got ?? new Uint8Array())}`);
    done.resolve();
  });
  engine.on("POST /containers/:id/wait", async (_req, res) => {
    await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    await Promise.race([done.promise, res.delay(5000)]);
    await res.chunk('{"StatusCode":0}\n');
    await res.endChunks();
  });
  const c = collectingIO(new TextEncoder().encode("hello"));
  await driveRun(clientFor(engine), planContainer({ ...spec, interactive: true }), c.io, noHooks, opts());
  assert.equal(c.stdout(), "got:hello");
});

Deno.test("a start failure for a missing command is exit 127 and the container is still removed", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { frames: [], exitCode: 0 });
  engine.on("POST /containers/:id/start", {
    status: 400,
    json: {
      message: 'OCI runtime start failed: error finding executable "nope" in PATH: no such file or directory',
    },
  });
  await assert.rejects(
    driveRun(clientFor(engine), planContainer(spec), collectingIO().io, noHooks, opts()),
    (err: unknown) =>
      err instanceof ContainerStartError && err.exitCode === 127 && /not found/.test(err.message),
  );
  assert.equal(engine.requestsTo("DELETE /containers/:id").length, 1);
});

Deno.test("a runtime failure at start is exit 125 with a way to reproduce it", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { frames: [], exitCode: 0 });
  engine.on("POST /containers/:id/start", {
    status: 500,
    json: { message: "OCI runtime start failed: cannot run with network enabled in root network namespace" },
  });
  await assert.rejects(
    driveRun(clientFor(engine), planContainer(spec), collectingIO().io, noHooks, opts()),
    (err: unknown) =>
      err instanceof ContainerStartError && err.exitCode === 125 &&
      /docker run --rm --runtime=runsc/.test(err.hint ?? ""),
  );
  assert.equal(engine.requestsTo("DELETE /containers/:id").length, 1);
});

for (const keep of [false, true]) {
  Deno.test(`a failed admission check removes the created container unstarted${keep ? " (--keep too)" : ""}`, async () => {
    await using engine = await FakeEngine.start();
    scriptEngine(engine, { frames: [], exitCode: 0 });
    const refusal = new SandboxUnavailableError("not gVisor", "fix it");
    const removed: boolean[] = [];
    await assert.rejects(
      driveRun(clientFor(engine), planContainer(spec), collectingIO().io, {
        ...noHooks,
        onRemoved: (r: boolean) => void removed.push(r),
      }, { ...opts(undefined, keep), admit: Promise.reject(refusal) }),
      (err: unknown) => err === refusal,
    );
    // Asked what it was made with, never attached or started, removed.
    assert.deepEqual(engine.calls().filter((c) => c !== "GET /_ping" && c !== `GET /containers/${ID}/json`), [
      "POST /containers/create",
      `DELETE /containers/${ID}`,
    ]);
    assert.deepEqual(removed, [true]);
  });
}

/** What only a failure of gVisor itself may get: gVisor named, or its debug log suggested. */
const GVISOR = /gVisor|runsc|debug-log/;
const startFailures: Array<
  { msg: string; runtime?: string; code: number; what: RegExp; hint: RegExp; notHint?: RegExp }
> = [
  {
    msg: 'OCI runtime create failed: exec: "nope": executable file not found in $PATH',
    runtime: "runsc",
    code: 127,
    what: /^The command was not found in the image: /,
    hint: /ls \/usr\/bin/,
  },
  {
    msg: "OCI runtime create failed: exec: /workspace/x: permission denied",
    runtime: "runsc",
    code: 126,
    what: /^The command is not executable in the image: /,
    hint: /ls \/usr\/bin/,
  },
  {
    msg: "OCI runtime start failed: cannot run with network enabled in root network namespace",
    runtime: "runsc",
    code: 125,
    what: /^The container runtime "runsc" could not start the container: /,
    hint: /docker run --rm --runtime=runsc[\s\S]*--debug-log/,
  },
  {
    // What runsc says when it refuses a mount: the sandbox does not start, no reason given.
    msg:
      "failed to create shim task: OCI runtime create failed: creating container: cannot create sandbox: " +
      "cannot read client sync file: waiting for sandbox to start: EOF: unknown",
    runtime: "runsc",
    code: 125,
    what: /^The container runtime "runsc" could not start the container: /,
    hint: /--debug-log/,
  },
  {
    msg: "runsc did not terminate successfully: exit status 128",
    runtime: "runsc",
    code: 125,
    what: /^The container runtime "runsc" could not start the container: /,
    hint: /--debug-log/,
  },
  {
    // The sandbox off: the engine's default runtime (runc) failed, and the message says so.
    msg: "OCI runtime create failed: runc create failed: unable to start container process: error during " +
      'container init: error mounting "/d" to rootfs at "/etc/passwd": not a directory: unknown',
    code: 125,
    what: /^The container runtime could not start the container: /,
    hint: /^Reproduce it without moat: {2}docker run --rm <image> true$/,
  },
  {
    // The engine's bridge is gone (seen after another dockerd on the host removed docker0).
    msg: "failed to create endpoint moat-1d38eab0ddc6 on network bridge: adding interface vethd6bf02e to " +
      "bridge docker0 failed: could not find bridge docker0: route ip+net: no such network interface",
    runtime: "runsc",
    code: 125,
    what: /^The Docker engine could not set up the container's network: failed to create endpoint/,
    hint: /recreates its default bridge[\s\S]*--network none/,
    notHint: GVISOR,
  },
  {
    // dockerd looks a -u NAME up itself, before any runtime runs.
    msg: "unable to find user abc: no matching entries in passwd file",
    runtime: "runsc",
    code: 125,
    what: /^The image has no user "abc": /,
    hint: /^List the users it has: {2}moat run --image <image> -- cat \/etc\/passwd\n.*--user 1000:1000$/,
    notHint: GVISOR,
  },
  {
    msg: "unable to find group devs: no matching entries in group file",
    code: 125,
    what: /^The image has no group "devs": /,
    hint: /cat \/etc\/group/,
  },
  {
    // Other errors of the engine's own (a 500 on start that does not name the runtime): not gVisor's.
    msg: "uids and gids must be in range 0-2147483647",
    runtime: "runsc",
    code: 125,
    what: /^The Docker engine could not start the container: /,
    hint: /engine's log[\s\S]*docker run --rm <image> true$/,
    notHint: GVISOR,
  },
  {
    msg: "container is marked for removal and cannot be started",
    runtime: "runsc",
    code: 125,
    what: /^The Docker engine could not start the container: /,
    hint: /engine's log/,
    notHint: GVISOR,
  },
  {
    // The runtime's name inside another word is not the runtime named.
    msg: "mkdir /var/lib/runscape: read-only file system",
    runtime: "runsc",
    code: 125,
    what: /^The Docker engine could not start the container: /,
    hint: /engine's log/,
    notHint: GVISOR,
  },
];
for (const c of startFailures) {
  Deno.test(`classifyStartError: exit code and whose failure it names for "${c.msg.slice(0, 60)}"`, () => {
    const err = classifyStartError(new EngineApiError(500, "POST", "/containers/x/start", c.msg), c.runtime);
    assert.equal(err.exitCode, c.code, c.msg);
    assert.match(err.message, c.what, c.msg);
    assert.ok(err.message.endsWith(c.msg), c.msg);
    assert.match(err.hint ?? "", c.hint, c.msg);
    if (c.notHint) assert.doesNotMatch(err.hint ?? "", c.notHint, c.msg);
  });
}

Deno.test("the run waits for the admission check before it attaches or starts", async () => {
  await using engine = await FakeEngine.start();
  const script = scriptEngine(engine, { frames: [frame(1, "ok")], exitCode: 0 });
  const check = Promise.withResolvers<void>();
  const c = collectingIO();
  const run = driveRun(clientFor(engine), planContainer(spec), c.io, noHooks, {
    ...opts(),
    admit: check.promise,
  });
  while (engine.requestsTo("POST /containers/create").length === 0) {
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(engine.requestsTo("POST /containers/:id/attach").length, 0, "nothing after create yet");
  check.resolve();
  const outcome = await run;
  assert.equal(outcome.exitCode, 0);
  assert.equal(c.stdout(), "ok");
  assert.ok(script.waitSeenBeforeStart());
});

Deno.test("when create is refused and the admission check fails too, the check's error is reported", async () => {
  await using engine = await FakeEngine.start();
  engine.on("POST /containers/create", { status: 400, json: { message: "Unknown runtime specified runsc" } });
  const missing = new SandboxUnavailableError("gVisor is not registered", "install it");
  await assert.rejects(
    driveRun(clientFor(engine), planContainer(spec), collectingIO().io, noHooks, {
      ...opts(),
      admit: Promise.reject(missing),
    }),
    (err: unknown) => err === missing,
  );
});

const createFailures: [string, number, string, (e: unknown) => boolean][] = [
  [
    "a 409 name conflict",
    409,
    'Conflict. The container name "/moat-x" is already in use',
    (e) =>
      e instanceof EngineApiError && e.isConflict && e.method === "POST" && e.path === "/containers/create",
  ],
  ["a 404 image", 404, "No such image: img:latest", (e) => e instanceof ImageMissingError],
  [
    "a 400 unknown runtime",
    400,
    "unknown or invalid runtime name: runsc",
    (e) => e instanceof SandboxUnavailableError,
  ],
  [
    "a 500",
    500,
    "something broke",
    (e) => e instanceof EngineApiError && e.status === 500 && /something broke/.test(e.message),
  ],
];
for (const [label, status, message, check] of createFailures) {
  Deno.test(`${label} on create is reported and nothing else is attempted`, async () => {
    await using engine = await FakeEngine.start();
    scriptEngine(engine, { frames: [], exitCode: 0 });
    engine.on("POST /containers/create", { status, json: { message } });
    await assert.rejects(
      driveRun(clientFor(engine), planContainer(spec), collectingIO().io, noHooks, opts()),
      check,
    );
    assert.deepEqual(engine.calls(), ["GET /_ping", "POST /containers/create"]);
  });
}

Deno.test("an interrupt between create and start removes the container and never starts it", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { frames: [], exitCode: 0 });
  const ctl = new AbortController();
  const hooks = {
    onCreated: () => Promise.resolve(ctl.abort("SIGTERM")),
    onStarted: () => Promise.resolve(),
  };
  await assert.rejects(
    driveRun(clientFor(engine), planContainer(spec), collectingIO().io, hooks, opts(ctl.signal)),
    (err: unknown) => err instanceof InterruptedError && err.exitCode === 143 && err.containerId === ID,
  );
  assert.equal(engine.requestsTo("POST /containers/:id/start").length, 0);
  assert.equal(engine.requestsTo("DELETE /containers/:id").length, 1);
});

Deno.test("an interrupt while running stops the container, exits 130 and removes it", async () => {
  await using engine = await FakeEngine.start();
  const script = scriptEngine(engine, { frames: [frame(1, "partial")], exitCode: 143 });
  const ctl = new AbortController();
  const hooks = {
    onCreated: () => Promise.resolve(),
    onStarted: () => {
      // Interrupt once the command is running; the fake ends the output only when stopped.
      script.started.promise.then(() => ctl.abort("SIGINT"));
      return Promise.resolve();
    },
  };
  // Hold the output open until the stop arrives.
  engine.on("POST /containers/:id/attach", async (_req, res) => {
    const h = await res.hijack();
    await Promise.race([script.started.promise, res.delay(5000)]);
    await h.writeFrame(1, "partial");
    await Promise.race([script.outputDone.promise, res.delay(5000)]);
  });
  const c = collectingIO();
  const outcome = await driveRun(clientFor(engine), planContainer(spec), c.io, hooks, opts(ctl.signal));
  assert.equal(outcome.interrupted, "SIGINT");
  assert.equal(outcome.exitCode, 130);
  assert.equal(c.stdout(), "partial");
  const stop = engine.requestsTo("POST /containers/:id/stop");
  assert.equal(stop.length, 1);
  assert.equal(stop[0]!.query.get("t"), "1");
  assert.equal(engine.requestsTo("DELETE /containers/:id").length, 1);
});

Deno.test("an interrupt before anything was created creates nothing", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { frames: [], exitCode: 0 });
  const ctl = new AbortController();
  ctl.abort("SIGINT");
  await assert.rejects(
    driveRun(clientFor(engine), planContainer(spec), collectingIO().io, noHooks, opts(ctl.signal)),
    (err: unknown) =>
      err instanceof InterruptedError && err.exitCode === 130 && err.containerId === undefined,
  );
  assert.deepEqual(engine.calls(), []);
});

Deno.test("a removal the engine refuses is reported, not hidden", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { frames: [], exitCode: 0 });
  engine.on("DELETE /containers/:id", { status: 500, json: { message: "driver busy" } });
  const seen: boolean[] = [];
  const hooks = { ...noHooks, onRemoved: (ok: boolean) => Promise.resolve(void seen.push(ok)) };
  const outcome = await driveRun(clientFor(engine), planContainer(spec), collectingIO().io, hooks, opts());
  assert.equal(outcome.removed, false);
  assert.deepEqual(seen, [false]);
});

Deno.test("a successful removal is reported once on success and on failure paths", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { frames: [], exitCode: 3 });
  const seen: boolean[] = [];
  const hooks = { ...noHooks, onRemoved: (ok: boolean) => Promise.resolve(void seen.push(ok)) };
  const outcome = await driveRun(clientFor(engine), planContainer(spec), collectingIO().io, hooks, opts());
  assert.equal(outcome.removed, true);
  engine.on("POST /containers/:id/start", { status: 500, json: { message: "boom" } });
  await assert.rejects(driveRun(clientFor(engine), planContainer(spec), collectingIO().io, hooks, opts()));
  assert.deepEqual(seen, [true, true]);
});

Deno.test("a stdout reader that goes away sends the command SIGPIPE, and the record keeps all output", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { frames: [frame(1, "a"), frame(2, "e"), frame(1, "b")], exitCode: 141 });
  engine.on("POST /containers/:id/kill", { status: 204 });
  const c = collectingIO();
  c.io.stdout = { write: () => Promise.reject(new Deno.errors.BrokenPipe("pipe closed")) };
  const outcome = await driveRun(clientFor(engine), planContainer(spec), c.io, noHooks, opts());
  assert.equal(outcome.exitCode, 141);
  const kills = engine.requestsTo("POST /containers/:id/kill");
  assert.equal(kills.length, 1, "one SIGPIPE, not one per frame");
  assert.equal(kills[0]!.query.get("signal"), "SIGPIPE");
  assert.equal(c.stderr(), "e", "stderr still flows");
  assert.deepEqual(c.record, [[1, "a"], [2, "e"], [1, "b"]]);
});

Deno.test("an attach stream that is not multiplexed: the output is incomplete, said why, and the container removed", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { frames: [new TextEncoder().encode("plain text, no headers")], exitCode: 0 });
  engine.on("GET /containers/:id/logs", { status: 501, json: { message: "no logs here" } });
  const outcome = await driveRun(clientFor(engine), planContainer(spec), collectingIO().io, noHooks, opts());
  assert.equal(outcome.exitCode, 0);
  assert.match(
    outcome.outputIncomplete ?? "",
    /^the output stream broke: the stream is not in the format moat reads: unrecognized stream header 70 6c .*, and its log could not be read: .*no logs here$/,
  );
  assert.equal(engine.requestsTo("DELETE /containers/:id").length, 1);
});

Deno.test("an OOM kill is exit 137 even when the engine reports 1 (gVisor's whole sandbox was killed)", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { frames: [frame(1, "start\n")], exitCode: 1 });
  engine.on("GET /containers/:id/json", {
    status: 200,
    json: { Id: ID, Name: "/x", State: { OOMKilled: true }, Config: {}, HostConfig: { Runtime: "runsc" } },
  });
  const outcome = await driveRun(clientFor(engine), planContainer(spec), collectingIO().io, noHooks, opts());
  assert.deepEqual([outcome.exitCode, outcome.oomKilled], [137, true]);
});

Deno.test("onFinished comes once the container has exited, before its removal; also when it never started", async () => {
  for (const refused of [false, true]) {
    const admit = refused ? Promise.reject(new SandboxUnavailableError("not gVisor", "fix it")) : undefined;
    admit?.catch(() => {});
    await using engine = await FakeEngine.start();
    scriptEngine(engine, { frames: [], exitCode: 0 });
    const seen: string[] = [];
    const hooks = {
      ...noHooks,
      onFinished: () =>
        void seen.push(`finished after ${engine.calls().filter((c) => c !== "GET /_ping").at(-1)}`),
      onRemoved: () => void seen.push("removed"),
    };
    await driveRun(clientFor(engine), planContainer(spec), collectingIO().io, hooks, {
      ...opts(),
      ...(admit ? { admit } : {}),
    }).catch(() => {});
    assert.equal(seen.length, 2, `${seen}`);
    assert.equal(seen[1], "removed");
    assert.doesNotMatch(seen[0]!, /DELETE/, "before the removal");
    if (!admit) assert.match(seen[0]!, /wait|start|logs|json/, `${seen[0]}`);
  }
});

for (const runtime of ["oci", undefined]) {
  Deno.test(`an engine that made the container with ${runtime ? `runtime "${runtime}"` : "no runtime named"}, not gVisor's: never attached or started, removed (fails closed)`, async () => {
    await using engine = await FakeEngine.start();
    scriptEngine(engine, { frames: [], exitCode: 0 });
    // As Podman's Docker-compatible API answers: the runtime asked for is not the one it used.
    engine.on("GET /containers/:id/json", (_req, res) =>
      res.json(200, {
        Id: ID,
        Name: "/x",
        State: { Status: "created", Running: false, ExitCode: 0 },
        Config: {},
        HostConfig: runtime ? { Runtime: runtime } : {},
      }));
    const removed: boolean[] = [];
    await assert.rejects(
      driveRun(clientFor(engine), planContainer(spec), collectingIO().io, {
        ...noHooks,
        onRemoved: (r: boolean) => void removed.push(r),
      }, { ...opts(undefined, true) }),
      (err: unknown) =>
        err instanceof SandboxUnavailableError &&
        new RegExp(
          `made the container with the runtime ${runtime ? `"${runtime}"` : "it did not name"}, not "runsc"`,
        )
          .test(err.message),
    );
    assert.deepEqual(
      engine.calls().filter((c) => /attach|start|wait/.test(c)),
      [],
      "nothing attached, waited for or started",
    );
    assert.deepEqual(removed, [true], "removed even with --keep");
  });
}

/** An inspect of the created container saying it is made with `runtime` (`HostConfig.Runtime`). */
const madeWith = (runtime: string) => ({
  status: 200,
  json: {
    Id: ID,
    Name: "/x",
    State: { Status: "created", Running: false, ExitCode: 0, StartedAt: "0001-01-01T00:00:00Z" },
    Config: {},
    HostConfig: { Runtime: runtime },
  },
});

// The engine's own word on the container decides, not what was asked: an engine that ignores
// HostConfig.Runtime (Podman's Docker-compatible API) must not get a sandboxless container started.
const madeTable: [string, string | undefined, { compat: string; libpod?: string }, boolean][] = [
  ["Docker, made with runsc", undefined, { compat: "runsc" }, true],
  ["Docker, made with runc", undefined, { compat: "runc" }, false],
  ["Docker, saying oci (no Podman API asked)", undefined, { compat: "oci" }, false],
  ["Podman, its own API naming /usr/bin/runsc", "Libpod/4.3.1 (linux)", {
    compat: "oci",
    libpod: "/usr/bin/runsc",
  }, true],
  ["Podman, its own API naming runsc", "Libpod/4.3.1 (linux)", { compat: "oci", libpod: "runsc" }, true],
  ["Podman, its own API naming crun", "Libpod/4.3.1 (linux)", { compat: "oci", libpod: "crun" }, false],
  ["Podman, its own API naming /usr/bin/runc", "Libpod/4.3.1 (linux)", {
    compat: "oci",
    libpod: "/usr/bin/runc",
  }, false],
];
for (const [label, server, said, runs] of madeTable) {
  Deno.test(`the runtime read back after create: ${label} ${runs ? "runs" : "is refused, never started"}`, async () => {
    await using engine = await FakeEngine.start(server ? { server } : {});
    scriptEngine(engine, { frames: [frame(1, "ok")], exitCode: 0 });
    // The inspect right after create, then (for a run that goes on) the one after exit.
    let inspects = 0;
    engine.on("GET /containers/:id/json", (_req, res) => {
      inspects++;
      const r = madeWith(said.compat);
      if (inspects > 1) {
        r.json.State = { Status: "exited", Running: false, ExitCode: 0, StartedAt: "2026-12-06T20:00:00Z" };
      }
      return res.json(200, r.json);
    });
    if (said.libpod) {
      engine.on("GET /libpod/containers/:id/json", { status: 200, json: { OCIRuntime: said.libpod } });
    }
    const c = collectingIO();
    const run = driveRun(clientFor(engine), planContainer(spec), c.io, noHooks, opts());
    if (runs) {
      const outcome = await run;
      assert.equal(outcome.exitCode, 0);
      assert.equal(c.stdout(), "ok");
    } else {
      await assert.rejects(run, (err: unknown) =>
        err instanceof SandboxUnavailableError &&
        new RegExp(`made the container with the runtime "${said.libpod ?? said.compat}", not "runsc"`).test(
          err.message,
        ));
      assert.equal(engine.requestsTo("POST /containers/:id/attach").length, 0, "never attached");
      assert.equal(engine.requestsTo("POST /containers/:id/start").length, 0, "never started");
      assert.equal(engine.requestsTo("DELETE /containers/:id").length, 1, "removed");
    }
    assert.equal(engine.requestsTo("GET /libpod/containers/:id/json").length, said.libpod ? 1 : 0);
  });
}
