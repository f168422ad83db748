/** Black-box `moat doctor` against the fake engine (or none): stdout, stderr, exit code, engine calls. */
import assert from "node:assert/strict";
import { moat, scratch } from "../engine/helpers.ts";
import { FakeEngine } from "../fake_engine.ts";

const RUNC_ONLY = {
  ServerVersion: "25.0.5",
  DefaultRuntime: "runc",
  Runtimes: { runc: { path: "runc" }, "io.containerd.runc.v2": { path: "runc" } },
};
const IMAGE = { Id: "sha256:" + "1".repeat(64), RepoTags: ["debian:bookworm-slim"] };

async function doctor(
  args: string[],
  env: Record<string, string>,
  opts: { files?: Record<string, string>; home?: string } = {},
) {
  const s = await scratch();
  try {
    for (const [name, text] of Object.entries(opts.files ?? {})) {
      await Deno.writeTextFile(`${s.ws}/${name}`, text);
    }
    const r = await moat(["doctor", ...args], { home: opts.home ?? s.home, env, cwd: s.ws });
    return { ...r, ws: await Deno.realPath(s.ws), home: s.home };
  } finally {
    await s.cleanup();
  }
}

const via = (engine: FakeEngine) => ({ DOCKER_HOST: `unix://${engine.endpoint.path}` });

function line(out: string, label: string): string {
  const found = out.split("\n").find((l) => l.slice(2).startsWith(`${label}:`));
  assert.ok(found, `a "${label}" line in:\n${out}`);
  return found;
}

Deno.test("doctor on an engine without runsc exits 1 with the registration fix and creates nothing", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", { status: 200, json: RUNC_ONLY });
  engine.on("GET /images/:name/json", { status: 200, json: IMAGE });
  const networks = engine.withNetworks();
  const r = await doctor([], via(engine));
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "", "nothing on stderr: no sandbox warning, no error");
  assert.match(
    line(r.out, "Engine"),
    /^✓ Engine: Docker 25\.0\.5 at unix:\/\/.*docker\.sock \(from DOCKER_HOST\)$/,
  );
  assert.match(line(r.out, "API version"), /^✓ .*up to 1\.44; moat uses 1\.44/);
  assert.equal(line(r.out, "Runtimes"), "✓ Runtimes: io.containerd.runc.v2, runc; default: runc");
  assert.equal(
    line(r.out, "gVisor"),
    `✗ gVisor: no runtime "runsc" is registered with the engine (name: the default)`,
  );
  assert.match(r.out, /^ {4}1\. Install gVisor/m);
  assert.match(r.out, /^ {4} {5}sudo apt-get update && sudo apt-get install -y runsc$/m);
  assert.match(r.out, /"runtimes": \{ "runsc": \{ "path": "\/usr\/bin\/runsc" \} \}/);
  assert.match(r.out, /sudo runsc install --runtime runsc/);
  assert.match(line(r.out, "Probe run"), /^- Probe run: skipped \(needs a registered gVisor runtime/);
  assert.match(line(r.out, "Image"), /^✓ Image: debian:bookworm-slim \(the default\) is on the engine/);
  assert.match(line(r.out, "MOAT_HOME"), /^✓ MOAT_HOME: .* is writable$/);
  // The run network needs no gVisor: it is made, read back and removed; the probe on it needs gVisor.
  assert.match(
    line(r.out, "Run network"),
    /^✓ Run network: moat-net-[0-9a-f]{12} on 10\.237\.0\.0\/28: Internal, its bridge without a host address; removed$/,
  );
  assert.match(line(r.out, "Host isolation"), /^- Host isolation: skipped \(needs a probe run under gVisor/);
  assert.match(r.out, /\nA sandboxed run would not work here: 1 check failed\.\n$/);
  assert.doesNotMatch(r.out + r.stderr, /sandbox disabled|--no-sandbox/);
  assert.deepEqual(engine.calls().slice(0, 3), [
    "GET /_ping",
    "GET /info",
    "GET /images/debian%3Abookworm-slim/json",
  ]);
  assert.deepEqual(engine.calls().slice(3).map((c) => c.replace(/e+\d+$/, "ID")), [
    "GET /networks",
    "POST /networks/create",
    "GET /networks/ID",
    "DELETE /networks/ID",
  ]);
  assert.equal(networks.size, 0, "the network is gone");
  assert.equal(engine.requestsTo("POST /containers/create").length, 0);
});

Deno.test("doctor with no engine at DOCKER_HOST exits 1 naming the endpoint, why that one, and the reason", async () => {
  const dir = await Deno.makeTempDir({ prefix: "moat-doctor-none-" });
  try {
    const r = await doctor([], { DOCKER_HOST: `unix://${dir}/docker.sock` });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "");
    assert.equal(
      line(r.out, "Engine"),
      `✗ Engine: Docker engine not found: no socket at unix://${dir}/docker.sock (from DOCKER_HOST)`,
    );
    assert.match(r.out, /^ {4}Start the engine/m);
    for (const label of ["API version", "Runtimes", "gVisor", "Probe run", "Image"]) {
      assert.match(line(r.out, label), /^- .*: skipped \(needs a reachable engine\)$/);
    }
    assert.match(line(r.out, "MOAT_HOME"), /^✓ /, "MOAT_HOME does not need the engine");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("doctor tells a refused connection from a missing socket", async () => {
  const dir = await Deno.makeTempDir({ prefix: "moat-doctor-refused-" });
  try {
    // Something is at the path but nothing listens there: connect(2) answers ECONNREFUSED.
    await Deno.writeTextFile(`${dir}/docker.sock`, "");
    const r = await doctor([], { DOCKER_HOST: `unix://${dir}/docker.sock` });
    assert.equal(r.code, 1);
    assert.match(
      line(r.out, "Engine"),
      /^✗ Engine: Docker engine is not running: connection to unix:\/\/.* refused/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("doctor reports an engine older than moat's API floor on the API line", async () => {
  await using engine = await FakeEngine.start({ apiVersion: "1.39", minApiVersion: "1.12" });
  const r = await doctor([], via(engine));
  assert.equal(r.code, 1);
  assert.match(line(r.out, "Engine"), /^✓ /);
  assert.match(
    line(r.out, "API version"),
    /^✗ API version: .*speaks API 1\.39, older than the 1\.40 moat needs/,
  );
  assert.match(line(r.out, "Runtimes"), /^- Runtimes: skipped/);
  assert.deepEqual(engine.calls(), ["GET /_ping"]);
});

Deno.test("doctor --json prints ok and nine named checks, and exits like the text form", async () => {
  await using engine = await FakeEngine.start();
  engine.withNetworks();
  engine.on("GET /info", { status: 200, json: RUNC_ONLY });
  engine.on("GET /images/:name/json", {
    status: 404,
    json: { message: "No such image: debian:bookworm-slim" },
  });
  const r = await doctor(["--json"], via(engine));
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "");
  const report = JSON.parse(r.out);
  assert.deepEqual(Object.keys(report), ["ok", "checks"]);
  assert.equal(report.ok, false);
  assert.deepEqual(
    report.checks.map((c: { name: string; status: string }) => [c.name, c.status]),
    [
      ["engine", "ok"],
      ["api", "ok"],
      ["runtimes", "ok"],
      ["gvisor", "fail"],
      ["probe", "skip"],
      ["network", "ok"],
      ["isolation", "skip"],
      ["image", "fail"],
      ["home", "ok"],
    ],
  );
  for (const c of report.checks) {
    assert.equal(typeof c.detail, "string");
    assert.equal("fix" in c, c.status === "fail" || c.status === "warn", `${c.name}: fix only for fail/warn`);
  }
  const image = report.checks[7];
  assert.equal(image.detail, "debian:bookworm-slim (the default) is not on the engine");
  assert.match(image.fix, /docker load -i image\.tar/);
});

Deno.test("doctor honours runtime: and image: in the current directory's moat.yaml", async () => {
  await using engine = await FakeEngine.start();
  engine.withNetworks();
  engine.on("GET /info", {
    status: 200,
    json: {
      Runtimes: {
        runc: { path: "runc" },
        "runsc-kvm": { path: "/usr/bin/runsc", runtimeArgs: ["--platform=kvm"] },
      },
    },
  });
  engine.on("GET /images/:name/json", { status: 404, json: { message: "No such image" } });
  const r = await doctor([], via(engine), {
    files: { "moat.yaml": "runtime: runsc-kvm\nimage: my/agent:1\n" },
  });
  assert.equal(r.code, 1);
  assert.equal(
    line(r.out, "gVisor"),
    `✓ gVisor: "runsc-kvm" (name: from runtime: in ${r.ws}/moat.yaml) runs /usr/bin/runsc; runtime arguments: --platform=kvm`,
  );
  assert.equal(
    line(r.out, "Image"),
    `✗ Image: my/agent:1 (from image: in ${r.ws}/moat.yaml) is not on the engine`,
  );
  assert.match(
    line(r.out, "Probe run"),
    /^- Probe run: skipped \(needs the image my\/agent:1; see Image below\)$/,
  );
  assert.deepEqual(engine.requestsTo("GET /images/:name/json").map((q) => q.params["name"]), [
    "my/agent:1",
  ]);
  assert.equal(engine.requestsTo("POST /containers/create").length, 0);
});

Deno.test("doctor reports a broken moat.yaml on the gVisor line, since the runtime it names is unknown", async () => {
  await using engine = await FakeEngine.start();
  engine.withNetworks();
  engine.on("GET /info", { status: 200, json: { Runtimes: { runsc: { path: "/usr/bin/runsc" } } } });
  engine.on("GET /images/:name/json", { status: 200, json: IMAGE });
  const r = await doctor([], via(engine), { files: { "moat.yaml": 'runtime: "bad name"\n' } });
  assert.equal(r.code, 1);
  assert.match(line(r.out, "gVisor"), new RegExp(`^✗ gVisor: ${r.ws}/moat\\.yaml:1:10: runtime: `));
  assert.match(r.out, /^ {4}Fix the file, then check again: {2}moat doctor$/m);
  assert.equal(engine.requestsTo("POST /containers/create").length, 0);
});

Deno.test("doctor warns about runsc's --network=host without failing", async () => {
  await using engine = await FakeEngine.start();
  engine.withNetworks();
  engine.on("GET /info", {
    status: 200,
    json: { Runtimes: { runsc: { path: "/usr/bin/runsc", runtimeArgs: ["--network=host"] } } },
  });
  // Stop before the probe: the warning is what is tested here (the real suite runs the probe).
  engine.on("GET /images/:name/json", { status: 404, json: { message: "No such image" } });
  const r = await doctor([], via(engine));
  assert.match(line(r.out, "gVisor"), /^! gVisor: "runsc" .*runtime arguments: --network=host$/);
  assert.match(r.out, /^ {4}--network=host weakens isolation/m);
  assert.match(r.out, /cannot run with network enabled in root network namespace/);
  assert.equal(r.code, 1, "the missing image fails; the warning alone would not");
  assert.match(r.out, /1 check failed \(1 warning\)\.\n$/);
});

Deno.test("doctor fails the run network with the engine's message when it refuses the options", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", { status: 200, json: RUNC_ONLY });
  engine.on("GET /images/:name/json", { status: 200, json: IMAGE });
  const networks = engine.withNetworks([], {
    refuse: "invalid option com.docker.network.bridge.inhibit_ipv4",
  });
  const r = await doctor(["--json"], via(engine));
  assert.equal(r.code, 1);
  const report = JSON.parse(r.out);
  const net = report.checks.find((c: { name: string }) => c.name === "network");
  assert.equal(net.status, "fail");
  assert.match(
    net.detail,
    /^the engine refused an Internal bridge network whose bridge has no host address \(inhibit_ipv4\) on 10\.237\.0\.0\/28: Docker engine error 400 on POST \/networks\/create: invalid option com\.docker\.network\.bridge\.inhibit_ipv4$/,
  );
  assert.match(
    net.fix,
    /needs the engine's bridge driver with the option com\.docker\.network\.bridge\.inhibit_ipv4/,
  );
  assert.equal(networks.size, 0);
  assert.equal(engine.requestsTo("DELETE /networks/:id").length, 0, "nothing was made, nothing to remove");
});

Deno.test("doctor fails a run network the engine made without inhibit_ipv4, and removes it", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", { status: 200, json: RUNC_ONLY });
  engine.on("GET /images/:name/json", { status: 200, json: IMAGE });
  // An engine that ignores the bridge option (as one whose driver does not know it may).
  const networks = engine.withNetworks([{ Name: "bridge", Id: "b".repeat(64), Driver: "bridge" }], {
    keep: (b) => ({ ...b, Options: {} }),
  });
  const r = await doctor([], via(engine));
  assert.equal(r.code, 1);
  assert.match(
    line(r.out, "Run network"),
    /^✗ Run network: the engine made moat-net-[0-9a-f]{12} \(driver bridge\) without com\.docker\.network\.bridge\.inhibit_ipv4: a sandbox on it could reach this host$/,
  );
  assert.deepEqual([...networks.keys()], ["b".repeat(64)], "the probe network is removed; the others stay");
  assert.equal(engine.requestsTo("DELETE /networks/:id").length, 1);
});

Deno.test("doctor says so when the run network cannot be removed", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", { status: 200, json: RUNC_ONLY });
  engine.on("GET /images/:name/json", { status: 200, json: IMAGE });
  engine.withNetworks();
  engine.on("DELETE /networks/:id", { status: 500, json: { message: "error while removing network: busy" } });
  const r = await doctor([], via(engine));
  assert.match(
    line(r.out, "Run network"),
    /^✗ Run network: moat-net-([0-9a-f]{12}) on 10\.237\.0\.0\/28: Internal, its bridge without a host address; network moat-net-\1 could not be removed: .*busy$/,
  );
  assert.match(r.out, /^ {4}Remove it: {2}docker network rm moat-net-[0-9a-f]{12}$/m);
});

Deno.test("doctor fails a run network it cannot read back, and still removes it", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", { status: 200, json: RUNC_ONLY });
  engine.on("GET /images/:name/json", { status: 200, json: IMAGE });
  const networks = engine.withNetworks();
  engine.on("GET /networks/:id", { status: 500, json: { message: "boom" } });
  const r = await doctor([], via(engine));
  assert.equal(r.code, 1);
  assert.match(
    line(r.out, "Run network"),
    /^✗ Run network: the engine made moat-net-[0-9a-f]{12} but it could not be read back: .*boom; removed$/,
  );
  assert.equal(networks.size, 0);
});

Deno.test("doctor creates a missing MOAT_HOME and fails one that is not a directory", async () => {
  const s = await scratch();
  try {
    const fresh = `${s.home}/sub/moat`;
    const created = await moat(["doctor", "--json"], {
      home: fresh,
      env: { DOCKER_HOST: "unix:///nonexistent.sock" },
    });
    const home = JSON.parse(created.out).checks[8];
    assert.deepEqual(home, { name: "home", status: "ok", detail: `${fresh} is writable (created it)` });
    assert.ok((await Deno.stat(fresh)).isDirectory);
    assert.deepEqual([...Deno.readDirSync(fresh)], [], "the test file is removed again");

    await Deno.writeTextFile(`${s.home}/file`, "");
    const r = await moat(["doctor"], {
      home: `${s.home}/file`,
      env: { DOCKER_HOST: "unix:///nonexistent.sock" },
    });
    assert.equal(r.code, 1);
    assert.equal(
      line(r.out, "MOAT_HOME"),
      `✗ MOAT_HOME: MOAT_HOME ${s.home}/file is not writable: it is not a directory`,
    );
    assert.match(r.out, /MOAT_HOME=\/path\/to\/dir/);
  } finally {
    await s.cleanup();
  }
});

Deno.test("doctor --help prints usage with examples on stdout; an unknown option is a usage error", async () => {
  const help = await doctor(["--help"], {});
  assert.equal(help.code, 0);
  assert.match(help.out, /^Usage: moat doctor \[--json\]/);
  assert.match(help.out, /Examples:\n {2}moat doctor\n/);
  assert.equal(help.stderr, "");
  const bad = await doctor(["--bogus"], {});
  assert.equal(bad.code, 2);
  assert.equal(bad.out, "");
  assert.match(bad.stderr, /^moat: Unknown option '--bogus'/);
  assert.match(bad.stderr, /moat doctor --help/);
});
