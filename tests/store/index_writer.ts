/**
 * A moat process writing runs, for the index's concurrency test (tests/store/run_index_test.ts):
 * `deno run -A index_writer.ts HOME PREFIX COUNT` makes COUNT runs whose ids start with PREFIX (6 hex
 * digits), each through every state a foreground run writes, the last with exit code (i % 7).
 */
import { RunStore } from "../../lib/store/records.ts";
import { record } from "../cli/records_fixture.ts";

const [home, prefix, count] = Deno.args;
for (let i = 0; i < Number(count); i++) {
  const id = `${prefix}${i.toString(16).padStart(6, "0")}`;
  const store = RunStore.create(
    home!,
    record({
      id,
      name: `w-${id}`,
      state: "creating",
      exitCode: null,
      runtime: null,
      removed: false,
      createdAt: new Date().toISOString(),
      startedAt: null,
      finishedAt: null,
    }),
  );
  store.update({ state: "created", containerId: id.padEnd(64, "0"), runtime: "runsc" });
  store.update({ state: "running", startedAt: new Date().toISOString() });
  store.update({ state: "exited", exitCode: i % 7, finishedAt: new Date().toISOString(), removed: true });
  await store.close();
}
