import assert from "node:assert/strict";
import { parseRunArgs } from "../../lib/cli/run.ts";
import { UsageError } from "../../lib/errors.ts";

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
