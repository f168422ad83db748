/** Black-box `moat clean` against crafted records and a fake engine: what it lists, asks and removes. */
import assert from "node:assert/strict";
import { moat, moatEnv, ROOT, scratch } from "../engine/helpers.ts";
import { FakeEngine } from "../fake_engine.ts";
import { exists, liveOwner, record, summary, writeRecord } from "./records_fixture.ts";
import { homeLabel, OTHER_HOME } from "./run_records.ts";
import { isYes } from "../../lib/cli/clean.ts";

const KEPT = "1".repeat(64);
const ORPHAN = "2".repeat(64);
const PROBE = "9".repeat(64);
const ACTIVE = "3".repeat(64);
const OTHER = "8".repeat(64);
const NO_ENGINE = "unix:///nonexistent/moat-test/docker.sock";

async function clean(args: string[], home: string, dockerHost: string) {
  return await moat(["clean", ...args], { home, env: { DOCKER_HOST: dockerHost } });
}

/**
 * A home with: a finished run without container (fin), a finished kept run (kept), a run whose owner
 * died while its container runs (orph), a run in progress with a live owner (live); and on the engine a
 * leftover probe of a dead owner with no record, and another MOAT_HOME's container left behind.
 */
async function scene(home: string, engine: FakeEngine) {
  const owner = await liveOwner();
  const dirs = {
    fin: await writeRecord(
      home,
      record({ id: "f1f1f1f1f1f1", name: "fin", createdAt: "2026-01-04T00:00:00Z" }),
      2000,
    ),
    kept: await writeRecord(
      home,
      record({
        id: "a2a2a2a2a2a2",
        name: "kept",
        kept: true,
        removed: false,
        containerId: KEPT,
        exitCode: 3,
        createdAt: "2026-01-03T00:00:00Z",
      }),
    ),
    orph: await writeRecord(
      home,
      record({
        id: "b3b3b3b3b3b3",
        state: "running",
        exitCode: null,
        containerId: ORPHAN,
        removed: false,
        createdAt: "2026-01-02T00:00:00Z",
      }),
    ),
    live: await writeRecord(
      home,
      record({
        id: "c4c4c4c4c4c4",
        state: "running",
        exitCode: null,
        containerId: ACTIVE,
        removed: false,
        owner,
        createdAt: "2026-01-05T00:00:00Z",
      }),
    ),
  };
  engine.on("GET /containers/json", {
    status: 200,
    json: [
      summary(KEPT, "a2a2a2a2a2a2", { Status: "Exited (3) 1 hour ago", SizeRw: 5000 }),
      summary(ORPHAN, "b3b3b3b3b3b3", { State: "running", Status: "Up 1 hour", SizeRw: 12000 }),
      summary(ACTIVE, "c4c4c4c4c4c4", { State: "running", Status: "Up 1 minute" }),
      summary(PROBE, "d5d5d5d5d5d5", { State: "created", Status: "Created" }, {
        "dev.moat.probe": "passwd",
        "dev.moat.owner-pid": "1",
        "dev.moat.boot-id": "another-boot",
        ...homeLabel(home),
      }),
      // Another MOAT_HOME's container left behind (another user's on this engine): theirs to clean.
      summary(OTHER, "e6e6e6e6e6e6", { State: "running", Status: "Up 1 hour", Created: 0 }, {
        "dev.moat.owner-pid": "1",
        "dev.moat.boot-id": "another-boot",
        ...OTHER_HOME,
      }),
    ],
  });
  return dirs;
}

Deno.test("clean --dry-run lists runs and orphaned containers with sizes and removes nothing", async () => {
  await using engine = await FakeEngine.start();
  engine.withNetworks();
  const s = await scratch();
  try {
    const dirs = await scene(s.home, engine);
    const r = await clean(["--dry-run"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.out.trimEnd().split("\n");
    assert.match(lines[0]!, /^RUN\s+NAME\s+STATE\s+WHY\s+CONTAINER\s+CONTAINER SIZE\s+RECORD SIZE$/);
    assert.equal(lines.length, 5, r.out);
    assert.match(lines[1]!, /^f1f1f1f1f1f1\s+fin\s+exited \(0\)\s+finished\s+-\s+-\s+2\.\d kB$/);
    assert.match(
      lines[2]!,
      /^a2a2a2a2a2a2\s+kept\s+exited \(3\)\s+finished\s+111111111111\s+5\.0 kB\s+\d+ B$/,
    );
    assert.match(lines[3]!, /^b3b3b3b3b3b3\s+-\s+running\s+orphaned\s+222222222222\s+12 kB\s+\d+ B$/);
    assert.match(lines[4]!, /^d5d5d5d5d5d5\s+-\s+probe\s+orphaned\s+999999999999\s+0 B\s+-$/);
    assert.doesNotMatch(r.out, /c4c4c4c4c4c4/, "a run whose owner lives is never listed");
    assert.doesNotMatch(r.out, /e6e6e6e6e6e6/, "nor another MOAT_HOME's container");
    assert.match(r.stderr, /^moat: dry run: 4 items, .* would be removed; nothing was removed$/m);
    assert.equal(engine.requestsTo("DELETE /containers/:id").length, 0);
    for (const d of Object.values(dirs)) assert.equal(await exists(d), true);
    assert.equal(engine.requestsTo("GET /containers/json")[0]!.query.get("size"), "1");
    assert.equal(engine.requestsTo("GET /info").length, 0, "clean never asks about gVisor");
  } finally {
    await s.cleanup();
  }
});

Deno.test("clean without -f refuses when stdin is not a terminal, after listing, and removes nothing", async () => {
  await using engine = await FakeEngine.start();
  engine.withNetworks();
  const s = await scratch();
  try {
    const dirs = await scene(s.home, engine);
    const r = await clean([], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 2);
    assert.match(r.out, /^RUN/);
    assert.match(
      r.stderr,
      /^moat: Refusing to remove 4 items without confirmation: stdin is not a terminal\n {2}Remove them without asking: {2}moat clean -f\n/,
    );
    assert.equal(engine.requestsTo("DELETE /containers/:id").length, 0);
    for (const d of Object.values(dirs)) assert.equal(await exists(d), true);
  } finally {
    await s.cleanup();
  }
});

Deno.test("clean -f removes finished runs, kept and orphaned containers, and leaves a live run alone", async () => {
  await using engine = await FakeEngine.start();
  engine.withNetworks();
  engine.on("DELETE /containers/:id", { status: 204 });
  const s = await scratch();
  try {
    const dirs = await scene(s.home, engine);
    const r = await clean(["-f"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      engine.requestsTo("DELETE /containers/:id").map((q) => q.params.id).sort(),
      [KEPT, ORPHAN, PROBE].sort(),
    );
    for (const q of engine.requestsTo("DELETE /containers/:id")) assert.equal(q.query.get("force"), "1");
    assert.equal(await exists(dirs.fin), false);
    assert.equal(await exists(dirs.kept), false);
    assert.equal(await exists(dirs.orph), false);
    assert.equal(await exists(dirs.live), true);
    assert.match(r.out, /^removed a2a2a2a2a2a2: container 111111111111, record$/m);
    assert.match(r.out, /^removed d5d5d5d5d5d5: container 999999999999$/m);
    assert.match(r.stderr, /^moat: removed 4 items, /m);
  } finally {
    await s.cleanup();
  }
});

Deno.test("clean -f --all-homes also removes other MOAT_HOMEs' containers left behind", async () => {
  await using engine = await FakeEngine.start();
  engine.withNetworks();
  engine.on("DELETE /containers/:id", { status: 204 });
  const s = await scratch();
  try {
    await scene(s.home, engine);
    const r = await clean(["-f", "--all-homes"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.out, /^e6e6e6e6e6e6\s+-\s+running\s+orphaned\s+888888888888\s/m);
    assert.deepEqual(
      engine.requestsTo("DELETE /containers/:id").map((q) => q.params.id).sort(),
      [KEPT, ORPHAN, PROBE, OTHER].sort(),
    );
    assert.match(r.stderr, /^moat: removed 5 items, /m);
  } finally {
    await s.cleanup();
  }
});

Deno.test("clean -f reports a container it could not remove, keeps that run's record, and exits 125", async () => {
  await using engine = await FakeEngine.start();
  engine.withNetworks();
  engine.on("DELETE /containers/:id", async (req, res) => {
    if (req.params.id === ORPHAN) await res.json(500, { message: "device or resource busy" });
    else await res.empty(204);
  });
  const s = await scratch();
  try {
    const dirs = await scene(s.home, engine);
    const r = await clean(["--force"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 125, "a removal that failed is a failure, as in moat destroy");
    assert.match(
      r.stderr,
      /^moat: could not remove container 222222222222 of run b3b3b3b3b3b3: .*device or resource busy$/m,
    );
    assert.match(r.stderr, new RegExp(`^ {2}Remove it by hand: {2}docker rm -f ${ORPHAN}$`, "m"));
    assert.match(r.stderr, /^moat: 1 item of 4 could not be removed \(see above\)$/m);
    assert.equal(await exists(dirs.orph), true, "the record stays while its container does");
    assert.equal(await exists(dirs.fin), false, "the others are still removed");
    assert.equal(await exists(dirs.kept), false);
  } finally {
    await s.cleanup();
  }
});

Deno.test("clean --workspace limits the cleaning to one workspace", async () => {
  await using engine = await FakeEngine.start();
  engine.withNetworks();
  engine.on("DELETE /containers/:id", { status: 204 });
  engine.on("GET /containers/json", {
    status: 200,
    json: [summary(ORPHAN, "b3b3b3b3b3b3", { State: "running" }, { "dev.moat.workspace": "/elsewhere" })],
  });
  const s = await scratch();
  try {
    const ws = await Deno.realPath(s.ws);
    const mine = await writeRecord(s.home, record({ id: "f1f1f1f1f1f1", workspace: ws }));
    const other = await writeRecord(s.home, record({ id: "e0e0e0e0e0e0", workspace: "/elsewhere" }));
    const r = await clean(["-f", "--workspace", s.ws], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await exists(mine), false);
    assert.equal(await exists(other), true);
    assert.equal(engine.requestsTo("DELETE /containers/:id").length, 0);
  } finally {
    await s.cleanup();
  }
});

Deno.test("clean with nothing to clean says so and exits 0", async () => {
  await using engine = await FakeEngine.start();
  engine.withNetworks();
  engine.on("GET /containers/json", { status: 200, json: [] });
  const s = await scratch();
  try {
    const r = await clean([], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, "");
    assert.match(r.stderr, /^moat: nothing to clean$/m);
  } finally {
    await s.cleanup();
  }
});

Deno.test("clean with the engine down fails with the engine error", async () => {
  const s = await scratch();
  try {
    await writeRecord(s.home, record({ id: "f1f1f1f1f1f1" }));
    const r = await clean(["-f"], s.home, NO_ENGINE);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /^moat: Docker engine not found/);
    assert.equal(await exists(`${s.home}/runs/f1f1f1f1f1f1`), true);
  } finally {
    await s.cleanup();
  }
});

Deno.test("clean rejects arguments it does not take, and prints help on stdout", async () => {
  const s = await scratch();
  try {
    const bad = await clean(["abc"], s.home, NO_ENGINE);
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /^moat: Unexpected argument "abc": moat clean takes no runs\n {2}Remove one run: {2}moat destroy abc/,
    );
    const help = await clean(["--help"], s.home, NO_ENGINE);
    assert.equal(help.code, 0);
    assert.match(help.out, /^Usage: moat clean \[OPTIONS\]/);
    assert.match(help.out, /Examples:/);
  } finally {
    await s.cleanup();
  }
});

/** Run `moat clean` on a pseudo-terminal (util-linux `script`), answering the question with `answer`. */
async function cleanOnTerminal(home: string, engine: FakeEngine, answer: string) {
  const child = new Deno.Command("script", {
    args: ["-qec", `'${Deno.execPath()}' run -A '${ROOT}/main.ts' clean`, "/dev/null"],
    env: moatEnv(home, { DOCKER_HOST: `unix://${engine.path}` }),
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(answer));
  // Keep stdin open until moat exits: an EOF on script's stdin would reach moat as end of input.
  const [out, status] = await Promise.all([new Response(child.stdout).text(), child.status]);
  await writer.close();
  await child.stderr.cancel();
  return { code: status.code, out };
}

Deno.test("clean on a terminal asks, and removes on yes", async () => {
  await using engine = await FakeEngine.start();
  engine.withNetworks();
  engine.on("GET /containers/json", { status: 200, json: [] });
  const s = await scratch();
  try {
    const dir = await writeRecord(s.home, record({ id: "f1f1f1f1f1f1" }));
    const r = await cleanOnTerminal(s.home, engine, "y\n");
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /Remove 1 item\? \[y\/N\] /);
    assert.match(r.out, /removed f1f1f1f1f1f1: record/);
    assert.equal(await exists(dir), false);
  } finally {
    await s.cleanup();
  }
});

Deno.test("clean on a terminal removes nothing when the answer is not yes", async () => {
  await using engine = await FakeEngine.start();
  engine.withNetworks();
  engine.on("GET /containers/json", { status: 200, json: [] });
  const s = await scratch();
  try {
    const dir = await writeRecord(s.home, record({ id: "f1f1f1f1f1f1" }));
    const r = await cleanOnTerminal(s.home, engine, "n\n");
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /Remove 1 item\? \[y\/N\] /);
    assert.match(r.out, /moat: nothing removed/);
    assert.equal(await exists(dir), true);
  } finally {
    await s.cleanup();
  }
});

Deno.test("only y or yes, in any case, confirms", () => {
  const table: Array<[string | null, boolean]> = [
    ["y", true],
    ["Y", true],
    ["yes", true],
    [" YES ", true],
    ["", false],
    ["n", false],
    ["yep", false],
    [null, false],
  ];
  for (const [answer, want] of table) assert.equal(isYes(answer), want, String(answer));
});

Deno.test("clean lists damaged records with their file and problem, and -f removes them", async () => {
  await using engine = await FakeEngine.start();
  engine.withNetworks();
  engine.on("GET /containers/json", { status: 200, json: [] });
  const s = await scratch();
  try {
    const runs = `${s.home}/runs`;
    // run.json not JSON; run.json a directory; a finished record whose output.bin moat made is gone.
    await Deno.mkdir(`${runs}/d0d0d0d0d0d1`, { recursive: true });
    await Deno.writeTextFile(`${runs}/d0d0d0d0d0d1/run.json`, "{ half");
    await Deno.mkdir(`${runs}/d0d0d0d0d0d2/run.json`, { recursive: true });
    await writeRecord(s.home, record({ id: "d0d0d0d0d0d3", name: "no-output", outputFile: true }));
    // A damaged record whose moat process lives (its output.bin removed under it) is left alone.
    const owner = await liveOwner();
    const live = await writeRecord(
      s.home,
      record({ id: "d0d0d0d0d0d4", state: "running", exitCode: null, owner, outputFile: true }),
    );

    const dry = await clean(["--dry-run"], s.home, `unix://${engine.path}`);
    assert.equal(dry.code, 0, dry.stderr);
    const rows = dry.out.trimEnd().split("\n").slice(1).map((l) => l.split(/ {2,}/).slice(0, 5));
    assert.deepEqual(rows, [
      ["d0d0d0d0d0d1", "-", "damaged", "damaged", "-"],
      ["d0d0d0d0d0d2", "-", "damaged", "damaged", "-"],
      ["d0d0d0d0d0d3", "no-output", "exited (0)", "damaged", "-"],
    ]);
    const notes = dry.stderr.split("\n");
    assert.match(
      notes[0]!,
      new RegExp(
        `^moat: damaged run record d0d0d0d0d0d1: ${runs}/d0d0d0d0d0d1/run\\.json: not valid JSON \\(`,
      ),
    );
    assert.equal(
      notes[1],
      `moat: damaged run record d0d0d0d0d0d2: ${runs}/d0d0d0d0d0d2/run.json: a directory, not a file`,
    );
    assert.equal(
      notes[2],
      `moat: damaged run record d0d0d0d0d0d3: ${runs}/d0d0d0d0d0d3/output.bin: missing (moat created it with the record)`,
    );
    assert.match(notes[3]!, /^moat: dry run: 3 items, /);

    const r = await clean(["-f"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.out, /^removed d0d0d0d0d0d1: record$/m);
    assert.match(r.out, /^removed d0d0d0d0d0d2: record$/m);
    assert.match(r.out, /^removed d0d0d0d0d0d3: record$/m);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(runs))).map((e) => e.name), ["d0d0d0d0d0d4"]);
    assert.equal(await exists(live), true);
  } finally {
    await s.cleanup();
  }
});

Deno.test("clean removes the run networks system networks calls orphaned, and only those", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/json", { status: 200, json: [] });
  const s = await scratch();
  try {
    const owner = await liveOwner();
    const labels = (runId: string, more: Record<string, string>) => ({
      "dev.moat.managed": "true",
      "dev.moat.run-id": runId,
      "dev.moat.workspace": "/ws",
      ...more,
    });
    const dead = { "dev.moat.owner-pid": "1", "dev.moat.boot-id": "another-boot" };
    const live = { "dev.moat.owner-pid": String(owner.pid), "dev.moat.boot-id": owner.bootId };
    const networks = engine.withNetworks([
      // moat doctor's, left by a doctor killed with -9; a run's, whose moat lives; another MOAT_HOME's.
      {
        Name: "moat-net-a1a1a1a1a1a1",
        Id: "a".repeat(64),
        Labels: labels("a1a1a1a1a1a1", { ...dead, ...homeLabel(s.home), "dev.moat.probe": "doctor" }),
      },
      {
        Name: "moat-net-b2b2b2b2b2b2",
        Id: "b".repeat(64),
        Labels: labels("b2b2b2b2b2b2", { ...live, ...homeLabel(s.home) }),
      },
      {
        Name: "moat-net-c3c3c3c3c3c3",
        Id: "c".repeat(64),
        Labels: labels("c3c3c3c3c3c3", { ...dead, ...OTHER_HOME }),
      },
    ]);
    const listed = JSON.parse(
      (await moat(["system", "networks", "--json"], {
        home: s.home,
        env: { DOCKER_HOST: `unix://${engine.path}` },
      })).out,
    );
    const orphaned = listed.filter((n: { role: string }) => n.role === "orphaned").map((
      n: { name: string },
    ) => n.name);
    assert.deepEqual(orphaned, ["moat-net-a1a1a1a1a1a1"]);

    const dry = await clean(["--dry-run"], s.home, `unix://${engine.path}`);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.out, /^a1a1a1a1a1a1\s+-\s+network\s+orphaned\s+-\s+-\s+-$/m);
    assert.equal(dry.out.trimEnd().split("\n").length, 2, dry.out);

    const r = await clean(["-f"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.out, /^removed a1a1a1a1a1a1: network moat-net-a1a1a1a1a1a1$/m);
    assert.deepEqual([...networks.values()].map((n) => n["Name"]).sort(), [
      "moat-net-b2b2b2b2b2b2",
      "moat-net-c3c3c3c3c3c3",
    ]);
    const after = JSON.parse(
      (await moat(["system", "networks", "--json"], {
        home: s.home,
        env: { DOCKER_HOST: `unix://${engine.path}` },
      })).out,
    );
    assert.deepEqual(
      after.map((n: { role: string }) => n.role),
      ["active"],
      "what is left of this home is active",
    );
  } finally {
    await s.cleanup();
  }
});
