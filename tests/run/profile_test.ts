/** The hardened profile → HostConfig, with and without gVisor. */
import assert from "node:assert/strict";
import {
  DEFAULT_PIDS,
  GVISOR_MIN_HOST_PIDS,
  KEPT_CAPABILITIES,
  profileFor,
  profileHostConfig,
  TMPFS_OPTIONS,
} from "../../lib/run/profile.ts";
import { planContainer } from "../../lib/run/plan.ts";
import { spec } from "./fixtures.ts";

Deno.test("the default profile: all capabilities dropped but the documented few, no-new-privileges, init, pids", () => {
  for (const gvisor of [true, false]) {
    const host = profileHostConfig(profileFor({}), gvisor);
    assert.deepEqual(host.CapDrop, ["ALL"]);
    assert.deepEqual(host.CapAdd, [...KEPT_CAPABILITIES]);
    assert.deepEqual(host.SecurityOpt, ["no-new-privileges"]);
    assert.equal(host.Init, true);
    assert.equal(host.Privileged, false);
    assert.equal(host.PidsLimit, DEFAULT_PIDS);
    for (const unset of ["Memory", "MemorySwap", "NanoCpus", "NetworkMode", "ReadonlyRootfs", "Tmpfs"]) {
      assert.ok(!(unset in host), `${unset} is left to the engine by default`);
    }
  }
});

const cases: [string, Parameters<typeof profileFor>[0], boolean, Record<string, unknown>][] = [
  [
    "pids under gVisor: inside by RLIMIT_NPROC, the host limit kept high enough for the sandbox",
    { pids: 64 },
    true,
    {
      PidsLimit: GVISOR_MIN_HOST_PIDS,
      Ulimits: [{ Name: "nproc", Soft: 64, Hard: 64 }],
    },
  ],
  ["pids above the floor under gVisor", { pids: 5000 }, true, {
    PidsLimit: 5000,
    Ulimits: [{ Name: "nproc", Soft: 5000, Hard: 5000 }],
  }],
  ["pids without gVisor: the cgroup limit alone", { pids: 64 }, false, { PidsLimit: 64, Ulimits: undefined }],
  ["memory: the limit, no swap on top", { memory: 64 * 2 ** 20 }, true, {
    Memory: 64 * 2 ** 20,
    MemorySwap: 64 * 2 ** 20,
  }],
  ["cpus as nano-CPUs", { cpus: 1.5 }, false, { NanoCpus: 1_500_000_000 }],
  ["cpus rounding", { cpus: 0.01 }, true, { NanoCpus: 10_000_000 }],
  ["network none", { network: "none" }, true, { NetworkMode: "none" }],
  ["network default leaves the engine's", { network: "default" }, true, { NetworkMode: undefined }],
  ["no network stated: the run's own (an allow list with nothing in it)", {}, true, {
    NetworkMode: undefined,
  }],
  ["read-only root with a writable /tmp", { readOnly: true }, false, {
    ReadonlyRootfs: true,
    Tmpfs: { "/tmp": TMPFS_OPTIONS },
  }],
];
for (const [label, settings, gvisor, want] of cases) {
  Deno.test(`profile: ${label}`, () => {
    const host = profileHostConfig(profileFor(settings), gvisor);
    for (const [k, v] of Object.entries(want)) assert.deepEqual(host[k], v, k);
  });
}

Deno.test("the plan carries the profile, its mounts after the workspace; probes without one get the default", () => {
  const profile = profileFor({
    network: "default",
    mounts: [{ source: "/data", target: "/data", readonly: true }],
    readOnly: true,
  });
  const { body } = planContainer({ ...spec, profile });
  assert.deepEqual(body.HostConfig.Mounts, [
    { Type: "bind", Source: "/w", Target: "/workspace", ReadOnly: false },
    { Type: "bind", Source: "/data", Target: "/data", ReadOnly: true },
  ]);
  assert.equal(body.HostConfig.ReadonlyRootfs, true);
  const plain = planContainer(spec).body.HostConfig;
  assert.equal(plain.NetworkMode, "none", "a probe without a profile has no network");
  assert.deepEqual(plain.CapDrop, ["ALL"]);
  assert.equal(plain.Init, true);
  assert.deepEqual(plain.Ulimits, [{ Name: "nproc", Soft: DEFAULT_PIDS, Hard: DEFAULT_PIDS }]);
  const unsandboxed = planContainer({ ...spec, runtime: undefined }).body.HostConfig;
  assert.equal(unsandboxed.Ulimits, undefined);
});

Deno.test("the read-only root's /tmp lets programs run there, and grants nothing by set-user-ID bits or devices", () => {
  const options = TMPFS_OPTIONS.split(",");
  // Docker mounts a tmpfs noexec unless `exec` is given.
  assert.ok(options.includes("exec"), TMPFS_OPTIONS);
  assert.ok(!options.includes("noexec"), TMPFS_OPTIONS);
  for (const kept of ["nosuid", "nodev", "mode=1777"]) assert.ok(options.includes(kept), kept);
});

Deno.test("the recorded profile shows an allowlist's hosts, and its tcp mappings and rules when it has some", () => {
  const p = (s: Parameters<typeof profileFor>[0]) => {
    const { network, allow, tcp, rules } = profileFor(s);
    return rules ? { network, allow, tcp, rules } : { network, allow, tcp };
  };
  const rules = [{ host: "a.io", rules: ["allow * /*"] }];
  assert.deepEqual(p({ network: "allowlist", allow: ["a.io"], tcp: ["22=a.io:22"], rules }), {
    network: "allowlist",
    allow: ["a.io"],
    tcp: ["22=a.io:22"],
    rules,
  });
  assert.deepEqual(p({ network: "allowlist", tcp: [], rules: [] }), {
    network: "allowlist",
    allow: [],
    tcp: undefined,
  });
  assert.deepEqual(p({ network: "none", tcp: ["22=a.io:22"] }), {
    network: "none",
    allow: undefined,
    tcp: undefined,
  });
});

Deno.test("a run that states no network gets an allow list with nothing in it; a stated one is kept", () => {
  const none = profileFor({});
  assert.deepEqual([none.network, none.allow, none.tcp, none.rules], ["allowlist", [], undefined, undefined]);
  assert.equal(profileFor({ network: "default" }).network, "default");
  assert.equal(profileFor({ network: "default" }).allow, undefined);
  assert.equal(profileFor({ network: "none" }).network, "none");
  assert.deepEqual(profileFor({ allow: ["a.test"], network: "allowlist" }).allow, ["a.test"]);
});
