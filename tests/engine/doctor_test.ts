/**
 * `moat doctor` against the real engine: the probe runs under gVisor, proves gVisor's kernel, is labelled
 * like every moat container, and is gone afterwards. Fails (never skips) without an engine.
 */
import assert from "node:assert/strict";
import { docker, moat, requireEngine, scratch, TEST_IMAGE } from "./helpers.ts";

interface DockerEvent {
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
}

/** Container events for doctor probes between two unix times (seconds), as the docker CLI reports them. */
async function probeEvents(since: number, until: number): Promise<DockerEvent[]> {
  const out = await docker(
    "events",
    "--since",
    String(since),
    "--until",
    String(until),
    "--filter",
    "type=container",
    "--filter",
    "label=dev.moat.probe=doctor",
    "--format",
    "{{json .}}",
  );
  return out.split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

/** Run doctor with its temp dirs (the probe's workspace) under a directory of this test's own. */
async function doctorRun(args: string[], env: Record<string, string> = {}) {
  const s = await scratch();
  const tmp = await Deno.realPath(s.ws);
  const since = Math.floor(Date.now() / 1000) - 1;
  try {
    const r = await moat(["doctor", ...args], { home: s.home, cwd: tmp, env: { TMPDIR: tmp, ...env } });
    const until = Math.ceil(Date.now() / 1000) + 1;
    // This run's probe: its workspace label is under our TMPDIR (other suites may run doctor concurrently).
    const events = (await probeEvents(since, until)).filter((e) =>
      (e.Actor.Attributes["dev.moat.workspace"] ?? "").startsWith(`${tmp}/`)
    );
    const homeId = await Deno.readTextFile(`${s.home}/home-id`).then((t) => t.trim(), () => undefined);
    return { ...r, events, homeId };
  } finally {
    await s.cleanup();
  }
}

async function runscHasHostNetwork(): Promise<boolean> {
  const runtimes = JSON.parse(await docker("info", "--format", "{{json .Runtimes}}"));
  const args: string[] = runtimes.runsc?.runtimeArgs ?? [];
  return args.includes("--network=host");
}

Deno.test("doctor on the real engine passes, proves gVisor's kernel and leaves no probe container", async () => {
  await requireEngine();
  const r = await doctorRun([]);
  assert.equal(r.stderr, "", "no warning on stderr, sandbox or otherwise");
  assert.equal(r.code, 0, r.out);
  const lines = r.out.split("\n");
  assert.match(
    lines[0]!,
    /^✓ Engine: Docker .* at unix:\/\/\/var\/run\/docker\.sock \(the default socket; DOCKER_HOST is not set\)$/,
  );
  assert.match(r.out, /^✓ API version: the engine speaks up to 1\.\d+; moat uses 1\.\d+/m);
  assert.match(r.out, /^✓ Runtimes: .*\brunsc\b.*; default: /m);
  assert.match(
    r.out,
    /^✓ Probe run: kernel 4\.4\.0 under "runsc" with debian:bookworm-slim \(dmesg: "Starting gVisor\.\.\."\); container removed$/m,
  );
  assert.match(r.out, /^✓ Image: debian:bookworm-slim \(the default\) is on the engine \([0-9a-f]{12}\)$/m);
  assert.match(r.out, /^✓ MOAT_HOME: \/.* is writable$/m);

  // This host's daemon.json gives runsc --network=host (scripts/setup.sh): doctor must warn, not fail.
  if (await runscHasHostNetwork()) {
    assert.match(
      r.out,
      /^! gVisor: "runsc" \(name: the default\) runs \/usr\/bin\/runsc; runtime arguments: .*--network=host/m,
    );
    assert.match(r.out, /^ {4}--network=host weakens isolation/m);
    assert.match(r.out, /\nA sandboxed run would work here \(1 warning\)\.\n$/);
  } else {
    assert.match(r.out, /^✓ gVisor: "runsc" /m);
  }

  // The probe existed, carried moat's labels, and was destroyed; nothing with its run id is left.
  const created = r.events.filter((e) => e.Action === "create");
  assert.equal(created.length, 1, `one probe container was created: ${JSON.stringify(r.events)}`);
  const probe = created[0]!;
  const labels = probe.Actor.Attributes;
  assert.equal(labels["dev.moat.managed"], "true");
  assert.equal(labels["dev.moat.sandbox"], "gvisor");
  assert.equal(labels["dev.moat.runtime"], "runsc");
  assert.match(labels["dev.moat.run-id"] ?? "", /^[0-9a-z]+$/);
  assert.match(labels["dev.moat.owner-pid"] ?? "", /^\d+$/);
  assert.match(r.homeId ?? "", /^[0-9a-f]{32}$/, "doctor made the MOAT_HOME's id");
  assert.equal(labels["dev.moat.home"], r.homeId, "the probe is labelled with it, like a run's container");
  assert.ok(
    r.events.some((e) => e.Action === "destroy" && e.Actor.ID === probe.Actor.ID),
    "the probe container was destroyed",
  );
  const left = await docker("ps", "-aq", "--filter", `label=dev.moat.run-id=${labels["dev.moat.run-id"]}`);
  assert.equal(left.trim(), "", "no container with the probe's run id is left");
});

Deno.test("doctor --json on the real engine is ok, and the probe uses MOAT_IMAGE", async () => {
  await requireEngine();
  const r = await doctorRun(["--json"], { MOAT_IMAGE: TEST_IMAGE });
  assert.equal(r.code, 0, r.out);
  assert.equal(r.stderr, "");
  const report = JSON.parse(r.out);
  assert.equal(report.ok, true);
  const byName = Object.fromEntries(report.checks.map((c: { name: string }) => [c.name, c]));
  assert.deepEqual(Object.keys(byName), ["engine", "api", "runtimes", "gvisor", "probe", "image", "home"]);
  assert.equal(byName.probe.status, "ok");
  assert.match(
    byName.probe.detail,
    new RegExp(`^kernel 4\\.4\\.0 under "runsc" with ${TEST_IMAGE.replace(/[./]/g, "\\$&")} `),
  );
  assert.equal(byName.image.detail.startsWith(`${TEST_IMAGE} (from MOAT_IMAGE) is on the engine`), true);
  assert.equal(byName.gvisor.status, (await runscHasHostNetwork()) ? "warn" : "ok");
  assert.equal(r.events.filter((e) => e.Action === "create").length, 1);
  assert.equal(r.events.filter((e) => e.Action === "destroy").length, 1);
});
