/** Black-box `moat stop` against crafted records and a fake engine: who records the end, and when. */
import assert from "node:assert/strict";
import { moat, scratch } from "../engine/helpers.ts";
import { FakeEngine } from "../fake_engine.ts";
import { DEAD_OWNER, liveOwner, readRecord, record, summary, writeRecord } from "./records_fixture.ts";
import { homeLabel } from "./run_records.ts";
import { CID, inspect } from "../run/fixtures.ts";

const NO_ENGINE = "unix:///nonexistent/moat-test/docker.sock";

async function stop(args: string[], home: string, dockerHost: string) {
  return await moat(["stop", ...args], { home, env: { DOCKER_HOST: dockerHost } });
}

/** A fake engine whose container runs until `POST /stop`, then shows `exited` with `exitCode`. */
async function engineWithRunningContainer(exitCode: number, onStop?: () => Promise<void>) {
  const engine = await FakeEngine.start();
  let running = true;
  engine.on("GET /containers/:id/json", async (req, res) => {
    if (req.params.id !== CID) return await res.json(404, { message: "No such container" });
    await res.json(200, running ? inspect("running") : inspect("exited", exitCode));
  });
  engine.on("POST /containers/:id/stop", async (_req, res) => {
    running = false;
    await onStop?.();
    await res.empty(204);
  });
  engine.on("GET /containers/json", async (_req, res) => {
    await res.json(200, [
      summary(
        CID,
        "aaaaaaaaaaaa",
        running ? { State: "running", Status: "Up 1 minute" } : {
          State: "exited",
          Status: `Exited (${exitCode}) 1 second ago`,
        },
      ),
    ]);
  });
  return engine;
}

const RUNNING = {
  state: "running" as const,
  exitCode: null,
  containerId: CID,
  removed: false,
  finishedAt: null,
};

Deno.test("stop of a finished run exits 0 with a note, and needs no engine", async () => {
  const s = await scratch();
  try {
    await writeRecord(s.home, record({ id: "aaaaaaaaaaaa", exitCode: 3 }));
    const r = await stop(["aaaa"], s.home, NO_ENGINE);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, "aaaaaaaaaaaa\n");
    assert.match(
      r.stderr,
      /^moat: run aaaaaaaaaaaa already ended \(exited, exit code 3\); nothing to stop$/m,
    );
    assert.equal((await readRecord(s.home, "aaaaaaaaaaaa")).exitCode, 3, "the record is left as it was");
  } finally {
    await s.cleanup();
  }
});

Deno.test("stop without a run when nothing runs exits 0 and says so", async () => {
  const s = await scratch();
  try {
    await writeRecord(s.home, record({ id: "aaaaaaaaaaaa" }));
    const r = await stop([], s.home, NO_ENGINE);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, "");
    assert.match(r.stderr, /^moat: no run is running; nothing to stop$/m);
  } finally {
    await s.cleanup();
  }
});

Deno.test("stop with nothing to stop still notices a container left behind, on stderr only", async () => {
  await using engine = await FakeEngine.start();
  const s = await scratch();
  engine.on("GET /containers/json", {
    status: 200,
    json: [
      summary(CID, "bbbbbbbbbbbb", {}, {
        "dev.moat.owner-pid": "1",
        "dev.moat.boot-id": "another-boot",
        ...homeLabel(s.home),
      }),
    ],
  });
  try {
    await writeRecord(s.home, record({ id: "aaaaaaaaaaaa" }));
    const r = await stop([], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, "");
    assert.equal(
      r.stderr,
      "moat: no run is running; nothing to stop\n" +
        "moat: notice: 1 container left behind by a moat process that is gone (moat-bbbbbbbbbbbb); " +
        "remove it with:  moat clean\n",
    );
  } finally {
    await s.cleanup();
  }
});

Deno.test("stop of a run whose owner is gone names no notice about that run's own container", async () => {
  await using engine = await engineWithRunningContainer(143);
  const s = await scratch();
  try {
    await writeRecord(s.home, record({ id: "aaaaaaaaaaaa", ...RUNNING }));
    const r = await stop(["aaaaaaaaaaaa"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, "aaaaaaaaaaaa\n");
    assert.ok(engine.requestsTo("GET /containers/json").length > 0, "the notice asked the engine");
    assert.doesNotMatch(r.stderr, /notice/, "what became of the stopped run is said above; no notice");
  } finally {
    await s.cleanup();
  }
});

Deno.test("stop of a run whose owner is gone stops the container and records the exit code from inspect", async () => {
  await using engine = await engineWithRunningContainer(143);
  const s = await scratch();
  try {
    await writeRecord(s.home, record({ id: "aaaaaaaaaaaa", ...RUNNING, owner: DEAD_OWNER }));
    const r = await stop(["-t", "3", "aaaaaaaaaaaa"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, "aaaaaaaaaaaa\n");
    assert.equal(engine.requestsTo("POST /containers/:id/stop")[0]!.query.get("t"), "3");
    assert.match(r.stderr, /SIGTERM, SIGKILL after 3 s/);
    assert.match(r.stderr, /^moat: run aaaaaaaaaaaa stopped: exited, exit code 143$/m);
    const rec = await readRecord(s.home, "aaaaaaaaaaaa");
    assert.equal(rec.state, "exited");
    assert.equal(rec.exitCode, 143);
    assert.equal(rec.finishedAt, "2026-01-01T00:00:09.000000000Z");
    assert.equal(engine.requestsTo("GET /info").length, 0, "stop never asks about gVisor");
  } finally {
    await s.cleanup();
  }
});

Deno.test("stop without a run picks the newest running one and names it", async () => {
  await using engine = await engineWithRunningContainer(137);
  const s = await scratch();
  try {
    await writeRecord(
      s.home,
      record({ id: "aaaaaaaaaaaa", ...RUNNING, createdAt: "2026-01-01T00:00:00.000Z" }),
    );
    // Newer, but its container is not on the engine: it is not running.
    await writeRecord(
      s.home,
      record({
        id: "bbbbbbbbbbbb",
        ...RUNNING,
        containerId: "d".repeat(64),
        createdAt: "2026-02-01T00:00:00.000Z",
      }),
    );
    const r = await stop(["-t", "1"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^moat: the newest running run is aaaaaaaaaaaa$/m);
    assert.equal(r.out, "aaaaaaaaaaaa\n");
    assert.equal((await readRecord(s.home, "aaaaaaaaaaaa")).exitCode, 137);
    assert.equal((await readRecord(s.home, "bbbbbbbbbbbb")).state, "running", "the other run is untouched");
  } finally {
    await s.cleanup();
  }
});

Deno.test("stop leaves the record to a live owner that writes the end itself", async () => {
  const s = await scratch();
  const owner = await liveOwner();
  // The "owner" (this test) records exit 99 when the container stops; stop must not overwrite it with 143.
  await using engine = await engineWithRunningContainer(143, async () => {
    await writeRecord(
      s.home,
      record({ id: "aaaaaaaaaaaa", ...RUNNING, state: "exited", exitCode: 99, owner, error: "by the owner" }),
    );
  });
  try {
    await writeRecord(s.home, record({ id: "aaaaaaaaaaaa", ...RUNNING, owner }));
    const r = await stop(["aaaaaaaaaaaa"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    const rec = await readRecord(s.home, "aaaaaaaaaaaa");
    assert.equal(rec.exitCode, 99);
    assert.equal(rec.error, "by the owner");
    assert.match(r.stderr, /stopped: exited, exit code 99/);
  } finally {
    await s.cleanup();
  }
});

Deno.test("stop writes the end itself when a live owner does not record it in time", async () => {
  await using engine = await engineWithRunningContainer(143);
  const s = await scratch();
  try {
    await writeRecord(s.home, record({ id: "aaaaaaaaaaaa", ...RUNNING, owner: await liveOwner() }));
    const r = await stop(["aaaaaaaaaaaa"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    const rec = await readRecord(s.home, "aaaaaaaaaaaa");
    assert.equal(rec.state, "exited");
    assert.equal(rec.exitCode, 143);
  } finally {
    await s.cleanup();
  }
});

Deno.test("stop of a run whose container is gone and owner is dead records it as failed", async () => {
  await using engine = await FakeEngine.start();
  const s = await scratch();
  try {
    await writeRecord(s.home, record({ id: "aaaaaaaaaaaa", ...RUNNING }));
    const r = await stop(["aaaaaaaaaaaa"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(engine.requestsTo("POST /containers/:id/stop").length, 0);
    assert.match(r.stderr, /^moat: run aaaaaaaaaaaa was not running; recorded as failed$/m);
    const rec = await readRecord(s.home, "aaaaaaaaaaaa");
    assert.equal(rec.state, "failed");
    assert.equal(rec.exitCode, null);
    assert.equal(rec.removed, true);
    assert.match(rec.error ?? "", /no longer exists/);
  } finally {
    await s.cleanup();
  }
});

Deno.test("stop of a run whose owner died after its container exited records that exit code", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/:id/json", { status: 200, json: inspect("exited", 7) });
  const s = await scratch();
  try {
    await writeRecord(s.home, record({ id: "aaaaaaaaaaaa", ...RUNNING }));
    const r = await stop(["aaaaaaaaaaaa"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(engine.requestsTo("POST /containers/:id/stop").length, 0, "nothing to stop");
    assert.match(r.stderr, /was not running; recorded as exited, exit code 7/);
    assert.equal((await readRecord(s.home, "aaaaaaaaaaaa")).exitCode, 7);
  } finally {
    await s.cleanup();
  }
});

Deno.test("stop refuses bad arguments and unknown runs with exit 2", async () => {
  const s = await scratch();
  try {
    await writeRecord(s.home, record({ id: "aaaaaaaaaaaa" }));
    for (
      const [args, pattern] of [
        [["-t", "soon", "aaaa"], /^moat: --time "soon" is not a whole number of seconds/],
        [["zzz"], /^moat: No run matches "zzz"/],
        [["a", "b"], /^moat: Unexpected argument "b": moat stop takes one run/],
        [["--bogus"], /^moat: Unknown option '--bogus'/],
      ] as const
    ) {
      const r = await stop([...args], s.home, NO_ENGINE);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
    }
  } finally {
    await s.cleanup();
  }
});

Deno.test("stop --help prints usage with examples on stdout", async () => {
  const s = await scratch();
  try {
    const r = await stop(["--help"], s.home, NO_ENGINE);
    assert.equal(r.code, 0);
    assert.match(r.out, /^Usage: moat stop \[OPTIONS\] \[RUN\]/);
    assert.match(r.out, /Examples:/);
    assert.equal(r.stderr, "");
  } finally {
    await s.cleanup();
  }
});

Deno.test("stop with the engine down fails with the engine error when it needs the engine", async () => {
  const s = await scratch();
  try {
    await writeRecord(s.home, record({ id: "aaaaaaaaaaaa", ...RUNNING }));
    const r = await stop(["aaaaaaaaaaaa"], s.home, NO_ENGINE);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /^moat: Docker engine not found/);
  } finally {
    await s.cleanup();
  }
});
