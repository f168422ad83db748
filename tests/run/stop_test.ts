/**
 * Ending a run (lib/run/stop.ts): the grace period, the record patch written from what the engine shows, the
 * run chosen when none is named, and `stopRun` driven through an `EngineClient` without any command around it.
 */
import assert from "node:assert/strict";
import type { EngineClient } from "../../lib/docker/client.ts";
import type { ContainerInspect, ContainerSummary } from "../../lib/docker/types.ts";
import { finalPatch } from "../../lib/run/record_life.ts";
import { newestRunning, stopRun } from "../../lib/run/stop.ts";
import { maybeReadRecord, type Owner, type RunRecord } from "../../lib/store/records.ts";
import { baseRecord, CID, inspect } from "./fixtures.ts";

Deno.test("finalPatch ends a run from what the engine shows", async (t) => {
  const now = "2026-03-03T00:00:00.000Z";
  const base: RunRecord = {
    ...baseRecord,
    id: "aaaaaaaaaaaa",
    containerId: CID,
    startedAt: null,
    runtime: null,
  };
  await t.step("an exited container: exited with its exit code, times and runtime from the engine", () => {
    assert.deepEqual(finalPatch(base, inspect("exited", 137), now), {
      state: "exited",
      exitCode: 137,
      finishedAt: "2026-01-01T00:00:09.000000000Z",
      startedAt: "2026-01-01T00:00:01.000000000Z",
      runtime: "runsc",
    });
  });
  await t.step("an OOM-killed container says so", () => {
    const c = inspect("exited", 137);
    c.State.OOMKilled = true;
    assert.equal(finalPatch(base, c, now).error, "The container ran out of memory (OOM killed)");
  });
  await t.step("a container that never started: failed, no exit code", () => {
    const p = finalPatch(base, inspect("created", 0), now);
    assert.equal(p.state, "failed");
    assert.equal(p.exitCode, undefined);
    assert.equal(p.finishedAt, now);
  });
  await t.step("a container that is gone: failed, removed, exit code unknown", () => {
    const p = finalPatch(base, undefined, now);
    assert.equal(p.state, "failed");
    assert.equal(p.removed, true);
    assert.match(p.error!, /^The container cccccccccccc no longer exists/);
  });
  await t.step("no container ever: failed, not removed", () => {
    const p = finalPatch({ ...base, containerId: null }, undefined, now);
    assert.equal(p.removed, false);
    assert.match(p.error!, /before it had a container/);
  });
});

function summary(
  id: string,
  runId: string,
  state: string,
  labels: Record<string, string> = {},
): ContainerSummary {
  return {
    Id: id,
    Names: [`/moat-${id}`],
    Image: "i",
    State: state,
    Status: "",
    Labels: { "dev.moat.managed": "true", "dev.moat.run-id": runId, ...labels },
    Created: 0,
  };
}

Deno.test("newestRunning picks the first unfinished record whose container is live", async (t) => {
  const run = (id: string, over: Partial<RunRecord> = {}): RunRecord => ({
    ...baseRecord,
    id,
    containerId: `c-${id}`,
    ...over,
  });
  const cases: [string, RunRecord[], ContainerSummary[], string | undefined][] = [
    ["the newest of two running runs", [run("r2"), run("r1")], [
      summary("c-r1", "r1", "running"),
      summary("c-r2", "r2", "running"),
    ], "r2"],
    ["a run whose container exited is passed over", [run("r2"), run("r1")], [
      summary("c-r2", "r2", "exited"),
      summary("c-r1", "r1", "running"),
    ], "r1"],
    ["a paused container counts as live", [run("r1")], [summary("c-r1", "r1", "paused")], "r1"],
    [
      "a finished run's kept container that runs is not a running run",
      [
        run("r1", { state: "exited", exitCode: 0 }),
      ],
      [summary("c-r1", "r1", "running")],
      undefined,
    ],
    [
      "a record without a container id runs when its labelled container does",
      [
        run("r1", { containerId: null }),
      ],
      [summary("c-x", "r1", "running")],
      "r1",
    ],
    ["a running passwd probe alone does not make its run running", [run("r1", { containerId: null })], [
      summary("c-p", "r1", "running", { "dev.moat.probe": "passwd" }),
    ], undefined],
    ["a record that says running without a container is not running", [run("r1")], [], undefined],
  ];
  for (const [name, records, containers, want] of cases) {
    await t.step(name, () => assert.equal(newestRunning(records, containers)?.id, want));
  }
});

/** An engine client that answers only what `stopRun` asks, and logs the calls. */
function stubClient(container: ContainerInspect, calls: string[]): EngineClient {
  const stub: Partial<EngineClient> = {
    maybeContainerInspect: (id) => {
      calls.push(`inspect ${id.slice(0, 12)}`);
      return Promise.resolve(structuredClone(container));
    },
    containerStop: (id, grace) => {
      calls.push(`stop ${id.slice(0, 12)} ${grace}`);
      container.State = { ...container.State, Status: "exited", Running: false, ExitCode: 143 };
      return Promise.resolve();
    },
    containerKill: (id, signal) => {
      calls.push(`kill ${id.slice(0, 12)} ${signal}`);
      container.State = { ...container.State, Status: "exited", Running: false, ExitCode: 137 };
      return Promise.resolve();
    },
  };
  return stub as EngineClient;
}

const DEAD_OWNER: Owner = { pid: 1, bootId: "another-boot", startTicks: 1 };

Deno.test("stopRun stops a run without a live owner and writes its end from the engine", async (t) => {
  for (
    const [grace, call, exitCode, line] of [
      [10, `stop ${CID.slice(0, 12)} 10`, 143, "SIGTERM, SIGKILL after 10 s…"],
      [0, `kill ${CID.slice(0, 12)} SIGKILL`, 137, "SIGKILL"],
    ] as const
  ) {
    await t.step(`grace ${grace}: ${call}`, async () => {
      const home = await Deno.makeTempDir({ prefix: "moat-stop-" });
      try {
        const rec: RunRecord = { ...baseRecord, id: "aaaaaaaaaaaa", containerId: CID, owner: DEAD_OWNER };
        await Deno.mkdir(`${home}/runs/${rec.id}`, { recursive: true });
        await Deno.writeTextFile(`${home}/runs/${rec.id}/run.json`, JSON.stringify(rec));
        const calls: string[] = [], notes: string[] = [];
        const result = await stopRun(
          stubClient(inspect("running"), calls),
          home,
          rec,
          grace,
          (l) => notes.push(l),
        );
        assert.deepEqual(calls, [`inspect ${CID.slice(0, 12)}`, call, `inspect ${CID.slice(0, 12)}`]);
        assert.deepEqual(notes, [`moat: stopping run aaaaaaaaaaaa (container ${CID.slice(0, 12)}): ${line}`]);
        assert.equal(result.stopped, true);
        assert.equal(result.writtenBy, "stop");
        const written = maybeReadRecord(home, rec.id);
        assert.equal(written?.state, "exited");
        assert.equal(written?.exitCode, exitCode);
        assert.deepEqual(result.record, written);
      } finally {
        await Deno.remove(home, { recursive: true });
      }
    });
  }
});
