import assert from "node:assert/strict";
import {
  decideSandbox,
  gvisorMissingError,
  looksLikeGvisor,
  noSandboxWarning,
  podmanDefaultProblem,
  resolveRuntime,
  sameRuntime,
  type SandboxInputs,
} from "../../lib/sandbox/decide.ts";
import { SandboxUnavailableError, UsageError } from "../../lib/errors.ts";

type Row = [
  label: string,
  flags: SandboxInputs["flags"],
  config: SandboxInputs["config"],
  env: Record<string, string>,
  expected: string, // "gvisor:<runtime>:<source>" | "none:<source>" | "usage"
];

// The precedence table of docs/concepts/sandboxing.md, row by row.
const table: Row[] = [
  ["default is gVisor", {}, {}, {}, "gvisor:runsc:default"],
  ["env turns it off", {}, {}, { MOAT_NO_SANDBOX: "1" }, "none:env"],
  ["env 'true' turns it off", {}, {}, { MOAT_NO_SANDBOX: "true" }, "none:env"],
  ["env 0 keeps it on", {}, {}, { MOAT_NO_SANDBOX: "0" }, "gvisor:runsc:default"],
  ["empty env keeps it on", {}, {}, { MOAT_NO_SANDBOX: "" }, "gvisor:runsc:default"],
  ["config none beats the default", {}, { sandbox: "none" }, {}, "none:config"],
  ["config gvisor beats env", {}, { sandbox: "gvisor" }, { MOAT_NO_SANDBOX: "1" }, "gvisor:runsc:config"],
  ["config none with env off", {}, { sandbox: "none" }, { MOAT_NO_SANDBOX: "0" }, "none:config"],
  ["--no-sandbox beats config gvisor", { noSandbox: true }, { sandbox: "gvisor" }, {}, "none:flag"],
  ["--sandbox beats config none", { sandbox: true }, { sandbox: "none" }, {}, "gvisor:runsc:flag"],
  ["--sandbox beats env", { sandbox: true }, {}, { MOAT_NO_SANDBOX: "1" }, "gvisor:runsc:flag"],
  ["both flags is a usage error", { sandbox: true, noSandbox: true }, {}, {}, "usage"],
  ["bad env value is a usage error", {}, {}, { MOAT_NO_SANDBOX: "yes please" }, "usage"],
  ["config runtime is used", {}, { runtime: "runsc-kvm" }, {}, "gvisor:runsc-kvm:default"],
  ["MOAT_RUNTIME is used", {}, {}, { MOAT_RUNTIME: "runsc-kvm" }, "gvisor:runsc-kvm:default"],
  [
    "config runtime beats MOAT_RUNTIME",
    {},
    { runtime: "runsc-a" },
    { MOAT_RUNTIME: "runsc-b" },
    "gvisor:runsc-a:default",
  ],
  ["malformed MOAT_RUNTIME is a usage error", {}, {}, { MOAT_RUNTIME: "a b" }, "usage"],
  [
    "MOAT_RUNTIME is not looked at without the sandbox",
    { noSandbox: true },
    {},
    { MOAT_RUNTIME: "a b" },
    "none:flag",
  ],
];

for (const [label, flags, config, env, expected] of table) {
  Deno.test(`sandbox decision: ${label}`, () => {
    let got: string;
    try {
      const d = decideSandbox({ flags, config, env });
      got = d.sandbox === "gvisor" ? `gvisor:${d.runtime}:${d.source}` : `none:${d.source}`;
    } catch (err) {
      assert.ok(err instanceof UsageError, `expected UsageError, got ${err}`);
      assert.equal(err.exitCode, 2);
      got = "usage";
    }
    assert.equal(got, expected);
  });
}

const gvisor = { sandbox: "gvisor" as const, runtime: "runsc", source: "default" as const };

Deno.test("resolveRuntime returns the runtime when /info lists a runsc binary under that name", () => {
  assert.equal(
    resolveRuntime(
      gvisor,
      { Runtimes: { runc: { path: "runc" }, runsc: { path: "/usr/bin/runsc" } } },
      "unix:///s",
    ),
    "runsc",
  );
});

Deno.test("resolveRuntime fails closed when runsc is not registered, with install steps and both bypasses", () => {
  assert.throws(
    () =>
      resolveRuntime(
        gvisor,
        { Runtimes: { runc: { path: "runc" }, "io.containerd.runc.v2": { path: "runc" } } },
        "unix:///s",
      ),
    (err: unknown) => {
      assert.ok(err instanceof SandboxUnavailableError);
      assert.equal(err.exitCode, 125);
      assert.match(err.message, /gVisor runtime "runsc" is not registered/);
      const hint = err.hint ?? "";
      assert.match(hint, /apt-get install -y runsc/);
      assert.match(hint, /daemon\.json/);
      assert.match(hint, /"runtimes": \{ "runsc": \{ "path": "\/usr\/bin\/runsc" \} \}/);
      assert.match(hint, /docker info/);
      // Step 3 names both ways to verify: moat's own check and the engine's list.
      assert.match(
        hint,
        /^3\. Verify: {2}moat doctor {3}or {3}docker info --format '\{\{json \.Runtimes\}\}'/m,
      );
      assert.match(hint, /--no-sandbox/);
      assert.match(hint, /sandbox: none/);
      // The bypass must not assume which moat command the user ran.
      assert.doesNotMatch(hint, /moat run --no-sandbox/);
      return true;
    },
  );
});

Deno.test("resolveRuntime fails closed when /info has no Runtimes at all", () => {
  assert.throws(() => resolveRuntime(gvisor, {}, "unix:///s"), SandboxUnavailableError);
});

Deno.test("resolveRuntime refuses a runtime name that is registered but is not gVisor", () => {
  const d = { ...gvisor, runtime: "fast" };
  assert.throws(
    () => resolveRuntime(d, { Runtimes: { fast: { path: "/usr/bin/runc" } } }, "unix:///s"),
    (err: unknown) => err instanceof SandboxUnavailableError && /is not gVisor/.test(err.message),
  );
});

Deno.test("resolveRuntime accepts a differently named gVisor runtime such as runsc-kvm", () => {
  const d = { ...gvisor, runtime: "runsc-kvm" };
  assert.equal(
    resolveRuntime(
      d,
      { Runtimes: { "runsc-kvm": { path: "/usr/local/bin/runsc", runtimeArgs: ["--platform=kvm"] } } },
      "x",
    ),
    "runsc-kvm",
  );
});

const podmanInfo = (def: string | undefined, runtimes: Record<string, { path?: string }> = {}) => ({
  ...(def === undefined ? {} : { DefaultRuntime: def }),
  Runtimes: { crun: { path: "/usr/bin/crun" }, runsc: { path: "/usr/bin/runsc" }, ...runtimes },
});

// On Podman every container runs under its default runtime, whatever is asked: that default decides.
const podmanTable: [string, string, ReturnType<typeof podmanInfo>, boolean][] = [
  ["default runsc by name", "runsc", podmanInfo("runsc"), true],
  ["default runsc by path (podman --runtime /usr/bin/runsc)", "runsc", podmanInfo("/usr/bin/runsc"), true],
  ["default crun, runsc listed", "runsc", podmanInfo("crun"), false],
  ["default by path to crun", "runsc", podmanInfo("/usr/bin/crun"), false],
  ["no default said", "runsc", podmanInfo(undefined), false],
  [
    "a runtime named runsc that runs runc",
    "runsc",
    podmanInfo("runsc", { runsc: { path: "/usr/bin/runc" } }),
    false,
  ],
  ["runsc-kvm asked, runsc the default", "runsc-kvm", podmanInfo("runsc"), false],
  [
    "runsc-kvm asked and the default",
    "runsc-kvm",
    podmanInfo("runsc-kvm", { "runsc-kvm": { path: "/opt/runsc" } }),
    true,
  ],
];
for (const [name, runtime, info, ok] of podmanTable) {
  Deno.test(`resolveRuntime on Podman: ${name}`, () => {
    const d = { ...gvisor, runtime };
    assert.equal(podmanDefaultProblem(runtime, info) === undefined, ok);
    if (ok) {
      assert.equal(resolveRuntime(d, info, "unix:///p", "Podman"), runtime);
      return;
    }
    assert.throws(
      () => resolveRuntime(d, info, "unix:///p", "Podman"),
      (err: unknown) =>
        err instanceof SandboxUnavailableError && /refusing to run without a sandbox/.test(err.message) &&
        /podman --runtime .* system service/.test(err.hint ?? ""),
    );
  });
}

Deno.test("resolveRuntime on Docker does not trust a default runtime: the name asked must be registered", () => {
  const info = { DefaultRuntime: "runsc", Runtimes: { runc: { path: "runc" } } };
  assert.throws(() => resolveRuntime(gvisor, info, "x"), SandboxUnavailableError);
});

const sameTable: [string | undefined, string, boolean][] = [
  ["runsc", "runsc", true],
  ["/usr/bin/runsc", "runsc", true],
  ["oci", "runsc", false],
  [undefined, "runsc", false],
  ["/usr/bin/runsc-kvm", "runsc", false],
  ["myrunsc", "runsc", false],
];
for (const [got, wanted, same] of sameTable) {
  Deno.test(`sameRuntime(${got}, ${wanted}) is ${same}`, () => assert.equal(sameRuntime(got, wanted), same));
}

Deno.test("the missing-gVisor hint points at a gVisor runtime registered under another name", () => {
  const err = gvisorMissingError("runsc", "unix:///s", ["runc", "runsc-kvm"]);
  assert.match(err.hint ?? "", /MOAT_RUNTIME=runsc-kvm/);
});

const gvisorTable: [string, { path?: string; runtimeType?: string }, boolean][] = [
  ["runsc", { path: "/usr/bin/runsc" }, true],
  ["gvisor", { runtimeType: "io.containerd.runsc.v1" }, true],
  ["runsc", {}, true],
  ["runsc", { path: "/usr/bin/runc" }, false],
  ["crun", { path: "/usr/bin/crun" }, false],
  ["nvidia", { path: "nvidia-container-runtime" }, false],
];
for (const [name, info, expected] of gvisorTable) {
  Deno.test(`looksLikeGvisor(${name}, ${JSON.stringify(info)}) is ${expected}`, () => {
    assert.equal(looksLikeGvisor(name, info), expected);
  });
}

Deno.test("the no-sandbox warning names what turned the sandbox off", () => {
  assert.match(noSandboxWarning("flag"), /--no-sandbox/);
  assert.match(noSandboxWarning("config"), /sandbox: none/);
  assert.match(noSandboxWarning("env"), /MOAT_NO_SANDBOX=1/);
  assert.match(noSandboxWarning("flag"), /reduced isolation/);
});
