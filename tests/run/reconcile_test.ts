import assert from "node:assert/strict";
import type { ContainerSummary } from "../../lib/docker/types.ts";
import { classifyContainer, ownerOf } from "../../lib/run/orphans.ts";
import { exitCodeFromStatus, reconcile } from "../../lib/run/reconcile.ts";
import type { RunRecord } from "../../lib/store/records.ts";

const base: RunRecord = {
  schema: 1,
  id: "r1",
  name: null,
  workspace: "/w",
  image: "i",
  command: null,
  sandbox: "gvisor",
  runtime: "runsc",
  containerId: "c1",
  state: "running",
  exitCode: null,
  signal: null,
  error: null,
  kept: false,
  removed: false,
  createdAt: "2026-01-01T00:00:00Z",
  startedAt: null,
  finishedAt: null,
  moatVersion: "0",
};

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

Deno.test("the owner comes from the record, else from the labels", () => {
  const labels = { "dev.moat.owner-pid": "42", "dev.moat.boot-id": "b" };
  const owner = { pid: 7, bootId: "b", startTicks: 9 };
  assert.deepEqual(ownerOf(container("running", "Up", labels), { ...base, owner }), owner);
  assert.deepEqual(ownerOf(container("running", "Up", labels), undefined), {
    pid: 42,
    bootId: "b",
    startTicks: 0,
  });
  assert.equal(ownerOf(container("running", "Up"), undefined), undefined);
});

const roles: [string, RunRecord | undefined, boolean, Record<string, string>, string][] = [
  ["a container whose owner lives is active", base, true, {}, "active"],
  ["a kept container of a finished run is kept", { ...base, kept: true, state: "exited" }, false, {}, "kept"],
  ["a container whose owner died mid-run is orphaned", base, false, {}, "orphaned"],
  ["a container with no record and no owner is orphaned", undefined, false, {}, "orphaned"],
  [
    "a leftover probe container is orphaned even for a kept run",
    { ...base, kept: true, state: "exited" },
    false,
    {
      "dev.moat.probe": "passwd",
    },
    "orphaned",
  ],
];
for (const [label, record, alive, labels, role] of roles) {
  Deno.test(`classifyContainer: ${label}`, () => {
    assert.equal(classifyContainer(container("exited", "Exited (0)", labels), record, alive), role);
  });
}
