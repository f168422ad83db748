import assert from "node:assert/strict";
import type { EngineClient, PullProgress } from "../../lib/docker/client.ts";
import type { ImageInspect } from "../../lib/docker/types.ts";
import { ImageMissingError, MoatError } from "../../lib/errors.ts";
import { ensureImage } from "../../lib/run/image.ts";

/** Just the image half of the client interface; anything else would be a test bug. */
function imageClient(opts: { present: boolean; pull: "ok" | "fail" }) {
  let present = opts.present;
  const calls: string[] = [];
  const client = {
    maybeImageInspect(name: string): Promise<ImageInspect | undefined> {
      calls.push(`inspect ${name}`);
      return Promise.resolve(present ? { Id: "sha256:abc" } : undefined);
    },
    imageCreate(ref: string, onProgress: (p: PullProgress) => void): Promise<void> {
      calls.push(`pull ${ref}`);
      if (opts.pull === "fail") {
        return Promise.reject(new MoatError("dial tcp: lookup registry-1.docker.io: no such host"));
      }
      onProgress({ id: "layer1", status: "Downloading", progress: "[==>  ] 1MB/4MB" });
      present = true;
      return Promise.resolve();
    },
  };
  return { client: client as unknown as EngineClient, calls };
}

Deno.test("ensureImage does not pull an image the engine has", async () => {
  const { client, calls } = imageClient({ present: true, pull: "fail" });
  const lines: string[] = [];
  assert.equal((await ensureImage(client, "a:1", (l) => lines.push(l))).Id, "sha256:abc");
  assert.deepEqual(calls, ["inspect a:1"]);
  assert.deepEqual(lines, []);
});

Deno.test("ensureImage pulls a missing image and reports progress lines", async () => {
  const { client, calls } = imageClient({ present: false, pull: "ok" });
  const lines: string[] = [];
  await ensureImage(client, "a:1", (l) => lines.push(l));
  assert.deepEqual(calls, ["inspect a:1", "pull a:1", "inspect a:1"]);
  assert.match(lines[0]!, /not on the engine; pulling/);
  assert.match(lines[1]!, /Pulling a:1: layer1 Downloading \[==> {2}\] 1MB\/4MB/);
});

Deno.test("ensureImage without a registry explains air-gapped use", async () => {
  const { client } = imageClient({ present: false, pull: "fail" });
  await assert.rejects(ensureImage(client, "a:1", () => {}), (err: unknown) => {
    assert.ok(err instanceof ImageMissingError);
    assert.match(err.message, /^Image "a:1" is not on the Docker engine and could not be pulled: dial tcp/);
    assert.match(err.hint ?? "", /docker save a:1 -o image\.tar/);
    assert.match(err.hint ?? "", /docker load -i image\.tar/);
    assert.match(err.hint ?? "", /image: NAME/);
    return true;
  });
});
