/** Warm sandboxes (lib/run/warm.ts): when they are wanted, what they are made with, and what may take one. */
import assert from "node:assert/strict";
import type { ContainerInspect } from "../../lib/docker/types.ts";
import { LABELS } from "../../lib/run/labels.ts";
import { proxyEnv, type RunSpec } from "../../lib/run/plan.ts";
import { profileFor } from "../../lib/run/profile.ts";
import {
  coldReason,
  IDLE_SCRIPT,
  parseWarmSpec,
  planWarm,
  warmCommand,
  warmKey,
  warmProblem,
  warmSpec,
  warmWanted,
} from "../../lib/run/warm.ts";

const T = 1_800_000_000_000;

Deno.test("warmWanted: --warm beats MOAT_WARM, which beats moat.yaml; a bad MOAT_WARM is an error", () => {
  const table: [
    string,
    boolean,
    Record<string, string | undefined>,
    boolean | undefined,
    boolean | string,
  ][] = [
    ["the flag alone", true, {}, undefined, true],
    ["the flag beats MOAT_WARM=0", true, { MOAT_WARM: "0" }, false, true],
    ["the flag beats a bad MOAT_WARM", true, { MOAT_WARM: "yes" }, false, true],
    ["MOAT_WARM=1", false, { MOAT_WARM: "1" }, undefined, true],
    ["MOAT_WARM=1 beats warm: false", false, { MOAT_WARM: "1" }, false, true],
    ["MOAT_WARM=0", false, { MOAT_WARM: "0" }, undefined, false],
    ["MOAT_WARM=0 beats warm: true", false, { MOAT_WARM: "0" }, true, false],
    ["MOAT_WARM=yes", false, { MOAT_WARM: "yes" }, true, 'MOAT_WARM must be 1 or 0 (it is "yes")'],
    ["MOAT_WARM=true", false, { MOAT_WARM: "true" }, undefined, 'MOAT_WARM must be 1 or 0 (it is "true")'],
    ["MOAT_WARM= 1", false, { MOAT_WARM: " 1" }, undefined, 'MOAT_WARM must be 1 or 0 (it is " 1")'],
    ["unset: warm: true", false, {}, true, true],
    ["unset: warm: false", false, {}, false, false],
    ["unset: no config", false, {}, undefined, false],
    ["undefined: warm: true", false, { MOAT_WARM: undefined }, true, true],
    ["empty: warm: true", false, { MOAT_WARM: "" }, true, true],
    ["empty: no config", false, { MOAT_WARM: "" }, undefined, false],
  ];
  for (const [label, flag, env, config, want] of table) {
    assert.deepEqual(warmWanted(flag, env, config), want, label);
  }
});

Deno.test("coldReason: -d, --keep, a name, ports, grants and rules start cold; a plain run may be warm", () => {
  const plain = { detach: false, keep: false, name: undefined, profile: {} };
  const table: [string, Partial<Parameters<typeof coldReason>[0]>, string | undefined][] = [
    ["a plain run", {}, undefined],
    ["empty lists", { profile: { tcp: [], grants: [], rules: [] } }, undefined],
    ["-d", { detach: true }, "-d"],
    ["--keep", { keep: true }, "--keep"],
    ["a name", { name: "fix" }, "a run name"],
    ["mapped ports", { profile: { tcp: ["5432=db:5432"] } }, "mapped ports"],
    ["grants", { profile: { grants: ["github"] } }, "grants"],
    ["rules", { profile: { rules: [{ host: "x.io", rules: ["allow GET /*"] }] } }, "rules"],
  ];
  for (const [label, change, want] of table) {
    assert.equal(coldReason({ ...plain, ...change }), want, label);
  }
});

/** A run's spec with everything set that a warm sandbox leaves out. */
function runSpec(over: Partial<RunSpec> = {}): RunSpec {
  return {
    runId: "0123456789ab",
    name: "fix",
    image: "sha256:img",
    command: ["npm", "test"],
    env: { A: "1", HOME: "/tmp" },
    workspace: "/home/me/proj",
    user: "1000:1000",
    runtime: "runsc",
    interactive: true,
    tty: true,
    consoleSize: { rows: 40, cols: 120 },
    profile: profileFor({ network: "allowlist", allow: ["api.github.com"], memory: 1 << 30, pids: 256 }),
    keep: true,
    moatVersion: "0.9.0",
    owner: { pid: 42, bootId: "boot" },
    homeId: "home1",
    egress: { network: "moat-net-0123456789ab", relayAddress: "10.237.0.2", resolvConf: "/h/resolv.conf" },
    ...over,
  };
}

Deno.test("warmSpec: drops what differs from run to run and keeps what the sandbox is made with", () => {
  const spec = runSpec();
  const w = warmSpec(spec);
  assert.deepEqual(w, {
    runId: "",
    name: undefined,
    image: "sha256:img",
    command: undefined,
    env: {},
    workspace: "/home/me/proj",
    user: "1000:1000",
    runtime: "runsc",
    interactive: false,
    tty: false,
    profile: { ...profileFor({ network: "allowlist", memory: 1 << 30, pids: 256 }), allow: [] },
    keep: false,
    moatVersion: "0.9.0",
  });
  for (const k of ["consoleSize", "owner", "homeId", "egress"] as const) {
    assert.equal(k in w, false, `${k} is left out`);
  }
  assert.deepEqual(spec.profile?.allow, ["api.github.com"], "the run's own profile is left as it is");
  const none = warmSpec(
    runSpec({ profile: profileFor({ network: "none", readOnly: true }), runtime: undefined }),
  );
  assert.deepEqual(none.profile, profileFor({ network: "none", readOnly: true }), "no allow list to empty");
  assert.equal(none.runtime, undefined);
  assert.equal("profile" in warmSpec(runSpec({ profile: undefined })), false, "no profile: none made up");
});

Deno.test("warmKey: what the exec gets, the policy and the run's identity make no difference", () => {
  const base = runSpec();
  const key = warmKey(base, "sha256:id", "N");
  const same: [string, Partial<RunSpec>][] = [
    ["command", { command: ["sh", "-c", "exit 3"] }],
    ["no command", { command: undefined }],
    ["env", { env: { B: "2" } }],
    ["allow list", { profile: profileFor({ network: "allowlist", memory: 1 << 30, pids: 256 }) }],
    ["tty", { tty: false, consoleSize: undefined }],
    ["interactive", { interactive: false }],
    ["runId", { runId: "fedcba987654" }],
    ["owner", { owner: { pid: 7, bootId: "other" } }],
    ["homeId", { homeId: "home2" }],
    ["name", { name: undefined }],
    ["keep", { keep: false }],
    ["egress", { egress: undefined }],
  ];
  for (const [label, change] of same) {
    assert.equal(warmKey(runSpec(change), "sha256:id", "N"), key, label);
  }
  const profile = (over: Parameters<typeof profileFor>[0]) =>
    profileFor({ network: "allowlist", allow: ["api.github.com"], memory: 1 << 30, pids: 256, ...over });
  const differ: [string, Partial<RunSpec>, string, string | undefined][] = [
    ["image id", {}, "sha256:other", "N"],
    ["image reference", { image: "sha256:other" }, "sha256:id", "N"],
    ["user", { user: "0:0" }, "sha256:id", "N"],
    ["workspace", { workspace: "/home/me/other" }, "sha256:id", "N"],
    ["runtime", { runtime: "runsc-kvm" }, "sha256:id", "N"],
    ["no runtime", { runtime: undefined }, "sha256:id", "N"],
    ["memory", { profile: profile({ memory: 2 << 30 }) }, "sha256:id", "N"],
    ["cpus", { profile: profile({ cpus: 2 }) }, "sha256:id", "N"],
    ["pids", { profile: profile({ pids: 512 }) }, "sha256:id", "N"],
    [
      "mounts",
      { profile: profile({ mounts: [{ source: "/data", target: "/data", readonly: true }] }) },
      "sha256:id",
      "N",
    ],
    [
      "network mode",
      { profile: profileFor({ network: "none", memory: 1 << 30, pids: 256 }) },
      "sha256:id",
      undefined,
    ],
    ["read-only", { profile: profile({ readOnly: true }) }, "sha256:id", "N"],
    ["moat version", { moatVersion: "0.9.1" }, "sha256:id", "N"],
    ["net key", {}, "sha256:id", "N2"],
  ];
  for (const [label, change, imageId, netKey] of differ) {
    assert.notEqual(warmKey(runSpec(change), imageId, netKey), key, label);
  }
  // Without a network made ahead: the engine's own network, or none.
  const open = runSpec({ profile: profileFor({ network: "default" }), egress: undefined });
  const none = runSpec({ profile: profileFor({ network: "none" }), egress: undefined });
  assert.equal(
    warmKey(open, "sha256:id", undefined),
    warmKey({ ...open, env: { X: "y" } }, "sha256:id", undefined),
  );
  assert.notEqual(
    warmKey(open, "sha256:id", undefined),
    warmKey(none, "sha256:id", undefined),
    "default vs none",
  );
});

Deno.test("planWarm: the run's sandbox with an idle main process, no stdin or terminal, gone by itself", () => {
  const egress = {
    network: "moat-net-abc123",
    relayAddress: "10.237.0.2",
    resolvConf: "/h/standby/abc123/r",
  };
  const owner = { pid: 9, bootId: "b" };
  const spec = { ...warmSpec(runSpec()), runId: "abc123", owner, homeId: "home1", egress };
  const { name, body } = planWarm(spec, T, 600);
  assert.equal(name, "moat-abc123");
  assert.deepEqual(body.Entrypoint, ["/bin/sh"]);
  assert.deepEqual(body.Cmd, ["-c", IDLE_SCRIPT, "moat-warm", "600"]);
  assert.equal(body.HostConfig.AutoRemove, true);
  assert.equal(body.Labels?.[LABELS.standby], String(T));
  assert.equal(body.Labels?.[LABELS.runId], "abc123");
  assert.equal(body.Labels?.[LABELS.home], "home1");
  assert.equal(body.Labels?.[LABELS.ownerPid], "9");
  assert.equal(body.Labels?.[LABELS.name], undefined);
  assert.equal(body.Labels?.[LABELS.keep], undefined);
  assert.deepEqual(
    [body.OpenStdin, body.StdinOnce, body.AttachStdin, body.Tty, body.AttachStdout, body.AttachStderr],
    [false, false, false, false, false, false],
  );
  assert.equal(body.HostConfig.ConsoleSize, undefined);
  // No run variables (-e, HOME): those go to the exec. The proxy's do, as a cold run's sandbox has them.
  const wantEnv = Object.entries(proxyEnv("10.237.0.2", {})).map(([k, v]) => `${k}=${v}`);
  assert.ok(wantEnv.length > 0);
  assert.deepEqual([...(body.Env ?? [])].sort(), wantEnv.sort());
  assert.equal(body.HostConfig.NetworkMode, "moat-net-abc123");
  assert.deepEqual(body.HostConfig.Dns, ["10.237.0.2"]);
  assert.equal(body.HostConfig.Runtime, "runsc");
  assert.equal(body.HostConfig.Memory, 1 << 30);
  assert.equal(body.User, "1000:1000");
  assert.equal(body.Image, "sha256:img");

  const cut =
    planWarm({ ...spec, egress: undefined, profile: profileFor({ network: "none" }) }, T + 5, 30).body;
  assert.deepEqual(cut.Env, [], "no network: no proxy either");
  assert.equal(cut.HostConfig.NetworkMode, "none");
  assert.deepEqual(cut.Cmd, ["-c", IDLE_SCRIPT, "moat-warm", "30"]);
  assert.equal(cut.Labels?.[LABELS.standby], String(T + 5));
  assert.throws(() => planWarm({ ...spec, egress: undefined }, T, 600), /needs its own network/);
});

Deno.test("warmCommand: the image's entrypoint, then the run's command or else the image's", () => {
  const table: [string, Parameters<typeof warmCommand>[0], string[] | undefined, string[]][] = [
    ["entrypoint + command", { Entrypoint: ["/init", "--"], Cmd: ["bash"] }, ["npm", "test"], [
      "/init",
      "--",
      "npm",
      "test",
    ]],
    ["entrypoint + image Cmd", { Entrypoint: ["/init"], Cmd: ["bash", "-l"] }, undefined, [
      "/init",
      "bash",
      "-l",
    ]],
    ["command alone", { Cmd: ["bash"] }, ["ls"], ["ls"]],
    ["image Cmd alone", { Cmd: ["bash"] }, undefined, ["bash"]],
    ["entrypoint alone", { Entrypoint: ["/app"] }, undefined, ["/app"]],
    ["neither", {}, undefined, []],
    ["no config", undefined, undefined, []],
    ["no config, a command", undefined, ["ls"], ["ls"]],
    ["null fields", { Entrypoint: null, Cmd: null }, undefined, []],
    ["null entrypoint, a command", { Entrypoint: null, Cmd: null }, ["ls", "-l"], ["ls", "-l"]],
    ["null entrypoint, image Cmd", { Entrypoint: null, Cmd: ["sh"] }, undefined, ["sh"]],
  ];
  for (const [label, config, command, want] of table) {
    assert.deepEqual(warmCommand(config, command), want, label);
  }
});

const expect = {
  id: "abc123",
  name: "moat-abc123",
  imageId: "sha256:img",
  runtime: "runsc",
  homeId: "home1",
};

function inspect(over: {
  running?: boolean;
  runtime?: string | undefined;
  image?: string;
  name?: string;
  labels?: Record<string, string | undefined> | null;
} = {}): ContainerInspect {
  const labels = over.labels === null ? null : Object.fromEntries(
    Object.entries({
      [LABELS.managed]: "true",
      [LABELS.runId]: "abc123",
      [LABELS.home]: "home1",
      [LABELS.standby]: String(T),
      ...over.labels,
    }).filter((e): e is [string, string] => e[1] !== undefined),
  );
  const runtime = "runtime" in over ? over.runtime : "runsc";
  return {
    Id: "c".repeat(64),
    Name: over.name ?? "/moat-abc123",
    Image: over.image ?? "sha256:img",
    State: {
      Status: over.running === false ? "exited" : "running",
      Running: over.running ?? true,
      ExitCode: 0,
    },
    Config: { Labels: labels },
    HostConfig: runtime === undefined ? {} : { Runtime: runtime },
  };
}

Deno.test("warmProblem: only the running sandbox made ahead for this run, image, runtime and home", () => {
  assert.equal(warmProblem(inspect(), expect), undefined, "the sandbox itself");
  assert.equal(
    warmProblem(inspect({ runtime: "runc" }), { ...expect, runtime: undefined }),
    undefined,
    "no runtime asked for: any",
  );
  const notOurs = "is not a sandbox moat made ahead for this MOAT_HOME";
  const table: [string, ContainerInspect | undefined, string][] = [
    ["gone", undefined, "is not running"],
    ["not running", inspect({ running: false }), "is not running"],
    ["another runtime", inspect({ runtime: "runc" }), "runs under runc, not runsc"],
    [
      "the default runtime",
      inspect({ runtime: undefined }),
      "runs under the engine's default runtime, not runsc",
    ],
    ["another image", inspect({ image: "sha256:other" }), "runs another image"],
    ["no image", { ...inspect(), Image: undefined }, "runs another image"],
    ["another name", inspect({ name: "/moat-fedcba" }), notOurs],
    ["a name without the slash", inspect({ name: "moat-abc123" }), notOurs],
    ["another run id", inspect({ labels: { [LABELS.runId]: "fedcba" } }), notOurs],
    ["another home", inspect({ labels: { [LABELS.home]: "home2" } }), notOurs],
    ["no home label", inspect({ labels: { [LABELS.home]: undefined } }), notOurs],
    ["no standby label", inspect({ labels: { [LABELS.standby]: undefined } }), notOurs],
    ["no labels", inspect({ labels: null }), notOurs],
  ];
  for (const [label, c, want] of table) {
    const got = warmProblem(c, expect);
    assert.equal(typeof got, "string", label);
    assert.equal(got, want, label);
  }
});

Deno.test("parseWarmSpec: reads back warmSpec's JSON, and nothing that carries a run", () => {
  for (
    const spec of [
      runSpec(),
      runSpec({ runtime: undefined, profile: profileFor({ network: "none", readOnly: true }) }),
      runSpec({
        profile: profileFor({
          network: "default",
          mounts: [{ source: "/d", target: "/d", readonly: false }],
        }),
      }),
    ]
  ) {
    const w = warmSpec(spec);
    const text = JSON.stringify(w);
    const back = parseWarmSpec(text);
    assert.deepEqual(back, JSON.parse(text), text);
    // What the run looks for is what the sandbox read back is made with.
    const netKey = spec.profile?.network === "allowlist" ? "N" : undefined;
    assert.equal(warmKey(back!, "sha256:id", netKey), warmKey(spec, "sha256:id", netKey), text);
  }
  const w = JSON.parse(JSON.stringify(warmSpec(runSpec())));
  const bad: [string, string][] = [
    ["not JSON", "{"],
    ["empty", ""],
    ["null", "null"],
    ["a list", "[]"],
    ["a string", '"x"'],
    ["env values", JSON.stringify({ ...w, env: { A: "1" } })],
    ["no env", JSON.stringify({ ...w, env: undefined })],
    ["a command", JSON.stringify({ ...w, command: ["sh"] })],
    ["a run id", JSON.stringify({ ...w, runId: "abc123" })],
    ["interactive", JSON.stringify({ ...w, interactive: true })],
    ["a terminal", JSON.stringify({ ...w, tty: true })],
    ["keep", JSON.stringify({ ...w, keep: true })],
    ["a network that is not one", JSON.stringify({ ...w, profile: { ...w.profile, network: "host" } })],
    ["no profile", JSON.stringify({ ...w, profile: undefined })],
    ["mounts not a list", JSON.stringify({ ...w, profile: { ...w.profile, mounts: "/a:/b" } })],
    ["no image", JSON.stringify({ ...w, image: undefined })],
    ["a runtime that is not a string", JSON.stringify({ ...w, runtime: 1 })],
  ];
  for (const [label, text] of bad) assert.equal(parseWarmSpec(text), undefined, label);
});

Deno.test("warmKey: the identity of the bound host paths is part of the key", () => {
  const spec = {
    runId: "r1",
    name: undefined,
    image: "img",
    command: undefined,
    env: {},
    workspace: "/ws",
    user: "1000:1000",
    runtime: "runsc",
    interactive: false,
    profile: profileFor({ network: "none" }),
    moatVersion: "0.1.0",
  };
  assert.equal(warmKey(spec, "sha256:a", undefined, "1:2"), warmKey(spec, "sha256:a", undefined, "1:2"));
  assert.notEqual(warmKey(spec, "sha256:a", undefined, "1:2"), warmKey(spec, "sha256:a", undefined, "1:3"));
});
