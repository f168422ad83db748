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
  ["grants by name, once each", "grants: [anthropic, github, anthropic]\n", {
    grants: ["anthropic", "github"],
  }],
  ["network default", "network: default\n", { network: "default" }],
  ["network open is the default network", "network: open\n", { network: "default" }],
  ["network allowlist alone allows nothing", "network: allowlist\n", { network: "allowlist", allow: [] }],
  [
    "network as a map: its allow list",
    'network:\n  allow:\n    - api.github.com\n    - "*.npmjs.org"\n    - db.local:5432\n',
    { network: "allowlist", allow: ["api.github.com", "*.npmjs.org", "db.local:5432"] },
  ],
  ["network map with policy allowlist", "network: {policy: allowlist, allow: [x.io]}\n", {
    network: "allowlist",
    allow: ["x.io"],
  }],
  ["network map with policy none and no hosts", "network: {policy: none}\n", { network: "none" }],
  [
    "tcp mappings, written back plainly",
    'network:\n  allow: [x.io]\n  tcp:\n    - "22=GitHub.com.:22"\n    - " 5432 = 10.0.0.5:5432"\n',
    { network: "allowlist", allow: ["x.io"], tcp: ["22=github.com:22", "5432=10.0.0.5:5432"] },
  ],
  ["tcp alone is an allowlist", 'network: {tcp: ["2222=git.example:22"]}\n', {
    network: "allowlist",
    allow: [],
    tcp: ["2222=git.example:22"],
  }],
  ["an empty tcp list", "network: {tcp: []}\n", { network: "allowlist", allow: [] }],
  [
    "a host with rules, written back plainly",
    'network:\n  allow:\n    - api.github.com\n    - host: api.example.com\n      rules: ["allow  GET /v1/*", "deny * /*"]\n',
    {
      network: "allowlist",
      allow: ["api.github.com", "api.example.com"],
      rules: [{ host: "api.example.com", rules: ["allow GET /v1/*", "deny * /*"] }],
    },
  ],
  [
    "a wildcard with rules, and the same host plainly too",
    'network:\n  allow:\n    - {host: "*.example.com", rules: ["allow * /*"]}\n    - "*.example.com"\n',
    {
      network: "allowlist",
      allow: ["*.example.com", "*.example.com"],
      rules: [{ host: "*.example.com", rules: ["allow * /*"] }],
    },
  ],
  ["read_only true", "read_only: true\n", { readOnly: true }],
  ["read_only false", "read_only: false\n", { readOnly: false }],
  ["warm true", "warm: true\n", { warm: true }],
  ["warm false", "warm: false\n", { warm: false }],
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
  [
    "aliases stand for their anchor's value, numbers as written",
    "env:\n  A: &a x\n  B: *a\n  N: &n 0x10\n  M: *n\ncommand: [&c 1.50, *c]\n",
    { env: { A: "x", B: "x", N: "0x10", M: "0x10" }, command: ["1.50", "1.50"] },
  ],
  ["a tag that gives a plain value is fine", "env:\n  A: !!str 1.50\n", { env: { A: "1.50" } }],
  ["a variable named __proto__ is kept", "env:\n  __proto__: x\n", { env: { ["__proto__"]: "x" } }],
  ["a first document marker and a directive", "%YAML 1.2\n---\nname: x\n", { name: "x" }],
  ["a document end marker with nothing after it", "name: x\n...\n# done\n", { name: "x" }],
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
  [
    "a grant name with a slash",
    "grants: [ok, a/b]\n",
    1,
    14,
    "grants[1]",
    /must be a list of grant names, such as \[anthropic\]; got "a\/b"/,
    /moat grant list/,
  ],
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
  ["a top-level list is an error", "- a\n", 1, 1, "", /must be a map of settings .*; got a list$/],
  [
    "a top-level !!set is not a map",
    "!!set {image, name}\n",
    1,
    7,
    "",
    /must be a map of settings .*; got a set \(!!set\)$/,
  ],
  [
    "a second document is pointed at by its ---",
    "image: a\n---\nimage: b\n",
    2,
    1,
    "",
    /^\/w\/moat\.yaml:2:1: a second YAML document starts here; moat\.yaml holds one document$/,
    /delete this "---" line/,
  ],
  ["an empty second document too", "image: a\n---\n", 2, 1, "", /a second YAML document starts here/],
  [
    "a second document after ...",
    "image: a\n...\nname: b\n",
    3,
    1,
    "",
    /a second YAML document starts here/,
    /delete the "\.\.\." line before this/,
  ],
  [
    "a bad command item is pointed at by its index",
    "command:\n  - npm\n  - [x]\n  - test\n",
    3,
    5,
    "command[1]",
    /must be a string, number or boolean \(one argument\); got a list$/,
    /command: \["npm", "test"\]/,
  ],
  ["a map in a flow command", "command: [a, b, {c: d}]\n", 1, 17, "command[2]", /got a map$/],
  [
    "!!binary in a command",
    "command: [sleep, !!binary aGk=]\n",
    1,
    27,
    "command[1]",
    /got binary data \(!!binary\)$/,
  ],
  [
    "!!binary is binary data",
    "image: !!binary aGVsbG8=\n",
    1,
    17,
    "image",
    /; got binary data \(!!binary\)$/,
  ],
  ["!!timestamp", "env:\n  A: !!timestamp 2001-12-14\n", 2, 18, "env.A", /got a timestamp \(!!timestamp\)$/],
  [
    "!!set is a set",
    "env: !!set {A, B}\n",
    1,
    12,
    "env",
    /must be a map of NAME: value; got a set \(!!set\)$/,
  ],
  ["!!omap is an ordered map", "mounts: !!omap [a: 1]\n", 1, 16, "mounts", /got an ordered map \(!!omap\)$/],
  ["!!pairs", "command: !!pairs [a: 1]\n", 1, 18, "command", /got a list of pairs \(!!pairs\)$/],
  [
    "an alias with no anchor",
    "env: {A: 1, B: *z}\n",
    1,
    16,
    "",
    /YAML syntax error: the alias \*z has no anchor &z before it$/,
    /&z/,
  ],
  ["an alias used before its anchor", "image: *x\nname: &x y\n", 1, 8, "", /the alias \*x has no anchor/],
  [
    "an alias inside the value it names",
    "env: &e\n  A: *e\n",
    2,
    6,
    "",
    /the alias \*e is inside the value it names/,
  ],
  [
    "keys that are the same once read are duplicates",
    'env:\n  1: a\n  "1": b\n',
    3,
    3,
    "",
    /YAML syntax error: Map keys must be unique$/,
  ],
  ["a list as a key", "env:\n  ? [a]\n  : b\n", 2, 5, "env", /a key must be a string; got a list as a key$/],
  ["a map as a top-level key", "? {a: b}\n: c\n", 1, 3, "", /a key must be a string; got a map as a key$/],
  ["a binary key", "env:\n  !!binary aGk=: x\n", 2, 12, "env", /got binary data \(!!binary\) as a key$/],
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
    /must be one of "default" \(or "open"\), "none", "allowlist", or a map such as \{allow: \[api\.github\.com\]\}; got false \(a YAML boolean\)$/,
    /network: none {2}for loopback only/,
  ],
  [
    "network host is not offered",
    "network: host\n",
    1,
    10,
    "network",
    /one of "default" \(or "open"\), "none", "allowlist", .*; got "host"$/,
  ],
  ["network empty", "network:\n", 1, 9, "network", /got nothing \(null\)$/],
  [
    "an allow entry that is not a host pattern",
    "network:\n  allow:\n    - api.github.com\n    - api.*.com\n",
    4,
    7,
    "network.allow[1]",
    /: a wildcard is only allowed as the whole first label, as in \*\.example\.com$/,
    /- "\*\.npmjs\.org"/,
  ],
  [
    "an allow entry with a bad port",
    "network:\n  allow: [x.io:0]\n",
    2,
    11,
    "network.allow[0]",
    /"0" is not a port/,
  ],
  [
    "a misspelt allow",
    "network:\n  alow: [x.io]\n",
    2,
    3,
    "network.alow",
    /unknown key "alow" in network/,
    /Did you mean "allow"\?/,
  ],
  [
    "tcp is a list",
    "network:\n  tcp: 22=github.com:22\n",
    2,
    8,
    "network.tcp",
    /must be a list of mappings; got "22=github\.com:22"$/,
    /- "22=github\.com:22"/,
  ],
  [
    "a tcp entry that is a number",
    "network:\n  tcp:\n    - 22\n",
    3,
    7,
    "network.tcp[0]",
    /must be a mapping PORT=HOST:PORT, such as "22=github\.com:22"; got 22$/,
  ],
  [
    "a tcp entry without =",
    'network:\n  tcp:\n    - "github.com:22"\n',
    3,
    7,
    "network.tcp[0]",
    /"github\.com:22" is not PORT=HOST:PORT, such as 22=github\.com:22$/,
    /PORT=HOST:PORT, quoted/,
  ],
  [
    "a tcp entry without the upstream's port",
    'network:\n  tcp: ["22=github.com"]\n',
    2,
    9,
    "network.tcp[0]",
    /is not PORT=HOST:PORT/,
  ],
  [
    "a local port 0",
    'network:\n  tcp: ["0=github.com:22"]\n',
    2,
    9,
    "network.tcp[0]",
    /"0" is not a port \(1 to 65535\)$/,
  ],
  [
    "an upstream port too high",
    'network:\n  tcp: ["22=github.com:65536"]\n',
    2,
    9,
    "network.tcp[0]",
    /"65536" is not a port/,
  ],
  [
    "a local port of the relay's own",
    'network:\n  tcp:\n    - "2222=a.io:22"\n    - "443=github.com:22"\n',
    4,
    7,
    "network.tcp[1]",
    /port 443 is one of the relay's own \(53 DNS, 80 HTTP, 443 TLS, 3128 the proxy\)$/,
    /^Map another port to it, e\.g\. {2}"2222=github\.com:22"$/,
  ],
  ["the proxy's port", 'network:\n  tcp: ["3128=a.io:3128"]\n', 2, 9, "network.tcp[0]", /port 3128 is one/],
  ["the DNS port", 'network:\n  tcp: ["53=a.io:53"]\n', 2, 9, "network.tcp[0]", /port 53 is one/],
  ["port 80", 'network:\n  tcp: ["80=a.io:8080"]\n', 2, 9, "network.tcp[0]", /port 80 is one/],
  [
    "a local port mapped twice",
    'network:\n  tcp:\n    - "22=a.io:22"\n    - "23=b.io:22"\n    - "022=c.io:22"\n',
    5,
    7,
    "network.tcp[2]",
    /port 22 is mapped already, by network\.tcp\[0\]: a port goes to one upstream$/,
  ],
  [
    "a tcp upstream with a wildcard",
    'network:\n  tcp: ["22=*.github.com:22"]\n',
    2,
    9,
    "network.tcp[0]",
    /no wildcard/,
  ],
  [
    "a tcp upstream that is not a host",
    'network:\n  tcp: ["22=git_hub.com:22"]\n',
    2,
    9,
    "network.tcp[0]",
    /"git_hub\.com" is not a host name .* or an IPv4 address$/,
  ],
  [
    "a tcp upstream that is an IPv6 address",
    'network:\n  tcp: ["22=[::1]:22"]\n',
    2,
    9,
    "network.tcp[0]",
    /is not a host name/,
  ],
  [
    "tcp with a policy that does not limit it",
    'network:\n  policy: open\n  tcp: ["22=a.io:22"]\n',
    3,
    3,
    "network.tcp",
    /maps ports a run may reach, which policy open does not limit$/,
  ],
  [
    "allow is a list",
    "network:\n  allow: x.io\n",
    2,
    10,
    "network.allow",
    /must be a list of hosts; got "x\.io"$/,
  ],
  [
    "an allow entry that is a list",
    "network:\n  allow:\n    - [x.io]\n",
    3,
    7,
    "network.allow[0]",
    /must be a host, such as api\.github\.com, or a map of host and rules; got a list$/,
  ],
  [
    "rules that are empty",
    "network:\n  allow:\n    - {host: x.io, rules: []}\n",
    3,
    27,
    "network.allow[0].rules",
    /is empty, which would deny every request/,
    /rules: \["allow GET \/v1\/\*", "deny \* \/\*"\]/,
  ],
  [
    "rules that are not a list",
    "network:\n  allow:\n    - host: x.io\n      rules: allow GET /\n",
    4,
    14,
    "network.allow[0].rules",
    /must be a list of rules, such as "allow GET \/v1\/\*"; got "allow GET \/"$/,
  ],
  [
    "a host without rules in a map",
    "network:\n  allow:\n    - host: x.io\n",
    3,
    7,
    "network.allow[0]",
    /missing: an allow entry written as a map needs a host and its rules$/,
  ],
  [
    "rules without a host",
    'network:\n  allow:\n    - rules: ["allow * /*"]\n',
    3,
    7,
    "network.allow[0]",
    /missing: .* needs a host and its rules$/,
  ],
  [
    "a misspelt rules",
    'network:\n  allow:\n    - host: x.io\n      rule: ["allow * /*"]\n',
    4,
    7,
    "network.allow[0].rule",
    /unknown key "rule" in an allow entry$/,
    /Did you mean "rules"\?/,
  ],
  [
    "a host with rules that is not a host",
    'network:\n  allow:\n    - host: "x.*.io"\n      rules: ["allow * /*"]\n',
    3,
    13,
    "network.allow[0].host",
    /a wildcard is only allowed as the whole first label/,
  ],
  [
    "a host that is a number",
    'network:\n  allow:\n    - {host: 1, rules: ["allow * /*"]}\n',
    3,
    14,
    "network.allow[0].host",
    /must be a host, such as api\.example\.com; got 1$/,
  ],
  [
    "a bad rule, pointed at",
    "network:\n  allow:\n    - host: x.io\n      rules:\n        - allow GET /v1/*\n        - allow get /v2\n",
    6,
    11,
    "network.allow[0].rules[1]",
    /^.*: "get" is not upper case: methods are case-sensitive, and a server takes GET$/,
  ],
  [
    "a rule that is not a string",
    "network:\n  allow:\n    - host: x.io\n      rules: [{allow: GET}]\n",
    4,
    15,
    "network.allow[0].rules[0]",
    /must be a rule ACTION METHOD PATH, such as "allow GET \/v1\/\*"; got a map$/,
  ],
  [
    "a rule with a query",
    'network:\n  allow:\n    - {host: x.io, rules: ["allow GET /a?b"]}\n',
    3,
    28,
    "network.allow[0].rules[0]",
    /has a query or fragment: rules match the path without its query string$/,
  ],
  [
    "rules for one host twice",
    'network:\n  allow:\n    - {host: x.io, rules: ["allow * /*"]}\n    - {host: X.io., rules: ["deny * /*"]}\n',
    4,
    14,
    "network.allow[1].host",
    /"X\.io\." has rules already, in network\.allow\[0\]$/,
  ],
  [
    "hosts with a policy that does not limit them",
    "network:\n  policy: none\n  allow: [x.io]\n",
    3,
    3,
    "network.allow",
    /names hosts a run may reach, which policy none does not limit/,
  ],
  ["a policy that is not one", "network:\n  policy: closed\n", 2, 11, "network.policy", /got "closed"$/],
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
  ["warm 3", "warm: 3\n", 1, 7, "warm", /must be true or false; got 3$/, /warm: true/],
  ["warm yes is a string", "warm: yes\n", 1, 7, "warm", /must be true or false; got "yes"$/, /warm: false/],
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

// Limits: hostile YAML is a config error at a position, never a crash or an endless expansion.

/** The ConfigError `parseConfig` throws for `text`. */
function configError(text: string): ConfigError {
  try {
    parseConfig(text, "/w/moat.yaml");
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err;
  }
  assert.fail("no error");
}

const DEEP = /lists and maps are nested more than 64 deep here$/;
const RUN = /more than 64 indicators \(-, \?, :, tags, anchors\) in a row$/;

Deno.test("config limits: 64 levels of lists and maps are read, the 65th is refused where it opens", () => {
  // The config's own map is the first level.
  assert.doesNotMatch(configError(`command: ${"[".repeat(63)}${"]".repeat(63)}\n`).message, DEEP);
  const err = configError(`command: ${"[".repeat(64)}${"]".repeat(64)}\n`);
  assert.deepEqual([err.line, err.column], [1, 9 + 64]);
  assert.match(err.message, DEEP);
});

Deno.test("config limits: nesting by indentation counts the same", () => {
  const nested = (n: number) => Array.from({ length: n }, (_, i) => `${" ".repeat(i)}k${i}:\n`).join("");
  assert.match(configError(nested(64)).message, /unknown key "k0"/);
  const err = configError(nested(65));
  assert.deepEqual([err.line, err.column], [65, 65]);
  assert.match(err.message, DEEP);
});

for (
  const [label, text, message] of [
    ["100000 open brackets", `image: ${"[".repeat(100_000)}\n`, DEEP],
    ["100000 brackets closed", `image: ${"{a: ".repeat(100_000)}${"}".repeat(100_000)}\n`, DEEP],
    ["100000 compact list items on a line", `image:\n${"- ".repeat(100_000)}x\n`, DEEP],
    ["100000 explicit keys on a line", `${"? ".repeat(100_000)}x\n`, RUN],
    ["100000 tags on a value", `image: ${"!t ".repeat(100_000)}x\n`, RUN],
    ["100000 anchors on a value", `image: ${"&a ".repeat(100_000)}x\n`, RUN],
  ] as const
) {
  Deno.test(`config limits: ${label} is a config error, not a stack overflow`, () => {
    const err = configError(text);
    assert.match(err.message, message);
    assert.ok(err.line >= 1 && err.column >= 1);
  });
}

Deno.test("config limits: a billion laughs is refused at the alias that goes over 10000 values", () => {
  const level = (name: string, of: string) => `${name}: &${name} [${Array(9).fill(of).join(", ")}]\n`;
  const text = "env:\n  " + [
    level("a", '"lol"'),
    level("b", "*a"),
    level("c", "*b"),
    level("d", "*c"),
    level("e", "*d"),
    level("f", "*e"),
    level("g", "*f"),
    level("h", "*g"),
    level("i", "*h"),
  ].join("  ");
  const err = configError(text);
  assert.match(
    err.message,
    /^\/w\/moat\.yaml:\d+:\d+: the aliases \(\*name\) in this file stand for more than 10000 values in all$/,
  );
  assert.match(text.split("\n")[err.line - 1]!.slice(err.column - 1), /^\*[a-h]\b/, "pointed at an alias");
});

Deno.test("config limits: aliases may stand for 10000 values, not one more", () => {
  const aliases = (n: number) =>
    "env:\n  A: &a x\n" + Array.from({ length: n }, (_, i) => `  K${i}: *a\n`).join("");
  assert.equal(Object.keys(parseConfig(aliases(10_000), "/w/moat.yaml").env!).length, 10_001);
  const err = configError(aliases(10_001));
  assert.deepEqual([err.line, err.column], [2 + 10_001, 6 + String(10_000).length]);
  assert.match(err.message, /stand for more than 10000 values/);
});

Deno.test("config limits: text longer than 1 MiB is refused where it passes the limit", () => {
  const line = `#${"x".repeat(1022)}\n`; // 1 KiB a line
  assert.deepEqual(parseConfig("name: x\n" + line.repeat(1023), "/w/moat.yaml"), { name: "x" });
  const err = configError(line.repeat(1024) + "name: x\n");
  assert.deepEqual([err.line, err.column], [1025, 1]);
  assert.match(err.message, /: the file is larger than 1 MiB \(1048576 bytes\), the most moat reads/);
});
