/** What mount targets are in an image, read through a never started probe container (fake engine). */
import assert from "node:assert/strict";
import { imagePathKinds } from "../../lib/run/image_paths.ts";
import { FakeEngine } from "../fake_engine.ts";
import { clientFor } from "./lifecycle_fixture.ts";

const PROBE = "p".repeat(64);
const IMAGE_ID = "sha256:" + "1".repeat(64);

/** Go's os.FileMode bits, as the engine's path stat carries them. */
const DIR = 2 ** 31, SYMLINK = 2 ** 27;

/** An engine whose image has these paths; each answer is `X-Docker-Container-Path-Stat`, or 404. */
function imageWith(
  engine: FakeEngine,
  paths: Record<string, { mode: number; linkTarget?: string } | "error">,
) {
  engine.on("POST /containers/create", { status: 201, json: { Id: PROBE, Warnings: [] } });
  engine.on("DELETE /containers/:id", { status: 204 });
  engine.on("HEAD /containers/:id/archive", async (req, res) => {
    const path = req.query.get("path") ?? "";
    const stat = paths[path];
    if (stat === undefined) return await res.head(404, { "Content-Type": "application/json" });
    if (stat === "error") return await res.head(500, { "Content-Type": "application/json" });
    const json = JSON.stringify({ name: path.split("/").pop(), size: 1, mtime: "", linkTarget: "", ...stat });
    await res.head(200, { "X-Docker-Container-Path-Stat": btoa(json), "Content-Type": "application/x-tar" });
  });
}

Deno.test("imagePathKinds: files, directories, absent paths, links followed; an error leaves the path out", async () => {
  await using engine = await FakeEngine.start();
  imageWith(engine, {
    "/etc": { mode: DIR + 0o755 },
    "/etc/passwd": { mode: 0o644 },
    "/bin/sh": { mode: SYMLINK + 0o777, linkTarget: "/bin/busybox" },
    "/bin/busybox": { mode: 0o755 },
    "/srv": { mode: SYMLINK + 0o777, linkTarget: "/var/srv" },
    "/var/srv": { mode: DIR + 0o755 },
    "/odd": "error",
  });
  const home = await Deno.makeTempDir();
  try {
    const paths = ["/etc", "/etc/passwd", "/bin/sh", "/srv", "/data", "/odd"];
    const labels = { "dev.moat.run-id": "r1" };
    const kinds = await imagePathKinds(clientFor(engine), home, IMAGE_ID, labels, "runsc", paths);
    assert.deepEqual(Object.fromEntries(kinds), {
      "/etc": "directory",
      "/etc/passwd": "file",
      "/bin/sh": "file",
      "/srv": "directory",
      "/data": "absent",
    });
    const [create] = engine.requestsTo("POST /containers/create");
    assert.deepEqual(create!.json, {
      Image: IMAGE_ID,
      Cmd: ["/moat-path-probe"],
      Labels: { "dev.moat.run-id": "r1", "dev.moat.probe": "paths" },
      HostConfig: { Runtime: "runsc" },
    });
    assert.equal(engine.requestsTo("POST /containers/:id/start").length, 0, "the probe never starts");
    assert.equal(engine.requestsTo("DELETE /containers/:id").length, 1, "the probe is removed");

    // Known answers come from the cache; only a path not asked before makes a probe again.
    const again = await imagePathKinds(clientFor(engine), home, IMAGE_ID, labels, "runsc", ["/etc", "/data"]);
    assert.deepEqual(Object.fromEntries(again), { "/etc": "directory", "/data": "absent" });
    assert.equal(engine.requestsTo("POST /containers/create").length, 1);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
