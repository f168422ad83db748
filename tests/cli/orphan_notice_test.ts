/**
 * The notice about containers left behind (lib/cli/orphan_notice.ts): its one line as a table, and
 * `maybeFindOrphans` never failing nor waiting past its bound (`findOrphans` itself: tests/run/orphans_test.ts).
 */
import assert from "node:assert/strict";
import { maybeFindOrphans, orphanNotice } from "../../lib/cli/orphan_notice.ts";
import { DockerClient, type EngineClient } from "../../lib/docker/client.ts";
import { unixTransport } from "../../lib/docker/transport.ts";
import type { ContainerSummary } from "../../lib/docker/types.ts";
import { UsageError } from "../../lib/errors.ts";
import { scratch } from "../engine/helpers.ts";
import { FakeEngine } from "../fake_engine.ts";
import { DEAD_OWNER, homeLabel, summary } from "./run_records.ts";

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
