/**
 * The notice about containers left behind (lib/cli/orphan_notice.ts): its one line as a table, then
 * `findOrphans` against the fake engine, and `maybeFindOrphans` never failing nor waiting past its bound.
 */
import assert from "node:assert/strict";
import {
  findOrphans,
  liveContainerOwners,
  maybeFindOrphans,
  orphanNotice,
  recordsOf,
} from "../../lib/cli/orphan_notice.ts";
import { DockerClient, type EngineClient } from "../../lib/docker/client.ts";
import { unixTransport } from "../../lib/docker/transport.ts";
import type { ContainerSummary } from "../../lib/docker/types.ts";
import { UsageError } from "../../lib/errors.ts";
import { currentOwner } from "../../lib/store/owner.ts";
import { scratch } from "../engine/helpers.ts";
import { FakeEngine } from "../fake_engine.ts";
import { DEAD_OWNER, homeLabel, OTHER_HOME, record, summary, writeRecords } from "./run_records.ts";

// ---- the line ------------------------------------------------------------------------------------------

function named(name: string, runId: string | undefined, created: number): ContainerSummary {
  const c = summary(runId ?? "0", "exited", "Exited (0) 1 minute ago");
  if (runId === undefined) delete c.Labels!["dev.moat.run-id"];
  return { ...c, Id: `${name}-id`.padEnd(64, "0"), Names: [`/${name}`], Created: created };
}

for (
  const [label, orphans, line] of [
    ["no orphans: no notice", [], undefined],
    [
      "one orphan is named by its container name, which shows its run",
      [named("moat-3f2a1b2c3d4e", "3f2a1b2c3d4e", 1)],
      "moat: notice: 1 container left behind by a moat process that is gone (moat-3f2a1b2c3d4e); " +
      "remove it with:  moat clean",
    ],
    [
      "a container whose name does not show its run (a passwd probe) is named with its run",
      [named("eager_turing", "3f2a1b2c3d4e", 1)],
      "moat: notice: 1 container left behind by a moat process that is gone (eager_turing of run " +
      "3f2a1b2c3d4e); remove it with:  moat clean",
    ],
    [
      "a container without a run id is named alone",
      [named("loose", undefined, 1)],
      "moat: notice: 1 container left behind by a moat process that is gone (loose); " +
      "remove it with:  moat clean",
    ],
    [
      "two orphans, newest first",
      [named("moat-aaaaaaaaaaa1", "aaaaaaaaaaa1", 1), named("moat-bbbbbbbbbbb2", "bbbbbbbbbbb2", 2)],
      "moat: notice: 2 containers left behind by moat processes that are gone (moat-bbbbbbbbbbb2, " +
      "moat-aaaaaaaaaaa1); remove them with:  moat clean",
    ],
    [
      "five orphans: the three newest are named, the rest counted",
      [1, 5, 3, 2, 4].map((n) => named(`moat-${n}`, String(n), n)),
      "moat: notice: 5 containers left behind by moat processes that are gone (moat-5, moat-4, moat-3 " +
      "and 2 more); remove them with:  moat clean",
    ],
    [
      "control characters in a run id label never reach the terminal",
      [named("eager_turing", "\x1b[31mx", 1)],
      "moat: notice: 1 container left behind by a moat process that is gone (eager_turing of run ??31mx); " +
      "remove it with:  moat clean",
    ],
  ] as const
) {
  Deno.test(`orphanNotice: ${label}`, () => {
    const got = orphanNotice([...orphans]);
    assert.equal(got, line);
    if (got) assert.ok(!got.includes("\n"), "one line");
  });
}

Deno.test("orphanNotice of an unknown set (the engine was not asked) is no notice", () => {
  assert.equal(orphanNotice(undefined), undefined);
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
  const alive = liveContainerOwners([mine, labelled], (id) => id === rec.id ? rec : undefined);
  assert.deepEqual([...alive].sort(), [mine.Id, labelled.Id].sort());
  const none = liveContainerOwners([mine], () => undefined);
  assert.deepEqual([...none], [], "the labelled owner is dead");
});

// ---- never failing, never waiting past the bound ---------------------------------------------------------

Deno.test("maybeFindOrphans is undefined when the engine is not there", async () => {
  const s = await scratch();
  try {
    const missing = { kind: "unix" as const, path: `${s.home}/missing.sock`, source: "DOCKER_HOST" as const };
    const client = new DockerClient(unixTransport(missing), { timeoutMs: 3000 });
    assert.equal(await maybeFindOrphans(() => client, s.home, 3000), undefined);
  } finally {
    await s.cleanup();
  }
});

Deno.test("maybeFindOrphans is undefined when the client cannot even be made (a bad DOCKER_HOST)", async () => {
  const bad = () => {
    throw new UsageError("DOCKER_HOST is bad", "unset DOCKER_HOST");
  };
  assert.equal(await maybeFindOrphans(bad, "/nonexistent", 3000), undefined);
});

Deno.test("maybeFindOrphans gives up at its bound when the engine never answers", async () => {
  // An engine that never answers the listing: only the bound can end the wait.
  const silent = { containerList: () => new Promise<never>(() => {}) } as unknown as EngineClient;
  assert.equal(await maybeFindOrphans(() => silent, "/nonexistent", 50), undefined);
});

Deno.test("maybeFindOrphans returns what findOrphans found", async () => {
  await using engine = await FakeEngine.start();
  const s = await scratch();
  engine.on("GET /containers/json", {
    status: 200,
    json: [summary("ccccccccccc3", "running", "Up", { ...ownedBy(DEAD_OWNER), ...homeLabel(s.home) })],
  });
  try {
    const client = clientOf(engine);
    const got = await maybeFindOrphans(() => client, s.home, 3000);
    assert.deepEqual(got?.map((c) => c.Labels?.["dev.moat.run-id"]), ["ccccccccccc3"]);
  } finally {
    await s.cleanup();
  }
});
