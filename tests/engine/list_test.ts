/** `moat list` and `moat status` against the real engine: what only the daemon can prove. */
import assert from "node:assert/strict";
import type { ListJsonItem } from "../../lib/cli/list.ts";
import type { StatusReport } from "../../lib/cli/status.ts";
import { containersFor, docker, moat, requireEngine, scratch, TEST_IMAGE } from "./helpers.ts";

Deno.test("a kept run shows in moat list --json with runtime runsc and the exit code the engine reports", async () => {
  await requireEngine();
  const s = await scratch();
  try {
    const r = await moat([
      "run",
      "--keep",
      "--name",
      "listed",
      "--image",
      TEST_IMAGE,
      s.ws,
      "--",
      "sh",
      "-c",
      "exit 3",
    ], {
      home: s.home,
    });
    assert.equal(r.code, 3, r.stderr);
    const ids = await containersFor(s.ws);
    assert.equal(ids.length, 1, "the kept container");

    const l = await moat(["list", "--json"], { home: s.home });
    assert.equal(l.code, 0, l.stderr);
    assert.equal(l.stderr, "", "no note, and no sandbox warning");
    const items = JSON.parse(l.out) as ListJsonItem[];
    assert.equal(items.length, 1);
    const item = items[0]!;
    assert.equal(item.name, "listed");
    assert.equal(item.sandbox, "gvisor");
    assert.equal(item.runtime, "runsc");
    assert.equal(item.kept, true);
    assert.equal(item.shownState, "exited");
    assert.equal(item.shownExitCode, 3);
    assert.equal(item.containerState, "exited");
    assert.ok(item.containerId?.startsWith(ids[0]!), "the record's container is the kept one");

    const t = await moat(["list"], { home: s.home });
    assert.equal(t.code, 0);
    assert.match(
      t.out,
      new RegExp(`^listed +${item.id} +exited +gvisor \\(runsc\\) +${TEST_IMAGE} +\\d+s +3$`, "m"),
    );

    const st = await moat(["status", "--json"], { home: s.home });
    assert.equal(st.code, 0, st.stderr);
    assert.equal(st.stderr, "");
    const report = JSON.parse(st.out) as StatusReport;
    assert.equal(report.engine.reachable, true);
    assert.match(report.engine.serverVersion ?? "", /^\d+\.\d+/);
    assert.equal(report.gvisor.status, "registered");
    assert.equal(report.gvisor.runtime, "runsc");
    assert.deepEqual(report.runs, {
      total: 1,
      running: 0,
      stopped: 1,
      lost: 0,
      damaged: 0,
      statesFrom: "engine",
    });
    assert.equal(item.damage, null, "a run's record and output, whole");
    assert.ok(report.records.bytes > 0);
    assert.ok(
      !report.orphanedContainers!.some((o) => o.runId === item.id),
      "a kept container is not an orphan",
    );
    assert.deepEqual(report.cleanableRuns, [
      { id: item.id, name: "listed", shownState: "exited", containerState: "exited" },
    ]);

    await docker("rm", "-f", ids[0]!);
    const after = JSON.parse((await moat(["list", "--json"], { home: s.home })).out) as ListJsonItem[];
    assert.equal(after[0]!.containerState, "absent", "the engine no longer has it; the record is unchanged");
    assert.equal(after[0]!.shownExitCode, 3);
  } finally {
    for (const id of await containersFor(s.ws)) await docker("rm", "-f", id);
    await s.cleanup();
  }
});
