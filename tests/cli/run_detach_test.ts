/** `moat run -d` arguments, and black-box detached runs against the fake engine (recorder process included). */
import assert from "node:assert/strict";
import { parseRunArgs } from "../../lib/cli/run.ts";
import { UsageError } from "../../lib/errors.ts";
import { moat, moatEnv, ROOT, scratch } from "../engine/helpers.ts";
import { concat, FakeEngine, frame } from "../fake_engine.ts";

Deno.test("run args: -d and --detach set detach", () => {
  assert.equal(parseRunArgs(["-d", "--", "true"]).detach, true);
  assert.equal(parseRunArgs(["--detach"]).detach, true);
  assert.equal(parseRunArgs(["--", "true", "-d"]).detach, false);
  assert.equal(parseRunArgs([]).recordDetached, undefined);
});

const usage: [string, string[], RegExp][] = [
  ["-d with -i", ["-d", "-i", "--", "cat"], /^-d \(detach\) and -i \(interactive\) cannot be combined/],
  [
    "--record-detached with anything else",
    ["--record-detached", "abc", "-d"],
    /--record-detached is internal/,
  ],
];
for (const [label, args, re] of usage) {
  Deno.test(`run args: ${label} is a usage error`, () => {
    assert.throws(
      () => parseRunArgs(args),
      (err: unknown) => err instanceof UsageError && re.test(err.message),
    );
  });
}

const ID = "e".repeat(64);
const INFO = { Runtimes: { runc: { path: "runc" }, runsc: { path: "/usr/bin/runsc" } } };

function scriptEngine(engine: FakeEngine, o: { logDriver?: string; startError?: string; exitCode?: number }) {
  engine.on("GET /info", { status: 200, json: INFO });
  engine.on("GET /images/:name/json", { status: 200, json: { Id: "sha256:" + "1".repeat(64) } });
  engine.on("POST /containers/create", { status: 201, json: { Id: ID, Warnings: [] } });
  engine.on("GET /containers/:id/json", {
    status: 200,
    json: {
      Id: ID,
      Name: "/moat-x",
      State: { Status: "running", Running: true, ExitCode: 0 },
      Config: {},
      HostConfig: { Runtime: "runsc", LogConfig: { Type: o.logDriver ?? "json-file" } },
    },
  });
  engine.on(
    "POST /containers/:id/start",
    o.startError ? { status: 400, json: { message: o.startError } } : { status: 204 },
  );
  const log = concat(frame(1, "hello\n"), frame(2, "careful\n"), frame(1, "bye\n"));
  engine.on(
    "GET /containers/:id/logs",
    async (_req, res) => await res.chunked(200, log, { splitAt: [3, 20] }),
  );
  engine.on("POST /containers/:id/wait", { status: 200, json: { StatusCode: o.exitCode ?? 0 } });
  engine.on("DELETE /containers/:id", { status: 204 });
}

async function runDetached(engine: FakeEngine, extra: string[] = []) {
  const s = await scratch();
  // On the engine's network: the fake engine has no networks or relay for a run's own.
  const r = await moat([
    "run",
    "-d",
    "--network",
    "default",
    "--image",
    "img",
    "-e",
    "HOME=/root",
    ...extra,
    s.ws,
    "--",
    "work",
  ], {
    home: s.home,
    env: { DOCKER_HOST: `unix://${engine.path}` },
  });
  return { ...r, s };
}

async function readRecord(home: string): Promise<Record<string, unknown>> {
  const ids = (await Array.fromAsync(Deno.readDir(`${home}/runs`))).map((e) => e.name);
  assert.equal(ids.length, 1);
  return JSON.parse(await Deno.readTextFile(`${home}/runs/${ids[0]}/run.json`));
}

/** Poll the record until its state is final; fail (not hang) after 30 s. */
async function finalRecord(home: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const rec = await readRecord(home);
    if (["exited", "failed", "interrupted"].includes(rec.state as string)) return rec;
    if (Date.now() > deadline) assert.fail(`the run never ended: ${JSON.stringify(rec)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("moat run -d prints only the run id; its recorder records the output, exit code and removal", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { exitCode: 4 });
  const r = await runDetached(engine);
  try {
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.out, /^[0-9a-f]{12}\n$/);
    assert.equal(r.stderr, "");
    const id = r.out.trim();
    const rec = await finalRecord(r.s.home);
    assert.equal(rec.id, id);
    assert.equal(rec.detached, true);
    assert.equal(rec.state, "exited");
    assert.equal(rec.exitCode, 4);
    assert.equal(rec.removed, true);
    assert.equal(rec.containerId, ID);
    const logs = await moat(["logs", id], { home: r.s.home });
    assert.equal(logs.out, "hello\nbye\n");
    assert.equal(logs.stderr, "careful\n");
    // The foreground never attached; the recorder waited, followed the log and removed the container.
    assert.equal(engine.requestsTo("POST /containers/:id/attach").length, 0);
    assert.ok(engine.requestsTo("GET /containers/:id/logs").some((q) => q.query.get("follow") === "1"));
    assert.equal(engine.requestsTo("DELETE /containers/:id").length, 1);
  } finally {
    await r.s.cleanup();
  }
});

Deno.test("moat run -d --keep: the recorder leaves the container", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, {});
  const r = await runDetached(engine, ["--keep"]);
  try {
    assert.equal(r.code, 0, r.stderr);
    const rec = await finalRecord(r.s.home);
    assert.deepEqual([rec.state, rec.exitCode, rec.kept, rec.removed], ["exited", 0, true, false]);
    assert.equal(engine.requestsTo("DELETE /containers/:id").length, 0);
  } finally {
    await r.s.cleanup();
  }
});

Deno.test("moat run -d with an unreadable log driver fails with 125 before starting anything", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { logDriver: "none" });
  const r = await runDetached(engine);
  try {
    assert.equal(r.code, 125);
    assert.equal(r.out, "");
    assert.match(r.stderr, /^moat: Cannot record the output of a detached run: the engine's log driver/);
    assert.equal(engine.requestsTo("POST /containers/:id/start").length, 0);
    assert.equal(engine.requestsTo("DELETE /containers/:id").length, 1);
    const rec = await readRecord(r.s.home);
    assert.deepEqual([rec.state, rec.removed], ["failed", true]);
  } finally {
    await r.s.cleanup();
  }
});

Deno.test("moat run -d of a command the image does not have exits 127 like moat run", async () => {
  await using engine = await FakeEngine.start();
  scriptEngine(engine, { startError: 'exec: "work": executable file not found in $PATH' });
  const r = await runDetached(engine);
  try {
    assert.equal(r.code, 127);
    assert.equal(r.out, "");
    assert.match(r.stderr, /^moat: The command was not found in the image/);
    const rec = await readRecord(r.s.home);
    assert.deepEqual([rec.state, rec.removed], ["failed", true]);
  } finally {
    await r.s.cleanup();
  }
});

Deno.test("moat run -d -i is a usage error and contacts no engine", async () => {
  await using engine = await FakeEngine.start();
  const r = await runDetached(engine, ["-i"]);
  try {
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^moat: -d \(detach\) and -i \(interactive\) cannot be combined/);
    assert.deepEqual(engine.calls(), []);
  } finally {
    await r.s.cleanup();
  }
});

Deno.test("moat run -d without permission to start its recorder fails with 125 before contacting the engine", async () => {
  await using engine = await FakeEngine.start();
  const s = await scratch();
  try {
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-net",
        `${ROOT}/main.ts`,
        "run",
        "-d",
        s.ws,
        "--",
        "true",
      ],
      env: moatEnv(s.home, { DOCKER_HOST: `unix://${engine.path}` }),
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 125, stderr);
    assert.match(stderr, /^moat: Cannot start the process that records a detached run: Deno does not allow/);
    assert.match(stderr, /--allow-run=/);
    assert.deepEqual(engine.calls(), []);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(s.home)), [], "no record");
  } finally {
    await s.cleanup();
  }
});
