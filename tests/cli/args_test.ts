/**
 * lib/cli/args.ts against `node:util` `parseArgs` (strict) as the oracle: what one accepts the other accepts,
 * with the same values and positionals, and what one refuses the other refuses. Then moat's own messages.
 */
import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { parseCommandArgs } from "../../lib/cli/args.ts";
import { UsageError } from "../../lib/errors.ts";
import { DEFAULT_STOP_GRACE_S, parseGrace } from "../../lib/cli/args.ts";

const OPTIONS = {
  help: { type: "boolean", short: "h" },
  "no-sandbox": { type: "boolean" },
  image: { type: "string" },
  env: { type: "string", short: "e", multiple: true },
  interactive: { type: "boolean", short: "i" },
  tty: { type: "boolean", short: "t" },
  memory: { type: "string", short: "m" },
} as const;

const CASES: string[][] = [
  [],
  ["ws"],
  ["-h"],
  ["--help", "--help"],
  ["-it"],
  ["-ti", "ws"],
  ["-hit"],
  ["--image", "busybox", "ws"],
  ["--image=busybox"],
  ["--image="],
  ["--image", ""],
  ["--image", "-"],
  ["--image", "-x"],
  ["--image=-x"],
  ["--image"],
  ["-m", "2g"],
  ["-m2g"],
  ["-m=2g"],
  ["-im", "2g"],
  ["-mi"],
  ["-m"],
  ["-m", "-1"],
  ["-e", "A=1", "-e", "B=2", "--env=C=3", "-eD=4"],
  ["-e", "A=1", "ws", "--", "sh", "-c", "echo --"],
  ["--", "--image", "x", "-it"],
  ["--"],
  ["--", "--"],
  ["ws", "--", "--"],
  ["-", "ws"],
  ["--no-sandbox"],
  ["--no-sandbox=1"],
  ["--help=false"],
  ["--sandbox"],
  ["--imagex", "y"],
  ["-x"],
  ["-ix"],
  ["--HELP"],
  ["ws", "--image", "b", "more", "-i"],
];

function oracle(args: string[]): unknown {
  try {
    const p = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true, tokens: true });
    const term = p.tokens.find((t) => t.kind === "option-terminator");
    const before = term === undefined
      ? undefined
      : p.tokens.filter((t) => t.kind === "positional" && t.index < term.index).length;
    return { values: { ...p.values }, positionals: p.positionals, beforeTerminator: before };
  } catch {
    return "refused";
  }
}

for (const args of CASES) {
  Deno.test(`parseCommandArgs ${JSON.stringify(args)} agrees with node:util parseArgs`, () => {
    let ours: unknown;
    try {
      ours = parseCommandArgs("run", args, OPTIONS);
    } catch (err) {
      assert.ok(err instanceof UsageError, String(err));
      assert.equal(err.hint, "See:  moat run --help");
      ours = "refused";
    }
    assert.deepEqual(ours, oracle(args));
  });
}

const MESSAGES: [string[], string][] = [
  [["--frob"], "Unknown option '--frob'"],
  [["-ix"], "Unknown option '-x'"],
  [["--help=yes"], "Option '--help' does not take a value"],
  [["--image"], "Option '--image' needs a value"],
  [["-im"], "Option '-m' needs a value"],
  [
    ["-m", "-1"],
    "Option '-m' is followed by '-1', which looks like an option; to give a value that starts with '-', write --memory=-1",
  ],
];
for (const [args, message] of MESSAGES) {
  Deno.test(`parseCommandArgs ${JSON.stringify(args)} says: ${message}`, () => {
    assert.throws(() => parseCommandArgs("run", args, OPTIONS), (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.equal(err.message, message);
      return true;
    });
  });
}

Deno.test("a command without positionals refuses one, naming the command", () => {
  assert.throws(
    () => parseCommandArgs("doctor", ["now"], { json: { type: "boolean" } }, false),
    (err: unknown) =>
      err instanceof UsageError &&
      err.message === 'Unexpected argument "now": moat doctor takes no arguments',
  );
  assert.deepEqual(parseCommandArgs("doctor", ["--json"], { json: { type: "boolean" } }, false).values, {
    json: true,
  });
});

Deno.test("an option named like an Object property is unknown, not inherited", () => {
  assert.throws(() => parseCommandArgs("run", ["--constructor"], OPTIONS), UsageError);
  assert.throws(() => parseCommandArgs("run", ["--__proto__=x"], OPTIONS), UsageError);
});

Deno.test("parseGrace takes whole seconds from 0 to 86400 and defaults to docker's 10", async (t) => {
  const ok: [string | undefined, number][] = [[undefined, DEFAULT_STOP_GRACE_S], ["0", 0], ["30", 30], [
    "86400",
    86400,
  ]];
  for (const [raw, want] of ok) {
    await t.step(`${JSON.stringify(raw)} is ${want}`, () => assert.equal(parseGrace(raw, "stop"), want));
  }
  for (const raw of ["", "-1", "1.5", "10s", "86401", "ten"]) {
    await t.step(`${JSON.stringify(raw)} is a usage error naming the command`, () => {
      assert.throws(() => parseGrace(raw, "destroy --force"), (err: unknown) => {
        assert.ok(err instanceof UsageError);
        assert.equal(err.message, `--time "${raw}" is not a whole number of seconds between 0 and 86400`);
        assert.equal(err.hint, "For example:  moat destroy --force --time 30");
        return true;
      });
    });
  }
});
