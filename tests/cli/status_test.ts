/** `moat status`: pure helpers as tables, then the spawned CLI against crafted records and a fake engine. */
import assert from "node:assert/strict";
import {
  gvisorFacts,
  parseStatusArgs,
  type StatusFacts,
  type StatusReport,
  summarizeStatus,
} from "../../lib/cli/status.ts";
import type { ContainerSummary } from "../../lib/docker/types.ts";
import { UsageError } from "../../lib/errors.ts";
import { currentOwner } from "../../lib/store/owner.ts";
import { moat, scratch } from "../engine/helpers.ts";
import { FakeEngine } from "../fake_engine.ts";
import {
  DEAD_OWNER,
  homeLabel,
  OTHER_HOME,
  record,
  summary,
  writeDamaged,
  writeRecords,
} from "./run_records.ts";

// ---- pure helpers -------------------------------------------------------------------------------------

const RUNC = { path: "runc" };
for (
  const [label, name, runtimes, status, path, others] of [
    [
      "runsc registered by its binary",
      "runsc",
      { runc: RUNC, runsc: { path: "/usr/bin/runsc" } },
      "registered",
      "/usr/bin/runsc",
      [],
    ],
    ["runsc absent", "runsc", { runc: RUNC }, "missing", null, []],
    [
      "runsc absent but runsc-kvm present",
      "runsc",
      { runc: RUNC, "runsc-kvm": { path: "/usr/bin/runsc" } },
      "missing",
      null,
      ["runsc-kvm"],
    ],
    ["a runtime named runsc that runs runc", "runsc", { runsc: RUNC }, "not-gvisor", "runc", []],
    [
      "a shim-v2 gVisor runtime without a path",
      "gvisor",
      { gvisor: { runtimeType: "io.containerd.runsc.v1" } },
      "registered",
      "io.containerd.runsc.v1",
      [],
    ],
    [
      "MOAT_RUNTIME naming another registration",
      "runsc-kvm",
      { runsc: { path: "/usr/bin/runsc" }, "runsc-kvm": { path: "/usr/bin/runsc" } },
      "registered",
      "/usr/bin/runsc",
      ["runsc"],
    ],
  ] as const
) {
  Deno.test(`gvisorFacts: ${label} is ${status}`, () => {
    const g = gvisorFacts(name, { Runtimes: runtimes });
    assert.equal(g.status, status);
    assert.equal(g.path, path);
    assert.deepEqual(g.otherGvisorRuntimes, others);
    assert.deepEqual(g.registeredRuntimes, Object.keys(runtimes));
  });
}

// Podman runs every container under its default runtime: runsc registered is not enough there.
for (
  const [label, def, status] of [
    ["Podman with runsc its default", "runsc", "registered"],
    ["Podman with runsc its default, by path", "/usr/bin/runsc", "registered"],
    ["Podman with crun its default", "crun", "not-default"],
    ["Podman not saying its default", undefined, "not-default"],
  ] as const
) {
  Deno.test(`gvisorFacts: ${label} is ${status}`, () => {
    const info = {
      Runtimes: { crun: { path: "/usr/bin/crun" }, runsc: { path: "/usr/bin/runsc" } },
      ...(def ? { DefaultRuntime: def } : {}),
    };
    const g = gvisorFacts("runsc", info, "Podman");
    assert.equal(g.status, status);
    assert.equal(g.defaultRuntime, def ?? null);
    // The same /info from Docker: the runtime asked for is used, whatever the default.
    assert.equal(gvisorFacts("runsc", info, "Docker").status, "registered");
  });
}

Deno.test("gvisorFacts without /info is unknown", () => {
  const g = gvisorFacts("runsc", undefined);
  assert.equal(g.status, "unknown");
  assert.equal(g.registeredRuntimes, null);
});

for (
  const [args, message] of [
    [["--js"], /^Unknown option '--js'/],
    [["--json=1"], /^Option '--json' does not take a value/],
    [["now"], /^Unexpected argument "now": moat status takes no arguments$/],
  ] as const
) {
  Deno.test(`parseStatusArgs refuses ${JSON.stringify(args)} as a usage error`, () => {
    assert.throws(() => parseStatusArgs([...args]), (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.match(err.message, message);
      return true;
    });
  });
}

// ---- the spawned CLI ----------------------------------------------------------------------------------

const RUNC_ONLY = {
  ServerVersion: "25.0.5",
  Runtimes: { runc: { path: "runc" }, "io.containerd.runc.v2": { path: "runc" } },
};

Deno.test("moat status on an engine without runsc shows gVisor missing, exit 0, and prints no sandbox warning", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", { status: 200, json: RUNC_ONLY });
  engine.on("GET /containers/json", { status: 200, json: [] });
  const s = await scratch();
  try {
    const r = await moat(["status"], {
      home: s.home,
      env: { DOCKER_HOST: `unix://${engine.endpoint.path}` },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.equal(
      r.out,
      [
        `Engine:   unix://${engine.endpoint.path} (from DOCKER_HOST)`,
        `Version:  Docker 25.0.5, API 1.44 (engine speaks up to 1.44)`,
        `gVisor:   not registered: the engine has no runtime "runsc" (it has: runc, io.containerd.runc.v2)`,
        `Runs:     0 running, 0 stopped (0 in total)`,
        `Records:  0 B in ${s.home}/runs`,
        `Health:`,
        `  ✓ the engine answers`,
        `  ✗ sandboxed runs will be refused: gVisor is not registered as "runsc"`,
        `      fix: moat doctor`,
        `  ✓ no orphaned containers`,
        `  ✓ no finished runs to clean up`,
        ``,
      ].join("\n"),
    );
    assert.deepEqual(engine.calls().sort(), ["GET /_ping", "GET /containers/json", "GET /info"]);
    assert.equal(engine.requestsTo("POST /containers/create").length, 0);
    const j = await moat(["status", "--json"], {
      home: s.home,
      env: { DOCKER_HOST: `unix://${engine.endpoint.path}` },
    });
    assert.equal(j.code, 0);
    assert.equal(j.stderr, "");
    const report = JSON.parse(j.out) as StatusReport;
    assert.equal(report.gvisor.status, "missing");
    assert.equal(report.gvisor.runtime, "runsc");
  } finally {
    await s.cleanup();
  }
});

Deno.test("moat status --json counts runs, measures records and finds orphaned containers", async () => {
  const me = currentOwner();
  const running = (id: string, patch = {}) =>
    record(id, { state: "running", exitCode: null, finishedAt: null, removed: false, ...patch });
  await using engine = await FakeEngine.start();
  engine.on("GET /info", {
    status: 200,
    json: {
      ServerVersion: "20.10.24",
      Runtimes: { runc: RUNC, "runsc-kvm": { path: "/usr/bin/runsc", runtimeArgs: ["--platform=kvm"] } },
    },
  });
  const s = await scratch();
  engine.on("GET /containers/json", {
    status: 200,
    json: [
      summary("aaaaaaaaaaa1", "exited", "Exited (0) 1 hour ago"),
      summary("bbbbbbbbbbb2", "running", "Up 1 hour"),
      summary("ccccccccccc3", "running", "Up 1 minute"),
      summary("fffffffffff6", "exited", "Exited (137) 1 day ago", {
        "dev.moat.owner-pid": "1",
        "dev.moat.boot-id": DEAD_OWNER.bootId,
        ...homeLabel(s.home),
      }),
      // Left behind by another MOAT_HOME, and by an older moat: counted apart, never as this home's.
      summary("99999999999a", "running", "Up 1 day", { "dev.moat.owner-pid": "1", ...OTHER_HOME }),
      summary("99999999999b", "exited", "Exited (0) 1 day ago", { "dev.moat.owner-pid": "1" }),
    ],
  });
  try {
    await writeRecords(s.home, [
      record("aaaaaaaaaaa1", { createdAt: "2026-01-01T00:00:01.000Z", kept: true, removed: false }),
      running("bbbbbbbbbbb2", { createdAt: "2026-01-01T00:00:02.000Z", owner: DEAD_OWNER }),
      running("ccccccccccc3", { createdAt: "2026-01-01T00:00:03.000Z", owner: me }),
      record("ddddddddddd4", { createdAt: "2026-01-01T00:00:04.000Z", exitCode: 1, name: "four" }),
      running("eeeeeeeeeee5", { createdAt: "2026-01-01T00:00:05.000Z", owner: DEAD_OWNER }),
    ], { ddddddddddd4: new Uint8Array(5000) });
    let bytes = 5000;
    for await (const e of Deno.readDir(`${s.home}/runs`)) {
      bytes += (await Deno.stat(`${s.home}/runs/${e.name}/run.json`)).size;
    }
    const env = { DOCKER_HOST: `unix://${engine.endpoint.path}`, MOAT_RUNTIME: "runsc-kvm" };
    const r = await moat(["status", "--json"], { home: s.home, env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    const report = JSON.parse(r.out) as StatusReport;
    assert.deepEqual(report.engine, {
      endpoint: `unix://${engine.endpoint.path}`,
      source: "DOCKER_HOST",
      reachable: true,
      failedCall: null,
      timedOut: false,
      timeoutSeconds: 5,
      error: null,
      hint: null,
      serverVersion: "20.10.24",
      product: "Docker",
      apiVersion: "1.44",
      serverApiVersion: "1.44",
    });
    assert.deepEqual(report.gvisor, {
      runtime: "runsc-kvm",
      status: "registered",
      path: "/usr/bin/runsc",
      runtimeArgs: ["--platform=kvm"],
      otherGvisorRuntimes: [],
      registeredRuntimes: ["runc", "runsc-kvm"],
      defaultRuntime: null,
    });
    assert.deepEqual(report.runs, {
      total: 5,
      running: 2,
      stopped: 2,
      lost: 1,
      damaged: 0,
      statesFrom: "engine",
    });
    assert.deepEqual(report.damagedRecords, []);
    assert.deepEqual(report.records, { path: `${s.home}/runs`, bytes });
    assert.deepEqual(report.orphanedContainers?.map((o) => [o.runId, o.state, o.name]), [
      ["bbbbbbbbbbb2", "running", "moat-bbbbbbbbbbb2"],
      ["fffffffffff6", "exited", "moat-fffffffffff6"],
    ]);
    assert.equal(report.otherHomesContainers, 2);
    assert.deepEqual(report.cleanableRuns, [
      { id: "eeeeeeeeeee5", name: null, shownState: "lost", containerState: "absent" },
      { id: "ddddddddddd4", name: "four", shownState: "exited", containerState: "absent" },
      { id: "aaaaaaaaaaa1", name: null, shownState: "exited", containerState: "exited" },
    ]);

    const t = await moat(["status"], { home: s.home, env });
    assert.equal(t.code, 0);
    assert.match(t.out, /^gVisor: {3}registered as "runsc-kvm" \(\/usr\/bin\/runsc --platform=kvm\)$/m);
    assert.match(t.out, /^Runs: {5}2 running, 2 stopped, 1 lost \(5 in total\)$/m);
    assert.match(
      t.out,
      /^ {2}✗ 2 orphaned containers \(moat's labels, no live moat process\): bbbbbbbbbbb2, fffffffffff6\n {6}fix: moat clean$/m,
    );
    assert.match(
      t.out,
      /^ {2}• 3 finished runs can be cleaned up \(1 still has a container\): {2}moat clean$/m,
    );
    assert.match(
      t.out,
      /^ {2}• 2 containers of other MOAT_HOMEs on this engine, not counted here: {2}moat system containers --all-homes$/m,
    );
  } finally {
    await s.cleanup();
  }
});

Deno.test("moat status with the engine down prints what the records say and exits 1", async () => {
  const s = await scratch();
  try {
    await writeRecords(s.home, [
      record("aaaaaaaaaaa1"),
      record("bbbbbbbbbbb2", { state: "running", exitCode: null, owner: DEAD_OWNER }),
    ]);
    const sock = `${s.home}/missing.sock`;
    const r = await moat(["status"], { home: s.home, env: { DOCKER_HOST: `unix://${sock}` } });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "");
    assert.match(r.out, new RegExp(`^Engine: {3}unix://${sock} \\(from DOCKER_HOST\\), unreachable$`, "m"));
    assert.match(r.out, /^Version: {2}unknown \(the engine could not be asked\)$/m);
    assert.match(r.out, /^gVisor: {3}unknown \(the engine could not be asked\)$/m);
    assert.match(r.out, /^Runs: {5}1 running, 1 stopped \(2 in total, states as recorded\)$/m);
    assert.match(
      r.out,
      /^ {2}✗ the engine could not be asked: Docker engine not found: no socket at unix:\/\//m,
    );
    assert.match(r.out, /^ {6}fix: Start the engine/m);
    assert.doesNotMatch(r.out, /warning/i);

    const j = await moat(["status", "--json"], { home: s.home, env: { DOCKER_HOST: `unix://${sock}` } });
    assert.equal(j.code, 1);
    const report = JSON.parse(j.out) as StatusReport;
    assert.equal(report.engine.reachable, false);
    assert.equal(report.engine.error, `Docker engine not found: no socket at unix://${sock}`);
    assert.equal(report.gvisor.status, "unknown");
    assert.equal(report.orphanedContainers, null);
    assert.deepEqual(report.runs, {
      total: 2,
      running: 1,
      stopped: 1,
      lost: 0,
      damaged: 0,
      statesFrom: "records",
    });

    // A pinned API version skips /_ping, so the first request that fails is /info: still down, still 1.
    const p = await moat(["status"], {
      home: s.home,
      env: { DOCKER_HOST: `unix://${sock}`, DOCKER_API_VERSION: "1.41" },
    });
    assert.equal(p.code, 1);
    assert.match(p.out, /, unreachable\nVersion: {2}unknown \(the engine could not be asked\)\n/);
  } finally {
    await s.cleanup();
  }
});

Deno.test("moat status with an unusable DOCKER_HOST reports it and exits 1", async () => {
  const s = await scratch();
  try {
    const r = await moat(["status", "--json"], {
      home: s.home,
      env: { DOCKER_HOST: "npipe:////./pipe/docker_engine" },
    });
    assert.equal(r.code, 1);
    const report = JSON.parse(r.out) as StatusReport;
    assert.equal(report.engine.endpoint, null);
    assert.match(
      report.engine.error!,
      /^DOCKER_HOST "npipe:\/\/\/\/\.\/pipe\/docker_engine" uses npipe:\/\//,
    );
  } finally {
    await s.cleanup();
  }
});

for (
  const [args, stderr] of [
    [["status", "--js"], /^moat: Unknown option '--js'.*\n {2}See: {2}moat status --help\n$/],
    [["status", "all"], /^moat: Unexpected argument "all": moat status takes no arguments\n/],
  ] as const
) {
  Deno.test(`moat ${args.join(" ")} is a usage error (exit 2, nothing on stdout)`, async () => {
    const r = await moat([...args], { home: "/nonexistent-moat-home" });
    assert.equal(r.code, 2);
    assert.equal(r.out, "");
    assert.match(r.stderr, stderr);
  });
}

Deno.test("moat status --help prints the help on stdout with examples and exits 0", async () => {
  const r = await moat(["status", "--help"], { home: "/nonexistent-moat-home" });
  assert.equal(r.code, 0);
  assert.equal(r.stderr, "");
  assert.match(r.out, /^Usage: moat status \[OPTIONS\]\n/);
  assert.match(r.out, /Exit status: 0 when the engine answered; 1 when it could not be asked/);
  assert.match(r.out, /Examples:\n {2}moat status\n/);
});

Deno.test("moat status with a ping that answers and an /info slower than MOAT_ENGINE_TIMEOUT says reachable, /info slow", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", async (_req, res) => {
    await res.delay(5000);
    await res.json(200, RUNC_ONLY);
  });
  engine.on("GET /containers/json", { status: 200, json: [summary("aaaaaaaaaaa1", "running", "Up 1 hour")] });
  const s = await scratch();
  try {
    await writeRecords(s.home, [
      record("aaaaaaaaaaa1", { state: "running", exitCode: null, owner: DEAD_OWNER }),
    ]);
    const env = { DOCKER_HOST: `unix://${engine.endpoint.path}`, MOAT_ENGINE_TIMEOUT: "0.3" };
    const r = await moat(["status"], { home: s.home, env });
    assert.equal(r.code, 1, "a call failed: exit 1, as documented");
    assert.equal(r.stderr, "");
    const lines = r.out.split("\n");
    assert.equal(
      lines[0],
      `Engine:   unix://${engine.endpoint.path} (from DOCKER_HOST), reachable, but GET /info did not answer within 0.3 s`,
    );
    assert.equal(
      lines[1],
      "Version:  Docker, version unknown (GET /info did not answer within 0.3 s), API 1.44 (engine speaks up to 1.44)",
    );
    assert.equal(lines[2], "gVisor:   unknown (GET /info did not answer within 0.3 s)");
    // The container listing answered in time: states come from the engine.
    assert.equal(lines[3], "Runs:     1 running, 0 stopped (1 in total)");
    assert.match(
      r.out,
      /^ {2}✗ the engine answers, but GET \/info did not answer within 0\.3 s\n {6}fix: MOAT_ENGINE_TIMEOUT=30 moat status/m,
    );
    assert.doesNotMatch(r.out, /unreachable/);

    const j = await moat(["status", "--json"], { home: s.home, env });
    assert.equal(j.code, 1);
    const report = JSON.parse(j.out) as StatusReport;
    assert.equal(report.engine.reachable, true);
    assert.equal(report.engine.failedCall, "GET /info");
    assert.equal(report.engine.timedOut, true);
    assert.equal(report.engine.timeoutSeconds, 0.3);
    assert.match(
      report.engine.error!,
      /did not answer in time \(GET \/v1\.44\/info took longer than 0\.3 s\)$/,
    );
    assert.equal(report.runs.statesFrom, "engine");
  } finally {
    await s.cleanup();
  }
});

Deno.test("moat status counts damaged records and names each with its file and what is wrong", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", { status: 200, json: RUNC_ONLY });
  engine.on("GET /containers/json", { status: 200, json: [] });
  const s = await scratch();
  try {
    await writeRecords(s.home, [record("aaaaaaaaaaa1")]);
    const { corrupt, dirRecord, noOutput } = await writeDamaged(s.home, new Uint8Array());
    const runs = `${s.home}/runs`;
    const env = { DOCKER_HOST: `unix://${engine.endpoint.path}` };
    const r = await moat(["status"], { home: s.home, env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.out, /^Runs: {5}0 running, 1 stopped, 3 damaged \(4 in total\)$/m);
    const at = r.out.indexOf("  ✗ 3 damaged run records");
    assert.ok(at > 0, r.out);
    const block = r.out.slice(at).split("\n").slice(0, 5);
    assert.equal(block[0], "  ✗ 3 damaged run records (moat list shows them):");
    assert.match(block[1]!, new RegExp(`^ {6}${corrupt}: ${runs}/${corrupt}/run\\.json: not valid JSON \\(`));
    assert.equal(block[2], `      ${dirRecord}: ${runs}/${dirRecord}/run.json: a directory, not a file`);
    assert.equal(
      block[3],
      `      ${noOutput}: ${runs}/${noOutput}/output.bin: missing (moat created it with the record)`,
    );
    assert.equal(block[4], "      fix: moat clean");
    // The damaged run with a readable record is not counted as a finished run to clean up as well.
    assert.match(r.out, /^ {2}• 1 finished run can be cleaned up: {2}moat clean$/m);

    const j = await moat(["status", "--json"], { home: s.home, env });
    const report = JSON.parse(j.out) as StatusReport;
    assert.equal(report.runs.damaged, 3);
    assert.equal(report.runs.total, 4);
    assert.deepEqual(report.damagedRecords.map((d) => [d.id, d.path]), [
      [corrupt, `${runs}/${corrupt}/run.json`],
      [dirRecord, `${runs}/${dirRecord}/run.json`],
      [noOutput, `${runs}/${noOutput}/output.bin`],
    ]);
  } finally {
    await s.cleanup();
  }
});

Deno.test("summarizeStatus counts what waits for the next run: warm sandboxes and networks made ahead", () => {
  const later = String(Date.now() + 600_000);
  const labels = (runId: string, extra: Record<string, string> = {}) => ({
    "dev.moat.managed": "true",
    "dev.moat.run-id": runId,
    "dev.moat.home": "h1",
    "dev.moat.owner-pid": "1",
    "dev.moat.boot-id": "another-boot",
    ...extra,
  });
  const container = (id: string, l: Record<string, string>): ContainerSummary => ({
    Id: id,
    Names: [`/moat-${id}`],
    Image: "busybox",
    State: "running",
    Status: "Up",
    Labels: l,
    Created: 1,
  });
  const facts: StatusFacts = {
    endpoint: null,
    ping: undefined,
    info: undefined,
    containers: [
      container("s1", labels("aaa", { "dev.moat.standby": later })),
      container("s2", labels("bbb", { "dev.moat.standby": later })),
      container("r2", labels("bbb", { "dev.moat.standby": later, "dev.moat.probe": "relay" })),
      container("o1", labels("ccc", { "dev.moat.standby": String(Date.now() - 1000) })),
    ],
    error: undefined,
    answered: true,
    failedCall: null,
    timeoutMs: 5000,
    runtimeName: "runsc",
    records: [],
    damaged: [],
    liveRuns: new Set(),
    liveContainers: new Set(),
    homeId: "h1",
    runsDir: "/x/runs",
    bytes: 0,
  };
  const report = summarizeStatus(facts);
  assert.deepEqual(report.madeAhead, { sandboxes: 2, networks: 1 });
  assert.deepEqual(report.orphanedContainers?.map((o) => o.id), ["o1"], "an expired one is orphaned");
  assert.equal(summarizeStatus({ ...facts, containers: undefined }).madeAhead, null);
});
