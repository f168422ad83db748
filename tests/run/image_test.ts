import assert from "node:assert/strict";
import type { EngineClient, PullProgress } from "../../lib/docker/client.ts";
import type { ImageInspect } from "../../lib/docker/types.ts";
import { ImageMissingError, MoatError } from "../../lib/errors.ts";
import { ensureImage, maybeImageRefProblem } from "../../lib/run/image.ts";

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

// Image references by Docker's grammar; the engine answers a bad one with a bare 400.
const refsOk = [
  "debian:bookworm-slim",
  "moat-test/busybox:latest",
  "a__b",
  "a--b",
  "a.b_c",
  "localhost/x",
  "localhost:5000/team/app:1.2",
  "registry.example.com/a/b/c@sha256:" + "f".repeat(64),
  "Registry.Example.com:443/x:Tag_1",
  "[::1]:5000/x",
  // Image ids fit the grammar: never refused.
  "sha256:" + "a".repeat(64),
  "a".repeat(64),
  "3f1ceb5a",
];
for (const ref of refsOk) {
  Deno.test(`image reference ${ref.slice(0, 40)} is valid`, () => {
    assert.equal(maybeImageRefProblem(ref), undefined);
  });
}

const refsBad: [string, RegExp, string?][] = [
  ["UPPER:bad", /^the repository name must be lowercase$/, "upper:bad"],
  ["reg.io/Team/App:V1", /must be lowercase/, "reg.io/team/app:V1"],
  ["a..b", /^"a\.\.b" in the repository name may only hold lowercase letters and digits/],
  ["a___b", /"a___b" in the repository name/],
  ["-a", /"-a" in the repository name/],
  ["a/b/", /"" in the repository name/],
  ["a:", /^the tag "" must be 1 to 128/],
  ["a:-x", /the tag "-x"/],
  ["a:" + "t".repeat(129), /the tag "t+" must be 1 to 128/],
  [":tag", /^it has no name before the tag$/],
  ["a@sha256:abc", /^the digest "sha256:abc" is not ALGORITHM:HEX/],
  ["a b", /printable ASCII characters, without spaces/],
  ["caf\u00e9", /printable ASCII/],
  ["bad_host.io/x", /^the registry "bad_host\.io" is not a host name/],
  ["x".repeat(256), /longer than 255 characters/],
];
for (const [ref, problem, suggestion] of refsBad) {
  Deno.test(`image reference ${ref.slice(0, 40)} is refused: ${problem.source.slice(0, 40)}`, () => {
    const bad = maybeImageRefProblem(ref);
    assert.match(bad?.problem ?? "", problem);
    assert.equal(bad?.suggestion, suggestion);
  });
}
