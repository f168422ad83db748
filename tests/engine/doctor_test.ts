/**
 * `moat doctor` against the real engine: the probe runs under gVisor, proves gVisor's kernel, is labelled
 * like every moat container, and is gone afterwards; so are the run network and the isolation probe on it,
 * which reaches none of this host's addresses — while the same probe on an `Internal` network without
 * inhibit_ipv4 reaches the host (the control: the probe can see a leak). Only this machine's addresses are
 * tried, and networks and containers the test (or its doctor) made. Fails (never skips) without an engine.
 */
import assert from "node:assert/strict";
import { clientFromEnv } from "../../lib/docker/client.ts";
import { probeIsolation } from "../../lib/doctor/network_probe.ts";
import { parseReachOutput } from "../../lib/doctor/reach.ts";
import { freeSubnet, isolatedNetworkBody } from "../../lib/run/network.ts";
import { moatRuntime } from "../../lib/run/relay_plan.ts";
import { docker, moat, requireEngine, ROOT, scratch, TEST_IMAGE } from "./helpers.ts";

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
  const network =
    /^✓ Run network: (moat-net-([0-9a-f]{12})) on 10\.237\.\d+\.\d+\/28: Internal, its bridge without a host address; removed$/m
      .exec(r.out);
  assert.ok(network, r.out);
  // The run network's gateway, then docker0's address (this engine's default bridge), each on one port.
  const bridgeGateway =
    (await docker("network", "inspect", "bridge", "--format", "{{range .IPAM.Config}}{{.Gateway}} {{end}}"))
      .trim().split(" ")[0];
  const isolation =
    /^✓ Host isolation: a sandbox under "runsc" on a run network reached none of (\d+) host addresses \((.*)\); container removed$/m
      .exec(r.out);
  assert.ok(isolation, r.out);
  const tried = isolation[2]!.split(", ");
  assert.equal(tried.length, Number(isolation[1]));
  assert.match(tried[0]!, /^10\.237\.\d+\.\d+:\d+ (timed out|no route to host|network unreachable|refused)$/);
  assert.ok(
    tried.some((t) => t.startsWith(`${bridgeGateway}:`)),
    `docker0's ${bridgeGateway} was tried: ${tried}`,
  );
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

  // The probes existed, carried moat's labels, and were destroyed; nothing with their run id is left.
  const created = r.events.filter((e) => e.Action === "create");
  assert.equal(created.length, 2, `two probe containers were created: ${JSON.stringify(r.events)}`);
  const probe = created[0]!;
  const reach = created[1]!;
  assert.equal(reach.Actor.Attributes["name"], `moat-doctor-${labels0(probe)}-reach`);
  assert.equal(reach.Actor.Attributes["dev.moat.run-id"], labels0(probe), "one run id for both probes");
  assert.equal(reach.Actor.Attributes["dev.moat.probe"], "doctor");
  assert.equal(network[2], labels0(probe), "the network is named after the same run id");
  const labels = probe.Actor.Attributes;
  assert.equal(labels["dev.moat.managed"], "true");
  assert.equal(labels["dev.moat.sandbox"], "gvisor");
  assert.equal(labels["dev.moat.runtime"], "runsc");
  assert.match(labels["dev.moat.run-id"] ?? "", /^[0-9a-z]+$/);
  assert.match(labels["dev.moat.owner-pid"] ?? "", /^\d+$/);
  assert.match(r.homeId ?? "", /^[0-9a-f]{32}$/, "doctor made the MOAT_HOME's id");
  assert.equal(labels["dev.moat.home"], r.homeId, "the probe is labelled with it, like a run's container");
  for (const c of [probe, reach]) {
    assert.ok(
      r.events.some((e) => e.Action === "destroy" && e.Actor.ID === c.Actor.ID),
      `the probe container ${c.Actor.Attributes["name"]} was destroyed`,
    );
  }
  const left = await docker("ps", "-aq", "--filter", `label=dev.moat.run-id=${labels["dev.moat.run-id"]}`);
  assert.equal(left.trim(), "", "no container with the probe's run id is left");
  const nets = await docker(
    "network",
    "ls",
    "-q",
    "--filter",
    `label=dev.moat.run-id=${labels["dev.moat.run-id"]}`,
  );
  assert.equal(nets.trim(), "", "no network with the probe's run id is left");
  assert.equal((await docker("network", "ls", "-q", "--filter", `name=${network[1]}`)).trim(), "");
});

function labels0(e: DockerEvent): string {
  return e.Actor.Attributes["dev.moat.run-id"] ?? "";
}

Deno.test("the isolation probe sees a leak: on an Internal network alone it reaches this host, on a run's it does not", async () => {
  await requireEngine();
  const client = clientFromEnv(Deno.env.toObject());
  const made: string[] = [];
  const tag = crypto.randomUUID().slice(0, 8);
  const labels = { "dev.moat.test": "doctor" };
  try {
    const all = await client.networkList([]);
    const used = all.flatMap((n) => n.IPAM?.Config?.map((c) => c.Subnet ?? "") ?? []);
    const isolated = freeSubnet(used)!;
    const plain = freeSubnet([...used, isolated])!;
    const leakyBody = isolatedNetworkBody(`moat-test-leaky-${tag}`, plain, labels);
    delete leakyBody.Options!["com.docker.network.bridge.inhibit_ipv4"];
    // The leaky network gets a gateway of its own on the host (the bridge's address), as Docker gives it.
    made.push(await client.networkCreate(leakyBody));
    made.push(await client.networkCreate(isolatedNetworkBody(`moat-test-isolated-${tag}`, isolated, labels)));
    const opts = (runId: string) => ({
      runId,
      labels,
      probe: {
        image: TEST_IMAGE,
        runtime: "runsc",
        // moat's own code (this test's main module is not moat's).
        moat: { ...moatRuntime(), code: { source: ROOT } },
        user: `${Deno.uid()}:${Deno.gid()}`,
        timeoutMs: 60_000,
      },
    });
    const results = [];
    for (const id of made) {
      const inspect = (await client.maybeNetworkInspect(id))!;
      // Only the network's own gateway: this machine's address on the leaky one, none on the isolated one.
      const f = await probeIsolation(client, opts(`test${tag}`), inspect, []);
      results.push(f);
      assert.equal(f.probe?.removed, true, "the probe container is removed");
      assert.equal(f.probe?.outcome?.engineRuntime, "runsc");
    }
    const [leaky, safe] = results;
    assert.deepEqual(
      parseReachOutput(leaky!.probe!.outcome!.stdout, leaky!.targets),
      { kind: "reached", reached: leaky!.targets },
      leaky!.probe!.outcome!.stdout,
    );
    assert.ok(leaky!.accepted >= 1, "this host's listener saw the connection");
    const verdict = parseReachOutput(safe!.probe!.outcome!.stdout, safe!.targets);
    assert.equal(verdict.kind, "isolated", safe!.probe!.outcome!.stdout);
    assert.equal(safe!.accepted, 0);
  } finally {
    for (const id of made) await client.networkRemove(id);
    const left = await docker("ps", "-aq", "--filter", "label=dev.moat.test=doctor");
    for (const id of left.split("\n").filter(Boolean)) await docker("rm", "-f", id);
    assert.equal(left.trim(), "", "the probe left no container");
  }
});

Deno.test("doctor --json on the real engine is ok, and the probe uses MOAT_IMAGE", async () => {
  await requireEngine();
  const r = await doctorRun(["--json"], { MOAT_IMAGE: TEST_IMAGE });
  assert.equal(r.code, 0, r.out);
  assert.equal(r.stderr, "");
  const report = JSON.parse(r.out);
  assert.equal(report.ok, true);
  const byName = Object.fromEntries(report.checks.map((c: { name: string }) => [c.name, c]));
  assert.deepEqual(Object.keys(byName), [
    "engine",
    "api",
    "runtimes",
    "gvisor",
    "probe",
    "network",
    "isolation",
    "image",
    "home",
  ]);
  assert.equal(byName.network.status, "ok");
  assert.equal(byName.isolation.status, "ok");
  assert.match(byName.isolation.detail, /reached none of \d+ host addresses/);
  assert.equal(byName.probe.status, "ok");
  assert.match(
    byName.probe.detail,
    new RegExp(`^kernel 4\\.4\\.0 under "runsc" with ${TEST_IMAGE.replace(/[./]/g, "\\$&")} `),
  );
  assert.equal(byName.image.detail.startsWith(`${TEST_IMAGE} (from MOAT_IMAGE) is on the engine`), true);
  assert.equal(byName.gvisor.status, (await runscHasHostNetwork()) ? "warn" : "ok");
  assert.equal(r.events.filter((e) => e.Action === "create").length, 2);
  assert.equal(r.events.filter((e) => e.Action === "destroy").length, 2);
});
