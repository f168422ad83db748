import assert from "node:assert/strict";
import { nearest, parseConfig } from "../../lib/config/parse.ts";
import { ConfigError } from "../../lib/errors.ts";

const ok: [string, string, unknown][] = [
  ["an empty file is an empty config", "", {}],
  ["a comment-only file is an empty config", "# nothing\n", {}],
  [
    "all fields",
    "name: fix\nimage: alpine:3\ncommand: [npm, test]\nenv:\n  A: b\nsandbox: none\nruntime: runsc-kvm\n",
    {
      name: "fix",
      image: "alpine:3",
      command: ["npm", "test"],
      env: { A: "b" },
      sandbox: "none",
      runtime: "runsc-kvm",
    },
  ],
  ["a string command runs through sh -c", "command: echo hi && ls\n", {
    command: ["/bin/sh", "-c", "echo hi && ls"],
  }],
  [
    "env scalars become strings as written",
    "env:\n  N: 1.50\n  B: true\n  S: x\n  BIG: 12345678901234567890\n",
    {
      env: { N: "1.50", B: "true", S: "x", BIG: "12345678901234567890" },
    },
  ],
  ["numbers in a command list are arguments as written", "command: [sleep, 1.0]\n", {
    command: ["sleep", "1.0"],
  }],
  ["sandbox gvisor", "sandbox: gvisor\n", { sandbox: "gvisor" }],
];
for (const [label, text, expected] of ok) {
  Deno.test(`config: ${label}`, () => {
    assert.deepEqual(parseConfig(text, "moat.yaml"), expected);
  });
}

// [label, text, line, column, field path, message pattern, hint pattern?]
const bad: [string, string, number, number, string, RegExp, RegExp?][] = [
  [
    "sandbox: false is not a way to turn the sandbox off",
    "image: x\nsandbox: false\n",
    2,
    10,
    "sandbox",
    /must be one of "gvisor", "none"; got false/,
    /sandbox: none/,
  ],
  ["sandbox: no is rejected", "sandbox: no\n", 1, 10, "sandbox", /got "no"/],
  ["sandbox: off is rejected", "sandbox: off\n", 1, 10, "sandbox", /got "off"/],
  [
    "an unknown key suggests the nearest known key",
    "name: x\nimgae: y\n",
    2,
    1,
    "imgae",
    /unknown key "imgae"/,
    /Did you mean "image"\?/,
  ],
  [
    "an unknown key far from all lists the known keys",
    "name: x\nzzzzzzzz: 1\n",
    2,
    1,
    "zzzzzzzz",
    /unknown key/,
    /Known keys: name, image/,
  ],
  [
    "a wrong type names the field path",
    "env:\n  A: [1]\n",
    2,
    6,
    "env.A",
    /must be a string, number or boolean; got a list/,
  ],
  ["an invalid env name", "env:\n  1X: y\n", 2, 3, "env.1X", /environment variable name .*; got "1X"/],
  [
    "command must not be a map",
    "command:\n  a: b\n",
    2,
    3,
    "command",
    /must be a string \(run by sh -c\) or a list/,
  ],
  ["name must be usable in a container name", "name: has space\n", 1, 7, "name", /must be a name of letters/],
  ["a YAML syntax error has a position", "name: x\nimage: [a\n", 3, 1, "", /YAML syntax error/],
  [
    "duplicate keys are an error",
    "image: a\nimage: b\n",
    2,
    1,
    "",
    /YAML syntax error: Map keys must be unique/,
  ],
  ["a top-level list is an error", "- a\n", 1, 1, "", /must be a map/],
];
for (const [label, text, line, column, path, message, hint] of bad) {
  Deno.test(`config error: ${label}`, () => {
    assert.throws(() => parseConfig(text, "/w/moat.yaml"), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(err.exitCode, 2);
      assert.equal(err.file, "/w/moat.yaml");
      assert.deepEqual([err.line, err.column, err.path], [line, column, path]);
      assert.ok(err.message.startsWith(`/w/moat.yaml:${line}:${column}: `), err.message);
      assert.match(err.message, message);
      if (hint) assert.match(err.hint ?? "", hint);
      return true;
    });
  });
}

Deno.test("nearest suggests only close keys", () => {
  assert.equal(nearest("sandbx", ["sandbox", "image"]), "sandbox");
  assert.equal(nearest("IMAGE", ["sandbox", "image"]), "image");
  assert.equal(nearest("qqqqqqq", ["sandbox", "image"]), undefined);
});
