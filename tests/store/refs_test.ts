import assert from "node:assert/strict";
import { UsageError } from "../../lib/errors.ts";
import type { RunRecord } from "../../lib/store/records.ts";
import { newestRun, resolveRunRef } from "../../lib/store/refs.ts";

function rec(
  id: string,
  name: string | null,
  createdAt: string,
  state: RunRecord["state"] = "exited",
): RunRecord {
  return {
    schema: 1,
    id,
    name,
    workspace: "/w",
    image: "i",
    command: null,
    sandbox: "gvisor",
    runtime: "runsc",
    containerId: null,
    state,
    exitCode: 0,
    signal: null,
    error: null,
    kept: false,
    removed: true,
    createdAt,
    startedAt: null,
    finishedAt: null,
    moatVersion: "0",
  };
}

// Newest first, as listRecords returns them.
const records = [
  rec("abc111111111", "fix", "2026-01-03T00:00:00Z", "running"),
  rec("abc222222222", "fix", "2026-01-02T00:00:00Z"),
  rec("def333333333", "build", "2026-01-01T00:00:00Z"),
  rec("123456789abc", "abc", "2025-12-31T00:00:00Z"),
];

const found: [string, string][] = [
  ["a full id", "abc222222222"],
  ["a unique prefix", "def"],
  ["a unique name", "build"],
];
for (const [label, ref] of found) {
  Deno.test(`a run reference may be ${label}`, () => {
    const r = resolveRunRef(records, ref);
    assert.ok(r.id === ref || r.id.startsWith(ref) || r.name === ref);
  });
}

Deno.test("a name beats an id prefix that happens to match", () => {
  assert.equal(resolveRunRef(records, "abc").id, "123456789abc");
});

Deno.test("an ambiguous prefix is an error that lists the candidates", () => {
  assert.throws(
    () => resolveRunRef(records, "abc1").id === "x" || resolveRunRef(records, "ab"),
    (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.match(err.message, /"ab" matches 2 runs: give more of the id/);
      assert.match(err.hint ?? "", /abc111111111 {2}fix {2}running/);
      assert.match(err.hint ?? "", /abc222222222/);
      return true;
    },
  );
});

Deno.test("a name several runs share means the newest of them", () => {
  assert.equal(resolveRunRef(records, "fix").id, "abc111111111");
  assert.equal(resolveRunRef(records.slice(1), "fix").id, "abc222222222");
});

Deno.test("an unknown reference says how to see the runs", () => {
  assert.throws(() => resolveRunRef(records, "zzz"), (err: unknown) => {
    return err instanceof UsageError && /No run matches "zzz"/.test(err.message) &&
      /moat list/.test(err.hint ?? "");
  });
});

Deno.test("newestRun picks the newest run that matches", () => {
  assert.equal(newestRun(records, (r) => r.state === "exited", "finished").id, "abc222222222");
  assert.throws(() => newestRun(records, () => false, "running"), /There is no running run/);
});
