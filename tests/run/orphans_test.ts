/** Orphan classification (lib/run/orphans.ts): who owns a container, and whether it is active, kept or orphaned. */
import assert from "node:assert/strict";
import type { ContainerSummary } from "../../lib/docker/types.ts";
import {
  classifyContainer,
  type ContainerRole,
  homeOf,
  ofThisHome,
  orphansOf,
  ownerOf,
} from "../../lib/run/orphans.ts";
import type { RunRecord } from "../../lib/store/records.ts";
import { baseRecord as base } from "./fixtures.ts";

const finishedKept: RunRecord = { ...base, kept: true, state: "exited", exitCode: 0 };

function container(state: string, labels: Record<string, string> = {}, id = "c1"): ContainerSummary {
  return {
    Id: id,
    Names: [`/moat-${id}`],
    Image: "i",
    State: state,
    Status: state === "running" ? "Up 1 minute" : "Exited (0) 1 minute ago",
    Labels: { "dev.moat.managed": "true", "dev.moat.run-id": "r1", ...labels },
    Created: 0,
  };
}

const KEEP = { "dev.moat.keep": "true" };
const PROBE = { "dev.moat.probe": "passwd" };

Deno.test("the owner comes from the record, else from the labels", () => {
  const labels = { "dev.moat.owner-pid": "42", "dev.moat.boot-id": "b" };
  const owner = { pid: 7, bootId: "b", startTicks: 9 };
  assert.deepEqual(ownerOf(container("running", labels), { ...base, owner }), owner);
  assert.deepEqual(ownerOf(container("running", labels), undefined), { pid: 42, bootId: "b", startTicks: 0 });
  assert.equal(ownerOf(container("running"), undefined), undefined);
  assert.equal(ownerOf(container("running", { ...labels, "dev.moat.owner-pid": "x" }), undefined), undefined);
  assert.equal(ownerOf(container("running", { "dev.moat.owner-pid": "42" }), undefined), undefined);
});

const roles: Array<[string, string, Record<string, string>, RunRecord | undefined, boolean, ContainerRole]> =
  [
    ["a container whose owner lives is active", "running", {}, base, true, "active"],
    ["a kept container whose owner lives is active", "running", KEEP, undefined, true, "active"],
    ["a kept container of a finished run is kept", "exited", {}, finishedKept, false, "kept"],
    ["a container whose owner died mid-run is orphaned", "exited", {}, base, false, "orphaned"],
    ["a container with no record and no owner is orphaned", "exited", {}, undefined, false, "orphaned"],
    [
      "a leftover probe container is orphaned even for a kept run",
      "created",
      PROBE,
      finishedKept,
      false,
      "orphaned",
    ],
    [
      "a leftover probe carrying the keep label is orphaned",
      "created",
      { ...PROBE, ...KEEP },
      undefined,
      false,
      "orphaned",
    ],
    [
      "an exited container labelled keep with no record here (another MOAT_HOME) is kept",
      "exited",
      KEEP,
      undefined,
      false,
      "kept",
    ],
    [
      "a never-started container labelled keep with no record here is kept",
      "created",
      KEEP,
      undefined,
      false,
      "kept",
    ],
    [
      "an exited container labelled keep is kept even when its record never saw the end",
      "exited",
      KEEP,
      { ...base, kept: true },
      false,
      "kept",
    ],
    [
      "a running container labelled keep whose owner is dead is orphaned",
      "running",
      KEEP,
      undefined,
      false,
      "orphaned",
    ],
    [
      "a paused container labelled keep whose owner is dead is orphaned",
      "paused",
      KEEP,
      undefined,
      false,
      "orphaned",
    ],
    [
      "a running kept container of a finished run, owner dead, is kept (restarted by hand after the run)",
      "running",
      {},
      finishedKept,
      false,
      "kept",
    ],
    [
      "a keep label other than true does not keep",
      "exited",
      { "dev.moat.keep": "false" },
      undefined,
      false,
      "orphaned",
    ],
    [
      "an unkept finished run's leftover container is orphaned",
      "exited",
      {},
      { ...base, state: "exited" },
      false,
      "orphaned",
    ],
  ];
for (const [label, state, labels, record, alive, role] of roles) {
  Deno.test(`classifyContainer: ${label}`, () => {
    assert.equal(classifyContainer(container(state, labels), record, alive), role);
  });
}

Deno.test("orphansOf keeps the orphaned containers in order, with each one's record and liveness", () => {
  const active = { ...container("running", { "dev.moat.run-id": "a" }, "ca") };
  const kept = { ...container("exited", { "dev.moat.run-id": "k" }, "ck") };
  const gone = { ...container("running", { "dev.moat.run-id": "g" }, "cg") };
  const loose = { ...container("exited", {}, "cl"), Labels: { "dev.moat.managed": "true" } };
  const labelledKept = container("exited", { ...KEEP, "dev.moat.run-id": "x" }, "cx");
  const records = new Map<string, RunRecord>([["k", { ...finishedKept, id: "k" }]]);
  const asked: string[] = [];
  const got = orphansOf(
    [loose, active, kept, gone, labelledKept],
    (id) => {
      asked.push(id);
      return records.get(id);
    },
    (c) => c.Id === "ca",
  );
  assert.deepEqual(got.map((c) => c.Id), ["cl", "cg"]);
  assert.deepEqual(asked.sort(), ["a", "g", "k", "x"], "a container without a run id needs no record");
});

const HOME = "0123456789abcdef0123456789abcdef";
const ELSE = "fedcba9876543210fedcba9876543210";
for (
  const [label, labels, homeId, recordedHere, home] of [
    ["labelled with this home's id", { "dev.moat.home": HOME }, HOME, false, "this"],
    ["labelled with this home's id, its run recorded here", { "dev.moat.home": HOME }, HOME, true, "this"],
    ["labelled with another home's id", { "dev.moat.home": ELSE }, HOME, false, "other"],
    [
      "labelled with another's id, though a run of that id is recorded here",
      { "dev.moat.home": ELSE },
      HOME,
      true,
      "other",
    ],
    ["labelled, while this home has no id yet", { "dev.moat.home": ELSE }, undefined, false, "other"],
    ["unlabelled (an older moat), its run recorded here", {}, HOME, true, "this"],
    ["unlabelled (an older moat), its run not recorded here", {}, HOME, false, "unknown"],
    ["unlabelled, this home without an id, its run recorded here", {}, undefined, true, "this"],
  ] as const
) {
  Deno.test(`homeOf: a container ${label} is ${home}`, () => {
    assert.equal(homeOf(container("running", labels), homeId, (id) => recordedHere && id === "r1"), home);
  });
}

Deno.test("ofThisHome keeps this home's containers, in order", () => {
  const mine = container("running", { "dev.moat.home": HOME }, "c1");
  const theirs = container("running", { "dev.moat.home": ELSE }, "c2");
  const old = container("exited", {}, "c3");
  assert.deepEqual(ofThisHome([mine, theirs, old], HOME, () => false).map((c) => c.Id), ["c1"]);
  assert.deepEqual(ofThisHome([mine, theirs, old], HOME, () => true).map((c) => c.Id), ["c1", "c3"]);
});
