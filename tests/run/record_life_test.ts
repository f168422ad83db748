import assert from "node:assert/strict";
import * as life from "../../lib/run/record_life.ts";
import type { RunRecord } from "../../lib/store/records.ts";
import { baseRecord } from "./fixtures.ts";

const AT = new Date("2026-12-06T20:00:00.000Z");
const T = AT.toISOString();

Deno.test("a record moves creating → created → running → exited through the transitions' patches", () => {
  let rec: RunRecord = { ...baseRecord, state: "creating", containerId: null, runtime: "runsc" };
  rec = { ...rec, ...life.created("c2") };
  assert.deepEqual([rec.state, rec.containerId], ["created", "c2"]);
  rec = { ...rec, ...life.started(AT) };
  assert.deepEqual([rec.state, rec.startedAt], ["running", T]);
  rec = { ...rec, ...life.ended(rec, { exitCode: 3 }, AT), ...life.removed(true) };
  assert.deepEqual(
    [rec.state, rec.exitCode, rec.signal, rec.runtime, rec.finishedAt, rec.removed],
    ["exited", 3, null, "runsc", T, true],
  );
  assert.equal("oomKilled" in rec, false);
  assert.equal("outputIncomplete" in rec, false);
});

Deno.test("ended: an interrupt, the engine's runtime, an OOM kill and incomplete output are recorded", () => {
  const patch = life.ended(baseRecord, {
    exitCode: 143,
    interrupted: "SIGTERM",
    runtime: "runc",
    oomKilled: true,
    outputIncomplete: "it could not be written: No space left on device",
  }, AT);
  assert.deepEqual(patch, {
    state: "interrupted",
    exitCode: 143,
    signal: "SIGTERM",
    runtime: "runc",
    finishedAt: T,
    oomKilled: true,
    outputIncomplete: "it could not be written: No space left on device",
  });
});

Deno.test("ownedBy names the process that drives the run now", () => {
  const owner = { pid: 42, bootId: "b", startTicks: 7 };
  assert.deepEqual(life.ownedBy(owner), { owner });
});

Deno.test("failed: failed without a signal, interrupted with one", () => {
  assert.deepEqual(life.failed("boom", null, AT), {
    state: "failed",
    signal: null,
    error: "boom",
    finishedAt: T,
  });
  assert.deepEqual(life.failed("stopped", "SIGINT", AT), {
    state: "interrupted",
    signal: "SIGINT",
    error: "stopped",
    finishedAt: T,
  });
});

const ending: life.RecordedEnding = {
  exitCode: 5,
  runtime: "runsc",
  removed: true,
  error: undefined,
  oomKilled: false,
  outputIncomplete: undefined,
};

Deno.test("recorded: the recorder ends a run still in progress, failed when the exit code is lost", () => {
  assert.deepEqual(life.recorded({ ...baseRecord, state: "running" }, ending, AT), {
    runtime: "runsc",
    removed: true,
    finishedAt: T,
    state: "exited",
    exitCode: 5,
  });
  const lost = life.recorded(baseRecord, { ...ending, exitCode: null, error: "gone" }, AT);
  assert.deepEqual([lost.state, lost.exitCode, lost.error], ["failed", null, "gone"]);
});

Deno.test("recorded: a final state another writer left (moat stop) is kept, with its exit code and time", () => {
  const stopped: RunRecord = {
    ...baseRecord,
    state: "interrupted",
    exitCode: 143,
    finishedAt: "2026-12-06T19:00:00.000Z",
  };
  const patch = life.recorded(stopped, ending, AT);
  assert.equal(patch.state, undefined, "the state is not touched");
  assert.deepEqual([patch.exitCode, patch.finishedAt, patch.removed], [
    143,
    "2026-12-06T19:00:00.000Z",
    true,
  ]);
  const noCode = life.recorded({ ...stopped, exitCode: null, finishedAt: null }, ending, AT);
  assert.deepEqual([noCode.exitCode, noCode.finishedAt], [5, T]);
});
