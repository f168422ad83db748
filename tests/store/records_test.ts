import assert from "node:assert/strict";
import {
  decodeOutput,
  moatHome,
  newRunId,
  type RunRecord,
  RunStore,
  sortNewestFirst,
} from "../../lib/store/records.ts";

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

/** Run `fn` with a fresh temporary MOAT_HOME, removed afterwards. */
async function withHome(fn: (home: string) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir();
  try {
    await fn(home);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

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
