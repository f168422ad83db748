/**
 * `moat system containers|images|networks` on the real engine: a kept container and its image are listed,
 * and a network with moat's labels (made by the test) is listed and removed by `moat clean`.
 */
import assert from "node:assert/strict";
import { containersFor, docker, moat, requireEngine, scratch, TEST_IMAGE } from "./helpers.ts";
import { homeLabel } from "../cli/run_records.ts";
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

Deno.test("system networks lists a network with moat's labels with its removal command, and clean -f removes it", async () => {
  const s = await scratch();
  // A network as a killed moat doctor leaves one: moat's labels, an owner that is not alive, this home's id.
  const runId = crypto.getRandomValues(new Uint8Array(6)).reduce(
    (t, b) => t + b.toString(16).padStart(2, "0"),
    "",
  );
  const name = `moat-net-${runId}`;
  const labels = {
    "dev.moat.managed": "true",
    "dev.moat.run-id": runId,
    "dev.moat.workspace": await Deno.realPath(s.ws),
    "dev.moat.owner-pid": "1",
    "dev.moat.boot-id": "00000000-0000-0000-0000-000000000000",
    "dev.moat.probe": "doctor",
    "dev.moat.test": "system",
    ...homeLabel(s.home),
  };
  try {
    await docker(
      "network",
      "create",
      "--internal",
      ...Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]),
      name,
    );
    const r = await moat(["system", "networks"], { home: s.home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.out, /^NETWORK\s+RUN\s+ROLE\s+SUBNET\s+REMOVE WITH$/m);
    assert.match(
      r.out,
      new RegExp(`^${name}\\s+${runId}\\s+orphaned, doctor\\s+\\S+\\s+docker network rm ${name}$`, "m"),
    );
    const dry = await moat(["clean", "--dry-run", "--workspace", s.ws], { home: s.home });
    assert.match(dry.out, new RegExp(`^${runId}\\s+-\\s+network\\s+orphaned`, "m"), dry.out + dry.stderr);
    const cleaned = await moat(["clean", "-f", "--workspace", s.ws], { home: s.home });
    assert.equal(cleaned.code, 0, cleaned.stderr);
    assert.match(cleaned.out, new RegExp(`^removed ${runId}: network ${name}$`, "m"));
    assert.equal((await docker("network", "ls", "-q", "--filter", `name=${name}`)).trim(), "");
  } finally {
    await docker("network", "rm", name).catch(() => "");
    await s.cleanup();
  }
});
