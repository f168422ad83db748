import assert from "node:assert/strict";
import type { ContainerSummary } from "../../lib/docker/types.ts";
import {
  containersByRun,
  engineViewOf,
  exitCodeFromStatus,
  listEntries,
  liveOwners,
  reconcile,
} from "../../lib/run/reconcile.ts";
import type { Owner, RunRecord } from "../../lib/store/records.ts";
import { DEAD_OWNER, record, summary } from "../cli/run_records.ts";
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

// ---- every run at once, from one listing ------------------------------------------------------------------

Deno.test("a run's container is its recorded containerId, else the first that is not the passwd probe", () => {
  const rec = record("aaaaaaaaaaa1", { state: "running", containerId: "other" });
  const probe = summary("aaaaaaaaaaa1", "exited", "Exited (0) 1 second ago", { "dev.moat.probe": "passwd" });
  const real = { ...summary("aaaaaaaaaaa1", "running", "Up 2 seconds"), Id: "other" };
  const stray = summary("bbbbbbbbbbb2", "running", "Up 1 second");
  assert.equal(engineViewOf(rec, containersByRun([probe, real, stray])), real);
  assert.equal(engineViewOf({ ...rec, containerId: null }, containersByRun([probe, real])), real);
  assert.equal(engineViewOf(rec, containersByRun([probe])), "absent", "the probe alone is not the run");
  assert.equal(engineViewOf(rec, containersByRun([])), "absent");
  assert.equal(engineViewOf(rec, undefined), "unknown");
});

const running = (id: string, patch = {}) =>
  record(id, { state: "running", exitCode: null, finishedAt: null, removed: false, ...patch });

for (
  const [label, rec, containers, alive, state, exit, containerState] of [
    [
      "a finished run keeps its recorded exit code",
      record("r1", { exitCode: 7 }),
      [],
      [],
      "exited",
      7,
      "absent",
    ],
    [
      "a running record whose container and owner are gone is lost",
      running("r1"),
      [],
      [],
      "lost",
      null,
      "absent",
    ],
    [
      "a running record whose owner lives but has no container yet stays running",
      running("r1"),
      [],
      [
        "r1",
      ],
      "running",
      null,
      "absent",
    ],
    [
      "a running record whose container exited shows the engine's exit code",
      running("r1"),
      [summary("r1", "exited", "Exited (3) 2 minutes ago")],
      [],
      "exited",
      3,
      "exited",
    ],
    ["the engine unasked leaves the recorded state", running("r1"), undefined, [], "running", null, null],
    [
      "a finished record with its kept container shows the container's engine state",
      record("r1", { kept: true, removed: false }),
      [summary("r1", "exited", "Exited (0) 1 hour ago")],
      [],
      "exited",
      0,
      "exited",
    ],
  ] as const
) {
  Deno.test(`listEntries: ${label}`, () => {
    const [e] = listEntries([rec], containers ? [...containers] : undefined, new Set<string>(alive));
    assert.equal(e!.shownState, state);
    assert.equal(e!.shownExitCode, exit);
    assert.equal(e!.containerState, containerState);
  });
}

Deno.test("liveOwners asks about an owner only where the run's state depends on it", () => {
  const owner = (pid: number): Owner => ({ ...DEAD_OWNER, pid });
  const records = [
    record("aaaaaaaaaaa1", { owner: owner(1) }), // finished: its state is recorded
    running("bbbbbbbbbbb2", { owner: owner(2) }), // its container is listed: the engine says
    running("ccccccccccc3", { owner: owner(3) }), // no container, owner alive
    running("ddddddddddd4", { owner: owner(4) }), // no container, owner dead
    running("eeeeeeeeeee5", { owner: undefined }), // no owner recorded: nobody to ask about
  ];
  const containers = [summary("bbbbbbbbbbb2", "running", "Up 1 second")];
  const asked: number[] = [];
  const isAlive = (o: Owner) => {
    asked.push(o.pid);
    return o.pid === 3;
  };
  assert.deepEqual([...liveOwners(records, containers, isAlive)], ["ccccccccccc3"]);
  assert.deepEqual(asked, [3, 4]);
  asked.length = 0;
  assert.deepEqual(
    [...liveOwners(records, undefined, isAlive)],
    [],
    "the engine unasked: no state depends on it",
  );
  assert.deepEqual(asked, []);
});
