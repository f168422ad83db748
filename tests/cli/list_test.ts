/** `moat list`: pure helpers as tables, then the spawned CLI against crafted records and a fake engine. */
import assert from "node:assert/strict";
import {
  formatListTable,
  LIST_HEADER,
  listJsonChunks,
  listJsonItem,
  parseListArgs,
  sandboxColumn,
  tableEntries,
} from "../../lib/cli/list.ts";
import { listEntries } from "../../lib/run/reconcile.ts";
import { UsageError } from "../../lib/errors.ts";
import { currentOwner } from "../../lib/store/owner.ts";
import { moat, scratch } from "../engine/helpers.ts";
import { FakeEngine } from "../fake_engine.ts";
import {
  DEAD_OWNER,
  homeLabel,
  OTHER_HOME,
  record,
  snapshotRecords,
  summary,
  writeDamaged,
  writeRecords,
} from "./run_records.ts";

// ---- pure helpers -------------------------------------------------------------------------------------

for (
  const [args, expected] of [
    [[], { help: false, json: false, all: false }],
    [["--json"], { help: false, json: true, all: false }],
    [["-a"], { help: false, json: false, all: true }],
    [["--all", "--json"], { help: false, json: true, all: true }],
    [["-h"], { help: true, json: false, all: false }],
    [["--help", "stray"], { help: true, json: false, all: false }],
  ] as const
) {
  Deno.test(`parseListArgs reads ${JSON.stringify(args)}`, () => {
    assert.deepEqual(parseListArgs([...args]), expected);
  });
}

for (
  const [args, message] of [
    [["--js"], /^Unknown option '--js'/],
    [["--json=1"], /^Option '--json' does not take a value/],
    [["-j"], /^Unknown option '-j'/],
    [["abc"], /^Unexpected argument "abc": moat list takes no arguments$/],
  ] as const
) {
  Deno.test(`parseListArgs refuses ${JSON.stringify(args)} as a usage error`, () => {
    assert.throws(() => parseListArgs([...args]), (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.match(err.message, message);
      return true;
    });
  });
}

const NOW = Date.parse("2026-01-01T01:00:00.000Z");
const running = (id: string, patch = {}) =>
  record(id, { state: "running", exitCode: null, finishedAt: null, removed: false, ...patch });

for (
  const [rec, col] of [
    [record("r1"), "gvisor (runsc)"],
    [record("r1", { runtime: "runsc-kvm" }), "gvisor (runsc-kvm)"],
    [record("r1", { sandbox: "none", runtime: "runc" }), "none (runc)"],
    [record("r1", { runtime: null }), "gvisor"],
  ] as const
) {
  Deno.test(`the SANDBOX column of ${rec.sandbox}/${rec.runtime} reads "${col}"`, () => {
    assert.equal(sandboxColumn(rec), col);
  });
}

Deno.test("an empty list is the header line alone", () => {
  assert.equal(formatListTable([], NOW), LIST_HEADER.join("  ") + "\n");
});

Deno.test("the table shows name, id, state, sandbox, image, age and exit code in columns", () => {
  const entries = listEntries(
    [record("aaaaaaaaaaa1", { name: "demo", exitCode: 7 }), running("bbbbbbbbbbb2")],
    [],
    new Set(),
  );
  assert.equal(
    formatListTable(entries, NOW),
    [
      "NAME  ID            STATE   SANDBOX         IMAGE                     AGE  EXIT",
      "demo  aaaaaaaaaaa1  exited  gvisor (runsc)  moat-test/busybox:latest  1h   7",
      "-     bbbbbbbbbbb2  lost    gvisor (runsc)  moat-test/busybox:latest  1h   -",
      "",
    ].join("\n"),
  );
});

// ---- the spawned CLI ----------------------------------------------------------------------------------

const HEADER_RE = /^NAME +ID +STATE +SANDBOX +IMAGE +AGE +EXIT\n/;

Deno.test("moat list on an empty MOAT_HOME prints only the header, asking the engine once for orphans", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/json", { status: 200, json: [] });
  const s = await scratch();
  try {
    const env = { DOCKER_HOST: `unix://${engine.endpoint.path}` };
    const r = await moat(["list"], { home: s.home, env });
    assert.equal(r.code, 0);
    assert.equal(r.out, "NAME  ID  STATE  SANDBOX  IMAGE  AGE  EXIT\n");
    assert.equal(r.stderr, "");
    const j = await moat(["ls", "--json"], { home: s.home, env });
    assert.equal(j.code, 0);
    assert.equal(j.out, "[]\n");
    assert.equal(j.stderr, "");
    assert.deepEqual(engine.calls(), [
      "GET /_ping",
      "GET /containers/json",
      "GET /_ping",
      "GET /containers/json",
    ]);
  } finally {
    await s.cleanup();
  }
});

Deno.test("moat list on an empty MOAT_HOME says nothing on stderr when the engine is down", async () => {
  const s = await scratch();
  try {
    const r = await moat(["list"], { home: s.home, env: { DOCKER_HOST: `unix://${s.home}/missing.sock` } });
    assert.equal(r.code, 0);
    assert.equal(r.out, "NAME  ID  STATE  SANDBOX  IMAGE  AGE  EXIT\n");
    assert.equal(r.stderr, "", "no records to show: nothing to say about the engine, and no notice");
  } finally {
    await s.cleanup();
  }
});

Deno.test("moat list notices this MOAT_HOME's orphan, not its kept container, a live run, or other homes'", async () => {
  const me = currentOwner();
  await using engine = await FakeEngine.start();
  const s = await scratch();
  const dead = { "dev.moat.owner-pid": "1", "dev.moat.boot-id": DEAD_OWNER.bootId, ...homeLabel(s.home) };
  engine.on("GET /containers/json", {
    status: 200,
    json: [
      summary("aaaaaaaaaaa1", "running", "Up 1 minute", dead),
      summary("bbbbbbbbbbb2", "exited", "Exited (0) 1 hour ago", { ...dead, "dev.moat.keep": "true" }),
      summary("ccccccccccc3", "running", "Up 1 minute", {
        "dev.moat.owner-pid": String(me.pid),
        "dev.moat.boot-id": me.bootId,
        ...homeLabel(s.home),
      }),
      // Left behind too, but by another MOAT_HOME (another user on this engine), or by an older moat
      // that did not label its home: not this home's to hear about.
      summary("ddddddddddd4", "running", "Up 1 minute", { ...dead, ...OTHER_HOME }),
      summary("eeeeeeeeeee5", "running", "Up 1 minute", {
        "dev.moat.owner-pid": "1",
        "dev.moat.boot-id": "x",
      }),
    ],
  });
  try {
    const r = await moat(["list"], { home: s.home, env: { DOCKER_HOST: `unix://${engine.endpoint.path}` } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, "NAME  ID  STATE  SANDBOX  IMAGE  AGE  EXIT\n");
    assert.equal(
      r.stderr,
      "moat: notice: 1 container left behind by a moat process that is gone (moat-aaaaaaaaaaa1); " +
        "remove it with:  moat clean\n",
    );
  } finally {
    await s.cleanup();
  }
});

/** Five crafted records (newest first: e1 … a1) and an engine that knows one container. */
async function craftedHome(home: string) {
  const me = currentOwner();
  const records = [
    record("aaaaaaaaaaa1", { createdAt: "2026-01-01T00:00:01.000Z", exitCode: 0 }),
    running("bbbbbbbbbbb2", { createdAt: "2026-01-01T00:00:02.000Z", owner: DEAD_OWNER }),
    running("ccccccccccc3", { createdAt: "2026-01-01T00:00:03.000Z", owner: me }),
    running("ddddddddddd4", { createdAt: "2026-01-01T00:00:04.000Z", name: "kept-one" }),
    record("eeeeeeeeeee5", {
      createdAt: "2026-01-01T00:00:05.000Z",
      sandbox: "none",
      runtime: "runc",
      exitCode: 7,
    }),
  ];
  await writeRecords(home, records);
  return records;
}

function engineWithOneContainer(engine: FakeEngine) {
  engine.on("GET /containers/json", {
    status: 200,
    json: [summary("ddddddddddd4", "exited", "Exited (3) 2 minutes ago")],
  });
}

/** What `moat list` says about the crafted home's one container: its run's owner is dead, it is not kept. */
const CRAFTED_NOTICE = "moat: notice: 1 container left behind by a moat process that is gone " +
  "(moat-ddddddddddd4); remove it with:  moat clean\n";

Deno.test("moat list reconciles crafted records with one container listing, writes nothing, notices the orphan", async () => {
  await using engine = await FakeEngine.start();
  engineWithOneContainer(engine);
  const s = await scratch();
  try {
    await craftedHome(s.home);
    const before = await snapshotRecords(s.home);
    const r = await moat(["list"], { home: s.home, env: { DOCKER_HOST: `unix://${engine.endpoint.path}` } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, CRAFTED_NOTICE);
    assert.match(r.out, HEADER_RE);
    const rows = r.out.trimEnd().split("\n").slice(1).map((l) => l.split(/ {2,}/));
    assert.deepEqual(rows.map((c) => [c[0], c[1], c[2], c[3], c[6]]), [
      ["-", "eeeeeeeeeee5", "exited", "none (runc)", "7"],
      ["kept-one", "ddddddddddd4", "exited", "gvisor (runsc)", "3"],
      ["-", "ccccccccccc3", "running", "gvisor (runsc)", "-"],
      ["-", "bbbbbbbbbbb2", "lost", "gvisor (runsc)", "-"],
      ["-", "aaaaaaaaaaa1", "exited", "gvisor (runsc)", "0"],
    ]);
    // One listing for the states; the second only confirms the orphan is still there before naming it.
    assert.deepEqual(engine.calls(), ["GET /_ping", "GET /containers/json", "GET /containers/json"]);
    for (const { query: q } of engine.requestsTo("GET /containers/json")) {
      assert.equal(q.get("all"), "1");
      assert.equal(q.get("size"), null);
      assert.deepEqual(JSON.parse(q.get("filters")!), { label: ["dev.moat.managed=true"] });
    }
    assert.deepEqual(await snapshotRecords(s.home), before, "no record was rewritten");
  } finally {
    await s.cleanup();
  }
});

Deno.test("moat list --json prints every record field plus shownState, shownExitCode, containerState, damage", async () => {
  await using engine = await FakeEngine.start();
  engineWithOneContainer(engine);
  const s = await scratch();
  try {
    const records = await craftedHome(s.home);
    const r = await moat(["list", "--json"], {
      home: s.home,
      env: { DOCKER_HOST: `unix://${engine.endpoint.path}` },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, CRAFTED_NOTICE, "the notice goes to stderr; stdout stays JSON");
    const items = JSON.parse(r.out) as Array<Record<string, unknown>>;
    assert.ok(Array.isArray(items));
    assert.deepEqual(items.map((i) => i.id), records.map((x) => x.id).reverse());
    const byId = new Map(records.map((x) => [x.id, x]));
    for (const item of items) {
      const { shownState: _s, shownExitCode: _e, containerState: _c, damage, ...rest } = item;
      assert.deepEqual(rest, byId.get(item.id as string), "the record's own fields, unchanged");
      assert.equal(damage, null);
    }
    assert.deepEqual(
      items.map((i) => [i.id, i.state, i.shownState, i.shownExitCode, i.containerState]),
      [
        ["eeeeeeeeeee5", "exited", "exited", 7, "absent"],
        ["ddddddddddd4", "running", "exited", 3, "exited"],
        ["ccccccccccc3", "running", "running", null, "absent"],
        ["bbbbbbbbbbb2", "running", "lost", null, "absent"],
        ["aaaaaaaaaaa1", "exited", "exited", 0, "absent"],
      ],
    );
  } finally {
    await s.cleanup();
  }
});

Deno.test("with the engine down moat list still lists the recorded states and says so in one stderr line", async () => {
  const s = await scratch();
  try {
    await craftedHome(s.home);
    const sock = `${s.home}/missing.sock`;
    const r = await moat(["list"], { home: s.home, env: { DOCKER_HOST: `unix://${sock}` } });
    assert.equal(r.code, 0);
    assert.equal(
      r.stderr,
      `moat: note: showing recorded states; the engine could not be asked: Docker engine not found: no socket at unix://${sock}\n`,
    );
    assert.doesNotMatch(r.stderr, /warning|gVisor|sandbox/i);
    const rows = r.out.trimEnd().split("\n").slice(1).map((l) => l.split(/ {2,}/));
    assert.deepEqual(rows.map((c) => [c[1], c[2], c[6]]), [
      ["eeeeeeeeeee5", "exited", "7"],
      ["ddddddddddd4", "running", "-"],
      ["ccccccccccc3", "running", "-"],
      ["bbbbbbbbbbb2", "running", "-"],
      ["aaaaaaaaaaa1", "exited", "0"],
    ]);
    const j = await moat(["list", "--json"], { home: s.home, env: { DOCKER_HOST: `unix://${sock}` } });
    assert.equal(j.code, 0);
    const items = JSON.parse(j.out) as Array<Record<string, unknown>>;
    assert.ok(items.every((i) => i.containerState === null && i.shownState === i.state));
  } finally {
    await s.cleanup();
  }
});

Deno.test("an engine slower than MOAT_ENGINE_TIMEOUT does not hold moat list up", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/json", async (_req, res) => {
    await res.delay(5000);
    await res.json(200, []);
  });
  const s = await scratch();
  try {
    await craftedHome(s.home);
    const r = await moat(["list"], {
      home: s.home,
      env: { DOCKER_HOST: `unix://${engine.endpoint.path}`, MOAT_ENGINE_TIMEOUT: "0.3" },
    });
    assert.equal(r.code, 0);
    assert.match(
      r.stderr,
      /^moat: note: showing recorded states; the engine could not be asked: Docker engine at unix:\/\/\S+ did not answer in time \(GET \/v1\.44\/containers\/json\S* took longer than 0\.3 s\)\n$/,
    );
    assert.equal(r.out.trimEnd().split("\n").length, 6);
  } finally {
    await s.cleanup();
  }
});

for (
  const [args, stderr] of [
    [["list", "--js"], /^moat: Unknown option '--js'.*\n {2}See: {2}moat list --help\n$/],
    [
      ["ls", "--json=yes"],
      /^moat: Option '--json' does not take a value\n {2}See: {2}moat list --help\n$/,
    ],
    [["list", "abc"], /^moat: Unexpected argument "abc": moat list takes no arguments\n/],
  ] as const
) {
  Deno.test(`moat ${args.join(" ")} is a usage error (exit 2, nothing on stdout)`, async () => {
    const s = await scratch();
    try {
      const r = await moat([...args], { home: s.home });
      assert.equal(r.code, 2);
      assert.equal(r.out, "");
      assert.match(r.stderr, stderr);
    } finally {
      await s.cleanup();
    }
  });
}

Deno.test("moat ls --help prints the list help on stdout with examples and exits 0", async () => {
  const r = await moat(["ls", "--help"], { home: "/nonexistent-moat-home" });
  assert.equal(r.code, 0);
  assert.equal(r.stderr, "");
  assert.match(r.out, /^Usage: moat list \[OPTIONS\]\n/);
  assert.match(r.out, /--json/);
  assert.match(r.out, /Examples:\n {2}moat list\n/);
});

Deno.test("moat list shows damaged records as damaged, with the file and what is wrong on stderr, and in --json", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/json", { status: 200, json: [] });
  const s = await scratch();
  try {
    await writeRecords(s.home, [record("aaaaaaaaaaa1", { createdAt: "2026-01-01T00:00:01.000Z" })]);
    const { corrupt, dirRecord, noOutput } = await writeDamaged(s.home, new Uint8Array());
    const runs = `${s.home}/runs`;
    const env = { DOCKER_HOST: `unix://${engine.endpoint.path}` };
    const r = await moat(["list"], { home: s.home, env });
    assert.equal(r.code, 0, r.stderr);
    const rows = r.out.trimEnd().split("\n").slice(1).map((l) => l.split(/ {2,}/));
    assert.deepEqual(rows, [
      ["-", corrupt, "damaged", "-", "-", "-", "-"],
      ["-", dirRecord, "damaged", "-", "-", "-", "-"],
      ["no-output", noOutput, "damaged", "gvisor (runsc)", "moat-test/busybox:latest", rows[2]![5]!, "4"],
      ["-", "aaaaaaaaaaa1", "exited", "gvisor (runsc)", "moat-test/busybox:latest", rows[3]![5]!, "0"],
    ]);
    const warnings = r.stderr.split("\n");
    assert.match(
      warnings[0]!,
      new RegExp(
        `^moat: warning: damaged run record ${corrupt}: ${runs}/${corrupt}/run\\.json: not valid JSON \\(.+\\); ` +
          "remove it with:  moat clean$",
      ),
    );
    assert.deepEqual(warnings.slice(1), [
      `moat: warning: damaged run record ${dirRecord}: ${runs}/${dirRecord}/run.json: a directory, not a file; ` +
      "remove it with:  moat clean",
      `moat: warning: damaged run record ${noOutput}: ${runs}/${noOutput}/output.bin: missing (moat created it ` +
      "with the record); remove it with:  moat clean",
      "",
    ]);

    const j = await moat(["list", "--json"], { home: s.home, env });
    assert.equal(j.code, 0, j.stderr);
    const items = JSON.parse(j.out) as Array<Record<string, unknown>>;
    assert.deepEqual(items[1], {
      id: dirRecord,
      shownState: "damaged",
      shownExitCode: null,
      containerState: "absent",
      damage: { path: `${runs}/${dirRecord}/run.json`, problem: "a directory, not a file" },
    });
    assert.equal(items[0]!.id, corrupt);
    assert.deepEqual(
      [items[2]!.id, items[2]!.name, items[2]!.state, items[2]!.shownState, items[2]!.shownExitCode],
      [noOutput, "no-output", "exited", "damaged", 4],
    );
    assert.deepEqual(items[2]!.damage, {
      path: `${runs}/${noOutput}/output.bin`,
      problem: "missing (moat created it with the record)",
    });
    assert.deepEqual([items[3]!.id, items[3]!.shownState, items[3]!.damage], [
      "aaaaaaaaaaa1",
      "exited",
      null,
    ]);
  } finally {
    await s.cleanup();
  }
});

Deno.test("a finished run damaged after it was indexed: --json shows the index, the table reads the directory", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/json", { status: 200, json: [] });
  const s = await scratch();
  try {
    const id = "aaaaaaaaaaa1";
    await writeRecords(s.home, [record(id, { outputFile: true })], { [id]: new Uint8Array([1]) });
    const env = { DOCKER_HOST: `unix://${engine.endpoint.path}` };
    const shown = async () => {
      const j = await moat(["list", "--json"], { home: s.home, env });
      assert.equal(j.code, 0, j.stderr);
      return (JSON.parse(j.out) as Array<Record<string, unknown>>).map((i) => i.shownState);
    };
    assert.deepEqual(await shown(), ["exited"]); // the index is made
    await Deno.remove(`${s.home}/runs/${id}/output.bin`);
    assert.deepEqual(await shown(), ["exited"], "a finished run is read from the index");
    const r = await moat(["list"], { home: s.home, env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.out.trimEnd().split("\n")[1]!.split(/ {2,}/).slice(1, 3), [id, "damaged"]);
    assert.match(r.stderr, new RegExp(`^moat: warning: damaged run record ${id}: .*output\\.bin: missing`));
    assert.deepEqual(await shown(), ["damaged"], "what the table found, the index now knows");
  } finally {
    await s.cleanup();
  }
});

Deno.test("listJsonChunks: a JSON array of listJsonItem, one run per line, in chunks of up to 64 KiB", () => {
  const many = Array.from({ length: 300 }, (_, i) =>
    record(`aaaaaaaa${i.toString(16).padStart(4, "0")}`, {
      workspace: `/w/${"x".repeat(300)}`,
      createdAt: new Date(Date.UTC(2026, 0, 1) + i).toISOString(),
    }));
  const cases = [
    [],
    [
      record("aaaaaaaaaaa2", { name: "ünïcode ✓", createdAt: "2026-01-01T00:00:02.000Z" }),
      record("aaaaaaaaaaa1", { state: "running", exitCode: null }),
    ],
    many,
  ];
  for (const runs of cases) {
    const entries = listEntries(runs, [], new Set());
    let text = "";
    const sizes: number[] = [];
    const decoder = new TextDecoder();
    for (const chunk of listJsonChunks(entries)) {
      sizes.push(chunk.byteLength);
      text += decoder.decode(chunk, { stream: true }); // each chunk is good until the next is asked for
    }
    assert.ok(sizes.every((n) => n <= 64 * 1024), `${sizes}`);
    assert.deepEqual(JSON.parse(text), entries.map(listJsonItem));
    if (entries.length) {
      assert.equal(text.split("\n").length, entries.length + 3, "[, one line per run, ], end");
    } else assert.equal(text, "[]\n");
  }
});

// ---- the table's limit -----------------------------------------------------------------------------------

/** `n` finished runs, newest first, ids `r…01` (newest) to `r…n`; created a minute apart. */
function finishedRuns(n: number) {
  return Array.from({ length: n }, (_, i) => {
    const k = String(n - i).padStart(2, "0");
    return record(`aaaaaaaaaa${k}`, {
      createdAt: new Date(Date.parse("2026-01-01T00:00:00Z") + (n - i) * 60_000).toISOString(),
    });
  });
}

Deno.test("tableEntries keeps the newest runs up to the limit, and older ones in progress, lost or damaged", () => {
  const recs = finishedRuns(6);
  recs[4] = running(recs[4]!.id, { createdAt: recs[4]!.createdAt });
  const entries = listEntries(recs, undefined, new Set([recs[4]!.id]), []);
  assert.deepEqual(tableEntries(entries, 3).map((e) => [e.id, e.shownState]), [
    ["aaaaaaaaaa06", "exited"],
    ["aaaaaaaaaa05", "exited"],
    ["aaaaaaaaaa04", "exited"],
    ["aaaaaaaaaa02", "running"],
  ]);
  assert.equal(tableEntries(entries, 10).length, 6);
  const lost = listEntries([running("bbbbbbbbbbb1")], [], new Set(), []);
  assert.equal(tableEntries([...entries.slice(0, 3), ...lost], 3).at(-1)!.shownState, "lost");
});

Deno.test("moat list shows the newest 20 runs and says how many are left out; -a and --json show every run", async () => {
  const s = await scratch();
  try {
    const recs = finishedRuns(25);
    recs[24] = running(recs[24]!.id, { createdAt: recs[24]!.createdAt, owner: currentOwner() });
    await writeRecords(s.home, recs);
    const env = { DOCKER_HOST: "unix:///nonexistent/moat-list-limit.sock" };
    const table = await moat(["list"], { home: s.home, env });
    assert.equal(table.code, 0, table.stderr);
    const ids = table.out.trimEnd().split("\n").slice(1).map((l) => l.split(/ {2,}/)[1]);
    assert.deepEqual(
      ids,
      [...recs.slice(0, 20).map((r) => r.id), recs[24]!.id],
      "the oldest, still running, too",
    );
    assert.match(
      table.stderr,
      /^moat: showing 21 of 25 runs, the newest first; every run: {2}moat list -a$/m,
    );
    const all = await moat(["list", "-a"], { home: s.home, env });
    assert.equal(all.out.trimEnd().split("\n").length, 1 + 25);
    assert.doesNotMatch(all.stderr, /showing \d+ of/);
    const json = await moat(["list", "--json"], { home: s.home, env });
    assert.equal(JSON.parse(json.out).length, 25);
    assert.doesNotMatch(json.stderr, /showing \d+ of/);
  } finally {
    await s.cleanup();
  }
});
