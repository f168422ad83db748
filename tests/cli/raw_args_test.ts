/** Arguments and `-e` values that are not UTF-8: found from the bytes, shown readably, refused. */
import assert from "node:assert/strict";
import { checkArgsAreUtf8, checkEnvIsUtf8, isUtf8, maybeRawArgs, showBytes } from "../../lib/cli/raw_args.ts";
import { UsageError } from "../../lib/errors.ts";

const bytes = (...parts: Array<string | number[]>) =>
  new Uint8Array(parts.flatMap((p) => typeof p === "string" ? [...new TextEncoder().encode(p)] : p));
/** What `/proc/self/cmdline` holds for `deno run -A main.ts run ARGS`: NUL after every argument. */
const cmdline = (...args: Uint8Array[]) =>
  bytes(
    ...[bytes("deno"), bytes("run"), bytes("-A"), bytes("main.ts"), bytes("run"), ...args].flatMap((a) => [
      [...a],
      [0],
    ]),
  );
/** Deno's view of an argument: invalid bytes decoded lossily, as U+FFFD. */
const lossy = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("showBytes keeps UTF-8 text and writes every byte that is not part of it as \\xNN", () => {
  const cases: [Uint8Array, string][] = [
    [bytes("plain"), "plain"],
    [bytes("K=", [0xe9], "t", [0xe9]), "K=\\xE9t\\xE9"],
    [bytes("é", [0xc3]), "é\\xC3"],
    [bytes([0xed, 0xa0, 0x80]), "\\xED\\xA0\\x80"], // an encoded surrogate
    [bytes([0xc0, 0xaf]), "\\xC0\\xAF"], // an overlong '/'
    [bytes('"\\', [0xff]), '\\"\\\\\\xFF'],
    [bytes("\u{1F600}", [0xf0, 0x9f]), "\u{1F600}\\xF0\\x9F"],
  ];
  for (const [input, shown] of cases) {
    assert.equal(showBytes(input), shown);
    assert.equal(isUtf8(input), !shown.includes("\\x"), shown);
  }
});

Deno.test("maybeRawArgs takes the last entries of cmdline, and gives up when they are not the arguments", () => {
  const args = [bytes("-e"), bytes("K=", [0xff]), bytes(""), bytes("--"), bytes("true")];
  const raw = maybeRawArgs(args.map(lossy), cmdline(...args));
  assert.deepEqual(raw, args);
  assert.equal(maybeRawArgs(["other", "true"], cmdline(...args)), undefined);
  assert.equal(maybeRawArgs(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"], cmdline(...args)), undefined);
});

const refusals: [string, Uint8Array[], RegExp][] = [
  [
    "-e KEY=VALUE",
    [bytes("-e"), bytes("K=", [0xe9]), bytes("--"), bytes("env")],
    /^-e "K=\\xE9" is not valid UTF-8;/,
  ],
  ["--env KEY=VALUE", [bytes("--env"), bytes("K=", [0xe9])], /^-e "K=\\xE9" is not valid UTF-8;/],
  ["-eKEY=VALUE", [bytes("-eK=", [0xe9])], /^-e "K=\\xE9" is not valid UTF-8;/],
  ["--env=KEY=VALUE", [bytes("--env=K=", [0xe9])], /^-e "K=\\xE9" is not valid UTF-8;/],
  [
    "a command argument",
    [bytes("--"), bytes("echo"), bytes([0xff])],
    /^Argument "\\xFF" is not valid UTF-8;/,
  ],
  [
    "an -e that belongs to the command after --",
    [bytes("--"), bytes("sh"), bytes("-e"), bytes([0xff])],
    /^Argument "\\xFF"/,
  ],
  ["a workspace path", [bytes("/tmp/", [0xff]), bytes("--"), bytes("true")], /^Argument "\/tmp\/\\xFF"/],
];
for (const [label, args, re] of refusals) {
  Deno.test(`checkArgsAreUtf8 refuses ${label} that is not UTF-8`, () => {
    assert.throws(
      () => checkArgsAreUtf8(args.map(lossy), () => cmdline(...args)),
      (err: unknown) => err instanceof UsageError && re.test(err.message) && /iconv/.test(err.hint ?? ""),
    );
  });
}

Deno.test("checkArgsAreUtf8 accepts a U+FFFD that was typed, and does not read cmdline without one", () => {
  const typed = [bytes("-e"), bytes("K=\uFFFD")];
  checkArgsAreUtf8(typed.map(lossy), () => cmdline(...typed));
  checkArgsAreUtf8(["-e", "K=é"], () => {
    throw new Error("cmdline read without need");
  });
  // Without /proc a U+FFFD cannot be told from a replaced byte: it is let through.
  checkArgsAreUtf8(["-e", "K=\uFFFD"], () => {
    throw new Deno.errors.NotFound("no /proc");
  });
});

Deno.test("checkEnvIsUtf8 refuses -e KEY whose value in moat's environment is not UTF-8", () => {
  assert.throws(
    () =>
      checkEnvIsUtf8("BAD", () => {
        throw new Deno.errors.InvalidData('environment variable was not valid unicode: "\\xFF"');
      }),
    (err: unknown) =>
      err instanceof UsageError &&
      err.message === "-e BAD: moat's environment variable BAD is not valid UTF-8, " +
          "so it cannot be passed on unchanged",
  );
  checkEnvIsUtf8("UNSET", () => undefined);
});
