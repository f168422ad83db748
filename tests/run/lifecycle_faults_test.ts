/**
 * The foreground run when the engine misbehaves (fake engine): a start that outlasts its budget, a lost
 * create reply, a damaged wait reply, an attach stream that ends early, breaks or stays open after the exit.
 * The rule each test holds: a run whose command started is never reported as not started, and output is
 * either complete (recovered from the engine's log) or said to be incomplete.
 */
import assert from "node:assert/strict";
import { DockerClient } from "../../lib/docker/client.ts";
import { unixTransport } from "../../lib/docker/transport.ts";
import { driveRun } from "../../lib/run/lifecycle.ts";
import { planContainer } from "../../lib/run/plan.ts";
import { FakeEngine, frame } from "../fake_engine.ts";
import { collectingIO, ID, LOG, noHooks, opts, scriptEngine, spec } from "./lifecycle_fixture.ts";

const PLAN = planContainer(spec);
const FAST = { graceMs: 50, exitAfterEofMs: 50 };

const client = (engine: FakeEngine, timeoutMs: number, startTimeoutMs: number) =>
  new DockerClient(unixTransport(engine.endpoint), { timeoutMs, startTimeoutMs });

/** An inspect reply for the container in `status` ("running", "exited" or "created"). */
function inspect(status: "running" | "exited" | "created", exitCode = 0) {
  return {
    Id: ID,
    Name: "/x",
    State: {
      Status: status,
      Running: status === "running",
      ExitCode: exitCode,
      StartedAt: status === "created" ? "0001-01-01T00:00:00Z" : "2026-12-06T20:00:00Z",
    },
    Config: {},
    HostConfig: { Runtime: "runsc" },
  };
}

// --- start ---------------------------------------------------------------------------------------------------

Deno.test("start is bounded by the start budget, not the short one", async () => {
  await using engine = await FakeEngine.start();
  const script = scriptEngine(engine, { frames: [frame(1, "booted\n")], exitCode: 0 });
  engine.on("POST /containers/:id/start", async (_req, res) => {
    await res.delay(300); // a sandbox booting on a busy host
    script.started.resolve();
    await res.empty(204);
  });
  const c = collectingIO();
  const outcome = await driveRun(client(engine, 100, 5000), PLAN, c.io, noHooks, opts());
  assert.equal(outcome.exitCode, 0);
  assert.equal(c.stdout(), "booted\n");
});

Deno.test("a start that outlasts its budget but did start goes on as a started run", async () => {
  await using engine = await FakeEngine.start();
  const script = scriptEngine(engine, { frames: [frame(1, "ran\n")], exitCode: 3 });
  engine.on("POST /containers/:id/start", async (_req, res) => {
    script.started.resolve(); // the engine started the command; its answer comes too late
    await res.delay(1000);
  });
  engine.on("GET /containers/:id/json", { status: 200, json: inspect("exited", 3) });
  const c = collectingIO();
  const seen: string[] = [];
  const outcome = await driveRun(client(engine, 100, 100), PLAN, c.io, {
    onCreated: () => void seen.push("created"),
    onStarted: () => void seen.push("started"),
  }, opts());
  assert.deepEqual(seen, ["created", "started"]);
  assert.equal(outcome.exitCode, 3);
  assert.equal(c.stdout(), "ran\n");
  assert.equal(outcome.outputIncomplete, undefined);
});

Deno.test("a start that outlasts its budget and never started: a clear error, and the container is removed", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { frames: [], exitCode: 0 });
  engine.on("POST /containers/:id/start", async (_req, res) => void await res.delay(1000));
  engine.on("GET /containers/:id/json", { status: 200, json: inspect("created") });
  const seen: string[] = [];
  await assert.rejects(
    driveRun(client(engine, 100, 100), PLAN, collectingIO().io, {
      onCreated: () => void seen.push("created"),
      onStarted: () => void seen.push("started"),
    }, opts()),
    (err: Error & { hint?: string }) => {
      assert.match(err.message, /^The engine did not start container a{12}: .*took longer than 0\.1 s/);
      assert.match(err.hint ?? "", /MOAT_ENGINE_START_TIMEOUT=300/);
      return true;
    },
  );
  assert.deepEqual(seen, ["created"]);
  assert.equal(engine.requestsTo("DELETE /containers/:id").length, 1);
});

Deno.test("a start whose answer is lost and the engine cannot say: the error says it is unknown", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { frames: [], exitCode: 0 });
  engine.on("POST /containers/:id/start", (_req, res) => res.close());
  // The inspect right after create answers (the runtime it was made with); every one after the start not.
  let inspects = 0;
  engine.on("GET /containers/:id/json", (_req, res) =>
    inspects++ === 0
      ? res.json(200, {
        Id: "a".repeat(64),
        Name: "/x",
        State: { Status: "created", Running: false, ExitCode: 0 },
        Config: {},
        HostConfig: { Runtime: PLAN.body.HostConfig.Runtime },
      })
      : res.close());
  await assert.rejects(
    driveRun(client(engine, 500, 500), PLAN, collectingIO().io, noHooks, opts()),
    /the engine did not say afterwards whether container a{12} started/,
  );
});

// --- create --------------------------------------------------------------------------------------------------

const lostCreates: Array<[string, (engine: FakeEngine) => void]> = [
  [
    "the connection closed before an answer",
    (e) => e.on("POST /containers/create", (_q, res) => res.close()),
  ],
  [
    "an answer cut inside its body",
    (e) =>
      e.on("POST /containers/create", async (_q, res) => {
        await res.head(201, { "Content-Type": "application/json", "Content-Length": "90" });
        await res.write(`{"Id":"${ID.slice(0, 20)}`);
        res.close();
      }),
  ],
  [
    "garbled JSON",
    (e) =>
      e.on("POST /containers/create", {
        status: 201,
        text: "{Id: ???",
        headers: { "Content-Type": "application/json" },
      }),
  ],
  ["JSON without an id", (e) => e.on("POST /containers/create", { status: 201, json: { Warnings: [] } })],
  [
    "no answer in time",
    (e) => e.on("POST /containers/create", async (_q, res) => void await res.delay(1000)),
  ],
];
for (const [label, script] of lostCreates) {
  Deno.test(`a create whose answer is lost (${label}) removes the container by the name moat asked for`, async () => {
    await using engine = await FakeEngine.start();
    scriptEngine(engine, { frames: [], exitCode: 0 });
    script(engine);
    engine.on("DELETE /containers/:id", { status: 204 });
    await assert.rejects(driveRun(client(engine, 200, 200), PLAN, collectingIO().io, noHooks, opts()));
    const deletes = engine.requestsTo("DELETE /containers/:id");
    assert.deepEqual(deletes.map((r) => r.params["id"]), [PLAN.name]);
    assert.equal(engine.requestsTo("POST /containers/:id/start").length, 0);
  });
}

Deno.test("a lost create answer whose container cannot be removed either says what to type", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { frames: [], exitCode: 0 });
  engine.on("POST /containers/create", (_q, res) => res.close());
  engine.on("DELETE /containers/:id", { status: 500, json: { message: "engine is busy" } });
  await assert.rejects(
    driveRun(client(engine, 200, 200), PLAN, collectingIO().io, noHooks, opts()),
    (err: Error & { hint?: string }) => {
      assert.match(
        err.message,
        new RegExp(`a container named ${PLAN.name} may have been made.*engine is busy`),
      );
      assert.equal(err.hint, `Remove it once the engine answers:  docker rm -f ${PLAN.name}`);
      return true;
    },
  );
});

// --- wait ----------------------------------------------------------------------------------------------------

const damagedWaits: Array<[string, string | null]> = [
  ["garbled", "{StatusCode: ?"],
  ["without a status code", "{}"],
  ["cut before its body", null],
];
for (const [label, body] of damagedWaits) {
  Deno.test(`a wait reply that is ${label}: the exit code comes from the container's state`, async () => {
    await using engine = await FakeEngine.start();
    const script = scriptEngine(engine, { frames: [frame(1, "x")], exitCode: 4 });
    engine.on("POST /containers/:id/wait", async (_req, res) => {
      await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
      await Promise.race([script.outputDone.promise, res.delay(5000)]);
      if (body === null) return res.close();
      await res.chunk(body);
      await res.endChunks();
    });
    const c = collectingIO();
    const outcome = await driveRun(client(engine, 2000, 2000), PLAN, c.io, noHooks, opts());
    assert.equal(outcome.exitCode, 4);
    assert.equal(c.stdout(), "x");
  });
}

Deno.test("a wait reply lost while the command still runs: moat waits again", async () => {
  await using engine = await FakeEngine.start();
  const script = scriptEngine(engine, { frames: [frame(1, "x")], exitCode: 0 });
  let waits = 0;
  let exited = false;
  engine.on("POST /containers/:id/wait", async (_req, res) => {
    waits++;
    await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    if (waits === 1) return res.close(); // dropped while running
    await Promise.race([script.outputDone.promise, res.delay(5000)]);
    exited = true;
    await res.chunk(`{"StatusCode":6}\n`);
    await res.endChunks();
  });
  engine.on(
    "GET /containers/:id/json",
    (_req, res) => res.json(200, inspect(exited ? "exited" : "running", 6)),
  );
  const outcome = await driveRun(client(engine, 2000, 2000), PLAN, collectingIO().io, noHooks, opts());
  assert.equal(outcome.exitCode, 6);
  assert.equal(engine.requestsTo("POST /containers/:id/wait")[1]!.query.get("condition"), "not-running");
});

// --- output --------------------------------------------------------------------------------------------------

/**
 * A container whose attach stream sends `attachBytes` then misbehaves as `after` says, while the command
 * keeps running until the log has been followed to its end (`exitWhen`); the log holds all of LOG.
 */
function scriptBrokenAttach(
  engine: FakeEngine,
  o: {
    attachBytes: Uint8Array;
    after: "close" | "stall" | "reset";
    exitWhen: "attach-done" | "log-followed";
  },
) {
  const script = scriptEngine(engine, { frames: [], exitCode: 0 });
  const logFollowed = Promise.withResolvers<void>();
  const attachDone = Promise.withResolvers<void>();
  let exited = false;
  engine.on("POST /containers/:id/attach", async (_req, res) => {
    const h = await res.hijack();
    await Promise.race([script.started.promise, res.delay(5000)]);
    await h.write(o.attachBytes);
    attachDone.resolve();
    if (o.after === "stall") await res.delay(10_000); // open and silent until the engine shuts down
    else if (o.after === "reset") res.close();
  });
  engine.on("POST /containers/:id/wait", async (_req, res) => {
    await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    await Promise.race([
      o.exitWhen === "attach-done" ? attachDone.promise : logFollowed.promise,
      res.delay(5000),
    ]);
    exited = true;
    await res.chunk(`{"StatusCode":0}\n`);
    await res.endChunks();
  });
  engine.on("GET /containers/:id/json", (_req, res) => res.json(200, inspect(exited ? "exited" : "running")));
  engine.on("GET /containers/:id/logs", async (req, res) => {
    await res.chunked(200, LOG, { splitAt: [7, 20] });
    if (req.query.get("follow") === "1") logFollowed.resolve();
  });
  return script;
}

const brokenAttaches: Array<[string, Parameters<typeof scriptBrokenAttach>[1]]> = [
  ["ends cleanly while the command runs", {
    attachBytes: LOG.subarray(0, 26),
    after: "close",
    exitWhen: "log-followed",
  }],
  ["breaks inside a frame while the command runs", {
    attachBytes: LOG.subarray(0, 30),
    after: "reset",
    exitWhen: "log-followed",
  }],
  ["ends inside a frame at the exit", {
    attachBytes: LOG.subarray(0, 11),
    after: "close",
    exitWhen: "attach-done",
  }],
  ["stays open and silent after the exit", {
    attachBytes: LOG.subarray(0, 39),
    after: "stall",
    exitWhen: "attach-done",
  }],
  ["sends nothing and stays open after the exit", {
    attachBytes: new Uint8Array(0),
    after: "stall",
    exitWhen: "attach-done",
  }],
];
for (const [label, o] of brokenAttaches) {
  Deno.test(`an attach stream that ${label}: the rest comes from the engine's log, nothing twice`, async () => {
    await using engine = await FakeEngine.start();
    scriptBrokenAttach(engine, o);
    const c = collectingIO();
    const outcome = await driveRun(client(engine, 2000, 2000), PLAN, c.io, noHooks, {
      ...opts(),
      timing: FAST,
    });
    assert.equal(c.stdout(), "one\ntwo\nthree\n");
    assert.equal(c.stderr(), "warn\nbye\n");
    assert.equal(c.record.map(([, t]) => t).join(""), "one\nwarn\ntwo\nthree\nbye\n");
    assert.equal(outcome.outputIncomplete, undefined);
    assert.equal(outcome.exitCode, 0);
    // The log was asked for; the last time once the container had exited (a replay, not a follow).
    const logs = engine.requestsTo("GET /containers/:id/logs");
    assert.ok(logs.length >= 1);
    assert.equal(logs.at(-1)!.query.get("follow"), "0");
  });
}

Deno.test("a stream that ends cleanly with the exit right behind it is trusted: no log request", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { frames: [LOG], exitCode: 0 });
  const c = collectingIO();
  const outcome = await driveRun(client(engine, 2000, 2000), PLAN, c.io, noHooks, opts());
  assert.equal(c.stdout(), "one\ntwo\nthree\n");
  assert.equal(outcome.outputIncomplete, undefined);
  assert.equal(engine.requestsTo("GET /containers/:id/logs").length, 0);
});

Deno.test("a broken stream whose log cannot be read: the outcome says the output is incomplete and why", async () => {
  await using engine = await FakeEngine.start();
  scriptBrokenAttach(engine, { attachBytes: LOG.subarray(0, 30), after: "reset", exitWhen: "attach-done" });
  engine.on("GET /containers/:id/logs", {
    status: 501,
    json: { message: `configured logging driver does not support reading` },
  });
  const c = collectingIO();
  const outcome = await driveRun(client(engine, 2000, 2000), PLAN, c.io, noHooks, {
    ...opts(),
    timing: FAST,
  });
  assert.equal(outcome.exitCode, 0);
  assert.equal(c.stdout(), "one\n");
  assert.equal(c.stderr(), "warn\n");
  assert.match(
    outcome.outputIncomplete ?? "",
    /^the output stream ended inside a frame, and its log could not be read: .*does not support reading$/,
  );
});

Deno.test("a log that holds less than was already shown (rotated): incomplete, said so", async () => {
  await using engine = await FakeEngine.start();
  scriptBrokenAttach(engine, { attachBytes: LOG.subarray(0, 30), after: "close", exitWhen: "attach-done" });
  engine.on("GET /containers/:id/logs", (_req, res) => res.chunked(200, frame(1, "three\n")));
  const outcome = await driveRun(client(engine, 2000, 2000), PLAN, collectingIO().io, noHooks, {
    ...opts(),
    timing: FAST,
  });
  assert.match(outcome.outputIncomplete ?? "", /no longer holds all of it/);
});

Deno.test("a -t run's stream cut while the command runs is completed from its raw log", async () => {
  await using engine = await FakeEngine.start();
  const script = scriptEngine(engine, { frames: [], exitCode: 0 });
  const followed = Promise.withResolvers<void>();
  let exited = false;
  engine.on("POST /containers/:id/attach", async (_req, res) => {
    const h = await res.hijack();
    await Promise.race([script.started.promise, res.delay(5000)]);
    await h.write("hello, ");
    res.close();
  });
  engine.on("POST /containers/:id/wait", async (_req, res) => {
    await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    await Promise.race([followed.promise, res.delay(5000)]);
    exited = true;
    await res.chunk(`{"StatusCode":0}\n`);
    await res.endChunks();
  });
  engine.on("GET /containers/:id/json", (_req, res) => res.json(200, inspect(exited ? "exited" : "running")));
  engine.on("GET /containers/:id/logs", async (req, res) => {
    await res.chunked(200, "hello, world\r\n", { splitAt: [3, 9] });
    if (req.query.get("follow") === "1") followed.resolve();
  });
  const c = collectingIO();
  const tty = planContainer({ ...spec, tty: true });
  const outcome = await driveRun(client(engine, 2000, 2000), tty, c.io, noHooks, {
    ...opts(),
    timing: FAST,
  });
  assert.equal(c.stdout(), "hello, world\r\n");
  assert.equal(outcome.outputIncomplete, undefined);
});

Deno.test("a wait that stays silent after the output ended: the exit code comes from the container's state", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { frames: [frame(1, "done\n")], exitCode: 9 });
  let waitGaveUp = false; // the fake's wait closing its connection would also end the run: not this way
  engine.on("POST /containers/:id/wait", async (_req, res) => {
    await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    await res.delay(10_000); // acknowledged, then never a word
    waitGaveUp = true;
  });
  const c = collectingIO();
  const outcome = await driveRun(client(engine, 2000, 2000), PLAN, c.io, noHooks, {
    ...opts(),
    timing: FAST,
  });
  assert.equal(outcome.exitCode, 9);
  assert.equal(c.stdout(), "done\n");
  assert.equal(waitGaveUp, false, "the run ended while the wait was still silent");
});

Deno.test("a wait and an output stream that both stay silent after the exit: the liveness check ends the run", async () => {
  await using engine = await FakeEngine.start();
  const script = scriptEngine(engine, { frames: [], exitCode: 2 });
  let exited = false;
  engine.on("POST /containers/:id/attach", async (_req, res) => {
    const h = await res.hijack();
    await Promise.race([script.started.promise, res.delay(5000)]);
    await h.write(LOG.subarray(0, 12));
    exited = true; // the command ended; the engine passes on neither its output's end nor its exit
    await res.delay(10_000);
  });
  let silenceEnded = false;
  engine.on("POST /containers/:id/wait", async (_req, res) => {
    await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    await res.delay(10_000);
    silenceEnded = true;
  });
  engine.on(
    "GET /containers/:id/json",
    (_req, res) => res.json(200, inspect(exited ? "exited" : "running", 2)),
  );
  engine.on("GET /containers/:id/logs", (_req, res) => res.chunked(200, LOG));
  const c = collectingIO();
  const outcome = await driveRun(client(engine, 2000, 2000), PLAN, c.io, noHooks, {
    ...opts(),
    timing: { ...FAST, livenessMs: 50 },
  });
  assert.equal(silenceEnded, false, "the run ended while the engine was still silent");
  assert.equal(outcome.exitCode, 2);
  assert.equal(c.stdout(), "one\ntwo\nthree\n");
  assert.equal(c.stderr(), "warn\nbye\n");
  assert.equal(outcome.outputIncomplete, undefined);
});

Deno.test("an interrupt while the engine passes on nothing after the exit still ends the run", async () => {
  await using engine = await FakeEngine.start();
  const script = scriptEngine(engine, { frames: [], exitCode: 0 });
  let stopped = false;
  let silenceEnded = false;
  engine.on("POST /containers/:id/attach", async (_req, res) => {
    await res.hijack();
    await Promise.race([script.started.promise, res.delay(5000)]);
    await res.delay(10_000);
    silenceEnded = true;
  });
  engine.on("POST /containers/:id/wait", async (_req, res) => {
    await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    await res.delay(10_000);
  });
  engine.on("POST /containers/:id/stop", (_req, res) => {
    stopped = true;
    return res.empty(304); // already stopped
  });
  engine.on(
    "GET /containers/:id/json",
    (_req, res) => res.json(200, inspect(stopped ? "exited" : "running", 0)),
  );
  engine.on("GET /containers/:id/logs", (_req, res) => res.chunked(200, new Uint8Array(0)));
  const ctl = new AbortController();
  const outcome = await driveRun(client(engine, 2000, 2000), PLAN, collectingIO().io, {
    ...noHooks,
    onStarted: () => Promise.resolve(void setTimeout(() => ctl.abort("SIGTERM"), 20)),
  }, { ...opts(ctl.signal), timing: FAST });
  assert.equal(silenceEnded, false, "the run ended while the engine was still silent");
  assert.equal(outcome.exitCode, 143);
  assert.equal(outcome.interrupted, "SIGTERM");
});
