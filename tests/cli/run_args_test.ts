import assert from "node:assert/strict";
import { parseRunArgs, parseUser, resourceSettings } from "../../lib/cli/run.ts";
import type { MoatConfig } from "../../lib/config/types.ts";
import type { ProfileSettings } from "../../lib/run/profile.ts";
import { ConfigError, UsageError } from "../../lib/errors.ts";

Deno.test("run args: workspace before --, command after", () => {
  const a = parseRunArgs(["--image", "x", "-e", "A=1", "-e", "B=2", "proj", "--", "sh", "-c", "echo --"]);
  assert.equal(a.workspace, "proj");
  assert.deepEqual(a.command, ["sh", "-c", "echo --"]);
  assert.deepEqual(a.env, ["A=1", "B=2"]);
  assert.equal(a.image, "x");
});

Deno.test("run args: options after -- belong to the command", () => {
  const a = parseRunArgs(["--", "ls", "--no-sandbox", "-i"]);
  assert.equal(a.noSandbox, false);
  assert.equal(a.interactive, false);
  assert.deepEqual(a.command, ["ls", "--no-sandbox", "-i"]);
  assert.equal(a.workspace, undefined);
});

Deno.test("run args: no command means the image's own", () => {
  const a = parseRunArgs(["--keep", "-i", "--no-sandbox", "--name", "n1"]);
  assert.equal(a.command, undefined);
  assert.deepEqual([a.keep, a.interactive, a.noSandbox, a.name], [true, true, true, "n1"]);
});

Deno.test("run args: -it is -i and -t; -t alone is a terminal without stdin", () => {
  const a = parseRunArgs(["-it", "--", "sh"]);
  assert.deepEqual([a.interactive, a.tty], [true, true]);
  const b = parseRunArgs(["-t", "--", "top"]);
  assert.deepEqual([b.interactive, b.tty], [false, true]);
  assert.equal(parseRunArgs(["--", "sh"]).tty, false);
});

const usage: [string, string[], RegExp][] = [
  ["-d with -t", ["-d", "-t", "--", "sh"], /-d \(detach\) and -t \(terminal\) cannot be combined/],
  ["-dt", ["-dt", "--", "sh"], /cannot be combined/],
  ["unknown option", ["--frobnicate"], /frobnicate/],
  ["a second positional without --", [".", "echo", "hi"], /command goes after --/],
  ["nothing after --", ["--"], /Nothing follows --/],
  ["a bad run name", ["--name", "a b"], /Run name "a b" is not valid/],
  ["a missing option value", ["--image"], /image/],
];
for (const [label, args, re] of usage) {
  Deno.test(`run args: ${label} is a usage error`, () => {
    assert.throws(
      () => parseRunArgs(args),
      (err: unknown) => err instanceof UsageError && re.test(err.message),
    );
  });
}

// More than one word before --: the hint puts -- where the command starts, which depends on whether the first
// word is an existing directory (the workspace) or not (then it is the command's first word).
const misplaced: [string, string[], string[], string, string][] = [
  ["a command without --", ["echo", "hi"], [], "hi", "moat run -- echo hi"],
  [
    "a workspace and a command without --",
    ["./proj", "echo", "hi"],
    ["./proj"],
    "echo",
    "moat run ./proj -- echo hi",
  ],
  ["options stay out of the hint", ["-e", "A=1", "ls", "/tmp", "--keep"], [], "/tmp", "moat run -- ls /tmp"],
  [
    "words a shell would split are quoted",
    ["printf", "it's %s", ""],
    [],
    "it's %s",
    `moat run -- printf 'it'\\''s %s' ''`,
  ],
];
for (const [label, args, dirs, unexpected, hint] of misplaced) {
  Deno.test(`run args: ${label}: the hint is  ${hint}`, () => {
    assert.throws(
      () => parseRunArgs(args, (p) => dirs.includes(p)),
      (err: unknown) =>
        err instanceof UsageError &&
        err.message ===
          `Unexpected argument "${unexpected}": moat run takes one WORKSPACE, and the command goes after --` &&
        err.hint === `For example:  ${hint}`,
    );
  });
}

Deno.test("run args: resource flags are kept as written; --network must be default, none or allowlist", () => {
  const a = parseRunArgs(["-m", "2g", "--cpus", "1.5", "--pids", "64", "--network", "none", "--read-only"]);
  assert.deepEqual([a.memory, a.cpus, a.pids, a.network, a.readOnly], ["2g", "1.5", "64", "none", true]);
  assert.throws(
    () => parseRunArgs(["--network", "host"]),
    (err: unknown) =>
      err instanceof UsageError &&
      /--network "host" is not one of default \(or open\), none, allowlist/.test(err.message),
  );
});

Deno.test("run args: --allow names hosts and means the allowlist network; what cannot go with it", () => {
  const a = parseRunArgs(["--allow", "api.github.com", "--allow", "*.npmjs.org"]);
  assert.deepEqual([a.network, a.allow], ["allowlist", ["api.github.com", "*.npmjs.org"]]);
  assert.equal(parseRunArgs(["--network", "open"]).network, "default", "open is the default network");
  const b = parseRunArgs(["--network", "allowlist"]);
  assert.deepEqual([b.network, b.allow], ["allowlist", []], "an empty list: nothing is reachable");
  assert.deepEqual(parseRunArgs(["--network", "allowlist", "--allow", "x.io"]).allow, ["x.io"]);
  const refused: Array<[string[], RegExp]> = [
    [["--allow", "api.*.com"], /--allow "api\.\*\.com": a wildcard is only allowed as the whole first label/],
    [["--allow", "x.io:99999"], /--allow "x\.io:99999": "99999" is not a port/],
    [["--allow", "x.io", "--network", "none"], /which --network none does not limit/],
    [["--allow", "x.io", "--network", "default"], /which --network default does not limit/],
  ];
  for (const [args, message] of refused) {
    assert.throws(
      () => parseRunArgs(args),
      (e: unknown) => e instanceof UsageError && message.test(e.message),
      args.join(" "),
    );
  }
});

Deno.test("run args: --grant names grants, once each; a bad name, or another network, is a usage error", () => {
  assert.deepEqual(parseRunArgs(["--grant", "github", "--grant", "npm", "--grant", "github"]).grants, [
    "github",
    "npm",
  ]);
  assert.deepEqual(parseRunArgs([]).grants, []);
  const refused: Array<[string[], RegExp]> = [
    [["--grant", "no/slash"], /--grant "no\/slash": Grant name "no\/slash" is not valid/],
    [
      ["--grant", "github", "--network", "default"],
      /--grant adds a credential through moat's network policy, which --network default does not use/,
    ],
    [["--grant", "github", "--network", "none"], /which --network none does not use/],
  ];
  for (const [args, message] of refused) {
    assert.throws(
      () => parseRunArgs(args),
      (e: unknown) => e instanceof UsageError && e.exitCode === 2 && message.test(e.message),
      args.join(" "),
    );
  }
});

type Flags = Parameters<typeof resourceSettings>[0];
const noFlags: Flags = {
  memory: undefined,
  cpus: undefined,
  pids: undefined,
  network: undefined,
  readOnly: false,
};
const settingsCases: [string, Partial<Flags>, MoatConfig, ProfileSettings][] = [
  ["nothing set: the defaults apply later", {}, {}, {}],
  ["the config's allow list", {}, { network: "allowlist", allow: ["a.io"] }, {
    network: "allowlist",
    allow: ["a.io"],
  }],
  ["--allow adds to the config's allow list", { network: "allowlist", allow: ["b.io", "a.io"] }, {
    network: "allowlist",
    allow: ["a.io"],
  }, { network: "allowlist", allow: ["a.io", "b.io"] }],
  ["--allow makes an allowlist of a config's other network", { network: "allowlist", allow: ["b.io"] }, {
    network: "none",
  }, { network: "allowlist", allow: ["b.io"] }],
  ["the config's tcp mappings, with --allow on top", { network: "allowlist", allow: ["b.io"] }, {
    network: "allowlist",
    allow: ["a.io"],
    tcp: ["22=a.io:22"],
  }, { network: "allowlist", allow: ["a.io", "b.io"], tcp: ["22=a.io:22"] }],
  ["the config's rules for a host", { network: "allowlist", allow: ["a.io"] }, {
    network: "allowlist",
    allow: ["a.io"],
    rules: [{ host: "a.io", rules: ["allow * /*"] }],
  }, { network: "allowlist", allow: ["a.io"], rules: [{ host: "a.io", rules: ["allow * /*"] }] }],
  ["--network beats the config's tcp mappings", { network: "none" }, {
    network: "allowlist",
    allow: [],
    tcp: ["22=a.io:22"],
  }, { network: "none" }],
  ["--network beats the config's allowlist", { network: "default" }, {
    network: "allowlist",
    allow: ["a.io"],
  }, {
    network: "default",
  }],
  ["config values", {}, { memory: 2 ** 30, cpus: 1, pids: 99, network: "none", readOnly: true }, {
    memory: 2 ** 30,
    cpus: 1,
    pids: 99,
    network: "none",
    readOnly: true,
  }],
  ["flags beat the config", { memory: "512m", cpus: "0.5", pids: "32", network: "default" }, {
    memory: 2 ** 30,
    cpus: 1,
    pids: 99,
    network: "none",
  }, { memory: 512 * 2 ** 20, cpus: 0.5, pids: 32, network: "default" }],
  ["--read-only adds to a config without it", { readOnly: true }, {}, { readOnly: true }],
  ["the config's grants, with --grant's on top, once each", { grants: ["npm", "github"] }, {
    grants: ["github"],
  }, { grants: ["github", "npm"] }],
  ["grants on the allowlist network", { network: "allowlist", allow: [], grants: ["npm"] }, {}, {
    network: "allowlist",
    allow: [],
    grants: ["npm"],
  }],
];
for (const [label, flags, config, want] of settingsCases) {
  Deno.test(`resource settings: ${label}`, () => {
    assert.deepEqual(resourceSettings({ ...noFlags, ...flags }, config, 2), want);
  });
}

const settingsErrors: [string, Partial<Flags>, MoatConfig, RegExp][] = [
  ["a memory size without a unit", { memory: "2048" }, {}, /^--memory "2048" must be a size with a unit/],
  ["too little memory", { memory: "1m" }, {}, /^--memory "1m" must be at least 6m/],
  ["more CPUs than the host", { cpus: "3" }, {}, /^--cpus "3" must be at most 2: this host has 2 CPUs/],
  ["a pids value that is not a number", { pids: "lots" }, {}, /^--pids "lots" must be a whole number/],
  [
    "grants in moat.yaml with network: default",
    {},
    { network: "default", grants: ["github"] },
    /^Grants \(github\) add credentials through moat's network policy, which network default does not use/,
  ],
  [
    "grants in moat.yaml with --network none",
    { network: "none" },
    { grants: ["github"] },
    /which network none does not use/,
  ],
];
for (const [label, flags, config, re] of settingsErrors) {
  Deno.test(`resource settings: ${label} is a usage error`, () => {
    assert.throws(
      () => resourceSettings({ ...noFlags, ...flags }, config, 2),
      (err: unknown) => err instanceof UsageError && err.exitCode === 2 && re.test(err.message),
    );
  });
}

Deno.test("resource settings: more CPUs in the config than the host has is a config error at the value", () => {
  const cpusWhere = { file: "/w/moat.yaml", line: 3, col: 7 };
  assert.throws(
    () => resourceSettings(noFlags, { cpus: 4, cpusWhere }, 2),
    (err: unknown) =>
      err instanceof ConfigError && err.exitCode === 2 &&
      err.message === "/w/moat.yaml:3:7: cpus: must be at most 2: this host has 2 CPUs; got 4",
  );
  // A flag overrides it, within the host's count.
  assert.equal(resourceSettings({ ...noFlags, cpus: "2" }, { cpus: 4, cpusWhere }, 2).cpus, 2);
});

// -u: the engine takes ids from 0 to 2^31-1 ("uids and gids must be in range"); beyond that it failed at start.
const users: [string, string | number, RegExp | undefined][] = [
  ["1000", 1000, undefined],
  ["1000:1000", 1000, undefined],
  ["2147483647:2147483647", 2147483647, undefined],
  ["nobody", "nobody", undefined],
  ["app:staff", "app", undefined],
  ["99999999999", 0, /^User "99999999999" has a user id out of range: 99999999999 is more than 2147483647$/],
  ["2147483648", 0, /has a user id out of range/],
  ["1000:2147483648", 0, /^User "1000:2147483648" has a group id out of range: 2147483648 is more/],
  ["a b", 0, /is not of the form UID\[:GID\] or NAME\[:GROUP\]/],
];
for (const [raw, who, refused] of users) {
  Deno.test(`run args: -u ${raw} ${refused ? "is a usage error" : "is accepted"}`, () => {
    if (!refused) {
      assert.deepEqual(parseUser(raw), { user: raw, who });
      return;
    }
    assert.throws(
      () => parseUser(raw),
      (err: unknown) =>
        err instanceof UsageError && refused.test(err.message) && /--user/.test(err.hint ?? ""),
    );
  });
}

Deno.test("run args: --warm asks for warm runs; off unless given", () => {
  assert.equal(parseRunArgs(["--warm", "--", "true"]).warm, true, "--warm");
  assert.equal(parseRunArgs(["--warm"]).warm, true, "--warm with the image's command");
  assert.equal(parseRunArgs([]).warm, false, "no flag");
  assert.equal(parseRunArgs(["--", "true", "--warm"]).warm, false, "after --: the command's");
  assert.throws(() => parseRunArgs(["--warm=1"]), UsageError, "a boolean flag takes no value");
});
