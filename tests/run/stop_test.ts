/** Ending a run (lib/run/stop.ts): the record patch written from what the engine shows. */
import assert from "node:assert/strict";
import type { ContainerInspect } from "../../lib/docker/types.ts";
import { finalPatch } from "../../lib/run/stop.ts";
import type { RunRecord } from "../../lib/store/records.ts";
import { baseRecord } from "./fixtures.ts";

const CID = "c".repeat(64);

function inspect(status: string, exitCode = 0, running = status === "running"): ContainerInspect {
  return {
    Id: CID,
    Name: "/moat-x",
    State: {
      Status: status,
      Running: running,
      ExitCode: exitCode,
      StartedAt: "2026-01-01T00:00:01.000000000Z",
      FinishedAt: running ? "0001-01-01T00:00:00Z" : "2026-01-01T00:00:09.000000000Z",
    },
    Config: { Labels: { "dev.moat.managed": "true", "dev.moat.run-id": "aaaaaaaaaaaa" } },
    HostConfig: { Runtime: "runsc" },
  };
}

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
