/**
 * Podman's Docker-compatible API (`podman system service`, Debian's podman) as the engine: moat reads it,
 * says it is Podman, and refuses sandboxed runs there, because that API accepts `HostConfig.Runtime` and
 * runs every container under its default runtime all the same (its /info lists runsc whether or not it
 * would use it). Fail closed: nothing is started, nothing is left, nothing is recorded.
 */
import assert from "node:assert/strict";
import { moat, requireEngine, TEST_IMAGE, withScratch } from "./helpers.ts";

async function run(cmd: string, args: string[], input?: ReadableStream<Uint8Array>): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: input ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  if (input) await input.pipeTo(child.stdin);
  const r = await child.output();
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  return new TextDecoder().decode(r.stdout);
}

/** A Podman service of the test's own on a socket in `dir`, with the test image loaded into Podman. */
async function podmanService(dir: string): Promise<{ socket: string; close(): Promise<void> }> {
  const socket = `${dir}/podman.sock`;
  // The test image, from the Docker engine into Podman's storage.
  const save = new Deno.Command("docker", { args: ["save", TEST_IMAGE], stdout: "piped", stderr: "null" })
    .spawn();
  await run("podman", ["load"], save.stdout);
  await save.status;
  const service = new Deno.Command("podman", {
    args: ["system", "service", "--time=0", `unix://${socket}`],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log = new Response(service.stderr).text();
  const deadline = Date.now() + 30_000;
  for (;;) {
    const up = await Deno.connect({ transport: "unix", path: socket }).then((c) => {
      c.close();
      return true;
    }, () => false);
    if (up) break;
    if (Date.now() > deadline) throw new Error(`podman system service did not start: ${await log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    socket,
    async close() {
      try {
        service.kill("SIGTERM");
      } catch { /* gone */ }
      await service.status;
      await log;
    },
  };
}

Deno.test("Podman's Docker-compatible API: moat says it is Podman, and refuses sandboxed runs there (it ignores the runtime)", async () => {
  await requireEngine();
  await withScratch(async (s) => {
    const dir = await Deno.makeTempDir({ prefix: "moat-podman-" });
    let podman: Awaited<ReturnType<typeof podmanService>> | undefined;
    try {
      podman = await podmanService(dir);
      const env = { DOCKER_HOST: `unix://${podman.socket}` };

      const status = await moat(["status", "--json"], { home: s.home, env });
      assert.equal(status.code, 0, status.stderr);
      const report = JSON.parse(status.out);
      assert.equal(report.engine.product, "Podman");
      const text = await moat(["status"], { home: s.home, env });
      assert.match(text.out, /^Version: {2}Podman \d/m);
      assert.match(text.out, /✗ sandboxed runs will be refused: Podman lists "runsc"/);
      const list = await moat(["list"], { home: s.home, env });
      assert.equal(list.code, 0, list.stderr);

      // A sandboxed run: created, found to be under Podman's default runtime, removed unstarted.
      const r = await moat(["run", "--network", "none", "--image", TEST_IMAGE, s.ws, "--", "true"], {
        home: s.home,
        env,
      });
      assert.equal(r.code, 125, r.stderr);
      assert.match(
        r.stderr,
        /The engine made the container with the runtime "oci", not "runsc" as moat asked/,
      );
      assert.doesNotMatch(r.stderr, /audit log/, "no warning about a record that was never kept");
      const left = await run("podman", ["ps", "-a", "-q", "--filter", "label=dev.moat.managed=true"]);
      assert.equal(left.trim(), "", "a container is left in Podman");
      const runs = [...Deno.readDirSync(`${s.home}/runs`)].filter((e) => e.isDirectory);
      assert.deepEqual(runs, [], "the refused run left a record");

      // moat doctor fails its gVisor check there.
      const doctor = await moat(["doctor"], { home: s.home, env: { ...env, MOAT_IMAGE: TEST_IMAGE } });
      assert.notEqual(doctor.code, 0);
      assert.match(doctor.out + doctor.stderr, /✗ gVisor: Podman lists "runsc"/);
    } finally {
      await podman?.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
});
