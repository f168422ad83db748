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
  ["memory with a unit is bytes", "memory: 2g\n", { memory: 2 * 1024 ** 3 }],
  ["memory in any unit spelling", "memory: 512MiB\n", { memory: 512 * 1024 ** 2 }],
  ["memory with a fraction", "memory: 1.5G\n", { memory: 1.5 * 1024 ** 3 }],
  ["cpus as a YAML number", "cpus: 1.5\n", { cpus: 1.5, cpusWhere: { file: "moat.yaml", line: 1, col: 7 } }],
  ["cpus as a string", 'cpus: "0.5"\n', { cpus: 0.5, cpusWhere: { file: "moat.yaml", line: 1, col: 7 } }],
  ["cpus more than any host has is left to the run, with its position", "name: x\ncpus:   4096\n", {
    name: "x",
    cpus: 4096,
    cpusWhere: { file: "moat.yaml", line: 2, col: 9 },
  }],
  ["pids as a number", "pids: 2048\n", { pids: 2048 }],
  ["pids as a string", 'pids: "64"\n', { pids: 64 }],
  ["network none", "network: none\n", { network: "none" }],
  ["network default", "network: default\n", { network: "default" }],
  ["read_only true", "read_only: true\n", { readOnly: true }],
  ["read_only false", "read_only: false\n", { readOnly: false }],
  ["an empty mounts list", "mounts: []\n", { mounts: [] }],
  [
    "mounts keep their source as written and their position",
    "mounts:\n  - source: ./data\n    target: /data\n  - {source: /srv/cache, target: /cache, readonly: true}\n" +
    "  -\n    target: /x\n    source: x\n    readonly: false\n",
    {
      mounts: [
        { source: "./data", target: "/data", readonly: false, where: { file: "moat.yaml", line: 2, col: 5 } },
        {
          source: "/srv/cache",
          target: "/cache",
          readonly: true,
          where: { file: "moat.yaml", line: 4, col: 5 },
        },
        { source: "x", target: "/x", readonly: false, where: { file: "moat.yaml", line: 6, col: 5 } },
      ],
    },
  ],
  [
    "read_only with a mount inside /tmp",
    "read_only: true\nmounts:\n  - {source: a, target: /tmp/a}\n",
    {
      readOnly: true,
      mounts: [{
        source: "a",
        target: "/tmp/a",
        readonly: false,
        where: { file: "moat.yaml", line: 3, col: 5 },
      }],
    },
  ],
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
  [
    "memory without a unit",
    "image: x\nmemory: 2\n",
    2,
    9,
    "memory",
    /must be a size with a unit, such as 512m or 2g \(a bare number is ambiguous\); got 2$/,
    /memory: 2g/,
  ],
  [
    "memory without a unit, quoted",
    'memory: "2048"\n',
    1,
    9,
    "memory",
    /\(a bare number is ambiguous\); got "2048"$/,
  ],
  [
    "memory below the engine's minimum",
    "memory: 4m\n",
    1,
    9,
    "memory",
    /must be at least 6m \(6 MiB\).*; got "4m"$/,
  ],
  ["memory zero", "memory: 0g\n", 1, 9, "memory", /at least 6m/],
  ["memory negative", "memory: -1g\n", 1, 9, "memory", /must be a size such as 512m or 2g; got "-1g"$/],
  ["memory garbage", "memory: lots\n", 1, 9, "memory", /must be a size such as 512m or 2g; got "lots"$/],
  ["memory a boolean", "memory: true\n", 1, 9, "memory", /must be a size .*; got true \(a YAML boolean\)$/],
  ["memory a list", "memory: [2g]\n", 1, 9, "memory", /must be a size .*; got a list$/],
  ["cpus zero", "cpus: 0\n", 1, 7, "cpus", /must be at least 0.01, .*; got 0$/, /cpus: 1.5/],
  ["cpus negative", "cpus: -1\n", 1, 7, "cpus", /at least 0.01/],
  ["cpus garbage", "cpus: two\n", 1, 7, "cpus", /must be a number of CPUs such as 1.5 or 2; got "two"$/],
  ["cpus a percentage", "cpus: 50%\n", 1, 7, "cpus", /got "50%"$/],
  ["cpus a boolean", "cpus: yes\n", 1, 7, "cpus", /got "yes"$/],
  ["cpus infinite", "cpus: .inf\n", 1, 7, "cpus", /must be a number of CPUs/],
  [
    "pids too few",
    "pids: 8\n",
    1,
    7,
    "pids",
    /must be a whole number of processes from 16 to 4194304.*; got 8$/,
  ],
  ["pids zero", "pids: 0\n", 1, 7, "pids", /from 16 to/],
  ["pids unlimited as -1", "pids: -1\n", 1, 7, "pids", /from 16 to/, /pids: 4096/],
  ["pids too many", "pids: 4194305\n", 1, 7, "pids", /to 4194304/],
  ["pids a fraction", "pids: 1.5\n", 1, 7, "pids", /whole number/],
  ["pids a word", "pids: many\n", 1, 7, "pids", /whole number.*; got "many"$/],
  [
    "network false is not a way to turn the network off",
    "network: false\n",
    1,
    10,
    "network",
    /must be one of "default", "none"; got false \(a YAML boolean\)$/,
    /network: none {2}for loopback only/,
  ],
  [
    "network host is not offered",
    "network: host\n",
    1,
    10,
    "network",
    /one of "default", "none"; got "host"$/,
  ],
  ["network empty", "network:\n", 1, 9, "network", /got nothing \(null\)$/],
  [
    "read_only yes is a string",
    "read_only: yes\n",
    1,
    12,
    "read_only",
    /must be true or false; got "yes"$/,
    /read_only: true/,
  ],
  ["read_only quoted true", 'read_only: "true"\n', 1, 12, "read_only", /true or false; got "true"$/],
  ["read_only 1", "read_only: 1\n", 1, 12, "read_only", /true or false; got 1$/],
  [
    "a misspelt read_only",
    "readonly: true\n",
    1,
    1,
    "readonly",
    /unknown key "readonly"/,
    /Did you mean "read_only"\?/,
  ],
  ["mounts a string", "mounts: /a\n", 1, 9, "mounts", /must be a list of mounts/, /- \{source: \.\/data/],
  [
    "a docker-style mount",
    "mounts:\n  - /a:/b\n",
    2,
    5,
    "mounts[0]",
    /must be a map of source, target and \(optionally\) readonly.*; got "\/a:\/b"$/,
    /docker's source:target form/,
  ],
  ["a mount without a target", "mounts:\n  - source: a\n", 2, 5, "mounts[0].target", /missing: every mount/],
  [
    "a mount without a source",
    "mounts:\n  - {source: a, target: /a}\n  - target: /b\n",
    3,
    5,
    "mounts[1].source",
    /missing: every mount needs a source and a target$/,
  ],
  [
    "a misspelt key in a mount suggests the nearest mount key",
    "mounts:\n  - source: a\n    taget: /b\n",
    3,
    5,
    "mounts[0].taget",
    /unknown key "taget" in a mount$/,
    /Did you mean "target"\?/,
  ],
  [
    "an unknown key in a mount lists the mount keys",
    "mounts:\n  - source: a\n    target: /b\n    options: rw\n",
    4,
    5,
    "mounts[0].options",
    /unknown key "options" in a mount/,
    /^Known keys of a mount: source, target, readonly$/,
  ],
  [
    "a mount source a number",
    "mounts:\n  - {source: 1, target: /a}\n",
    2,
    14,
    "mounts[0].source",
    /host path.*; got 1$/,
  ],
  ["a mount source empty", 'mounts:\n  - {source: "", target: /a}\n', 2, 14, "mounts[0].source", /got ""$/],
  [
    "a mount readonly yes",
    "mounts:\n  - source: a\n    target: /a\n    readonly: yes\n",
    4,
    15,
    "mounts[0].readonly",
    /must be true or false; got "yes"$/,
    /readonly: true/,
  ],
  [
    "a relative mount target",
    "mounts:\n  - source: a\n    target: data\n",
    3,
    13,
    "mounts[0].target",
    /must be an absolute path in the container, such as \/data; got "data"$/,
    /target: \/data/,
  ],
  [
    "a mount target with ..",
    "mounts:\n  - {source: a, target: /a/../b}\n",
    2,
    25,
    "mounts[0].target",
    /written plainly.*; got "\/a\/..\/b"$/,
    /target: \/b/,
  ],
  [
    "a mount over the workspace",
    "mounts:\n  - source: a\n    target: /workspace\n",
    3,
    13,
    "mounts[0].target",
    /"\/workspace" is \/workspace, where moat mounts the workspace$/,
  ],
  [
    "a mount inside the workspace",
    "mounts:\n  - {source: a, target: /workspace/a}\n",
    2,
    25,
    "mounts[0].target",
    /inside \/workspace/,
  ],
  [
    "a mount over the root",
    "mounts:\n  - {source: a, target: /}\n",
    2,
    25,
    "mounts[0].target",
    /would hide \/workspace/,
  ],
  [
    "two mounts on one target",
    "mounts:\n  - {source: a, target: /d}\n  - {source: b, target: /d}\n",
    3,
    25,
    "mounts[1].target",
    /"\/d" is also the target of mounts\[0\]$/,
  ],
  [
    "a mount on /tmp with read_only",
    "mounts:\n  - {source: a, target: /tmp}\nread_only: true\n",
    2,
    25,
    "mounts[0].target",
    /"\/tmp" is where read_only: true puts a writable tmpfs$/,
  ],
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
