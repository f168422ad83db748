/** Run names: which run holds a name (a pure table), and the refusal's text. */
import assert from "node:assert/strict";
import { nameInUseError, runHoldingName } from "../../lib/run/names.ts";
import type { Owner, RunRecord } from "../../lib/store/records.ts";
import { baseRecord } from "./fixtures.ts";

const LIVE: Owner = { pid: 10, bootId: "b", startTicks: 1 };
const DEAD: Owner = { pid: 11, bootId: "b", startTicks: 1 };
const alive = (o: Owner) => o.pid === LIVE.pid;

const run = (id: string, patch: Partial<RunRecord>): RunRecord => ({
  ...baseRecord,
  id,
  name: "x",
  ...patch,
});

for (
  const [label, records, holder] of [
    ["a running run with a live owner holds its name", [run("r1", { owner: LIVE })], "r1"],
    ["a run still being created holds it too", [run("r1", { state: "creating", owner: LIVE })], "r1"],
    ["a finished run does not", [run("r1", { state: "exited", exitCode: 0, owner: LIVE })], undefined],
    ["an interrupted run does not", [run("r1", { state: "interrupted", owner: LIVE })], undefined],
    ["a failed run does not", [run("r1", { state: "failed", owner: LIVE })], undefined],
    ["a run whose owner is gone does not (nobody will finish it)", [run("r1", { owner: DEAD })], undefined],
    ["a run of an older moat without an owner does not", [run("r1", { owner: undefined })], undefined],
    ["a run with another name does not", [run("r1", { name: "y", owner: LIVE })], undefined],
    ["a run without a name does not", [run("r1", { name: null, owner: LIVE })], undefined],
    [
      "among finished runs sharing the name, the running one is found",
      [
        run("r3", { state: "exited", owner: DEAD }),
        run("r2", { owner: LIVE }),
        run("r1", { state: "exited", owner: LIVE }),
      ],
      "r2",
    ],
    ["the newest of two holders is named", [run("r2", { owner: LIVE }), run("r1", { owner: LIVE })], "r2"],
  ] as const
) {
  Deno.test(`runHoldingName: ${label}`, () => {
    assert.equal(runHoldingName(records as readonly RunRecord[], "x", alive)?.id, holder);
  });
}

Deno.test("the refusal names the run that holds the name and says what to type", () => {
  const err = nameInUseError("fix", run("0123456789ab", { owner: LIVE }));
  assert.equal(err.exitCode, 125);
  assert.equal(err.message, 'The name "fix" is in use by run 0123456789ab, which is still running');
  assert.equal(
    err.hint,
    "Stop that run first:  moat stop 0123456789ab\nor give this run another name:  moat run --name fix-2 …",
  );
});
