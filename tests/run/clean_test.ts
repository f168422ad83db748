/** `planClean`: which runs and containers `moat clean` removes, from records, containers and live owners. */
import assert from "node:assert/strict";
import type { ContainerSummary, NetworkInspect } from "../../lib/docker/types.ts";
import { liveOwnersSettled, ownerKey, ownersToCheck, planClean } from "../../lib/run/clean.ts";
import type { DamagedRecord, Owner, RunRecord } from "../../lib/store/records.ts";
import { DEAD_OWNER, record, summary } from "../cli/records_fixture.ts";

const LIVE: Owner = { pid: 4242, bootId: "this-boot", startTicks: 7 };
/** Like `isOwnerAlive`: same boot and pid, and the same start time unless it is unknown (0, from labels). */
const alive = (o: Owner | undefined) =>
  o !== undefined && o.bootId === LIVE.bootId && o.pid === LIVE.pid &&
  (o.startTicks === 0 || o.startTicks === LIVE.startTicks);

function plan(records: RunRecord[], containers: ContainerSummary[], workspace?: string) {
  return planClean({ records, containers, ownerAlive: alive, ...(workspace ? { workspace } : {}) }).map((
    i,
  ) => ({
    runId: i.runId,
    reason: i.reason,
    state: i.state,
    containers: i.containers.map((c) => c.Id),
    record: i.record !== undefined,
  }));
}

const c1 = "1".repeat(64);
const c2 = "2".repeat(64);
const probe = "9".repeat(64);

Deno.test("planClean decides each case from records, containers and owners", async (t) => {
  const cases: Array<{
    name: string;
    records: RunRecord[];
    containers: ContainerSummary[];
    want: ReturnType<typeof plan>;
  }> = [
    {
      name: "a finished run whose container was removed: its record",
      records: [record({ id: "aaa" })],
      containers: [],
      want: [{ runId: "aaa", reason: "finished", state: "exited", containers: [], record: true }],
    },
    {
      name: "a finished, kept run: its container and its record",
      records: [record({ id: "aaa", kept: true, removed: false, containerId: c1 })],
      containers: [summary(c1, "aaa")],
      want: [{ runId: "aaa", reason: "finished", state: "exited", containers: [c1], record: true }],
    },
    {
      name: "a run in progress whose owner lives: nothing",
      records: [record({ id: "aaa", state: "running", exitCode: null, containerId: c1, owner: LIVE })],
      containers: [summary(c1, "aaa", { State: "running", Status: "Up 1 minute" })],
      want: [],
    },
    {
      name: "a finished record whose owner still lives (about to exit): nothing",
      records: [record({ id: "aaa", owner: LIVE })],
      containers: [],
      want: [],
    },
    {
      name: "a run whose owner was killed while its container runs: orphaned, container and record",
      records: [record({ id: "aaa", state: "running", exitCode: null, containerId: c1, removed: false })],
      containers: [summary(c1, "aaa", { State: "running", Status: "Up 1 minute" })],
      want: [{ runId: "aaa", reason: "orphaned", state: "running", containers: [c1], record: true }],
    },
    {
      name: "a run in progress with neither container nor owner: lost, its record",
      records: [record({ id: "aaa", state: "running", exitCode: null, containerId: c1, removed: false })],
      containers: [],
      want: [{ runId: "aaa", reason: "lost", state: "lost", containers: [], record: true }],
    },
    {
      name: "an older record without owner: the owner labelled on its container decides",
      records: [record({ id: "aaa", state: "running", exitCode: null, containerId: c1, owner: undefined })],
      containers: [
        summary(c1, "aaa", { State: "running" }, {
          "dev.moat.owner-pid": String(LIVE.pid),
          "dev.moat.boot-id": LIVE.bootId,
        }),
      ],
      want: [],
    },
    {
      name: "an older record without owner whose labelled owner is dead: orphaned",
      records: [record({ id: "aaa", state: "running", exitCode: null, containerId: c1, owner: undefined })],
      containers: [
        summary(c1, "aaa", { State: "running" }, {
          "dev.moat.owner-pid": "1",
          "dev.moat.boot-id": "old-boot",
        }),
      ],
      want: [{ runId: "aaa", reason: "orphaned", state: "running", containers: [c1], record: true }],
    },
    {
      name: "a leftover passwd probe of a dead owner, no record: orphaned",
      records: [],
      containers: [summary(probe, "bbb", { State: "created" }, { "dev.moat.probe": "passwd" })],
      want: [{ runId: "bbb", reason: "orphaned", state: "probe", containers: [probe], record: false }],
    },
    {
      name: "a probe and the run's container both go with the run",
      records: [record({ id: "aaa", state: "running", exitCode: null, containerId: c1, removed: false })],
      containers: [
        summary(c1, "aaa", { State: "running" }),
        summary(probe, "aaa", { State: "created" }, { "dev.moat.probe": "passwd" }),
      ],
      want: [{ runId: "aaa", reason: "orphaned", state: "running", containers: [c1, probe], record: true }],
    },
    {
      name: "a container without record whose labelled owner lives: nothing",
      records: [],
      containers: [
        summary(c2, "ccc", { State: "running" }, {
          "dev.moat.owner-pid": String(LIVE.pid),
          "dev.moat.boot-id": LIVE.bootId,
        }),
      ],
      want: [],
    },
    {
      name: "a kept container whose record is in another MOAT_HOME looks orphaned from here",
      records: [],
      containers: [summary(c2, "ddd")],
      want: [{ runId: "ddd", reason: "orphaned", state: "exited", containers: [c2], record: false }],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.deepEqual(plan(c.records, c.containers), c.want));
  }
});

Deno.test("planClean decides damaged records: removed once no live owner or running container has them", async (t) => {
  const broken = (id: string): DamagedRecord => ({
    id,
    damage: { path: `/h/runs/${id}/run.json`, problem: "not valid JSON (…)" },
    record: null,
  });
  const noOutput = (rec: RunRecord): DamagedRecord => ({
    id: rec.id,
    damage: { path: `/h/runs/${rec.id}/output.bin`, problem: "missing (moat created it with the record)" },
    record: rec,
  });
  const deadLabels = { "dev.moat.owner-pid": "1", "dev.moat.boot-id": "old-boot" };
  const liveLabels = { "dev.moat.owner-pid": String(LIVE.pid), "dev.moat.boot-id": LIVE.bootId };
  const finished = record({ id: "bbb" });
  const running = record({ id: "bbb", state: "running", exitCode: null, owner: LIVE });
  const cases: Array<{
    name: string;
    records: RunRecord[];
    damaged: DamagedRecord[];
    containers: ContainerSummary[];
    want: Array<{ runId: string; reason: string; state: string; containers: string[]; damaged: boolean }>;
  }> = [
    {
      name: "an unreadable run.json without containers: its directory",
      records: [],
      damaged: [broken("aaa")],
      containers: [],
      want: [{ runId: "aaa", reason: "damaged", state: "damaged", containers: [], damaged: true }],
    },
    {
      name: "an unreadable run.json with a stopped container of a dead owner: both",
      records: [],
      damaged: [broken("aaa")],
      containers: [summary(c1, "aaa", {}, deadLabels)],
      want: [{ runId: "aaa", reason: "damaged", state: "damaged", containers: [c1], damaged: true }],
    },
    {
      name: "an unreadable run.json whose container still runs: left alone, the container too",
      records: [],
      damaged: [broken("aaa")],
      containers: [summary(c1, "aaa", { State: "running", Status: "Up 1 minute" }, deadLabels)],
      want: [],
    },
    {
      name: "an unreadable run.json whose container's labelled owner lives: left alone",
      records: [],
      damaged: [broken("aaa")],
      containers: [summary(c1, "aaa", { State: "created" }, liveLabels)],
      want: [],
    },
    {
      name: "a finished record whose output.bin is gone: damaged, its record",
      records: [finished],
      damaged: [noOutput(finished)],
      containers: [],
      want: [{ runId: "bbb", reason: "damaged", state: "exited", containers: [], damaged: true }],
    },
    {
      name: "a record whose output.bin is gone while its owner lives: left alone",
      records: [running],
      damaged: [noOutput(running)],
      containers: [],
      want: [],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const items = planClean({
        records: c.records,
        containers: c.containers,
        ownerAlive: alive,
        damaged: c.damaged,
      });
      assert.deepEqual(
        items.map((i) => ({
          runId: i.runId,
          reason: i.reason,
          state: i.state,
          containers: i.containers.map((x) => x.Id),
          damaged: i.damage !== undefined,
        })),
        c.want,
      );
    });
  }
  // --workspace: an unreadable record's workspace is unknown, so it is not in any.
  assert.deepEqual(
    planClean({ records: [], containers: [], ownerAlive: alive, damaged: [broken("aaa")], workspace: "/ws" }),
    [],
  );
});

Deno.test("planClean lists records newest first, then record-less containers newest first", () => {
  const items = planClean({
    records: [record({ id: "new" }), record({ id: "old" })],
    containers: [summary(c1, "x1", { Created: 10 }), summary(c2, "x2", { Created: 20 })],
    ownerAlive: () => false,
  });
  assert.deepEqual(items.map((i) => i.runId), ["new", "old", "x2", "x1"]);
});

Deno.test("planClean with a workspace keeps only that workspace's runs and containers", () => {
  const records = [record({ id: "mine", workspace: "/a" }), record({ id: "theirs", workspace: "/b" })];
  const containers = [
    summary(c1, "m2", {}, { "dev.moat.workspace": "/a" }),
    summary(c2, "t2", {}, { "dev.moat.workspace": "/b" }),
  ];
  assert.deepEqual(plan(records, containers, "/a").map((i) => i.runId), ["mine", "m2"]);
  assert.deepEqual(plan(records, containers).map((i) => i.runId), ["mine", "theirs", "m2", "t2"]);
});

Deno.test("ownersToCheck names the record owners and the owners labelled on containers", () => {
  const owners = ownersToCheck(
    [record({ id: "aaa" })],
    [summary(c1, "zzz", {}, { "dev.moat.owner-pid": "12", "dev.moat.boot-id": "b" })],
  );
  assert.deepEqual(owners, [DEAD_OWNER, { pid: 12, bootId: "b", startTicks: 0 }]);
});

Deno.test("a run that changed hands while its owner was checked is its new owner's, and not cleaned", () => {
  // Read with `moat run -d` as owner (gone by the check); read again, the recorder (alive) owns it.
  const gone = { pid: 100, bootId: "b", startTicks: 1 };
  const recorder = { pid: 200, bootId: "b", startTicks: 2 };
  const before = record({
    id: "r1",
    state: "running",
    exitCode: null,
    containerId: "c1",
    removed: false,
    owner: gone,
  });
  const after: RunRecord = { ...before, owner: recorder };
  const containers = [summary("c1", "r1", { State: "running", Status: "Up 1 minute" })];
  const isAlive = (o: { pid: number }) => o.pid === recorder.pid;
  const { scan, alive } = liveOwnersSettled(
    [before],
    () => ({ records: [after], damaged: [] }),
    containers,
    isAlive,
  );
  assert.deepEqual([...alive], [ownerKey(recorder)]);
  const plan = (records: RunRecord[]) =>
    planClean({
      records,
      containers,
      ownerAlive: (o) => o !== undefined && alive.has(ownerKey(o)),
      damaged: [],
    });
  assert.deepEqual(plan(scan.records), [], "the re-read record names the live recorder");
  assert.equal(plan([before]).length, 1, "the first read alone would clean a live run");
});

/** One of moat's networks for `runId`, named after it unless `name` says otherwise. */
function network(
  runId: string,
  labels: Record<string, string> = {},
  name = `moat-net-${runId}`,
): NetworkInspect {
  return {
    Name: name,
    Id: `net-${runId}`,
    Driver: "bridge",
    Labels: { "dev.moat.managed": "true", "dev.moat.run-id": runId, "dev.moat.workspace": "/ws", ...labels },
  };
}
const DEAD_LABELS = { "dev.moat.owner-pid": "1", "dev.moat.boot-id": "another-boot" };
const LIVE_LABELS = { "dev.moat.owner-pid": String(LIVE.pid), "dev.moat.boot-id": LIVE.bootId };

function planNetworks(
  records: RunRecord[],
  containers: ContainerSummary[],
  networks: NetworkInspect[],
  workspace?: string,
) {
  return planClean({ records, containers, networks, ownerAlive: alive, ...(workspace ? { workspace } : {}) })
    .map((i) => ({
      runId: i.runId,
      state: i.state,
      containers: i.containers.map((c) => c.Id),
      networks: i.networks.map((n) => n.Name),
    }));
}

Deno.test("planClean: a run's network goes with its run; a lone one only when its owner is gone", async (t) => {
  const cases: Array<{
    name: string;
    records: RunRecord[];
    containers: ContainerSummary[];
    networks: NetworkInspect[];
    want: ReturnType<typeof planNetworks>;
  }> = [
    {
      name: "a finished --allow run's network left behind: with its record",
      records: [record({ id: "aaa" })],
      containers: [],
      networks: [network("aaa", DEAD_LABELS)],
      want: [{ runId: "aaa", state: "exited", containers: [], networks: ["moat-net-aaa"] }],
    },
    {
      name: "an orphaned run's sandbox and relay: with its containers",
      records: [],
      containers: [
        summary(c1, "bbb", {}, DEAD_LABELS),
        summary(c2, "bbb", {}, { ...DEAD_LABELS, "dev.moat.probe": "relay" }),
      ],
      networks: [network("bbb", DEAD_LABELS)],
      want: [{ runId: "bbb", state: "exited", containers: [c1, c2], networks: ["moat-net-bbb"] }],
    },
    {
      name: "a doctor's network alone, its moat gone: on its own",
      records: [],
      containers: [],
      networks: [network("ccc", { ...DEAD_LABELS, "dev.moat.probe": "doctor" })],
      want: [{ runId: "ccc", state: "network", containers: [], networks: ["moat-net-ccc"] }],
    },
    {
      name: "a network alone whose moat lives (a run or doctor starting): nothing",
      records: [],
      containers: [],
      networks: [network("ddd", LIVE_LABELS)],
      want: [],
    },
    {
      name: "the network of a run in progress: nothing",
      records: [record({ id: "eee", state: "running", exitCode: null, containerId: c1, owner: LIVE })],
      containers: [summary(c1, "eee", { State: "running" })],
      networks: [network("eee", DEAD_LABELS)],
      want: [],
    },
    {
      name: "a run cleaned in part (one container still active): its network stays",
      records: [],
      containers: [
        summary(c1, "fff", {}, DEAD_LABELS),
        summary(c2, "fff", { State: "running" }, LIVE_LABELS),
      ],
      networks: [network("fff", DEAD_LABELS)],
      want: [{ runId: "fff", state: "exited", containers: [c1], networks: [] }],
    },
    {
      name: "a network not named after its run is not moat's to remove",
      records: [],
      containers: [],
      networks: [network("ggg", DEAD_LABELS, "someone-elses")],
      want: [],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.deepEqual(planNetworks(c.records, c.containers, c.networks), c.want);
    });
  }
});

Deno.test("planClean with a workspace keeps only that workspace's lone networks", () => {
  const nets = [network("a1", { ...DEAD_LABELS, "dev.moat.workspace": "/a" }), network("b1", DEAD_LABELS)];
  assert.deepEqual(planNetworks([], [], nets, "/a").map((i) => i.runId), ["a1"]);
  assert.deepEqual(planNetworks([], [], nets).map((i) => i.runId), ["a1", "b1"]);
});

Deno.test("ownersToCheck names the owners labelled on networks too", () => {
  assert.deepEqual(
    ownersToCheck([], [], [network("x", { "dev.moat.owner-pid": "7", "dev.moat.boot-id": "b" })]),
    [
      { pid: 7, bootId: "b", startTicks: 0 },
    ],
  );
});

Deno.test("planClean --standby: what waits for the next run goes only when asked; what expired is orphaned", () => {
  const later = String(Date.now() + 600_000);
  const waitingLabels = { ...DEAD_LABELS, "dev.moat.standby": later };
  const expiredLabels = { ...DEAD_LABELS, "dev.moat.standby": String(Date.now() - 1000) };
  // A warm sandbox with its relay and network made ahead, waiting; and a network made ahead that expired.
  const containers = [
    summary(c1, "aaa", { State: "running" }, waitingLabels),
    summary(c2, "aaa", { State: "running" }, { ...waitingLabels, "dev.moat.probe": "relay" }),
  ];
  const networks = [network("aaa", waitingLabels), network("bbb", expiredLabels)];
  const facts = { records: [], containers, networks, ownerAlive: alive };
  const brief = (items: ReturnType<typeof planClean>) =>
    items.map((i) => ({
      runId: i.runId,
      reason: i.reason,
      containers: i.containers.map((c) => c.Id),
      networks: i.networks.map((n) => n.Name),
    }));
  assert.deepEqual(brief(planClean(facts)), [
    { runId: "bbb", reason: "orphaned", containers: [], networks: ["moat-net-bbb"] },
  ], "without --standby the waiting ones stay");
  assert.deepEqual(brief(planClean({ ...facts, standby: true })), [
    { runId: "aaa", reason: "standby", containers: [c1, c2], networks: ["moat-net-aaa"] },
    { runId: "bbb", reason: "orphaned", containers: [], networks: ["moat-net-bbb"] },
  ], "with --standby, the waiting sandbox, its relay and network, as one item");
});
