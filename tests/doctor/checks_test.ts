/** `moat doctor`'s pure decisions: facts in, one line per check and an exit code out. */
import assert from "node:assert/strict";
import { REACH_DONE, REACH_READY } from "../../lib/doctor/reach.ts";
import {
  type CheckStatus,
  diagnose,
  doctorExitCode,
  type DoctorFacts,
  HOST_REACHED_FIX,
  type IsolationFacts,
  type NetworkFacts,
  type ProbeFacts,
  readProbeOutput,
  renderJson,
  renderText,
  ROOT_NETNS_ERROR,
  usesHostNetwork,
} from "../../lib/doctor/checks.ts";

const DMESG = "4.4.0\n[    0.000000] Starting gVisor...\n[    0.146686] Gathering forks...\n";

const okProbe: ProbeFacts = {
  image: "debian:bookworm-slim",
  runtime: "runsc",
  timeoutMs: 30_000,
  containerId: "c".repeat(64),
  removed: true,
  timedOut: false,
  outcome: { exitCode: 0, stdout: DMESG, stderr: "", engineRuntime: "runsc" },
};

const TARGETS = ["10.237.0.1:40000", "172.17.0.1:40000"];
const REACH_OK =
  `${REACH_READY}\nblocked 10.237.0.1:40000 (timed out)\nblocked 172.17.0.1:40000 (no route to host)\n` +
  `${REACH_DONE}\n`;
const okNetwork: NetworkFacts = {
  name: "moat-net-0123456789ab",
  subnet: "10.237.0.0/28",
  id: "n".repeat(64),
  kept: { internal: true, inhibitIpv4: "true", driver: "bridge" },
  removed: true,
};
const okIsolation: IsolationFacts = {
  targets: TARGETS,
  accepted: 0,
  probe: { ...okProbe, outcome: { exitCode: 0, stdout: REACH_OK, stderr: "", engineRuntime: "runsc" } },
};

/** The isolation facts with the probe's stdout (and whatever else) changed. */
function isolation(stdout: string, more: Partial<IsolationFacts> = {}): DoctorFacts["isolation"] {
  return {
    ok: true,
    value: {
      ...okIsolation,
      probe: { ...okIsolation.probe!, outcome: { ...okIsolation.probe!.outcome!, stdout } },
      ...more,
    },
  };
}

/** Everything fine; each row below changes one thing. */
function healthy(): DoctorFacts {
  return {
    endpoint: { ok: true, value: { url: "unix:///var/run/docker.sock", source: "default" } },
    ping: {
      ok: true,
      value: { apiVersion: "1.41", serverApiVersion: "1.41", server: "Docker/20.10.24 (linux)" },
    },
    info: {
      ok: true,
      value: {
        ServerVersion: "20.10.24",
        DefaultRuntime: "runc",
        Runtimes: { runc: { path: "runc" }, runsc: { path: "/usr/bin/runsc" } },
      },
    },
    runtime: { ok: true, value: { name: "runsc", source: "default" } },
    image: {
      ref: "debian:bookworm-slim",
      source: "default",
      found: { ok: true, value: { id: "sha256:fd649cb7713d1" } },
    },
    probe: { ok: true, value: okProbe },
    network: { ok: true, value: structuredClone(okNetwork) },
    isolation: { ok: true, value: structuredClone(okIsolation) },
    home: { ok: true, value: { path: "/h/.moat", created: false } },
  };
}

/** The facts of a Podman engine with `def` its default runtime (and runsc listed, as Podman always does). */
function podman(f: DoctorFacts, def: string): void {
  f.ping = {
    ok: true,
    value: { apiVersion: "1.41", serverApiVersion: "1.41", server: "Libpod/4.3.1 (linux)" },
  };
  f.info = {
    ok: true,
    value: {
      ServerVersion: "4.3.1",
      DefaultRuntime: def,
      Runtimes: { crun: { path: "/usr/bin/crun" }, runsc: { path: "/usr/bin/runsc" } },
    },
  };
}

const down = {
  message: "Docker engine not found: no socket at unix:///nope",
  hint: "Start the engine",
  unreachable: true,
};

type Statuses = CheckStatus[];
const table: Array<[string, (f: DoctorFacts) => void, Statuses, number]> = [
  ["everything fine", () => {}, ["ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok"], 0],
  [
    "runsc with --network=host is a warning, and warnings do not fail",
    (f) => {
      if (f.info?.ok) {
        f.info.value.Runtimes!["runsc"] = { path: "/usr/bin/runsc", runtimeArgs: ["--network=host"] };
      }
    },
    ["ok", "ok", "ok", "warn", "ok", "ok", "ok", "ok", "ok"],
    0,
  ],
  [
    "Podman with runsc its default: the probe decides; no allow-list network there is a warning",
    (f) => {
      podman(f, "/usr/bin/runsc");
      if (f.probe?.ok) f.probe.value.outcome!.engineRuntime = "/usr/bin/runsc";
      delete f.network;
      delete f.isolation;
    },
    ["ok", "ok", "ok", "ok", "ok", "warn", "warn", "ok", "ok"],
    0,
  ],
  [
    "Podman with crun its default fails gVisor though runsc is listed",
    (f) => {
      podman(f, "crun");
      delete f.probe;
      delete f.network;
      delete f.isolation;
    },
    ["ok", "ok", "ok", "fail", "skip", "warn", "warn", "ok", "ok"],
    1,
  ],
  [
    "an engine that cannot be reached skips everything that needs it",
    (f) => {
      f.ping = { ok: false, problem: down };
      for (const k of ["info", "image", "probe", "runtime"] as const) delete f[k];
    },
    ["fail", "skip", "skip", "skip", "skip", "skip", "skip", "skip", "ok"],
    1,
  ],
  [
    "a malformed DOCKER_HOST fails the engine check",
    (f) => {
      f.endpoint = {
        ok: false,
        problem: { message: `DOCKER_HOST "tcp://x" uses tcp://`, hint: "unset DOCKER_HOST" },
      };
    },
    ["fail", "skip", "skip", "skip", "skip", "skip", "skip", "skip", "ok"],
    1,
  ],
  [
    "an engine older than the API floor fails the API check only",
    (f) => {
      f.ping = { ok: false, problem: { message: "speaks API 1.39, older than the 1.40 moat needs" } };
      for (const k of ["info", "image", "probe", "runtime"] as const) delete f[k];
    },
    ["ok", "fail", "skip", "skip", "skip", "skip", "skip", "skip", "ok"],
    1,
  ],
  [
    "an engine without runsc fails gVisor and skips the probe",
    (f) => {
      if (f.info?.ok) f.info.value.Runtimes = { runc: { path: "runc" } };
      delete f.probe;
    },
    ["ok", "ok", "ok", "fail", "skip", "ok", "skip", "ok", "ok"],
    1,
  ],
  [
    "a runtime named runsc that runs runc is not gVisor",
    (f) => {
      if (f.info?.ok) f.info.value.Runtimes = { runsc: { path: "runc" } };
      delete f.probe;
    },
    ["ok", "ok", "ok", "fail", "skip", "ok", "skip", "ok", "ok"],
    1,
  ],
  [
    "a missing image fails the image check and skips the probe",
    (f) => {
      f.image = { ref: "debian:bookworm-slim", source: "default", found: { ok: true, value: undefined } };
      delete f.probe;
    },
    ["ok", "ok", "ok", "ok", "skip", "ok", "skip", "fail", "ok"],
    1,
  ],
  [
    "a probe that ran on the host kernel fails",
    (f) => {
      f.probe = {
        ok: true,
        value: {
          ...okProbe,
          outcome: { exitCode: 0, stdout: "6.1.0-18-amd64\n", stderr: "", engineRuntime: "runsc" },
        },
      };
    },
    ["ok", "ok", "ok", "ok", "fail", "ok", "skip", "ok", "ok"],
    1,
  ],
  [
    "a probe that reports 4.4.0 without dmesg passes",
    (f) => {
      f.probe = {
        ok: true,
        value: {
          ...okProbe,
          outcome: { exitCode: 0, stdout: "4.4.0\n", stderr: "", engineRuntime: "runsc" },
        },
      };
    },
    ["ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok"],
    0,
  ],
  [
    "a probe that timed out fails",
    (f) => {
      f.probe = {
        ok: true,
        value: { ...okProbe, outcome: undefined, timedOut: true },
      } as DoctorFacts["probe"];
    },
    ["ok", "ok", "ok", "ok", "fail", "ok", "skip", "ok", "ok"],
    1,
  ],
  [
    "a probe container that could not be removed fails even when the kernel was gVisor's",
    (f) => {
      f.probe = { ok: true, value: { ...okProbe, removed: false } };
    },
    ["ok", "ok", "ok", "ok", "fail", "ok", "skip", "ok", "ok"],
    1,
  ],
  [
    "a MOAT_HOME that cannot take a file fails on its own",
    (f) => {
      f.home = { ok: false, path: "/etc/passwd", problem: { message: "it is not a directory" } };
    },
    ["ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "fail"],
    1,
  ],
  [
    "an engine that refuses the run network's options fails the network and skips the isolation probe",
    (f) => {
      f.network = {
        ok: true,
        value: { name: "moat-net-x", subnet: "10.237.0.0/28", createProblem: { message: "invalid option" } },
      };
      delete f.isolation;
    },
    ["ok", "ok", "ok", "ok", "ok", "fail", "skip", "ok", "ok"],
    1,
  ],
  [
    "an engine that made the network without inhibit_ipv4 fails it",
    (f) => {
      f.network = { ok: true, value: { ...okNetwork, kept: { ...okNetwork.kept!, inhibitIpv4: undefined } } };
      delete f.isolation;
    },
    ["ok", "ok", "ok", "ok", "ok", "fail", "skip", "ok", "ok"],
    1,
  ],
  [
    "an engine that made the network without Internal fails it",
    (f) => {
      f.network = { ok: true, value: { ...okNetwork, kept: { ...okNetwork.kept!, internal: false } } };
      delete f.isolation;
    },
    ["ok", "ok", "ok", "ok", "ok", "fail", "skip", "ok", "ok"],
    1,
  ],
  [
    "no free subnet fails the network",
    (f) => {
      f.network = { ok: true, value: { name: "moat-net-x" } };
      delete f.isolation;
    },
    ["ok", "ok", "ok", "ok", "ok", "fail", "skip", "ok", "ok"],
    1,
  ],
  [
    "a network listing the engine refused fails the network",
    (f) => {
      f.network = { ok: false, problem: { message: "Docker engine error 500 on GET /networks: boom" } };
      delete f.isolation;
    },
    ["ok", "ok", "ok", "ok", "ok", "fail", "skip", "ok", "ok"],
    1,
  ],
  [
    "a network that could not be removed fails, though the probe on it passed",
    (f) => {
      f.network = { ok: true, value: { ...okNetwork, removed: false, removeProblem: "busy" } };
    },
    ["ok", "ok", "ok", "ok", "ok", "fail", "ok", "ok", "ok"],
    1,
  ],
  [
    "a probe that reached the host fails the isolation check",
    (f) => {
      f.isolation = isolation(
        `${REACH_READY}\nblocked ${TARGETS[0]} (timed out)\nreached ${TARGETS[1]}\n${REACH_DONE}\n`,
      );
    },
    ["ok", "ok", "ok", "ok", "ok", "ok", "fail", "ok", "ok"],
    1,
  ],
  [
    "a connection the host accepted fails it, whatever the probe printed",
    (f) => {
      f.isolation = isolation(REACH_OK, { accepted: 1 });
    },
    ["ok", "ok", "ok", "ok", "ok", "ok", "fail", "ok", "ok"],
    1,
  ],
  [
    "a probe that printed nothing fails",
    (f) => {
      f.isolation = isolation("");
    },
    ["ok", "ok", "ok", "ok", "ok", "ok", "fail", "ok", "ok"],
    1,
  ],
  [
    "a probe that printed blocked lines without its marker fails",
    (f) => {
      f.isolation = isolation(REACH_OK.replace(`${REACH_READY}\n`, ""));
    },
    ["ok", "ok", "ok", "ok", "ok", "ok", "fail", "ok", "ok"],
    1,
  ],
  [
    "a probe that timed out fails the isolation check",
    (f) => {
      f.isolation = {
        ok: true,
        value: { ...okIsolation, probe: { ...okProbe, outcome: undefined, timedOut: true } },
      };
    },
    ["ok", "ok", "ok", "ok", "ok", "ok", "fail", "ok", "ok"],
    1,
  ],
  [
    "a probe that could not be created fails the isolation check",
    (f) => {
      f.isolation = {
        ok: true,
        value: {
          ...okIsolation,
          probe: { ...okProbe, outcome: undefined, problem: { message: "no such image" } },
        },
      };
    },
    ["ok", "ok", "ok", "ok", "ok", "ok", "fail", "ok", "ok"],
    1,
  ],
  [
    "a probe the engine ran under runc fails the isolation check",
    (f) => {
      f.isolation = {
        ok: true,
        value: {
          ...okIsolation,
          probe: {
            ...okIsolation.probe!,
            outcome: { ...okIsolation.probe!.outcome!, engineRuntime: "runc" },
          },
        },
      };
    },
    ["ok", "ok", "ok", "ok", "ok", "ok", "fail", "ok", "ok"],
    1,
  ],
  [
    "a probe container that could not be removed fails the isolation check",
    (f) => {
      f.isolation = { ok: true, value: { ...okIsolation, probe: { ...okIsolation.probe!, removed: false } } };
    },
    ["ok", "ok", "ok", "ok", "ok", "ok", "fail", "ok", "ok"],
    1,
  ],
  [
    "no isolation facts although the probe and the network passed is a failure, not a pass",
    (f) => {
      delete f.isolation;
    },
    ["ok", "ok", "ok", "ok", "ok", "ok", "fail", "ok", "ok"],
    1,
  ],
  [
    "a host port that could not be opened fails the isolation check",
    (f) => {
      f.isolation = { ok: true, value: { targets: [], accepted: 0, listenProblem: "Address in use" } };
    },
    ["ok", "ok", "ok", "ok", "ok", "ok", "fail", "ok", "ok"],
    1,
  ],
];

for (const [label, change, statuses, code] of table) {
  Deno.test(`doctor: ${label}`, () => {
    const facts = healthy();
    change(facts);
    const report = diagnose(facts);
    assert.deepEqual(report.checks.map((c) => c.name), [
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
    assert.deepEqual(report.checks.map((c) => c.status), statuses);
    assert.equal(doctorExitCode(report), code);
    assert.equal(report.ok, code === 0);
    for (const c of report.checks) {
      if (c.status === "fail" || c.status === "warn") assert.ok(c.fix, `${c.name} (${c.status}) has a fix`);
      else assert.equal(c.fix, undefined, `${c.name} (${c.status}) has no fix`);
    }
  });
}

Deno.test("on Podman the gVisor line says what its default runtime is, and how to make it gVisor", () => {
  const facts = healthy();
  podman(facts, "crun");
  const gvisor = diagnose(facts).checks.find((c) => c.name === "gvisor")!;
  assert.match(gvisor.detail, /Podman lists "runsc" .* its default runtime, crun, whatever is asked/);
  assert.match(gvisor.fix ?? "", /podman --runtime runsc system service/);
  const ok = healthy();
  podman(ok, "runsc");
  const line = diagnose(ok).checks.find((c) => c.name === "gvisor")!;
  assert.match(line.detail, /Podman's default runtime, so every container of its runs under it/);
  const network = diagnose(ok).checks.find((c) => c.name === "network")!;
  assert.match(network.detail, /the engine is Podman: runs on the allow list .* are refused there/);
  assert.match(network.fix ?? "", /--network none/);
});

Deno.test("the engine line names the endpoint and why that one", () => {
  const facts = healthy();
  assert.equal(
    diagnose(facts).checks[0]!.detail,
    "Docker 20.10.24 at unix:///var/run/docker.sock (the default socket; DOCKER_HOST is not set)",
  );
  facts.endpoint = { ok: true, value: { url: "unix:///nope", source: "DOCKER_HOST" } };
  facts.ping = { ok: false, problem: down };
  const engine = diagnose(facts).checks[0]!;
  assert.equal(engine.detail, "Docker engine not found: no socket at unix:///nope (from DOCKER_HOST)");
  assert.equal(engine.fix, "Start the engine");
});

Deno.test("with a pinned API version an engine that is down shows up on /info", () => {
  const facts = healthy();
  facts.pinnedApi = "1.41";
  facts.ping = { ok: true, value: { apiVersion: "1.41", serverApiVersion: undefined, server: undefined } };
  facts.info = { ok: false, problem: down };
  const [engine, api] = diagnose(facts).checks;
  assert.equal(engine!.status, "fail");
  assert.equal(api!.status, "skip");
});

Deno.test("the API line gives the engine's maximum and the negotiated version", () => {
  const facts = healthy();
  facts.ping = { ok: true, value: { apiVersion: "1.44", serverApiVersion: "1.47", server: undefined } };
  assert.match(diagnose(facts).checks[1]!.detail, /^the engine speaks up to 1\.47; moat uses 1\.44 /);
});

Deno.test("the runtimes line lists every runtime and the default", () => {
  assert.equal(diagnose(healthy()).checks[2]!.detail, "runc, runsc; default: runc");
});

Deno.test("the gVisor line names the runtime's path, arguments and where the name came from", () => {
  const facts = healthy();
  facts.runtime = { ok: true, value: { name: "runsc", source: "config", configFile: "/w/moat.yaml" } };
  if (facts.info?.ok) {
    facts.info.value.Runtimes!["runsc"] = { path: "/usr/bin/runsc", runtimeArgs: ["--debug"] };
  }
  assert.equal(
    diagnose(facts).checks[3]!.detail,
    `"runsc" (name: from runtime: in /w/moat.yaml) runs /usr/bin/runsc; runtime arguments: --debug`,
  );
});

Deno.test("the --network=host warning explains the weaker isolation and when it is needed", () => {
  const facts = healthy();
  if (facts.info?.ok) {
    facts.info.value.Runtimes!["runsc"] = { path: "/usr/bin/runsc", runtimeArgs: ["--network=host"] };
  }
  const gvisor = diagnose(facts).checks[3]!;
  assert.equal(gvisor.status, "warn");
  assert.match(gvisor.detail, /runtime arguments: --network=host/);
  assert.match(gvisor.fix!, /weakens isolation/);
  assert.match(gvisor.fix!, /host kernel's network stack/);
  assert.ok(gvisor.fix!.includes(ROOT_NETNS_ERROR));
});

Deno.test("a missing runsc gets install and registration steps, and a gVisor under another name is offered", () => {
  const facts = healthy();
  if (facts.info?.ok) {
    facts.info.value.Runtimes = { runc: { path: "runc" }, "runsc-kvm": { path: "/usr/bin/runsc" } };
  }
  delete facts.probe;
  const gvisor = diagnose(facts).checks[3]!;
  assert.equal(gvisor.detail, `no runtime "runsc" is registered with the engine (name: the default)`);
  assert.match(gvisor.fix!, /select it with {2}MOAT_RUNTIME=runsc-kvm/);
  assert.match(gvisor.fix!, /apt-get install -y runsc/);
  assert.match(gvisor.fix!, /"runtimes": \{ "runsc": \{ "path": "\/usr\/bin\/runsc" \} \}/);
  assert.match(gvisor.fix!, /Check again: {2}moat doctor/);
  assert.doesNotMatch(
    gvisor.fix!,
    /--no-sandbox|sandbox: none/,
    "doctor fixes the sandbox; it does not bypass it",
  );
});

Deno.test("the probe line shows the kernel and gVisor's banner", () => {
  assert.equal(
    diagnose(healthy()).checks[4]!.detail,
    `kernel 4.4.0 under "runsc" with debian:bookworm-slim (dmesg: "Starting gVisor..."); container removed`,
  );
});

Deno.test("a probe refused by gVisor's netstack in the root network namespace suggests --network=host", () => {
  const facts = healthy();
  facts.probe = {
    ok: true,
    value: {
      ...okProbe,
      outcome: undefined,
      problem: {
        message:
          `The container runtime "runsc" could not start the container: OCI runtime create failed: ${ROOT_NETNS_ERROR}`,
      },
    },
  } as DoctorFacts["probe"];
  const probe = diagnose(facts).checks[4]!;
  assert.equal(probe.status, "fail");
  assert.match(probe.fix!, /"runtimeArgs": \["--network=host"\]/);
  assert.match(probe.fix!, /docker run --rm --runtime=runsc debian:bookworm-slim uname -r/);
});

Deno.test("a probe image without a shell is told what the probe needs", () => {
  const facts = healthy();
  facts.probe = {
    ok: true,
    value: {
      ...okProbe,
      outcome: undefined,
      problem: {
        message: `The command was not found in the image: exec: "sh": executable file not found in $PATH`,
      },
    },
  } as DoctorFacts["probe"];
  const probe = diagnose(facts).checks[4]!;
  assert.equal(probe.status, "fail");
  assert.match(
    probe.fix!,
    /^The probe runs {2}sh -c 'uname -r; dmesg 2>\/dev\/null \|\| true': the image needs sh and uname/,
  );
});

Deno.test("a missing image gets the pull and the air-gapped docker load hint", () => {
  const facts = healthy();
  facts.image = { ref: "my/img:1", source: "env", found: { ok: true, value: undefined } };
  delete facts.probe;
  const [, , , , probe, , , image] = diagnose(facts).checks;
  assert.equal(image!.detail, "my/img:1 (from MOAT_IMAGE) is not on the engine");
  assert.match(image!.fix!, /docker pull my\/img:1/);
  assert.match(image!.fix!, /docker load -i image\.tar/);
  assert.match(probe!.detail, /needs the image my\/img:1/);
});

const hostNetwork: Array<[string[] | undefined, boolean]> = [
  [undefined, false],
  [[], false],
  [["--network=host"], true],
  [["--debug", "--network", "host"], true],
  [["--network=sandbox"], false],
  [["--network=none"], false],
  [["--host-network"], false],
];
for (const [args, expected] of hostNetwork) {
  Deno.test(`usesHostNetwork(${JSON.stringify(args)}) is ${expected}`, () => {
    assert.equal(usesHostNetwork(args), expected);
  });
}

const outputs: Array<[string, string | undefined, string | undefined]> = [
  [DMESG, "4.4.0", "Starting gVisor..."],
  ["4.4.0\n", "4.4.0", undefined],
  ["6.1.0-18-amd64\n[    0.000000] Linux version 6.1.0\n", "6.1.0-18-amd64", undefined],
  ["", undefined, undefined],
];
for (const [stdout, kernel, banner] of outputs) {
  Deno.test(`readProbeOutput(${JSON.stringify(stdout.slice(0, 20))}) finds kernel ${kernel}`, () => {
    assert.deepEqual(readProbeOutput(stdout), { kernel, banner });
  });
}

Deno.test("the text report marks each line, indents fixes and ends with the verdict", () => {
  const facts = healthy();
  if (facts.info?.ok) facts.info.value.Runtimes = { runc: { path: "runc" } };
  delete facts.probe;
  const lines = renderText(diagnose(facts)).split("\n");
  assert.match(lines[0]!, /^✓ Engine: /);
  assert.match(lines[1]!, /^✓ API version: /);
  assert.match(lines[2]!, /^✓ Runtimes: runc; default: runc$/);
  assert.match(lines[3]!, /^✗ gVisor: no runtime "runsc"/);
  assert.match(lines[4]!, /^ {4}1\. Install gVisor/);
  assert.ok(lines.some((l) => /^- Probe run: skipped \(needs a registered gVisor runtime/.test(l)));
  assert.equal(lines.at(-2), "A sandboxed run would not work here: 1 check failed.");
  assert.equal(lines.at(-1), "");
});

Deno.test("the JSON report has ok and, per check, name, status, detail and a fix only when there is one", () => {
  const facts = healthy();
  facts.image = { ref: "x", source: "default", found: { ok: true, value: undefined } };
  delete facts.probe;
  const parsed = JSON.parse(renderJson(diagnose(facts)));
  assert.equal(parsed.ok, false);
  assert.deepEqual(Object.keys(parsed), ["ok", "checks"]);
  for (const c of parsed.checks) {
    assert.deepEqual(
      Object.keys(c),
      c.status === "fail" || c.status === "warn"
        ? ["name", "status", "detail", "fix"]
        : ["name", "status", "detail"],
    );
  }
  assert.deepEqual(parsed.checks.map((c: { status: string }) => c.status), [
    "ok",
    "ok",
    "ok",
    "ok",
    "skip",
    "ok",
    "skip",
    "fail",
    "ok",
  ]);
});

Deno.test("the network and isolation lines say what was made, tried and removed", () => {
  const report = diagnose(healthy());
  const net = report.checks.find((c) => c.name === "network")!;
  assert.equal(
    net.detail,
    "moat-net-0123456789ab on 10.237.0.0/28: Internal, its bridge without a host address; removed",
  );
  const iso = report.checks.find((c) => c.name === "isolation")!;
  assert.equal(
    iso.detail,
    'a sandbox under "runsc" on a run network reached none of 2 host addresses ' +
      "(10.237.0.1:40000 timed out, 172.17.0.1:40000 no route to host); container removed",
  );
});

Deno.test("a probe that reached the host says the run network does not isolate it, and what to do", () => {
  const facts = healthy();
  facts.isolation = isolation(`${REACH_READY}\nreached ${TARGETS[1]}\n`);
  const iso = diagnose(facts).checks.find((c) => c.name === "isolation")!;
  assert.equal(
    iso.detail,
    `a sandbox under "runsc" on a run network reached this host at ${TARGETS[1]}: ` +
      "the run network does not isolate the host",
  );
  assert.equal(iso.fix, HOST_REACHED_FIX);
  assert.match(iso.fix!, /Do not use --allow here until doctor passes/);
  const text = renderText(diagnose(facts));
  assert.match(text, /\nA sandboxed run would work here, but not one with --allow: 1 check failed\.\n$/);
});

Deno.test("an inconclusive probe says why, with its exit code and first stderr line", () => {
  const facts = healthy();
  facts.isolation = {
    ok: true,
    value: {
      ...okIsolation,
      probe: {
        ...okProbe,
        outcome: { exitCode: 127, stdout: "", stderr: "exec: not found\nmore", engineRuntime: "runsc" },
      },
    },
  };
  const iso = diagnose(facts).checks.find((c) => c.name === "isolation")!;
  assert.equal(iso.status, "fail");
  assert.equal(
    iso.detail,
    'the isolation probe under "runsc" proved nothing (exit code 127): it printed nothing; stderr: exec: not found',
  );
});

Deno.test("the network's refusal carries the engine's message and what moat needs", () => {
  const facts = healthy();
  facts.network = {
    ok: true,
    value: { name: "moat-net-x", subnet: "10.237.0.0/28", createProblem: { message: "invalid option" } },
  };
  delete facts.isolation;
  const report = diagnose(facts);
  const net = report.checks.find((c) => c.name === "network")!;
  assert.match(
    net.detail,
    /^the engine refused an Internal bridge network .* on 10\.237\.0\.0\/28: invalid option$/,
  );
  assert.match(net.fix!, /com\.docker\.network\.bridge\.inhibit_ipv4/);
  assert.match(net.fix!, /Runs without --allow do not use it/);
  assert.equal(
    report.checks.find((c) => c.name === "isolation")!.detail,
    "needs a run network; see Run network above",
  );
});
