/**
 * Podman's Docker-compatible API (`podman system service`, Debian's podman) as the engine. That API accepts
 * `HostConfig.Runtime` and runs every container under Podman's default runtime all the same (its /info lists
 * runsc whether or not it would use it). moat says it is Podman; refuses sandboxed runs where the default is
 * not gVisor (fail closed: nothing is started, left or recorded); and runs under gVisor where it is, proven
 * by the kernel the command sees, with the allow list refused (its relay runs under runc).
 */
import assert from "node:assert/strict";
import {
  docker,
  GVISOR_PROVEN,
  moat,
  onlyRecord,
  PROVE_GVISOR,
  requireEngine,
  runScript,
  TEST_IMAGE,
  withScratch,
} from "./helpers.ts";
import { podmanService, run } from "./podman_service.ts";

/** Podman's containers with moat's label (any state). */
async function moatContainers(): Promise<string> {
  return (await run("podman", ["ps", "-a", "-q", "--filter", "label=dev.moat.managed=true"])).trim();
}

Deno.test("Podman with its own default runtime: moat says it is Podman and refuses sandboxed runs there", async () => {
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
      assert.equal(report.gvisor.status, "not-default");
      assert.notEqual(report.gvisor.defaultRuntime, "runsc");
      const text = await moat(["status"], { home: s.home, env });
      assert.match(text.out, /^Version: {2}Podman \d/m);
      assert.match(
        text.out,
        /✗ sandboxed runs will be refused: Podman lists "runsc", but it runs every container/,
      );
      const list = await moat(["list"], { home: s.home, env });
      assert.equal(list.code, 0, list.stderr);

      // A sandboxed run: refused, and nothing of it is left.
      const r = await moat(["run", "--network", "none", "--image", TEST_IMAGE, s.ws, "--", "true"], {
        home: s.home,
        env,
      });
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, /Podman runs every container under its default runtime, \S+, whatever is asked/);
      assert.match(r.stderr, /podman --runtime runsc system service/);
      assert.doesNotMatch(r.stderr, /audit log/, "no warning about a record that was never kept");
      assert.equal(await moatContainers(), "", "a container is left in Podman");
      const runs = [...Deno.readDirSync(`${s.home}/runs`)].filter((e) => e.isDirectory);
      assert.deepEqual(runs, [], "the refused run left a record");

      // moat doctor fails its gVisor check there.
      const doctor = await moat(["doctor"], { home: s.home, env: { ...env, MOAT_IMAGE: TEST_IMAGE } });
      assert.notEqual(doctor.code, 0);
      assert.match(doctor.out + doctor.stderr, /✗ gVisor: Podman lists "runsc" .*its default runtime/);
    } finally {
      await podman?.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("Podman with gVisor its default runtime: a run under gVisor; status and doctor say so; the allow list refused", async () => {
  await requireEngine();
  await withScratch(async (s) => {
    const dir = await Deno.makeTempDir({ prefix: "moat-podman-" });
    let podman: Awaited<ReturnType<typeof podmanService>> | undefined;
    try {
      // runsc as Docker runs it here: the same runtime arguments (e.g. --network=host where gVisor's netstack
      // cannot start), as Podman's runtime flags.
      const registered = JSON.parse(await docker("info", "--format", "{{json .Runtimes.runsc}}"));
      const flags = ((registered.runtimeArgs ?? []) as string[]).flatMap((a) => [
        "--runtime-flag",
        a.replace(/^--/, ""),
      ]);
      podman = await podmanService(dir, ["--runtime", registered.path, ...flags]);
      const env = { DOCKER_HOST: `unix://${podman.socket}` };

      const status = JSON.parse((await moat(["status", "--json"], { home: s.home, env })).out);
      assert.deepEqual([status.engine.product, status.gvisor.status], ["Podman", "registered"]);
      const text = await moat(["status"], { home: s.home, env });
      assert.match(text.out, /✓ sandboxed runs can use gVisor \("runsc", Podman's default runtime/);

      const script = `${PROVE_GVISOR}; echo made > /workspace/out; echo err >&2; exit 3`;
      const r = await moat(runScript(s.ws, script), { home: s.home, env });
      assert.equal(r.code, 3, r.stderr);
      assert.equal(r.out, GVISOR_PROVEN, "ran under gVisor, on Podman");
      assert.match(r.stderr, /^err$/m);
      assert.equal(Deno.readTextFileSync(`${s.ws}/out`), "made\n", "the workspace is mounted");
      const record = await onlyRecord(s.home);
      assert.equal(record.exitCode, 3);
      assert.match(String(record.runtime), /(^|\/)runsc$/, "the record names the runtime Podman ran it with");
      assert.equal(await moatContainers(), "", "the run's container is removed");

      // The allow list (moat's default network): refused before anything is made.
      const allow = await moat(["run", "--image", TEST_IMAGE, s.ws, "--", "true"], { home: s.home, env });
      assert.equal(allow.code, 2, allow.stderr);
      assert.match(allow.stderr, /The allow-list network needs its relay to run under runc .* is Podman/);
      assert.match(allow.stderr, /--network none/);
      assert.equal(await moatContainers(), "");

      const doctor = await moat(["doctor"], { home: s.home, env: { ...env, MOAT_IMAGE: TEST_IMAGE } });
      assert.equal(doctor.code, 0, doctor.out + doctor.stderr);
      assert.match(doctor.out, /✓ Probe run: kernel 4\.4\.0 under "runsc"/);
      assert.match(doctor.out, /! Run network: the engine is Podman/);
      assert.match(doctor.out, /A sandboxed run would work here \(2 warnings\)/);
    } finally {
      await podman?.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
});
