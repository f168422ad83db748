/**
 * Parsing grows linearly with the number of keys. Counted, not timed: every call the parse makes to an
 * array method that visits elements (the yaml library's duplicate-key check was `items.some` per key, its
 * `getIn` a scan per lookup) adds the elements it could visit. Twice the keys must cost about twice as much;
 * a scan per key costs four times as much. The times themselves are measured by `deno task bench`.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../lib/config/parse.ts";

const CALLBACK_METHODS = [
  "every",
  "filter",
  "find",
  "findIndex",
  "findLast",
  "findLastIndex",
  "flatMap",
  "forEach",
  "map",
  "reduce",
  "reduceRight",
  "some",
] as const;
const SEARCH_METHODS = ["includes", "indexOf", "lastIndexOf"] as const;

/** Array elements visited (callbacks run, or elements a search could compare) while `f` runs. */
function arrayWork(f: () => void): number {
  let work = 0;
  const proto = Array.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const saved = new Map<string, (...args: unknown[]) => unknown>();
  for (const name of CALLBACK_METHODS) {
    const original = proto[name]!;
    saved.set(name, original);
    proto[name] = function (this: unknown[], callback: unknown, ...rest: unknown[]) {
      const counted = typeof callback === "function"
        ? function (this: unknown, ...args: unknown[]) {
          work++;
          return (callback as (...a: unknown[]) => unknown).apply(this, args);
        }
        : callback;
      return original.call(this, counted, ...rest);
    };
  }
  for (const name of SEARCH_METHODS) {
    const original = proto[name]!;
    saved.set(name, original);
    proto[name] = function (this: unknown[], ...args: unknown[]) {
      work += this.length;
      return original.apply(this, args);
    };
  }
  try {
    f();
  } finally {
    for (const [name, original] of saved) proto[name] = original;
  }
  return work;
}

const shapes: [string, (n: number) => string][] = [
  ["env keys", (n) => "env:\n" + Array.from({ length: n }, (_, i) => `  K${i}: v${i}\n`).join("")],
  [
    "env keys in a flow map",
    (n) => `env: {${Array.from({ length: n }, (_, i) => `K${i}: ${i}`).join(", ")}}\n`,
  ],
  ["command items", (n) => "command:\n" + Array.from({ length: n }, (_, i) => `  - ${i}.0\n`).join("")],
  [
    "mounts",
    (n) =>
      "mounts:\n" + Array.from({ length: n }, (_, i) => `  - {source: s${i}, target: /t${i}}\n`).join(""),
  ],
  [
    "a bad env name after many keys",
    (n) => "env:\n" + Array.from({ length: n }, (_, i) => `  K${i}: v\n`).join("") + "  1X: y\n",
  ],
  [
    "an unknown mount key after many mounts",
    (n) =>
      "mounts:\n" + Array.from({ length: n }, (_, i) => `  - {source: s, target: /t${i}}\n`).join("") +
      "  - {source: s, taget: /x}\n",
  ],
];

for (const [label, make] of shapes) {
  Deno.test(`config parsing work grows linearly: ${label}`, () => {
    const work = (n: number) =>
      arrayWork(() => {
        try {
          parseConfig(make(n), "/w/moat.yaml");
        } catch {
          // an error at the end is the point of some shapes
        }
      });
    const [small, large] = [work(1000), work(4000)];
    // Linear: about 4 times; a scan per key: about 16 times.
    assert.ok(large <= 6 * Math.max(small, 1), `1000 → ${small}, 4000 → ${large}`);
  });
}

Deno.test("the work counter sees a scan per key (so the check above can fail)", () => {
  const n = (size: number) =>
    arrayWork(() => {
      const items = Array.from({ length: size }, (_, i) => i);
      for (const i of items) items.some((x) => x === i);
    });
  assert.ok(n(4000) > 12 * n(1000));
});
