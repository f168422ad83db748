/**
 * `-t` runs and second interrupts against the fake engine: the raw stream, the host terminal's raw mode on
 * every path out, the pty size at create, after start and on SIGWINCH, and a second interrupt that kills.
 */
import assert from "node:assert/strict";
import { driveRun, type Terminal } from "../../lib/run/lifecycle.ts";
import { planContainer } from "../../lib/run/plan.ts";
import { concat, FakeEngine } from "../fake_engine.ts";
import { clientFor, collectingIO, ID, noHooks, opts, scriptEngine, spec } from "./lifecycle_fixture.ts";

const ttySpec = { ...spec, interactive: true, tty: true, consoleSize: { rows: 37, cols: 101 } };

/** A host terminal that records what the lifecycle did to it; `resize` plays a SIGWINCH. */
function fakeTerminal(rows = 37, cols = 101) {
  const events: string[] = [];
  let listener: (() => void) | undefined;
  let size = { rows, cols };
  const terminal: Terminal = {
    size: () => size,
    setRaw: (on) => Promise.resolve(void events.push(on ? "raw" : "restored")),
    onResize(fn) {
      listener = fn;
      return () => {
        listener = undefined;
      };
    },
  };
  return {
    terminal,
    events,
    resize(r: number, c: number) {
      size = { rows: r, cols: c };
      listener?.();
    },
    listening: () => listener !== undefined,
  };
}

/** Stdin that never ends on its own (a terminal); it ends when the test is over. */
function terminalStdin() {
  const done = Promise.withResolvers<number | null>();
  return { stdin: { read: () => done.promise }, end: () => done.resolve(null) };
}

/** `?h=&w=` of every resize the engine received. */
function resizes(engine: FakeEngine): string[] {
  return engine.requestsTo("POST /containers/:id/resize").map((r) =>
    `${r.query.get("h")}x${r.query.get("w")}`
  );
}

Deno.test("a -t run: Tty and ConsoleSize at create, raw output byte-exact, size after start, terminal restored", async () => {
  await using engine = await FakeEngine.start();
  // Bytes that would parse as a frame header if the stream were (wrongly) demultiplexed.
  const raw = concat([1, 0, 0, 0, 0, 0, 0, 3], "$ \r\nok\r\n");
  const script = scriptEngine(engine, { frames: [raw], exitCode: 3 });
  const t = fakeTerminal();
  engine.on("POST /containers/:id/start", (_req, res) => {
    t.events.push("start");
    script.started.resolve();
    return res.empty(204);
  });
  engine.on("POST /containers/:id/resize", { status: 200 });
  const c = collectingIO();
  const input = terminalStdin();
  const outcome = await driveRun(
    clientFor(engine),
    planContainer(ttySpec),
    { ...c.io, stdin: input.stdin, terminal: t.terminal },
    noHooks,
    opts(),
  );
  input.end();
  assert.equal(outcome.exitCode, 3);
  const body = engine.requestsTo("POST /containers/create")[0]!.json as {
    Tty: boolean;
    HostConfig: { ConsoleSize: number[] };
  };
  assert.equal(body.Tty, true);
  assert.deepEqual(body.HostConfig.ConsoleSize, [37, 101]);
  assert.deepEqual(new TextEncoder().encode(c.stdout()), raw);
  assert.equal(c.stderr(), "");
  assert.deepEqual(c.record.map(([s]) => s), [1], "a pty's output is recorded as stdout");
  assert.deepEqual(t.events, ["raw", "start", "restored"], "raw before start, restored at the end");
  assert.deepEqual(resizes(engine), ["37x101"]);
  assert.equal(t.listening(), false, "SIGWINCH is no longer followed");
});

Deno.test("a SIGWINCH resizes the container; a resize racing the exit (409) is harmless", async () => {
  await using engine = await FakeEngine.start();
  const script = scriptEngine(engine, { frames: [], exitCode: 0 });
  const t = fakeTerminal(24, 80);
  const resized = Promise.withResolvers<void>();
  let n = 0;
  engine.on("POST /containers/:id/resize", (_req, res) => {
    n++;
    if (n === 2) resized.resolve();
    // The second one lands after the container exited.
    return n === 2 ? res.json(409, { message: `Container ${ID} is not running` }) : res.empty(200);
  });
  // Output ends only after the second resize was answered.
  engine.on("POST /containers/:id/attach", async (_req, res) => {
    await res.hijack();
    await Promise.race([script.started.promise, res.delay(5000)]);
    await Promise.race([resized.promise, res.delay(5000)]);
    script.outputDone.resolve();
  });
  const c = collectingIO();
  const hooks = {
    ...noHooks,
    onStarted: () => {
      setTimeout(() => t.resize(50, 132), 20);
      return Promise.resolve();
    },
  };
  const outcome = await driveRun(
    clientFor(engine),
    planContainer({ ...ttySpec, interactive: false }),
    { ...c.io, terminal: t.terminal },
    hooks,
    opts(),
  );
  assert.equal(outcome.exitCode, 0);
  assert.deepEqual(resizes(engine), ["24x80", "50x132"]);
  assert.deepEqual(t.events, [], "without stdin attached (-t alone) the terminal is not made raw");
});

/**
 * Engine trouble after raw mode was set: each path must restore the terminal and remove the container. A
 * start failure fails the run; a dropped wait or attach connection does not, since the engine still knows
 * the exit code (4).
 */
const troubles: Array<
  [string, "fails" | "exit 4", (engine: FakeEngine, script: ReturnType<typeof scriptEngine>) => void]
> = [
  [
    "a start failure",
    "fails",
    (engine) => engine.on("POST /containers/:id/start", { status: 500, json: { message: "runsc failed" } }),
  ],
  [
    "the engine dropping the wait connection",
    "exit 4",
    (engine, script) =>
      engine.on("POST /containers/:id/wait", async (_req, res) => {
        await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
        await Promise.race([script.outputDone.promise, res.delay(5000)]);
        res.close();
      }),
  ],
  [
    "the engine dropping the attach connection mid-stream, then the wait",
    "exit 4",
    (engine, script) => {
      engine.on("POST /containers/:id/attach", async (_req, res) => {
        const h = await res.hijack();
        await Promise.race([script.started.promise, res.delay(5000)]);
        await h.write("partial");
        res.close();
        script.outputDone.resolve();
      });
      engine.on("POST /containers/:id/wait", async (_req, res) => {
        await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
        await Promise.race([script.outputDone.promise, res.delay(5000)]);
        res.close();
      });
    },
  ],
];
for (const [label, expected, breakIt] of troubles) {
  Deno.test(`the host terminal is restored after ${label}`, async () => {
    await using engine = await FakeEngine.start();
    const script = scriptEngine(engine, { frames: [], exitCode: 4 });
    engine.on("POST /containers/:id/resize", { status: 200 });
    engine.on("GET /containers/:id/logs", { status: 501, json: { message: "no logs here" } });
    breakIt(engine, script);
    const t = fakeTerminal();
    const input = terminalStdin();
    const result = await driveRun(
      clientFor(engine),
      planContainer(ttySpec),
      { ...collectingIO().io, stdin: input.stdin, terminal: t.terminal },
      noHooks,
      opts(),
    ).catch((err: Error) => err);
    input.end();
    if (expected === "fails") assert.ok(result instanceof Error, "the run fails");
    else {assert.equal(
        result instanceof Error ? result : result.exitCode,
        4,
        "read from the container's state",
      );}
    assert.deepEqual(t.events, ["raw", "restored"]);
    assert.equal(engine.requestsTo("DELETE /containers/:id").length, 1);
  });
}

Deno.test("an interrupt of a -it run stops the container, exits 128+signal and restores the terminal", async () => {
  await using engine = await FakeEngine.start();
  const script = scriptEngine(engine, { frames: [], exitCode: 143 });
  engine.on("POST /containers/:id/resize", { status: 200 });
  engine.on("POST /containers/:id/attach", async (_req, res) => {
    await res.hijack();
    await Promise.race([script.outputDone.promise, res.delay(5000)]);
  });
  const ctl = new AbortController();
  const t = fakeTerminal();
  const input = terminalStdin();
  const hooks = {
    ...noHooks,
    onStarted: () => Promise.resolve(void setTimeout(() => ctl.abort("SIGHUP"), 10)),
  };
  const outcome = await driveRun(
    clientFor(engine),
    planContainer(ttySpec),
    { ...collectingIO().io, stdin: input.stdin, terminal: t.terminal },
    hooks,
    opts(ctl.signal),
  );
  input.end();
  assert.equal(outcome.interrupted, "SIGHUP");
  assert.equal(outcome.exitCode, 129);
  assert.deepEqual(t.events, ["raw", "restored"]);
  assert.equal(engine.requestsTo("POST /containers/:id/stop").length, 1);
});

Deno.test("a second interrupt kills the container at once instead of waiting out the grace period", async () => {
  await using engine = await FakeEngine.start();
  const script = scriptEngine(engine, { frames: [], exitCode: 137 });
  const killed = Promise.withResolvers<void>();
  engine.on("POST /containers/:id/attach", async (_req, res) => {
    await res.hijack();
    await Promise.race([script.outputDone.promise, res.delay(5000)]);
  });
  // The command ignores SIGTERM: the stop only returns once the kill arrived.
  engine.on("POST /containers/:id/stop", async (_req, res) => {
    await Promise.race([killed.promise, res.delay(5000)]);
    await res.empty(204);
  });
  engine.on("POST /containers/:id/kill", (_req, res) => {
    killed.resolve();
    script.outputDone.resolve();
    return res.empty(204);
  });
  const interrupt = new AbortController();
  const force = new AbortController();
  const stopping: number[] = [];
  const hooks = {
    ...noHooks,
    onStarted: () => Promise.resolve(void setTimeout(() => interrupt.abort("SIGINT"), 10)),
    onStopping: (grace: number) => {
      stopping.push(grace);
      setTimeout(() => force.abort("SIGINT"), 10);
    },
  };
  const outcome = await driveRun(clientFor(engine), planContainer(spec), collectingIO().io, hooks, {
    ...opts(interrupt.signal),
    stopGraceSeconds: 30,
    force: force.signal,
  });
  assert.equal(outcome.exitCode, 130);
  assert.deepEqual(stopping, [30], "one stop, announced once, with its grace period");
  const kills = engine.requestsTo("POST /containers/:id/kill");
  assert.equal(kills.length, 1);
  assert.equal(kills[0]!.query.get("signal"), "SIGKILL");
  assert.equal(engine.requestsTo("DELETE /containers/:id").length, 1);
});
