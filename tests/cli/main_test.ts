/** Black-box: the CLI's own surface, no engine needed. */
import assert from "node:assert/strict";
import { moat, ROOT } from "../engine/helpers.ts";
import { VERSION } from "../../lib/version.ts";
import { stamp } from "../../scripts/bundle.ts";
import { record, writeRecord } from "./records_fixture.ts";

const home = "/nonexistent-moat-home";

Deno.test("moat --version prints the version and the checked-out commit on stdout", async () => {
  const r = await moat(["--version"], { home });
  assert.equal(r.code, 0);
  const head = new TextDecoder().decode(
    (await new Deno.Command("git", { args: ["-C", ROOT, "rev-parse", "HEAD"], stdout: "piped" }).output())
      .stdout,
  ).trim();
  assert.equal(r.out, `moat ${VERSION} (commit ${head.slice(0, 12)}, source)\n`);
  assert.equal(r.stderr, "");
});

Deno.test("moat --help and moat run --help print usage on stdout and exit 0", async () => {
  const main = await moat(["--help"], { home });
  assert.equal(main.code, 0);
  for (
    const cmd of ["run", "list", "status", "logs", "wait", "stop", "destroy", "clean", "system", "doctor"]
  ) {
    assert.match(main.out, new RegExp(`^  ${cmd}\\b`, "m"), `moat --help lists ${cmd}`);
  }
  const run = await moat(["run", "--help"], { home });
  assert.match(run.out, /moat run \[OPTIONS\] \[WORKSPACE\] \[-- COMMAND \[ARG\.\.\.\]\]/);
  assert.equal(run.code, 0);
  for (
    const opt of [
      "--sandbox",
      "--no-sandbox",
      "--image",
      "--env",
      "--name",
      "--keep",
      "--interactive",
      "--tty",
    ]
  ) {
    assert.ok(run.out.includes(opt), `run --help documents ${opt}`);
  }
});

Deno.test("moat without a command prints usage on stderr and exits 2", async () => {
  const r = await moat([], { home });
  assert.equal(r.code, 2);
  assert.equal(r.out, "");
  assert.match(r.stderr, /Usage:/);
});

for (
  const [label, args, re] of [
    [
      "an unknown command",
      ["frob"],
      /^moat: Unknown command "frob"\n {2}See the commands: {2}moat --help\n$/,
    ],
    ["an unknown option", ["run", "--frob"], /^moat: Unknown option '--frob'/],
    ["--sandbox with --no-sandbox", ["run", "--sandbox", "--no-sandbox", "--", "true"], /contradict/],
    [
      "a workspace that does not exist",
      ["run", "/no/such/dir", "--", "true"],
      /^moat: Workspace "\/no\/such\/dir" does not exist/,
    ],
    ["a workspace that is a file", ["run", "/etc/hostname", "--", "true"], /is not a directory/],
    // The tests' stdin is not a terminal (null): -t has nothing to attach to.
    [
      "-t without a terminal",
      ["run", "-it", "--", "sh"],
      /^moat: -t needs a terminal, but moat's standard input is not one\n/,
    ],
  ] as const
) {
  Deno.test(`${label} is a usage error: exit 2, nothing on stdout`, async () => {
    const r = await moat([...args], { home });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.out, "");
    assert.match(r.stderr, re);
  });
}

Deno.test("moat run with a command but no --: the hint puts -- after the workspace only when it is a directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "moat-ws-" });
  try {
    const command = await moat(["run", "echo", "hi"], { home, cwd: dir });
    assert.equal(command.code, 2);
    assert.equal(
      command.stderr,
      'moat: Unexpected argument "hi": moat run takes one WORKSPACE, and the command goes after --\n' +
        "  For example:  moat run -- echo hi\n",
    );
    await Deno.mkdir(`${dir}/proj`);
    const workspace = await moat(["run", "./proj", "echo", "hi"], { home, cwd: dir });
    assert.equal(workspace.code, 2);
    assert.match(workspace.stderr, /\n {2}For example: {2}moat run \.\/proj -- echo hi\n$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the bundle stamp replaces exactly one quoted placeholder, and refuses anything else", () => {
  assert.equal(stamp(`a="__X__";b=1`, "__X__", "abc"), `a="abc";b=1`);
  assert.equal(stamp("a=`__X__`", "__X__", "abc"), `a="abc"`);
  assert.throws(() => stamp(`a=1`, "__X__", "abc"), /expected one __X__ in the bundle, found 0/);
  assert.throws(() => stamp(`"__X__"+"__X__"`, "__X__", "abc"), /found 2/);
});

// A bad MOAT_ENGINE_TIMEOUT or MOAT_ENGINE_START_TIMEOUT is a typo in moat's own setting, not an engine
// problem: every command refuses it the same way (exit 2) before doing anything, and `--help` still works.
for (
  const [variable, fallback] of [["MOAT_ENGINE_TIMEOUT", 5], ["MOAT_ENGINE_START_TIMEOUT", 120]] as const
) {
  Deno.test(`every command refuses a bad ${variable} as a usage error (exit 2), --help still works`, async () => {
    const scratchHome = await Deno.makeTempDir({ prefix: "moat-timeout-home-" });
    const ws = await Deno.makeTempDir({ prefix: "moat-timeout-ws-" });
    try {
      // A finished run, so `logs` and `stop` would otherwise succeed from the records alone.
      await writeRecord(scratchHome, record({ id: "aaaa00000001", workspace: ws }));
      const env = { [variable]: "abc", DOCKER_HOST: "unix:///nonexistent/moat-timeout.sock" };
      for (
        const args of [
          ["run", ws, "--", "true"],
          ["list"],
          ["list", "--json"],
          ["status"],
          ["logs", "aaaa00000001"],
          ["wait", "aaaa00000001"],
          ["stop", "aaaa00000001"],
          ["destroy", "aaaa00000001"],
          ["clean", "--dry-run"],
          ["system", "containers"],
          ["doctor"],
        ]
      ) {
        const r = await moat(args, { home: scratchHome, env });
        assert.equal(r.code, 2, `moat ${args.join(" ")}: ${r.stderr}`);
        assert.equal(r.out, "", `moat ${args.join(" ")} prints nothing on stdout`);
        assert.equal(
          r.stderr,
          `moat: ${variable} "abc" is not a positive number of seconds\n  Use e.g.:  ${variable}=${fallback}\n`,
          `moat ${args.join(" ")}`,
        );
      }
      const help = await moat(["list", "--help"], { home: scratchHome, env });
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.out, /^Usage: moat list/);
      // Nothing was removed or written: the record is still there.
      assert.ok((await Deno.stat(`${scratchHome}/runs/aaaa00000001/run.json`)).isFile);
    } finally {
      await Deno.remove(scratchHome, { recursive: true });
      await Deno.remove(ws, { recursive: true });
    }
  });
}
