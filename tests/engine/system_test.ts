/** `moat system containers|images` on the real engine: a kept container and its image are listed. */
import assert from "node:assert/strict";
import { containersFor, moat, requireEngine, scratch, TEST_IMAGE } from "./helpers.ts";
import { removeContainersOf } from "./background_run.ts";

await requireEngine();

Deno.test("system containers lists a kept container with its docker rm -f command, and system images its image", async () => {
  const s = await scratch();
  try {
    const run = await moat(["run", "--keep", "--image", TEST_IMAGE, s.ws, "--", "true"], { home: s.home });
    assert.equal(run.code, 0, run.stderr);
    const [cid] = await containersFor(s.ws);
    assert.ok(cid, "the kept container exists");

    const r = await moat(["system", "containers"], { home: s.home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.out, /^CONTAINER\s+RUN\s+ROLE\s+STATE\s+IMAGE\s+REMOVE WITH$/m);
    assert.match(
      r.out,
      new RegExp(
        `^${cid}\\s+[0-9a-f]{12}\\s+kept\\s+exited\\s+moat-test/busybox:latest\\s+docker rm -f ${cid}$`,
        "m",
      ),
    );
    assert.doesNotMatch(r.stderr, /gVisor|sandbox/i);

    const json = await moat(["system", "containers", "--json"], { home: s.home });
    const mine = JSON.parse(json.out).find((c: { id: string }) => c.id.startsWith(cid!));
    assert.equal(mine.role, "kept");
    assert.equal(mine.workspace, await Deno.realPath(s.ws));

    const images = await moat(["system", "images"], { home: s.home });
    assert.equal(images.code, 0, images.stderr);
    assert.match(
      images.out,
      /^moat-test\/busybox:latest\s+[0-9a-f]{12}\s+.*used by \d+ containers?.*docker rmi moat-test\/busybox:latest$/m,
    );
  } finally {
    await removeContainersOf(s.ws);
    await s.cleanup();
  }
});
