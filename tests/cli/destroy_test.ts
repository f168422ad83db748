/** Black-box `moat destroy` against crafted records and a fake engine. */
import assert from "node:assert/strict";
import { moat, scratch } from "../engine/helpers.ts";
import { FakeEngine } from "../fake_engine.ts";
import { exists, liveOwner, record, summary, writeRecord } from "./records_fixture.ts";
import { homeLabel } from "./run_records.ts";

const CID = "c".repeat(64);
const PROBE = "9".repeat(64);
const ID = "aaaaaaaaaaaa";
const NO_ENGINE = "unix:///nonexistent/moat-test/docker.sock";

async function destroy(args: string[], home: string, dockerHost: string) {
  return await moat(["destroy", ...args], { home, env: { DOCKER_HOST: dockerHost } });
}

Deno.test("destroy without a run is a usage error", async () => {
  const s = await scratch();
  try {
    const r = await destroy([], s.home, NO_ENGINE);
    assert.equal(r.code, 2);
    assert.equal(r.out, "");
    assert.match(r.stderr, /^moat: moat destroy needs the run to remove\n {2}Name it by id/);
  } finally {
    await s.cleanup();
  }
});

Deno.test("destroy removes a finished run's kept container, its leftover probe and its record", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/json", {
    status: 200,
    json: [summary(CID, ID), summary(PROBE, ID, { State: "created" }, { "dev.moat.probe": "passwd" })],
  });
  engine.on("DELETE /containers/:id", { status: 204 });
  const s = await scratch();
  try {
    const dir = await writeRecord(
      s.home,
      record({ id: ID, name: "demo", kept: true, removed: false, containerId: CID }),
      100,
    );
    const r = await destroy(["demo"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, `${ID}\n`);
    assert.match(
      r.stderr,
      /^moat: destroyed run aaaaaaaaaaaa \(demo\): containers cccccccccccc, 999999999999 and record removed$/m,
    );
    assert.deepEqual(
      engine.requestsTo("DELETE /containers/:id").map((q) => q.params.id).sort(),
      [CID, PROBE].sort(),
    );
    // The run's own containers by its id; the notice's listings (all of moat's) run alongside.
    const filters = engine.requestsTo("GET /containers/json").map((q) =>
      JSON.stringify(JSON.parse(q.query.get("filters")!).label)
    );
    assert.equal(filters.filter((f) => f === `["dev.moat.managed=true","dev.moat.run-id=${ID}"]`).length, 1);
    assert.ok(filters.every((f) => f.startsWith(`["dev.moat.managed=true"`)));
    assert.doesNotMatch(r.stderr, /notice/, "the destroyed run's own leftovers are not a notice");
    assert.equal(await exists(dir), false);
    assert.equal(engine.requestsTo("GET /info").length, 0, "destroy never asks about gVisor");
  } finally {
    await s.cleanup();
  }
});

Deno.test("destroy of a finished run whose relay is still being removed: not running, the relay goes with it", async () => {
  await using engine = await FakeEngine.start();
  const RELAY = "7".repeat(64);
  engine.on("GET /containers/json", {
    status: 200,
    json: [summary(RELAY, ID, { State: "running" }, { "dev.moat.probe": "relay" })],
  });
  engine.on("DELETE /containers/:id", { status: 204 });
  const s = await scratch();
  try {
    // Its record names the background process that removes the relay and the network (alive: this one).
    const dir = await writeRecord(s.home, record({ id: ID, containerId: CID, owner: liveOwner() }), 100);
    const r = await destroy([ID], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(engine.requestsTo("DELETE /containers/:id").map((q) => q.params.id), [RELAY]);
    assert.equal(await exists(dir), false);
  } finally {
    await s.cleanup();
  }
});

Deno.test("destroy names another run's orphaned container in one stderr notice, never on stdout", async () => {
  const OTHER = "bbbbbbbbbbbb";
  await using engine = await FakeEngine.start();
  const s = await scratch();
  engine.on("GET /containers/json", async (req, res) => {
    const labels: string[] = JSON.parse(req.query.get("filters")!).label;
    const mine = summary(CID, ID);
    // Another run's container whose moat process is gone (its labelled owner is from another boot).
    const other = summary("b".repeat(64), OTHER, { State: "running", Status: "Up 1 minute" }, {
      "dev.moat.owner-pid": "1",
      "dev.moat.boot-id": "another-boot",
      ...homeLabel(s.home),
    });
    await res.json(200, labels.includes(`dev.moat.run-id=${ID}`) ? [mine] : [mine, other]);
  });
  engine.on("DELETE /containers/:id", { status: 204 });
  try {
    await writeRecord(s.home, record({ id: ID, kept: true, removed: false, containerId: CID }));
    const r = await destroy([ID], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, `${ID}\n`);
    const notices = r.stderr.split("\n").filter((l) => l.startsWith("moat: notice:"));
    assert.deepEqual(notices, [
      `moat: notice: 1 container left behind by a moat process that is gone (moat-${OTHER}); ` +
      "remove it with:  moat clean",
    ]);
    assert.deepEqual(engine.requestsTo("DELETE /containers/:id").map((q) => q.params.id), [CID]);
  } finally {
    await s.cleanup();
  }
});

Deno.test("destroy refuses a running run without --force and removes nothing", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/json", {
    status: 200,
    json: [summary(CID, ID, { State: "running", Status: "Up" })],
  });
  const s = await scratch();
  try {
    const dir = await writeRecord(
      s.home,
      record({ id: ID, state: "running", exitCode: null, containerId: CID, removed: false }),
    );
    const r = await destroy([ID], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /^moat: Run aaaaaaaaaaaa is running; moat destroy does not remove a running run\n/,
    );
    assert.match(r.stderr, /moat destroy --force aaaaaaaaaaaa/);
    assert.equal(engine.requestsTo("DELETE /containers/:id").length, 0);
    assert.equal(engine.requestsTo("POST /containers/:id/stop").length, 0);
    assert.equal(await exists(dir), true);
  } finally {
    await s.cleanup();
  }
});

Deno.test("destroy refuses a run still being set up by a live owner, even before it has a container", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/json", { status: 200, json: [] });
  const s = await scratch();
  try {
    const dir = await writeRecord(
      s.home,
      record({ id: ID, state: "creating", exitCode: null, owner: await liveOwner() }),
    );
    const r = await destroy([ID], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /is running; moat destroy does not remove a running run/);
    assert.equal(await exists(dir), true);
  } finally {
    await s.cleanup();
  }
});

Deno.test("destroy --force stops a running run, then removes its container and record", async () => {
  await using engine = await FakeEngine.start();
  let running = true;
  engine.on("GET /containers/json", async (_req, res) => {
    await res.json(200, [summary(CID, ID, running ? { State: "running", Status: "Up" } : {})]);
  });
  engine.on("GET /containers/:id/json", async (_req, res) => {
    await res.json(200, {
      Id: CID,
      Name: "/moat-x",
      State: { Status: running ? "running" : "exited", Running: running, ExitCode: running ? 0 : 143 },
      Config: { Labels: {} },
      HostConfig: {},
    });
  });
  engine.on("POST /containers/:id/stop", async (_req, res) => {
    running = false;
    await res.empty(204);
  });
  engine.on("DELETE /containers/:id", { status: 204 });
  const s = await scratch();
  try {
    const dir = await writeRecord(
      s.home,
      record({ id: ID, state: "running", exitCode: null, containerId: CID, removed: false }),
    );
    const r = await destroy(["--force", "-t", "2", ID], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(engine.requestsTo("POST /containers/:id/stop")[0]!.query.get("t"), "2");
    assert.deepEqual(engine.requestsTo("DELETE /containers/:id").map((q) => q.params.id), [CID]);
    const calls = engine.calls();
    assert.ok(
      calls.indexOf("POST /containers/" + CID + "/stop") < calls.indexOf("DELETE /containers/" + CID),
    );
    assert.equal(await exists(dir), false);
  } finally {
    await s.cleanup();
  }
});

Deno.test("destroy keeps the record and exits 125 when the container cannot be removed", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/json", { status: 200, json: [summary(CID, ID)] });
  engine.on("DELETE /containers/:id", {
    status: 500,
    json: { message: "driver failed to remove root filesystem" },
  });
  const s = await scratch();
  try {
    const dir = await writeRecord(s.home, record({ id: ID, kept: true, removed: false, containerId: CID }));
    const r = await destroy([ID], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 125);
    assert.match(
      r.stderr,
      /^moat: Could not remove container cccccccccccc of run aaaaaaaaaaaa: .*driver failed/,
    );
    assert.match(r.stderr, new RegExp(`docker rm -f ${CID}`));
    assert.equal(await exists(dir), true);
  } finally {
    await s.cleanup();
  }
});

Deno.test("destroy of an unknown run is a usage error", async () => {
  const s = await scratch();
  try {
    await writeRecord(s.home, record({ id: ID }));
    const r = await destroy(["nope"], s.home, NO_ENGINE);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^moat: No run matches "nope"/);
  } finally {
    await s.cleanup();
  }
});

Deno.test("destroy --help prints usage with examples on stdout", async () => {
  const s = await scratch();
  try {
    const r = await destroy(["-h"], s.home, NO_ENGINE);
    assert.equal(r.code, 0);
    assert.match(r.out, /^Usage: moat destroy \[OPTIONS\] RUN/);
    assert.match(r.out, /Examples:/);
  } finally {
    await s.cleanup();
  }
});
