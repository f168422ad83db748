/**
 * `moat clean` after `kill -9` of a `moat run`: the orphaned container is found and removed, with the relay
 * and the network of the run's own network.
 */
import assert from "node:assert/strict";
import { containersFor, docker, moat, requireEngine, scratch } from "./helpers.ts";
import { orphanedRun, removeContainersOf } from "./background_run.ts";

await requireEngine();

Deno.test("after kill -9 of a running moat run, moat clean -f removes the orphaned container and its record", async () => {
  const s = await scratch();
  try {
    const { id, cid } = await orphanedRun(s);
    // The sandbox and its network's relay (the run's own network, as a run without network settings has).
    assert.equal((await containersFor(s.ws)).length, 2, "nobody removed the container and its relay");

    // --workspace keeps this test to its own containers: the engine is shared with other tests.
    const dry = await moat(["clean", "--dry-run", "--workspace", s.ws], { home: s.home });
    assert.equal(dry.code, 0, dry.stderr);
    // The sandbox, then its relay.
    assert.match(dry.out, new RegExp(`^${id}\\s+-\\s+running\\s+orphaned\\s+${cid},[0-9a-f]{12}\\s`, "m"));
    assert.equal((await containersFor(s.ws)).length, 2, "a dry run removes nothing");

    const r = await moat(["clean", "-f", "--workspace", s.ws], { home: s.home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.out,
      new RegExp(
        `^removed ${id}: container ${cid}, container [0-9a-f]{12}, network moat-net-${id}, record$`,
        "m",
      ),
    );
    assert.deepEqual(await containersFor(s.ws), []);
    assert.equal(
      await docker("network", "ls", "-q", "--filter", `name=moat-net-${id}`),
      "",
      "its network too",
    );
    assert.deepEqual(await Array.fromAsync(Deno.readDir(`${s.home}/runs`)), []);
  } finally {
    await removeContainersOf(s.ws);
    await s.cleanup();
  }
});
