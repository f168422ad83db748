import assert from "node:assert/strict";
import { readRuns, scanRuns } from "../../lib/store/run_index.ts";
import {
  decodeOutput,
  moatHome,
  newRunId,
  type RunRecord,
  RunStore,
  scanRecords,
  sortNewestFirst,
} from "../../lib/store/records.ts";
import { withHome } from "../temp_home.ts";

const record: RunRecord = {
  schema: 1,
  id: "abc",
  name: null,
  workspace: "/w",
  image: "i",
  command: null,
  sandbox: "gvisor",
  runtime: "runsc",
  containerId: null,
  state: "creating",
  exitCode: null,
  signal: null,
  error: null,
  kept: false,
  removed: false,
  createdAt: "2026-01-01T00:00:00.000Z",
  startedAt: null,
  finishedAt: null,
  moatVersion: "0.1.0",
};

Deno.test("moatHome is MOAT_HOME, else ~/.moat", () => {
  assert.equal(moatHome({ MOAT_HOME: "/m", HOME: "/h" }), "/m");
  assert.equal(moatHome({ HOME: "/h" }), "/h/.moat");
  assert.throws(() => moatHome({}));
});

Deno.test("sortNewestFirst orders by creation time, newest first, then by id", () => {
  const at = (id: string, createdAt: string) => ({ ...record, id, createdAt });
  const cases: Array<{ input: RunRecord[]; want: string[] }> = [
    { input: [], want: [] },
    {
      input: [
        at("a1", "2026-01-01T00:00:01.000Z"),
        at("b2", "2026-01-01T00:00:03.000Z"),
        at("c3", "2026-01-01T00:00:02.000Z"),
      ],
      want: ["b2", "c3", "a1"],
    },
    // Same creation time: the greater id first, whatever the input order.
    {
      input: [at("0a", "2026-01-01T00:00:00.000Z"), at("0b", "2026-01-01T00:00:00.000Z")],
      want: ["0b", "0a"],
    },
    {
      input: [at("0b", "2026-01-01T00:00:00.000Z"), at("0a", "2026-01-01T00:00:00.000Z")],
      want: ["0b", "0a"],
    },
    // Across a year and a millisecond: ISO 8601 in UTC sorts by code unit.
    { input: [at("x", "2025-12-31T23:59:59.999Z"), at("y", "2026-01-01T00:00:00.000Z")], want: ["y", "x"] },
  ];
  for (const { input, want } of cases) {
    const copy = [...input];
    assert.deepEqual(sortNewestFirst(input).map((r) => r.id), want);
    assert.deepEqual(input, copy, "the input is left as it was");
  }
});

Deno.test("run ids are 12 hex characters and differ", () => {
  const a = newRunId(), b = newRunId();
  assert.match(a, /^[0-9a-f]{12}$/);
  assert.notEqual(a, b);
});

Deno.test("the run store writes run.json and streams output frames with stream and timestamp", async () => {
  await withHome(async (home) => {
    const store = RunStore.create(home, record);
    store.update({ state: "running", containerId: "c1" });
    await store.output(1, new TextEncoder().encode("out\n"), 1000);
    await store.output(2, new TextEncoder().encode("err\n"), 2000);
    await store.flush();
    // Flushed output is on disk before the store is closed.
    const mid = await Deno.readFile(`${home}/runs/abc/output.bin`);
    assert.equal([...decodeOutput(mid)].length, 2);
    const big = new Uint8Array(1_000_000).fill(7);
    await store.output(1, big, 3000);
    await store.close();
    const saved = JSON.parse(await Deno.readTextFile(`${home}/runs/abc/run.json`));
    assert.equal(saved.state, "running");
    assert.equal(saved.containerId, "c1");
    const frames = [...decodeOutput(await Deno.readFile(`${home}/runs/abc/output.bin`))];
    assert.deepEqual(frames.slice(0, 2).map((f) => [f.stream, f.timeMs, new TextDecoder().decode(f.data)]), [
      [1, 1000, "out\n"],
      [2, 2000, "err\n"],
    ]);
    const rest = frames.slice(2);
    assert.ok(rest.length >= 4, "a large chunk is split into bounded frames");
    assert.equal(rest.reduce((n, f) => n + f.data.byteLength, 0), 1_000_000);
    assert.ok(rest.every((f) => f.stream === 1 && f.data.every((b) => b === 7)));
  });
});

Deno.test("flushSoon writes queued output within its delay, once for several reads", async () => {
  await withHome(async (home) => {
    const store = RunStore.create(home, record);
    const file = `${home}/runs/abc/output.bin`;
    const onDisk = async () => {
      try {
        return [...decodeOutput(await Deno.readFile(file))].map((f) => new TextDecoder().decode(f.data));
      } catch {
        return [];
      }
    };
    for (const piece of ["one ", "two ", "three"]) {
      await store.output(1, new TextEncoder().encode(piece), 1);
      store.flushSoon();
    }
    assert.deepEqual(await onDisk(), [], "not written at once");
    // A ref'd wait: the store's timer alone does not keep the test running.
    await new Promise((r) => setTimeout(r, 400));
    assert.deepEqual(await onDisk(), ["one ", "two ", "three"]);
    await store.close();
  });
});

Deno.test("output larger than the buffers arrives whole and in order, across flushSoon and close", async () => {
  await withHome(async (home) => {
    const store = RunStore.create(home, record);
    let expected = 0;
    for (let i = 0; i < 40; i++) {
      const piece = new Uint8Array(50_000 + i).fill(i);
      expected += piece.byteLength;
      await store.output(i % 2 === 0 ? 1 : 2, piece, i);
      store.flushSoon();
    }
    await store.close();
    const frames = [...decodeOutput(await Deno.readFile(`${home}/runs/abc/output.bin`))];
    assert.equal(frames.reduce((n, f) => n + f.data.byteLength, 0), expected);
    // Frames keep their order, stream and time; a piece may be split, never reordered.
    const order = frames.map((f) => f.timeMs).filter((t, i, all) => i === 0 || all[i - 1] !== t);
    assert.deepEqual(order, Array.from({ length: 40 }, (_, i) => i));
    assert.ok(
      frames.every((f) => f.data.every((b) => b === f.timeMs) && f.stream === (f.timeMs % 2 ? 2 : 1)),
    );
  });
});

Deno.test("a new run's directory appears whole: run.json and an empty output.bin, and the record says so", async () => {
  await withHome(async (home) => {
    const store = RunStore.create(home, { ...record, id: "0123456789ab" });
    assert.equal(store.dir, `${home}/runs/0123456789ab`);
    const files = (await Array.fromAsync(Deno.readDir(store.dir))).map((e) => e.name).sort();
    assert.deepEqual(files, ["audit.jsonl", "output.bin", "run.json"]);
    assert.equal((await Deno.stat(`${store.dir}/output.bin`)).size, 0);
    assert.equal((await Deno.stat(`${store.dir}/output.bin`)).mode! & 0o777, 0o600);
    assert.equal(JSON.parse(await Deno.readTextFile(`${store.dir}/run.json`)).outputFile, true);
    // Nothing but the run's directory is left under runs/ (the temporary name is gone).
    assert.deepEqual((await Array.fromAsync(Deno.readDir(`${home}/runs`))).map((e) => e.name), [
      "0123456789ab",
    ]);
    assert.deepEqual(scanRecords(home).damaged, []);
  });
});

Deno.test("scanRecords reports each damaged run with the file at fault and what is wrong", async () => {
  await withHome(async (home) => {
    const runs = `${home}/runs`;
    const at = (id: string, createdAt: string) => ({ ...record, id, createdAt, state: "exited" as const });
    // Sound: one made by RunStore, one of an older moat that never made output.bin (no outputFile).
    RunStore.create(home, at("aaaaaaaaaaa1", "2026-01-01T00:00:01.000Z"));
    await Deno.mkdir(`${runs}/aaaaaaaaaaa2`);
    await Deno.writeTextFile(
      `${runs}/aaaaaaaaaaa2/run.json`,
      JSON.stringify(at("aaaaaaaaaaa2", "2026-01-01T00:00:02.000Z")),
    );
    // Damaged output: the record says moat made output.bin; it is gone, or is a directory.
    RunStore.create(home, at("bbbbbbbbbbb1", "2026-01-01T00:00:03.000Z"));
    await Deno.remove(`${runs}/bbbbbbbbbbb1/output.bin`);
    RunStore.create(home, at("bbbbbbbbbbb2", "2026-01-01T00:00:04.000Z"));
    await Deno.remove(`${runs}/bbbbbbbbbbb2/output.bin`);
    await Deno.mkdir(`${runs}/bbbbbbbbbbb2/output.bin`);
    // Unreadable run.json, in every way.
    const dir = async (id: string, runJson?: string) => {
      await Deno.mkdir(`${runs}/${id}`);
      if (runJson !== undefined) await Deno.writeTextFile(`${runs}/${id}/run.json`, runJson);
    };
    await dir("ccccccccccc1", '{"schema": 1, "id": "ccccccccccc1", "sta');
    await dir("ccccccccccc2", "");
    await dir("ccccccccccc3");
    await Deno.mkdir(`${runs}/ccccccccccc3/run.json`);
    await dir("ccccccccccc4");
    await dir("ccccccccccc5", JSON.stringify(at("ddddddddddd5", "2026-01-01T00:00:05.000Z")));
    await dir("ccccccccccc6", "[1, 2]");
    await dir("ccccccccccc7", JSON.stringify({ ...at("ccccccccccc7", "x"), state: "paused" }));
    // Not moat's: a name that is not a run id, a leftover of a creation that never finished.
    await dir("notes", "not json");
    await dir(".0123456789ab.42.tmp");

    const scan = scanRecords(home);
    assert.deepEqual(scan.records.map((r) => r.id), [
      "bbbbbbbbbbb2",
      "bbbbbbbbbbb1",
      "aaaaaaaaaaa2",
      "aaaaaaaaaaa1",
    ]);
    assert.deepEqual(
      // The JSON parser's own words vary with its version: only their presence is checked.
      scan.damaged.map((d) => [
        d.id,
        d.damage.path.slice(runs.length + 1),
        d.damage.problem.replace(/^(not valid JSON) \(.+\)$/, "$1 (…)"),
        d.record?.id ?? null,
      ]),
      [
        ["ccccccccccc1", "ccccccccccc1/run.json", "not valid JSON (…)", null],
        ["ccccccccccc2", "ccccccccccc2/run.json", "empty", null],
        ["ccccccccccc3", "ccccccccccc3/run.json", "a directory, not a file", null],
        ["ccccccccccc4", "ccccccccccc4/run.json", "missing", null],
        [
          "ccccccccccc5",
          "ccccccccccc5/run.json",
          'not a run record: its id is "ddddddddddd5", not the directory\'s name',
          null,
        ],
        ["ccccccccccc6", "ccccccccccc6/run.json", "not a run record: not a JSON object", null],
        ["ccccccccccc7", "ccccccccccc7/run.json", 'not a run record: its state is "paused"', null],
        ["bbbbbbbbbbb2", "bbbbbbbbbbb2/output.bin", "not a file", "bbbbbbbbbbb2"],
        [
          "bbbbbbbbbbb1",
          "bbbbbbbbbbb1/output.bin",
          "missing (moat created it with the record)",
          "bbbbbbbbbbb1",
        ],
      ],
    );
    // Through the index: the same runs, in the same order.
    assert.deepEqual(scanRuns(home), scan);
    assert.deepEqual(readRuns(home).runs.map((r) => r.id), scan.records.map((r) => r.id));
  });
});
