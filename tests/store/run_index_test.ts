import assert from "node:assert/strict";
import {
  appendToIndex,
  indexHeader,
  indexPath,
  readIfThere,
  recordsPath,
  summaryLine,
} from "../../lib/store/index_file.ts";
import {
  asScan,
  compactIndex,
  dirStamp,
  type IndexedRun,
  MAX_APPENDED,
  parseIndex,
  readRecent,
  readRuns,
  rebuildIndex,
  settledStamp,
  STAMP_SETTLE_MS,
} from "../../lib/store/run_index.ts";
import { removeRunDir, type RunRecord, RunStore, scanRecords } from "../../lib/store/records.ts";
import { record, writeRecord } from "../cli/records_fixture.ts";
import { withHome } from "../temp_home.ts";
import { MoatError } from "../../lib/errors.ts";

const HEADER = indexHeader({ generation: "0123456789abcdef", sorted: 0, sortedBytes: 0, own: 0 });
const at = (id: string, over: Partial<RunRecord> = {}) => record({ id, ...over });
const summary = (id: string, state = "exited", offset = 60, length = 100) =>
  summaryLine({ ...at(id), state: state as RunRecord["state"] }, offset, length);

Deno.test("parseIndex: which runs an index holds, the last line about a run winning", () => {
  const A = "aaaaaaaaaaa1", B = "bbbbbbbbbbb1";
  const damage = { path: "/h/runs/x/output.bin", problem: "missing" };
  const cases: Array<
    { name: string; lines: string[]; runs: string[]; unreadable?: string[]; stamp?: string }
  > = [
    { name: "header only", lines: [], runs: [] },
    { name: "two runs", lines: [summary(A), summary(B)], runs: [A, B] },
    { name: "a run, then its removal", lines: [summary(A), `{"gone":"${A}"}`, summary(B)], runs: [B] },
    {
      name: "a run that became damaged, with and without a record",
      lines: [
        summary(A),
        summary(B),
        JSON.stringify({ damaged: { id: A, damage, record: at(A) } }),
        JSON.stringify({ damaged: { id: B, damage, record: null } }),
      ],
      runs: [A],
      unreadable: [B],
    },
    {
      name: "a damaged run repaired",
      lines: [JSON.stringify({ damaged: { id: A, damage, record: null } }), summary(A)],
      runs: [A],
    },
    {
      name: "the last stamp counts",
      lines: [`{"dir":"1:2:3"}`, summary(A), `{"dir":"4:5:6"}`],
      runs: [A],
      stamp: "4:5:6",
    },
    { name: "a run directory not named by moat", lines: [summary("notes")], runs: ["notes"] },
  ];
  for (const c of cases) {
    const parsed = parseIndex("/h", [HEADER, ...c.lines, ""].join("\n"));
    assert.ok(parsed, c.name);
    assert.deepEqual([...parsed.runs.keys()], c.runs, c.name);
    assert.deepEqual([...parsed.unreadable.keys()], c.unreadable ?? [], c.name);
    assert.equal(parsed.stamp, c.stamp, c.name);
    assert.equal(parsed.appended, c.lines.length, c.name);
  }
  // The state of a run is the one its last summary gives.
  const twice = parseIndex("/h", [HEADER, summary(A, "running"), summary(A, "exited"), ""].join("\n"))!;
  assert.equal(twice.runs.get(A)!.state, "exited");
  // A last line without its newline is an append in progress: not read yet.
  const torn = parseIndex("/h", [HEADER, summary(A), summary(B).slice(0, 20)].join("\n"))!;
  assert.deepEqual([...torn.runs.keys()], [A]);
});

Deno.test("parseIndex: an index moat cannot trust is refused, to be rebuilt", () => {
  const A = "aaaaaaaaaaa1";
  const cases: Array<[string, string]> = [
    ["empty", ""],
    ["no header", `${summary(A)}\n`],
    ["a header without its newline", HEADER],
    ["another format", `{"moatRunsIndex":2,"records":"0123456789abcdef"}\n`],
    ["a bad generation", `{"moatRunsIndex":1,"records":"xyz"}\n`],
    ["not JSON", `${HEADER}\n{"gone":\n${summary(A)}\n`],
    ["a summary with a field missing", `${HEADER}\n["${A}","exited",0,"2026-01-01T00:00:00.000Z",null,60]\n`],
    ["a state moat has not", `${HEADER}\n${summary(A, "paused")}\n`],
    ["an id that is a path", `${HEADER}\n${summary("../../etc")}\n`],
    ["a negative offset", `${HEADER}\n${summary(A, "exited", -1)}\n`],
    ["an unknown line", `${HEADER}\n{"moved":"${A}"}\n`],
    ["two things in one line", `${HEADER}\n{"gone":"${A}","dir":"1:2:3"}\n`],
    ["a damaged run without its damage", `${HEADER}\n{"damaged":{"id":"${A}","record":null}}\n`],
  ];
  for (const [name, text] of cases) assert.equal(parseIndex("/h", text), undefined, name);
});

Deno.test("dirStamp and settledStamp: a listing is remembered only once runs/ has been left alone", () => {
  const info = (mtime: number | null, ino: number | null = 7, nlink: number | null = 3) =>
    ({ mtime: mtime === null ? null : new Date(mtime), ino, nlink }) as Deno.FileInfo;
  assert.equal(dirStamp(info(1000)), "7:1000:3");
  assert.equal(dirStamp(info(null)), undefined, "no mtime: never remembered, always listed");
  assert.equal(dirStamp(info(1000, null)), undefined);
  assert.notEqual(dirStamp(info(1000, 7, 4)), dirStamp(info(1000, 7, 3)), "a directory made or removed");
  assert.equal(settledStamp(info(1000), 1000 + STAMP_SETTLE_MS + 1), "7:1000:3");
  assert.equal(settledStamp(info(1000), 1000 + STAMP_SETTLE_MS), undefined, "changed too recently");
  assert.equal(settledStamp(info(5000), 1000), undefined, "an mtime in the future");
});

/** The runs through the index, as a `RecordScan`. */
const viaIndex = (home: string) => asScan(readRuns(home));

Deno.test("readRuns finds what scanRecords finds, through every kind of change", async () => {
  await withHome(async (home) => {
    const same = (what: string) => assert.deepEqual(viaIndex(home), scanRecords(home), what);
    assert.deepEqual(readRuns(home), { runs: [], unreadable: [] }, "no runs/ at all");
    const a = RunStore.create(
      home,
      at("aaaaaaaaaaa1", { state: "creating", createdAt: "2026-01-01T00:00:01.000Z" }),
    );
    for (const id of ["bbbbbbbbbbb1", "bbbbbbbbbbb2", "bbbbbbbbbbb3"]) {
      await RunStore.create(home, at(id, { createdAt: `2026-01-01T00:00:0${id.at(-1)}.500Z` })).close();
    }
    await writeRecord(home, at("ccccccccccc1"));
    await Deno.mkdir(`${home}/runs/ccccccccccc2`); // no run.json: damaged
    same("first read: the index is made from the directories");
    assert.ok(Deno.statSync(indexPath(home)).isFile);
    same("second read: from the index");
    a.update({ state: "running", containerId: "c" });
    same("a run's record changed by moat (appended)");
    a.update({ state: "exited", exitCode: 3 });
    await a.close();
    same("a run that ended");
    await removeRunDir(home, "bbbbbbbbbbb2");
    same("a run removed by moat");
    await writeRecord(home, at("ddddddddddd1", { createdAt: "2026-01-02T00:00:00.000Z" }));
    same("a run directory made behind the index's back");
    await Deno.remove(`${home}/runs/bbbbbbbbbbb3`, { recursive: true });
    same("a run directory removed by hand");
    await writeRecord(home, at("eeeeeeeeeee1", { state: "running", exitCode: null }));
    same("a run in progress");
    await writeRecord(home, at("eeeeeeeeeee1", { state: "exited", exitCode: 9 }));
    same("a run in progress whose record changed without the index");
    await Deno.writeTextFile(`${home}/runs/ccccccccccc2/run.json`, JSON.stringify(at("ccccccccccc2")));
    same("a damaged run repaired");
    await Deno.writeTextFile(indexPath(home), "garbage\n");
    same("a damaged index: rebuilt");
    assert.match(await Deno.readTextFile(indexPath(home)), /^\{"moatRunsIndex":1,/);
    await Deno.writeTextFile(recordsPath(home), '{"moatRunsRecords":1,"generation":"ffffffffffffffff"}\n');
    same("a records file of another generation: records read from their directories");
    same("… and the index rebuilt");
    assert.deepEqual(readRuns(home).runs.map((r) => r.id), scanRecords(home).records.map((r) => r.id));
  });
});

Deno.test("a finished run is read from the index, and a rebuild reads the directories again", async () => {
  await withHome(async (home) => {
    await writeRecord(home, at("aaaaaaaaaaa1", { exitCode: 1, image: "first" }));
    assert.equal(readRuns(home).runs[0]!.exitCode, 1);
    // Edited by hand after the run ended: the index does not look (no file per finished run is read).
    await writeRecord(home, at("aaaaaaaaaaa1", { exitCode: 2, image: "second" }));
    assert.equal(readRuns(home).runs[0]!.exitCode, 1);
    assert.equal(asScan(readRuns(home)).records[0]!.image, "first");
    // A rebuild (moat clean makes one) reads every run directory.
    assert.equal(rebuildIndex(home).runs[0]!.exitCode, 2);
    assert.equal(asScan(readRuns(home)).records[0]!.image, "second");
  });
});

Deno.test("runs/ is listed again only when its stamp changed", async () => {
  await withHome(async (home) => {
    await writeRecord(home, at("aaaaaaaaaaa1"));
    await writeRecord(home, at("bbbbbbbbbbb1"));
    const past = new Date(Date.now() - 10 * STAMP_SETTLE_MS);
    const setMtime = (d: Date) => Deno.utimeSync(`${home}/runs`, d, d);
    setMtime(past); // left alone for a while: a listing of it is remembered
    readRuns(home);
    assert.match(await Deno.readTextFile(indexPath(home)), /\{"dir":"\d+:\d+:\d+"\}\n$/);
    // A rename inside runs/, its mtime set back: the stamp is as it was, so runs/ is not listed again.
    Deno.renameSync(`${home}/runs/bbbbbbbbbbb1`, `${home}/runs/.hidden`);
    setMtime(past);
    assert.deepEqual(readRuns(home).runs.map((r) => r.id), ["bbbbbbbbbbb1", "aaaaaaaaaaa1"], "not listed");
    // Any other mtime: listed, and the run that went away is gone.
    setMtime(new Date(past.getTime() + 1000));
    assert.deepEqual(readRuns(home).runs.map((r) => r.id), ["aaaaaaaaaaa1"]);
  });
});

Deno.test("an index grown to more than twice its runs is compacted by its next reader", async () => {
  await withHome(async (home) => {
    const stores = [];
    for (let i = 0; i < 20; i++) {
      stores.push(
        RunStore.create(home, at(`aaaaaa${i.toString(16).padStart(6, "0")}`, { state: "running" })),
      );
    }
    readRuns(home);
    for (let round = 0; round < 15; round++) for (const s of stores) s.update({ exitCode: round });
    for (const s of stores) {
      s.update({ state: "exited" });
      await s.close();
    }
    const lines = () => Deno.readTextFileSync(indexPath(home)).split("\n").length - 2;
    assert.ok(lines() > 2 * 20 + 256, `${lines()} lines before`);
    assert.deepEqual(viaIndex(home), scanRecords(home));
    assert.ok(lines() <= 21, `${lines()} lines after: one per run, and a stamp`);
    assert.deepEqual(viaIndex(home), scanRecords(home));
  });
});

Deno.test("an append that cannot be written removes the index, and the next reader rebuilds it", async () => {
  await withHome(async (home) => {
    const store = RunStore.create(home, at("aaaaaaaaaaa1", { state: "running" }));
    readRuns(home);
    await Deno.remove(recordsPath(home));
    await Deno.mkdir(recordsPath(home)); // not a file: the append fails
    store.update({ state: "exited", exitCode: 4 });
    await store.close();
    assert.throws(() => Deno.statSync(indexPath(home)), Deno.errors.NotFound);
    await Deno.remove(recordsPath(home));
    assert.equal(readRuns(home).runs[0]!.exitCode, 4);
    assert.deepEqual(viaIndex(home), scanRecords(home));
  });
});

Deno.test("moat processes appending while the index is compacted lose no line", async () => {
  await withHome(async (home) => {
    await Deno.mkdir(`${home}/runs`);
    rebuildIndex(home); // an empty index, so the writers append to it
    const writer = new URL("./index_writer.ts", import.meta.url).pathname;
    const prefixes = ["a0a0a0", "b1b1b1", "c2c2c2"];
    const PER_WRITER = 40;
    const children = prefixes.map((p) =>
      new Deno.Command(Deno.execPath(), { args: ["run", "-A", writer, home, p, String(PER_WRITER)] }).spawn()
    );
    let done = false;
    const finished = Promise.all(children.map((c) => c.status)).finally(() => done = true);
    const generations = new Set<string>();
    try {
      while (!done) {
        compactIndex(home);
        generations.add(readIfThere(indexPath(home))?.slice(0, 60) ?? "no index");
        await new Promise((r) => setTimeout(r, 0));
      }
    } finally {
      for (const s of await finished) assert.equal(s.code, 0);
    }
    assert.ok(!generations.has("no index"), "the index was never given up");
    assert.ok(generations.size > 1, "the index was rewritten while the writers appended");
    // The index itself (not the directories readRuns would list) holds every run in its final state.
    const index = parseIndex(home, Deno.readTextFileSync(indexPath(home)))!;
    assert.equal(index.runs.size, prefixes.length * PER_WRITER);
    for (const run of index.runs.values()) {
      const i = parseInt(run.id.slice(6), 16);
      assert.deepEqual([run.state, run.exitCode], ["exited", i % 7], run.id);
      assert.deepEqual(run.record, JSON.parse(Deno.readTextFileSync(`${home}/runs/${run.id}/run.json`)));
    }
  });
});

/** What the table of `moat list` takes from the runs: the newest `limit`, those in progress or damaged, the count. */
function tableOf(runs: IndexedRun[], unreadable: { id: string }[], total: number, limit: number) {
  return {
    newest: runs.slice(0, limit).map((r) => [r.id, r.state, r.exitCode]),
    attention: runs.filter((r) => !["exited", "interrupted", "failed"].includes(r.state) || r.damage)
      .map((r) => r.id),
    unreadable: unreadable.map((d) => d.id),
    total,
  };
}

/** `readRecent`, which must answer, next to `readRuns` (which reads every line). */
function bothWays(home: string, limit: number) {
  const recent = readRecent(home, limit);
  assert.ok(recent, "readRecent answers");
  const all = readRuns(home);
  return {
    recent: tableOf(recent.runs, recent.unreadable, recent.total, limit),
    all: tableOf(all.runs, all.unreadable, all.runs.length + all.unreadable.length, limit),
  };
}

/** Date runs/ back, then let a full read remember its stamp: `readRecent` needs it to match. */
function settle(home: string): void {
  const past = new Date(Date.now() - 10 * STAMP_SETTLE_MS);
  Deno.utimeSync(`${home}/runs`, past, past);
  readRuns(home);
}

const runAt = (i: number, over: Partial<RunRecord> = {}) =>
  at(`aaaaaa${i.toString(16).padStart(6, "0")}`, {
    createdAt: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
    exitCode: i % 5,
    ...over,
  });

Deno.test("readRecent gives the newest runs, those in progress and the count, as readRuns does", async () => {
  await withHome(async (home) => {
    for (let i = 0; i < 60; i++) await writeRecord(home, runAt(i, i % 17 === 3 ? { state: "running" } : {}));
    await Deno.mkdir(`${home}/runs/ccccccccccc1`); // damaged: no run.json
    settle(home);
    let { recent, all } = bothWays(home, 5);
    assert.deepEqual(recent, all, "after a rebuild");
    assert.equal(recent.total, 61);
    assert.deepEqual(recent.attention.length, 4);
    // Runs made since, by moat: appended, newer than every sorted one.
    const fresh = RunStore.create(home, runAt(100, { state: "creating", exitCode: null }));
    await RunStore.create(home, runAt(101)).close();
    settle(home);
    ({ recent, all } = bothWays(home, 5));
    assert.deepEqual(recent, all, "after runs were made");
    fresh.update({ state: "exited", exitCode: 7 });
    await fresh.close();
    ({ recent, all } = bothWays(home, 5));
    assert.deepEqual(recent, all, "after a run made since ended");
    assert.deepEqual(recent.newest[1], [fresh.record.id, "exited", 7]);
    // A run in progress among the sorted ones' era changes on disk: read from there, as readRuns does.
    await writeRecord(home, runAt(3, { state: "exited", exitCode: 9 }));
    ({ recent, all } = bothWays(home, 5));
    assert.deepEqual(recent, all, "a run in progress that ended without the index");
  });
});

Deno.test("readRecent reads only the newest sorted lines", async () => {
  await withHome(async (home) => {
    for (let i = 0; i < 40; i++) await writeRecord(home, runAt(i));
    settle(home);
    const before = readRecent(home, 5)!;
    // Spoil an old sorted line (same length, so the layout holds): readRecent never reads it; readRuns does,
    // and rebuilds the index.
    const text = Deno.readTextFileSync(indexPath(home));
    const old = text.indexOf(`["${runAt(10).id}"`);
    Deno.writeTextFileSync(indexPath(home), text.slice(0, old) + "x" + text.slice(old + 1));
    const after = readRecent(home, 5)!;
    assert.deepEqual(after.runs.map((r) => r.id), before.runs.map((r) => r.id));
    assert.equal(after.total, 40);
    assert.equal(readRuns(home).runs.length, 40);
    assert.ok(!Deno.readTextFileSync(indexPath(home)).includes(`x"${runAt(10).id}"`), "rebuilt");
  });
});

Deno.test("readRecent declines what it cannot answer, and readRuns makes it answer again", async () => {
  await withHome(async (home) => {
    for (let i = 0; i < 30; i++) await writeRecord(home, runAt(i));
    settle(home);
    assert.ok(readRecent(home, 5));
    const cases: Array<[string, () => Promise<void> | void]> = [
      ["runs/ changed since its stamp", () => writeRecord(home, runAt(200)).then(() => {})],
      ["a sorted run removed", () => removeRunDir(home, runAt(1).id)],
      ["a run made before the newest sorted one, appended", () => {
        RunStore.create(home, runAt(15.5 as number, { id: "bbbbbbbbbbb1" })).close();
      }],
      ["too many lines appended", () => {
        const s = RunStore.create(home, runAt(300));
        for (let i = 0; i <= MAX_APPENDED; i++) s.update({ exitCode: i });
        return s.close();
      }],
    ];
    for (const [what, change] of cases) {
      await change();
      if (what !== "runs/ changed since its stamp") {
        // The index told that runs/ is as it knows it: the lines alone stand in the way.
        appendToIndex(home, [{ dir: dirStamp(Deno.statSync(`${home}/runs`))! }]);
      }
      assert.equal(readRecent(home, 5), undefined, what);
      settle(home); // a full read: it rewrites the index when that was what stood in the way
      const { recent, all } = bothWays(home, 5);
      assert.deepEqual(recent, all, `${what}: answered again`);
    }
  });
});

Deno.test("a record the index's copy of is spoilt is read from run.json, and neither is an error saying so", async () => {
  await withHome(async (home) => {
    await writeRecord(home, at("aaaaaaaaaaa1", { image: "kept" }));
    readRuns(home);
    // Spoil the copy in runs.records (same length, so the offsets hold).
    const records = Deno.readTextFileSync(recordsPath(home));
    Deno.writeTextFileSync(recordsPath(home), records.replace('"image":"kept"', '"image":"kept'));
    assert.equal(indexedRunOf(home).record.image, "kept", "from run.json");
    await Deno.writeTextFile(`${home}/runs/aaaaaaaaaaa1/run.json`, "{");
    assert.throws(
      () => indexedRunOf(home).record,
      (err: unknown) =>
        err instanceof MoatError &&
        err.message === `Cannot read the record of run aaaaaaaaaaa1: its run.json is unreadable, and ` +
            `${home}/runs.index does not hold it` &&
        err.hint === "See what is wrong:  moat clean --dry-run",
    );
  });
});

/** The one run of `home` as the index has it (its record not read yet). */
function indexedRunOf(home: string): IndexedRun {
  return parseIndex(home, Deno.readTextFileSync(indexPath(home)))!.runs.get("aaaaaaaaaaa1")!;
}
