/**
 * The detached run on the fake engine: `startDetached` (create → start, nothing attached) and the recorder
 * (`recordDetached`: wait registered, log followed, exit code, replay of what the live stream missed).
 */
import assert from "node:assert/strict";
import { DockerClient } from "../../lib/docker/client.ts";
import { unixTransport } from "../../lib/docker/transport.ts";
import { MoatError } from "../../lib/errors.ts";
import { ContainerStartError, InterruptedError, startDetached } from "../../lib/run/lifecycle.ts";
import { planContainer } from "../../lib/run/plan.ts";
import { spec } from "./fixtures.ts";
import { recordDetached, recorderInvocation, type RecorderIO } from "../../lib/run/recorder.ts";
import { FakeEngine } from "../fake_engine.ts";
import { LOG } from "./lifecycle_fixture.ts";

const ID = "d".repeat(64);
const dec = new TextDecoder();

const clientFor = (engine: FakeEngine) =>
  new DockerClient(unixTransport(engine.endpoint), { timeoutMs: 3000 });

function inspectReply(logDriver = "json-file") {
  return {
    status: 200,
    json: {
      Id: ID,
      Name: "/moat-x",
      State: { Status: "running", Running: true, ExitCode: 0 },
      Config: {},
      HostConfig: { Runtime: "runsc", LogConfig: { Type: logDriver, Config: {} } },
    },
  };
}

/** A record that keeps what it is given (copied: the recorder reuses buffers), merged per stream. */
function collectingRecord() {
  const frames: [number, string][] = [];
  let flushes = 0;
  const io: RecorderIO = {
    record: {
      output: (s, d) => Promise.resolve(void frames.push([s, dec.decode(d)])),
      flushSoon: () => void flushes++,
      flush: () => Promise.resolve(void flushes++),
    },
    now: () => 42,
  };
  const text = (streams: number[]) => frames.filter(([s]) => streams.includes(s)).map(([, t]) => t).join("");
  return { io, frames, stdout: () => text([0, 1]), stderr: () => text([2, 3]), flushes: () => flushes };
}

/**
 * An engine with a running container: the live log sends `live` (cut at `splitAt`) and ends, or breaks the
 * connection when `liveBreaks`; the wait answers `exitCode` once the live log ended; a non-following log
 * request replays all of LOG.
 */
function scriptRecorder(
  engine: FakeEngine,
  o: { live: Uint8Array; exitCode?: number; splitAt?: number[]; liveBreaks?: boolean; waitStatus?: number },
) {
  const liveDone = Promise.withResolvers<void>();
  engine.on("GET /containers/:id/json", inspectReply());
  engine.on("GET /containers/:id/logs", async (req, res) => {
    if (req.query.get("follow") !== "1") {
      await res.chunked(200, LOG, { splitAt: [5, 17, 30] });
      return;
    }
    if (o.liveBreaks) {
      await res.head(200, { "Transfer-Encoding": "chunked" });
      await res.chunk(o.live);
      liveDone.resolve();
      res.close();
      return;
    }
    await res.chunked(200, o.live, { splitAt: o.splitAt ?? [] });
    liveDone.resolve();
  });
  engine.on("POST /containers/:id/wait", async (_req, res) => {
    if (o.waitStatus) {
      await res.json(o.waitStatus, { message: `No such container: ${ID}` });
      return;
    }
    await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    await Promise.race([liveDone.promise, res.delay(5000)]);
    await res.chunk(JSON.stringify({ StatusCode: o.exitCode ?? 0 }) + "\n");
    await res.endChunks();
  });
  engine.on("DELETE /containers/:id", { status: 204 });
}

Deno.test("the recorder registers the wait, follows the log, records the exit code and removes the container", async () => {
  await using engine = await FakeEngine.start();
  scriptRecorder(engine, { live: LOG, exitCode: 3, splitAt: [3, 9, 14, 40] });
  const c = collectingRecord();
  const outcome = await recordDetached(clientFor(engine), ID, c.io, { keep: false });
  assert.deepEqual(outcome, {
    exitCode: 3,
    runtime: "runsc",
    removed: true,
    outputIncomplete: undefined,
    error: undefined,
    oomKilled: false,
  });
  assert.equal(c.stdout(), "one\ntwo\nthree\n");
  assert.equal(c.stderr(), "warn\nbye\n");
  assert.ok(c.flushes() >= 1);
  const calls = engine.calls().filter((x) => x !== "GET /_ping");
  assert.deepEqual(calls, [
    `GET /containers/${ID}/json`,
    `POST /containers/${ID}/wait`,
    `GET /containers/${ID}/logs`,
    `GET /containers/${ID}/json`,
    `DELETE /containers/${ID}`,
  ]);
  assert.equal(engine.requestsTo("GET /containers/:id/logs")[0]!.query.get("follow"), "1");
  assert.equal(engine.requestsTo("POST /containers/:id/wait")[0]!.query.get("condition"), "not-running");
});

Deno.test("the recorder gets every frame right whatever the chunking of the live log", async () => {
  for (let cut = 1; cut < LOG.byteLength; cut++) {
    await using engine = await FakeEngine.start();
    scriptRecorder(engine, { live: LOG, splitAt: [cut] });
    const c = collectingRecord();
    await recordDetached(clientFor(engine), ID, c.io, { keep: false });
    assert.deepEqual([c.stdout(), c.stderr()], ["one\ntwo\nthree\n", "warn\nbye\n"], `split at ${cut}`);
  }
});

Deno.test("with --keep the recorder leaves the container in place", async () => {
  await using engine = await FakeEngine.start();
  scriptRecorder(engine, { live: LOG });
  const outcome = await recordDetached(clientFor(engine), ID, collectingRecord().io, { keep: true });
  assert.equal(outcome.removed, false);
  assert.equal(engine.requestsTo("DELETE /containers/:id").length, 0);
});

Deno.test("a live log that ends inside a frame is completed from the replay, exactly once", async () => {
  // Inside the first header, the first payload, the third frame's header, the last payload.
  for (const upTo of [3, 10, 24 + 3, LOG.byteLength - 2]) {
    await using engine = await FakeEngine.start();
    scriptRecorder(engine, { live: LOG.subarray(0, upTo) });
    const c = collectingRecord();
    const outcome = await recordDetached(clientFor(engine), ID, c.io, { keep: false });
    assert.deepEqual([c.stdout(), c.stderr()], ["one\ntwo\nthree\n", "warn\nbye\n"], `live up to ${upTo}`);
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.outputIncomplete, undefined);
    assert.equal(engine.requestsTo("GET /containers/:id/logs")[1]!.query.get("follow"), "0");
  }
});

Deno.test("a live log that ends cleanly is trusted: no replay", async () => {
  await using engine = await FakeEngine.start();
  scriptRecorder(engine, { live: LOG.subarray(0, 12 + 13) });
  const c = collectingRecord();
  const outcome = await recordDetached(clientFor(engine), ID, c.io, { keep: false });
  assert.deepEqual([c.stdout(), c.stderr(), outcome.outputIncomplete], ["one\n", "warn\n", undefined]);
  assert.equal(engine.requestsTo("GET /containers/:id/logs").length, 1);
});

Deno.test("a live log that breaks is made up for by the replay, without an error", async () => {
  await using engine = await FakeEngine.start();
  scriptRecorder(engine, { live: LOG.subarray(0, 20), liveBreaks: true, exitCode: 0 });
  const c = collectingRecord();
  const outcome = await recordDetached(clientFor(engine), ID, c.io, { keep: false });
  assert.equal(c.stdout(), "one\ntwo\nthree\n");
  assert.equal(c.stderr(), "warn\nbye\n");
  assert.equal(outcome.exitCode, 0);
  assert.equal(outcome.error, undefined);
});

Deno.test("a container removed before its exit could be read: no exit code, and the record says why", async () => {
  await using engine = await FakeEngine.start();
  scriptRecorder(engine, { live: LOG, waitStatus: 404 });
  engine.on("GET /containers/:id/logs", async (req, res) => {
    if (req.query.get("follow") === "1") await res.chunked(200, LOG);
    else await res.json(404, { message: `No such container: ${ID}` });
  });
  const c = collectingRecord();
  const outcome = await recordDetached(clientFor(engine), ID, c.io, { keep: false });
  assert.equal(outcome.exitCode, null);
  assert.equal(outcome.error, "The container was removed before its exit code could be read");
  assert.equal(c.stdout(), "one\ntwo\nthree\n");
});

Deno.test("a log the engine cannot give is reported, and the exit code is still recorded", async () => {
  await using engine = await FakeEngine.start();
  scriptRecorder(engine, { live: new Uint8Array(0), exitCode: 5 });
  engine.on("GET /containers/:id/logs", {
    status: 501,
    json: { message: "configured logging driver does not support reading" },
  });
  engine.on("POST /containers/:id/wait", { status: 200, json: { StatusCode: 5 } });
  const outcome = await recordDetached(clientFor(engine), ID, collectingRecord().io, { keep: false });
  assert.equal(outcome.exitCode, 5);
  assert.equal(outcome.error, undefined);
  assert.match(outcome.outputIncomplete ?? "", /its log could not be read: .*does not support reading/);
});

// --- startDetached ------------------------------------------------------------------------------------------

function hooks() {
  const seen: string[] = [];
  return {
    seen,
    hooks: {
      onCreated: (id: string) => Promise.resolve(void seen.push(`created ${id.slice(0, 4)}`)),
      onStarted: () => Promise.resolve(void seen.push("started")),
      onRemoved: (removed: boolean) => Promise.resolve(void seen.push(`removed ${removed}`)),
    },
  };
}

function scriptStart(engine: FakeEngine, o: { logDriver?: string; startError?: string } = {}) {
  engine.on("POST /containers/create", { status: 201, json: { Id: ID, Warnings: [] } });
  engine.on("GET /containers/:id/json", inspectReply(o.logDriver));
  engine.on(
    "POST /containers/:id/start",
    o.startError ? { status: 400, json: { message: o.startError } } : { status: 204 },
  );
  engine.on("DELETE /containers/:id", { status: 204 });
}

const signal = () => new AbortController().signal;

Deno.test("startDetached creates and starts the container and attaches nothing", async () => {
  await using engine = await FakeEngine.start();
  scriptStart(engine);
  const h = hooks();
  const started = await startDetached(clientFor(engine), planContainer(spec), h.hooks, {
    keep: false,
    interrupt: signal(),
  });
  assert.equal(started.containerId, ID);
  assert.deepEqual(h.seen, ["created dddd", "started"]);
  assert.deepEqual(engine.calls().filter((x) => x !== "GET /_ping"), [
    "POST /containers/create",
    `GET /containers/${ID}/json`,
    `POST /containers/${ID}/start`,
  ]);
});

Deno.test("startDetached refuses a container whose log driver is none, before starting it", async () => {
  await using engine = await FakeEngine.start();
  scriptStart(engine, { logDriver: "none" });
  const h = hooks();
  await assert.rejects(
    () =>
      startDetached(clientFor(engine), planContainer(spec), h.hooks, { keep: false, interrupt: signal() }),
    (err: unknown) =>
      err instanceof MoatError && /^Cannot record the output of a detached run: the engine's log driver/.test(
        err.message,
      ),
  );
  assert.equal(engine.requestsTo("POST /containers/:id/start").length, 0);
  assert.deepEqual(h.seen, ["created dddd", "removed true"]);
});

Deno.test("startDetached reports a missing command as exit 127 and removes the container", async () => {
  await using engine = await FakeEngine.start();
  scriptStart(engine, { startError: 'exec: "nope": executable file not found in $PATH' });
  const h = hooks();
  await assert.rejects(
    () =>
      startDetached(clientFor(engine), planContainer(spec), h.hooks, { keep: false, interrupt: signal() }),
    (err: unknown) => err instanceof ContainerStartError && err.exitCode === 127,
  );
  assert.deepEqual(h.seen, ["created dddd", "removed true"]);
});

Deno.test("startDetached with --keep keeps a container that failed to start", async () => {
  await using engine = await FakeEngine.start();
  scriptStart(engine, { startError: "permission denied" });
  const h = hooks();
  await assert.rejects(
    () => startDetached(clientFor(engine), planContainer(spec), h.hooks, { keep: true, interrupt: signal() }),
    (err: unknown) => err instanceof ContainerStartError && err.exitCode === 126,
  );
  assert.equal(engine.requestsTo("DELETE /containers/:id").length, 0);
  assert.deepEqual(h.seen, ["created dddd"]);
});

Deno.test("startDetached interrupted before start removes the container and starts nothing", async () => {
  await using engine = await FakeEngine.start();
  scriptStart(engine);
  const ctl = new AbortController();
  const h = hooks();
  h.hooks.onCreated = () => Promise.resolve(void ctl.abort("SIGINT"));
  await assert.rejects(
    () =>
      startDetached(clientFor(engine), planContainer(spec), h.hooks, { keep: false, interrupt: ctl.signal }),
    (err: unknown) => err instanceof InterruptedError && err.exitCode === 130,
  );
  assert.equal(engine.requestsTo("POST /containers/:id/start").length, 0);
  assert.deepEqual(h.seen, ["removed true"]);
});

Deno.test("startDetached interrupted while the engine starts the container stops it, removes it, and says so", async () => {
  await using engine = await FakeEngine.start();
  scriptStart(engine);
  engine.on("POST /containers/:id/kill", { status: 204 });
  const ctl = new AbortController();
  engine.on("POST /containers/:id/start", (_req, res) => {
    ctl.abort("SIGTERM"); // arrives while the engine starts it
    return res.empty(204);
  });
  const h = hooks();
  await assert.rejects(
    () =>
      startDetached(clientFor(engine), planContainer(spec), h.hooks, { keep: false, interrupt: ctl.signal }),
    (err: unknown) =>
      err instanceof InterruptedError && err.exitCode === 143 &&
      err.message === "Interrupted by SIGTERM while the container was starting; the command was stopped; " +
          "the container was removed",
  );
  assert.deepEqual(h.seen, ["created dddd", "started", "removed true"], "the record says it started");
  assert.equal(engine.requestsTo("POST /containers/:id/kill").length, 1);
});

// --- the recorder's command line ----------------------------------------------------------------------------

const invocations: [string, { execPath: string; mainModule: string; standalone: boolean }, string[]][] = [
  [
    "deno run of the source",
    { execPath: "/usr/bin/deno", mainModule: "file:///work/main/main.ts", standalone: false },
    ["/usr/bin/deno", "run", "-A", "/work/main/main.ts", "run", "--record-detached", "0123456789ab"],
  ],
  [
    "deno run of the bundle in a directory with a space",
    { execPath: "/usr/bin/deno", mainModule: "file:///opt/my%20tools/moat.js", standalone: false },
    ["/usr/bin/deno", "run", "-A", "/opt/my tools/moat.js", "run", "--record-detached", "0123456789ab"],
  ],
  [
    "deno run of a remote module",
    { execPath: "/usr/bin/deno", mainModule: "https://example.com/moat/main.ts", standalone: false },
    [
      "/usr/bin/deno",
      "run",
      "-A",
      "https://example.com/moat/main.ts",
      "run",
      "--record-detached",
      "0123456789ab",
    ],
  ],
  [
    "a compiled moat",
    {
      execPath: "/usr/local/bin/moat",
      mainModule: "file:///tmp/deno-compile-moat/main.ts",
      standalone: true,
    },
    ["/usr/local/bin/moat", "run", "--record-detached", "0123456789ab"],
  ],
];
for (const [label, self, want] of invocations) {
  Deno.test(`the recorder is started as the same moat: ${label}`, () => {
    const inv = recorderInvocation(self, "0123456789ab");
    assert.deepEqual([inv.command, ...inv.args], want);
  });
}
