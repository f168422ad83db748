/**
 * Property: whatever bytes a config file holds, reading it gives a valid config or a `ConfigError` with
 * file:line:column (line and column at least 1), never another exception. The inputs are valid configs
 * mutated by a seeded PRNG: truncated, spliced, with YAML fragments, tags, anchors, aliases, wrong types and
 * random bytes put in, re-encoded as UTF-16/32, and hostile shapes (deep nesting, alias bombs, indicator
 * runs). The seed is printed and in the test's name; replay a failure with
 *   MOAT_FUZZ_SEED=<seed> deno test -A tests/config/fuzz_test.ts
 * MOAT_FUZZ_CASES sets how many inputs (default 3000).
 */
import assert from "node:assert/strict";
import { decodeConfig } from "../../lib/config/decode.ts";
import { parseConfig } from "../../lib/config/parse.ts";
import type { MoatConfig } from "../../lib/config/types.ts";
import { ConfigError } from "../../lib/errors.ts";

const SEED = Number(Deno.env.get("MOAT_FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 32));
const CASES = Number(Deno.env.get("MOAT_FUZZ_CASES") ?? 3000);
const FILE = "/w/moat.yaml";

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick, chance: (p: number) => next() < p };
}
type Rng = ReturnType<typeof prng>;

const VALID = [
  "",
  "# nothing\n",
  "name: fix-tests\nimage: node:22-bookworm\ncommand: npm test\nenv:\n  CI: true\n  NODE_OPTIONS: --max-old-space-size=4096\n" +
  "sandbox: gvisor\nruntime: runsc\nmemory: 4g\ncpus: 2\npids: 2048\nnetwork: default\nread_only: false\n" +
  "mounts:\n  - { source: ../shared-data, target: /data, readonly: true }\n",
  "image: alpine:3\ncommand: [sleep, 1.0]\nenv: {A: b, N: 1.50, B: false}\n",
  "command:\n  - python3\n  - -m\n  - pytest\nread_only: true\nmounts:\n  - source: ./data\n    target: /tmp/data\n",
  "env:\n  A: &a x\n  B: *a\ncommand: [&c echo, *c]\n",
  "---\nname: x\nnetwork: none\n...\n",
  'memory: 512MiB\ncpus: "0.5"\npids: "64"\nsandbox: none\n',
  "command: |\n  echo hi\n  ls -l\nenv:\n  MULTI: >-\n    folded\n    text\n",
  "mounts:\n  -\n    target: /x\n    source: x\n    readonly: false\n  - {source: /srv/cache, target: /cache}\n",
];

const FRAGMENTS = [
  "[",
  "]",
  "{",
  "}",
  ",",
  ": ",
  ":",
  "- ",
  "? ",
  "-",
  "?",
  "#",
  "\n",
  "\r\n",
  "\r",
  "\t",
  " ",
  "  ",
  "---\n",
  "...\n",
  "--- ",
  "%YAML 1.1\n",
  "%YAML 1.2\n---\n",
  "%TAG ! tag:x,2000:\n",
  "%FOO bar\n",
  '"',
  "'",
  '"\\',
  '"\\u00',
  '"\\x4',
  "\\",
  "|",
  "|-\n",
  ">\n",
  "|+2\n",
  "&a ",
  "&b ",
  "*a",
  "*b",
  "*zz",
  "&a [*a]",
  "&x {k: *x}",
  "!!binary ",
  "!!binary aGVsbG8=",
  "!!set ",
  "!!omap ",
  "!!pairs ",
  "!!timestamp ",
  "!!timestamp 2001-12-14",
  "!!str ",
  "!!int ",
  "!!float ",
  "!!bool ",
  "!!null ",
  "!!map ",
  "!!seq ",
  "!foo ",
  "!<tag:yaml.org,2002:str> ",
  "!",
  "!!",
  "<<: ",
  "<<: *a",
  "~",
  "null",
  "true",
  "no",
  ".inf",
  "-.inf",
  ".nan",
  "0x1F",
  "0o17",
  "1e400",
  "-0",
  "12345678901234567890",
  "__proto__",
  "constructor",
  "? [a]\n: b\n",
  "? {a: 1}\n: 2\n",
  "{a: 1, a: 2}",
  "[a: 1]",
  "env:",
  "mounts:",
  "command:",
  "image:",
  "\uFEFF",
  "\u2028",
  "\u0085",
  "é",
  "😀",
  "\uD800",
  "\u0000",
  "\u0001",
  "\u007F",
];

const VALUES = [
  "",
  "~",
  "[]",
  "{}",
  "[a, [b]]",
  "{a: {b: c}}",
  "true",
  "false",
  "yes",
  "0",
  "-1",
  "1.5",
  "1e3",
  ".inf",
  '""',
  '"x"',
  "'y'",
  "!!binary aGk=",
  "!!set {a}",
  "!!omap [a: 1]",
  "!!pairs [a: 1]",
  "!!timestamp 2020-01-01",
  "*a",
  "&a 1",
  "&a [1]",
  "!foo x",
  "|\n  text",
  "- a\n  - b",
  "{source: a, target: /b}",
  "[{source: a}]",
];

/** A value nested `depth` deep in a random mix of flow and block collections. */
function nested(r: Rng, depth: number): string {
  const kind = r.int(4);
  if (kind === 0) return `image: ${"[".repeat(depth)}${r.chance(0.7) ? "]".repeat(depth) : ""}\n`;
  if (kind === 1) return `image: ${"{a: ".repeat(depth)}x${"}".repeat(r.int(depth + 1))}\n`;
  if (kind === 2) return `image:\n${"- ".repeat(depth)}x\n`;
  return Array.from({ length: depth }, (_, i) => `${" ".repeat(i)}${r.chance(0.5) ? "-" : `k${i}:`}\n`).join(
    "",
  );
}

/** Aliases each standing for `fan` of the previous level, `levels` deep (a "billion laughs"). */
function laughs(r: Rng, fan: number, levels: number): string {
  let text = `env:\n  L0: &L0 ${r.pick(['"lol"', "[lol]", "{a: b}"])}\n`;
  for (let l = 1; l <= levels; l++) text += `  L${l}: &L${l} [${Array(fan).fill(`*L${l - 1}`).join(", ")}]\n`;
  return text;
}

function hostile(r: Rng): string {
  switch (r.int(6)) {
    case 0:
      return nested(r, 1 + r.int(300));
    case 1:
      return laughs(r, 2 + r.int(9), 1 + r.int(9));
    case 2: {
      const ind = r.pick(["- ", "? ", ": ", "!t ", "&a ", "- &a !t ", "!!str "]);
      return `${r.pick(["", "image: ", "env:\n  A: "])}${ind.repeat(1 + r.int(200))}x\n`;
    }
    case 3:
      return "env:\n  A: &a x\n" +
        Array.from({ length: r.chance(0.1) ? 10_000 + r.int(3) : r.int(300) }, (_, i) => `  K${i}: *a\n`)
          .join("");
    case 4:
      return Array.from({ length: 1 + r.int(5) }, () => r.pick(VALID)).join(r.pick(["---\n", "...\n", "\n"]));
    default:
      return `env: &e {A: ${"[".repeat(r.int(70))}*e${"]".repeat(r.int(70))}}\n`;
  }
}

function mutateText(r: Rng, text: string): string {
  for (let n = 1 + r.int(4); n > 0; n--) {
    const at = r.int(text.length + 1);
    switch (r.int(10)) {
      case 0:
        text = text.slice(0, at);
        break;
      case 1:
        text = text.slice(0, at) + text.slice(at + r.int(20));
        break;
      case 2: {
        const from = r.int(text.length + 1);
        text = text.slice(0, at) + text.slice(from, from + r.int(40)) + text.slice(at);
        break;
      }
      case 3: {
        const other = r.pick(VALID);
        const from = r.int(other.length + 1);
        text = text.slice(0, at) + other.slice(from, from + r.int(80)) + text.slice(at);
        break;
      }
      case 4:
      case 5:
        text = text.slice(0, at) + r.pick(FRAGMENTS) + text.slice(at);
        break;
      case 6: {
        // A wrong type (or a tag, anchor or alias) in place of a value.
        const lines = text.split("\n");
        const i = r.int(lines.length);
        const colon = lines[i]!.indexOf(": ");
        if (colon !== -1) lines[i] = `${lines[i]!.slice(0, colon + 2)}${r.pick(VALUES)}`;
        text = lines.join("\n");
        break;
      }
      case 7: {
        const lines = text.split("\n");
        const [i, j] = [r.int(lines.length), r.int(lines.length)];
        [lines[i], lines[j]] = [lines[j]!, lines[i]!];
        text = lines.join("\n");
        break;
      }
      case 8: {
        const lines = text.split("\n");
        const i = r.int(lines.length);
        lines[i] = r.chance(0.5) ? " ".repeat(1 + r.int(6)) + lines[i] : lines[i]!.replace(/^ {1,4}/, "");
        text = lines.join("\n");
        break;
      }
      default: {
        const chars = Array.from(
          { length: 1 + r.int(4) },
          () => String.fromCodePoint(r.int(r.chance(0.8) ? 128 : 0x10000)),
        );
        text = text.slice(0, at) + chars.join("") + text.slice(at);
      }
    }
  }
  return text;
}

function encode(r: Rng, text: string): Uint8Array {
  const utf8 = new TextEncoder().encode(text);
  switch (r.int(12)) {
    case 0: { // UTF-16, either order, with or without a byte-order mark
      const le = r.chance(0.5);
      const units = [...(r.chance(0.5) ? [0xfeff] : []), ...Array.from(text, (c) => c.charCodeAt(0))];
      return new Uint8Array(units.flatMap((u) => le ? [u & 0xff, u >> 8] : [u >> 8, u & 0xff]));
    }
    case 1: { // UTF-32
      const le = r.chance(0.5);
      const points = [...(r.chance(0.5) ? [0xfeff] : []), ...Array.from(text, (c) => c.codePointAt(0)!)];
      return new Uint8Array(points.flatMap((p) => {
        const b = [p >>> 24, (p >>> 16) & 0xff, (p >>> 8) & 0xff, p & 0xff];
        return le ? b.reverse() : b;
      }));
    }
    case 2:
    case 3: { // random bytes put in
      const bytes = [...utf8];
      for (let n = 1 + r.int(4); n > 0; n--) bytes.splice(r.int(bytes.length + 1), 0, r.int(256));
      return new Uint8Array(bytes);
    }
    case 4:
      return new Uint8Array([0xef, 0xbb, 0xbf, ...utf8]);
    default:
      return utf8;
  }
}

/** What a valid config may hold: the documented fields with their types, nothing else. */
function assertValidConfig(c: MoatConfig) {
  const str = (v: unknown) => typeof v === "string";
  const where = (w: unknown) => {
    const p = w as { file: string; line: number; col: number };
    return p.file === FILE && p.line >= 1 && p.col >= 1;
  };
  const checks: Record<string, (v: unknown) => boolean> = {
    name: str,
    image: str,
    command: (v) => Array.isArray(v) && v.length > 0 && v.every(str),
    env: (v) => typeof v === "object" && v !== null && Object.values(v).every(str),
    sandbox: (v) => v === "gvisor" || v === "none",
    runtime: str,
    memory: (v) => typeof v === "number" && Number.isFinite(v),
    cpus: (v) => typeof v === "number" && Number.isFinite(v),
    cpusWhere: where,
    pids: (v) => Number.isInteger(v),
    network: (v) => v === "default" || v === "none" || v === "allowlist",
    allow: (v) => Array.isArray(v) && v.every(str),
    readOnly: (v) => typeof v === "boolean",
    mounts: (v) =>
      Array.isArray(v) &&
      v.every((m) => str(m.source) && str(m.target) && typeof m.readonly === "boolean" && where(m.where)),
  };
  for (const [k, v] of Object.entries(c)) {
    assert.ok(checks[k]?.(v), `field ${k} = ${String(v)}`);
  }
}

Deno.test(`config fuzz: ${CASES} mutated configs are each valid or a ConfigError at a position (seed ${SEED})`, () => {
  console.log(
    `config fuzz seed ${SEED}; replay: MOAT_FUZZ_SEED=${SEED} deno test -A tests/config/fuzz_test.ts`,
  );
  const r = prng(SEED);
  const outcomes = { valid: 0, errors: 0 };
  for (let i = 0; i < CASES; i++) {
    const base = r.chance(0.15) ? hostile(r) : r.pick(VALID);
    const bytes = encode(r, r.chance(0.9) ? mutateText(r, base) : base);
    try {
      const config = parseConfig(decodeConfig(bytes, FILE), FILE);
      assertValidConfig(config);
      outcomes.valid++;
    } catch (err) {
      const input = JSON.stringify(new TextDecoder().decode(bytes.subarray(0, 400)));
      const where = `seed ${SEED}, case ${i}, input (first 400 bytes) ${input}`;
      if (!(err instanceof ConfigError)) {
        assert.fail(`not a ConfigError: ${err instanceof Error ? err.stack : String(err)}\n${where}`);
      }
      assert.ok(err.line >= 1 && err.column >= 1, `${err.message}\n${where}`);
      assert.equal(err.file, FILE, where);
      assert.equal(err.exitCode, 2, where);
      assert.ok(err.message.startsWith(`${FILE}:${err.line}:${err.column}: `), `${err.message}\n${where}`);
      outcomes.errors++;
    }
  }
  // Both kinds of outcome are reached, or the mutations say nothing.
  assert.ok(outcomes.valid > CASES / 50 && outcomes.errors > CASES / 4, JSON.stringify(outcomes));
});
