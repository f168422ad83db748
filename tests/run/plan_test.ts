import assert from "node:assert/strict";
import {
  containerName,
  homeFromPasswd,
  needsFallbackHome,
  parseEnvArg,
  planContainer,
  type RunSpec,
} from "../../lib/run/plan.ts";
import { chooseImage, DEFAULT_IMAGE } from "../../lib/run/image.ts";

const spec: RunSpec = {
  runId: "0123456789ab",
  name: undefined,
  image: "debian:bookworm-slim",
  command: ["sh", "-c", "echo hi"],
  env: { A: "1", B: "x=y" },
  workspace: "/home/me/my:proj",
  user: "1000:1000",
  runtime: "runsc",
  interactive: false,
  moatVersion: "0.1.0",
};

Deno.test("plan requests the gVisor runtime and mounts the workspace at /workspace as the working dir", () => {
  const { body } = planContainer(spec);
  assert.equal(body.HostConfig.Runtime, "runsc");
  assert.equal(body.WorkingDir, "/workspace");
  assert.deepEqual(body.HostConfig["Mounts"], [
    { Type: "bind", Source: "/home/me/my:proj", Target: "/workspace", ReadOnly: false },
  ]);
  assert.equal(body.HostConfig["Binds"], undefined);
  assert.equal(body.User, "1000:1000");
  assert.deepEqual(body.Cmd, ["sh", "-c", "echo hi"]);
  assert.deepEqual(body.Env, ["A=1", "B=x=y"]);
  assert.equal(body.Tty, false);
  assert.equal(body.HostConfig.AutoRemove, false);
});

Deno.test("plan leaves Runtime unset without the sandbox so the daemon's default applies", () => {
  const { body } = planContainer({ ...spec, runtime: undefined });
  assert.ok(!("Runtime" in body.HostConfig));
  assert.equal(body.Labels?.["dev.moat.sandbox"], "none");
  assert.equal(body.Labels?.["dev.moat.runtime"], "default");
});

Deno.test("plan labels every container with run id, workspace, runtime and version", () => {
  const { body } = planContainer({ ...spec, name: "fix" });
  assert.deepEqual(body.Labels, {
    "dev.moat.managed": "true",
    "dev.moat.run-id": "0123456789ab",
    "dev.moat.workspace": "/home/me/my:proj",
    "dev.moat.sandbox": "gvisor",
    "dev.moat.runtime": "runsc",
    "dev.moat.version": "0.1.0",
    "dev.moat.name": "fix",
  });
});

Deno.test("plan labels the container with the id of the MOAT_HOME that made it, when given", () => {
  const home = "0123456789abcdef0123456789abcdef";
  assert.equal(planContainer({ ...spec, homeId: home }).body.Labels?.["dev.moat.home"], home);
  assert.ok(!("dev.moat.home" in planContainer(spec).body.Labels!));
});

Deno.test("plan attaches stdin only for interactive runs", () => {
  const plain = planContainer(spec).body;
  assert.deepEqual([plain.OpenStdin, plain.AttachStdin, plain.StdinOnce], [false, false, false]);
  const i = planContainer({ ...spec, interactive: true }).body;
  assert.deepEqual([i.OpenStdin, i.AttachStdin, i.StdinOnce], [true, true, true]);
});

Deno.test("plan keeps the image's own command when none is given", () => {
  assert.ok(!("Cmd" in planContainer({ ...spec, command: undefined }).body));
});

Deno.test("container names are unique per run and carry the run name", () => {
  assert.equal(containerName(spec), "moat-0123456789ab");
  assert.equal(containerName({ ...spec, name: "fix" }), "moat-fix-0123456789ab");
});

const passwd =
  "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n" +
  "node:x:1000:1000::/home/node:/bin/sh\nweird:x:1001:1001::/:/bin/sh\n";

const homes: [number | string, string | undefined][] = [
  ["node", "/home/node"],
  ["nobody", undefined],
  ["ghost", undefined],
  [0, "/root"],
  [1000, "/home/node"],
  [65534, undefined],
  [
    1001,
    undefined,
  ],
  [4242, undefined],
];
for (const [uid, home] of homes) {
  Deno.test(`homeFromPasswd gives uid ${uid} the home ${home}`, () => {
    assert.equal(homeFromPasswd(passwd, uid), home);
  });
}

const fallback: [string, Record<string, string>, number | string | undefined, string | undefined, boolean][] =
  [
    ["root never needs it", {}, 0, undefined, false],
    ["a user set HOME", { HOME: "/x" }, 4242, passwd, false],
    ["uid with a home in the image", {}, 1000, passwd, false],
    ["uid without an entry", {}, 4242, passwd, true],
    ["uid whose home is /nonexistent", {}, 65534, passwd, true],
    ["image without passwd", {}, 1000, undefined, true],
    ["no user known", {}, undefined, passwd, false],
    ["root by name", {}, "root", undefined, false],
    ["a named user with a home", {}, "node", passwd, false],
    ["a named user whose home is /nonexistent", {}, "nobody", passwd, true],
  ];
for (const [label, env, uid, pw, expected] of fallback) {
  Deno.test(`fallback HOME: ${label}`, () => {
    assert.equal(needsFallbackHome(env, uid, pw), expected);
  });
}

Deno.test("-e KEY=VALUE splits at the first '=' and -e KEY takes moat's own value", () => {
  assert.deepEqual(parseEnvArg("A=b=c", {}), ["A", "b=c"]);
  assert.deepEqual(parseEnvArg("A=", {}), ["A", ""]);
  assert.deepEqual(parseEnvArg("TERM", { TERM: "xterm" }), ["TERM", "xterm"]);
  assert.equal(parseEnvArg("UNSET", {}), undefined);
});

Deno.test("image choice: --image beats config beats MOAT_IMAGE beats the default", () => {
  assert.equal(chooseImage("f", "c", { MOAT_IMAGE: "e" }), "f");
  assert.equal(chooseImage(undefined, "c", { MOAT_IMAGE: "e" }), "c");
  assert.equal(chooseImage(undefined, undefined, { MOAT_IMAGE: "e" }), "e");
  assert.equal(chooseImage(undefined, undefined, { MOAT_IMAGE: " " }), DEFAULT_IMAGE);
  assert.equal(chooseImage(undefined, undefined, {}), DEFAULT_IMAGE);
});
