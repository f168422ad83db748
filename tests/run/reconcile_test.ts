import assert from "node:assert/strict";
import type { ContainerSummary } from "../../lib/docker/types.ts";
import { exitCodeFromStatus, reconcile } from "../../lib/run/reconcile.ts";
import type { RunRecord } from "../../lib/store/records.ts";
import { baseRecord as base } from "./fixtures.ts";

function container(state: string, status: string, labels: Record<string, string> = {}): ContainerSummary {
  return {
    Id: "c1",
    Names: ["/moat-r1"],
    Image: "i",
    State: state,
    Status: status,
    Labels: labels,
    Created: 0,
  };
}

const table: [string, RunRecord["state"], Parameters<typeof reconcile>[1], boolean, string, number | null][] =
  [
    [
      "a finished record is shown as recorded",
      "exited",
      container("running", "Up 1s"),
      false,
      "exited",
      null,
    ],
    ["an unreachable engine shows the record", "running", "unknown", false, "running", null],
    [
      "a running container is running",
      "running",
      container("running", "Up 3 minutes"),
      false,
      "running",
      null,
    ],
    [
      "an exited container gives its exit code",
      "running",
      container("exited", "Exited (7) 2 seconds ago"),
      true,
      "exited",
      7,
    ],
    ["a vanished container with a dead owner is lost", "running", "absent", false, "lost", null],
    ["a vanished container with a live owner is as recorded", "creating", "absent", true, "creating", null],
  ];
for (const [label, state, view, alive, shown, code] of table) {
  Deno.test(`reconcile: ${label}`, () => {
    const r = reconcile({ ...base, state, exitCode: state === "exited" ? null : base.exitCode }, view, alive);
    assert.deepEqual(r, { state: shown, exitCode: code });
  });
}

Deno.test("exitCodeFromStatus reads docker's status text", () => {
  assert.equal(exitCodeFromStatus("Exited (0) 5 minutes ago"), 0);
  assert.equal(exitCodeFromStatus("Exited (137) About an hour ago"), 137);
  assert.equal(exitCodeFromStatus("Up 2 seconds"), undefined);
});
