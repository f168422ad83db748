/**
 * Orphans (lib/run/orphans.ts): who owns a container, and whether it is active, kept or orphaned, as
 * tables; then `findOrphans` against the fake engine.
 */
import assert from "node:assert/strict";
import { DockerClient } from "../../lib/docker/client.ts";
import { unixTransport } from "../../lib/docker/transport.ts";
import type { ContainerSummary } from "../../lib/docker/types.ts";
import {
  classifyContainer,
  type ContainerRole,
  findOrphans,
  homeOf,
  liveContainerOwners,
  ofThisHome,
  orphansListed,
  orphansOf,
  ownerLiveness,
  ownerOf,
  recordsOf,
} from "../../lib/run/orphans.ts";
import { currentOwner } from "../../lib/store/owner.ts";
import type { RunRecord } from "../../lib/store/records.ts";
import { DEAD_OWNER, homeLabel, OTHER_HOME, record, summary, writeRecords } from "../cli/run_records.ts";
import { scratch } from "../engine/helpers.ts";
import { FakeEngine } from "../fake_engine.ts";
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

// ---- against the fake engine ---------------------------------------------------------------------------

function clientOf(engine: FakeEngine): DockerClient {
  return new DockerClient(unixTransport(engine.endpoint), { timeoutMs: 3000 });
}

/** Labels naming an owner process. */
function ownedBy(o: { pid: number; bootId: string }): Record<string, string> {
  return { "dev.moat.owner-pid": String(o.pid), "dev.moat.boot-id": o.bootId };
}

Deno.test("findOrphans picks the containers with no live owner, using this MOAT_HOME's records", async () => {
  const me = currentOwner();
  const dead = ownedBy(DEAD_OWNER);
  const containers = [
    // Its moat run lives (this process).
    summary("aaaaaaaaaaa1", "running", "Up 1 minute", ownedBy(me)),
    // A detached run: the `moat run -d` on the label is gone, its recorder (in the record) lives.
    summary("bbbbbbbbbbb2", "running", "Up 1 minute", dead),
    // Killed mid-run: the one orphan.
    summary("ccccccccccc3", "running", "Up 1 minute", dead),
    // Kept, from another MOAT_HOME: no record here, the label says so.
    summary("ddddddddddd4", "exited", "Exited (0) 1 minute ago", { ...dead, "dev.moat.keep": "true" }),
    // Kept, recorded here as a finished kept run (an older container without the label).
    summary("eeeeeeeeeee5", "exited", "Exited (0) 1 minute ago", dead),
  ];
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/json", { status: 200, json: containers });
  const s = await scratch();
  try {
    await writeRecords(s.home, [
      record("bbbbbbbbbbb2", { state: "running", exitCode: null, owner: me, detached: true }),
      record("ccccccccccc3", { state: "running", exitCode: null, owner: DEAD_OWNER }),
      record("eeeeeeeeeee5", { kept: true, removed: false }),
      record("fffffffffff6"),
    ]);
    const orphans = await findOrphans(clientOf(engine), s.home);
    assert.deepEqual(orphans.map((c) => c.Labels?.["dev.moat.run-id"]), ["ccccccccccc3"]);
    const lists = engine.requestsTo("GET /containers/json");
    assert.equal(lists.length, 2, "one listing, and one more to confirm the orphan is still there");
    for (const q of lists) {
      assert.deepEqual(JSON.parse(q.query.get("filters")!), { label: ["dev.moat.managed=true"] });
      assert.equal(q.query.get("size"), null, "no sizes: they are slow to compute");
    }
  } finally {
    await s.cleanup();
  }
});

Deno.test("findOrphans reports only this MOAT_HOME's containers: not another home's, not an unknown one", async () => {
  const dead = ownedBy(DEAD_OWNER);
  await using engine = await FakeEngine.start();
  const s = await scratch();
  engine.on("GET /containers/json", {
    status: 200,
    json: [
      // Labelled with this home's id: ours, even without a record here (e.g. a leftover probe).
      summary("aaaaaaaaaaa1", "created", "Created", {
        ...dead,
        ...homeLabel(s.home),
        "dev.moat.probe": "passwd",
      }),
      // Another MOAT_HOME's (another user's, another CI job's): not ours to report.
      summary("bbbbbbbbbbb2", "running", "Up 1 minute", { ...dead, ...OTHER_HOME }),
      // Made by a moat that did not label its home, and not recorded here: unknown, not reported.
      summary("ccccccccccc3", "running", "Up 1 minute", dead),
      // Unlabelled, but its run is recorded here: ours.
      summary("ddddddddddd4", "running", "Up 1 minute", dead),
    ],
  });
  try {
    await writeRecords(s.home, [
      record("ddddddddddd4", { state: "running", exitCode: null, owner: DEAD_OWNER }),
    ]);
    const orphans = await findOrphans(clientOf(engine), s.home);
    assert.deepEqual(orphans.map((c) => c.Labels?.["dev.moat.run-id"]), ["aaaaaaaaaaa1", "ddddddddddd4"]);
  } finally {
    await s.cleanup();
  }
});

Deno.test("findOrphans asks the engine once when nothing is orphaned", async () => {
  const me = currentOwner();
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/json", {
    status: 200,
    json: [summary("aaaaaaaaaaa1", "running", "Up 1 minute", ownedBy(me))],
  });
  const s = await scratch();
  try {
    assert.deepEqual(await findOrphans(clientOf(engine), s.home), []);
    assert.deepEqual(engine.calls(), ["GET /_ping", "GET /containers/json"]);
  } finally {
    await s.cleanup();
  }
});

Deno.test("a container whose run ended between the listing and the owner check is not reported", async () => {
  await using engine = await FakeEngine.start();
  let listings = 0;
  engine.on("GET /containers/json", async (_req, res) => {
    // First listing: still there. By the second, its owner has removed it (and exited).
    listings++;
    await res.json(
      200,
      listings === 1
        ? [summary("aaaaaaaaaaa1", "exited", "Exited (0)", { ...ownedBy(DEAD_OWNER), ...homeLabel(s.home) })]
        : [],
    );
  });
  const s = await scratch();
  try {
    assert.deepEqual(await findOrphans(clientOf(engine), s.home), []);
    assert.equal(listings, 2);
  } finally {
    await s.cleanup();
  }
});

Deno.test("recordsOf reads only the records of the runs on the engine, and only run ids", async () => {
  const s = await scratch();
  try {
    await writeRecords(s.home, [record("aaaaaaaaaaa1"), record("bbbbbbbbbbb2")]);
    const got = recordsOf(s.home, [
      summary("aaaaaaaaaaa1", "exited", "Exited (0)"),
      summary("aaaaaaaaaaa1", "created", "Created", { "dev.moat.probe": "passwd" }),
      summary("ccccccccccc3", "exited", "Exited (0)"),
      summary("../runs/bbbbbbbbbbb2", "exited", "Exited (0)"),
    ]);
    assert.deepEqual([...got.keys()], ["aaaaaaaaaaa1"]);
  } finally {
    await s.cleanup();
  }
});

Deno.test("liveContainerOwners takes the record's owner over the labels", () => {
  const me = currentOwner();
  const mine = summary("aaaaaaaaaaa1", "running", "Up", ownedBy(DEAD_OWNER));
  const labelled = summary("bbbbbbbbbbb2", "running", "Up", ownedBy(me));
  const rec = record("aaaaaaaaaaa1", { owner: me });
  const alive = liveContainerOwners(
    [mine, labelled],
    (id) => id === rec.id ? rec : undefined,
    ownerLiveness(),
  );
  assert.deepEqual([...alive].sort(), [mine.Id, labelled.Id].sort());
  const none = liveContainerOwners([mine], () => undefined, ownerLiveness());
  assert.deepEqual([...none], [], "the labelled owner is dead");
});

Deno.test("ownerLiveness: this process lives; an owner of another boot, or a pid that is not it, does not", () => {
  const isAlive = ownerLiveness();
  const me = currentOwner();
  assert.equal(isAlive(me), true);
  assert.equal(isAlive(DEAD_OWNER), false);
  assert.equal(isAlive({ ...me, startTicks: me.startTicks + 1 }), false, "a reused pid is not the owner");
});

Deno.test("a run that changed hands after its record was read is not reported: the record is read again", async () => {
  // The snapshot names `moat run -d` (gone now); on disk the recorder that took the run over (this process).
  await using engine = await FakeEngine.start();
  const c = summary("aaaaaaaaaaa1", "running", "Up 1 minute", ownedBy(DEAD_OWNER));
  engine.on("GET /containers/json", { status: 200, json: [c] });
  const s = await scratch();
  try {
    const snapshot = record("aaaaaaaaaaa1", { state: "running", owner: DEAD_OWNER, removed: false });
    await writeRecords(s.home, [{ ...snapshot, owner: currentOwner() }]);
    const orphans = await orphansListed(clientOf(engine), s.home, [c], new Map([[snapshot.id, snapshot]]));
    assert.deepEqual(orphans, []);
    // Without the hand-off (the record on disk names the gone owner too), it is left behind.
    await writeRecords(s.home, [snapshot]);
    const left = await orphansListed(clientOf(engine), s.home, [c], new Map([[snapshot.id, snapshot]]));
    assert.deepEqual(left.map((o) => o.Id), [c.Id]);
  } finally {
    await s.cleanup();
  }
});
