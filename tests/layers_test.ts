/**
 * lib/ reads bottom to top: each directory imports only from directories below it (or from itself), never
 * back up. The order, bottom first: the shared base files (errors, home, timer, version); the engine client, the
 * network protocols and the audit log's format and writer, side by side and independent of each other; the
 * run records, which write to the audit log, and the sandbox decision; the run; the config, which parses
 * with the run's parsers; doctor; the commands.
 */
import assert from "node:assert/strict";

const LIB = new URL("../lib/", import.meta.url).pathname;

const RANK: Record<string, number> = {
  "": 0, // lib/errors.ts, lib/home.ts, lib/timer.ts, lib/version.ts
  docker: 1,
  net: 1,
  audit: 1,
  store: 2,
  sandbox: 2,
  run: 3,
  config: 4,
  doctor: 5,
  cli: 6,
};

/** The lib/ directory a module is in ("" for lib/ itself). */
function layerOf(path: string): string {
  const rel = path.slice(LIB.length);
  return rel.includes("/") ? rel.split("/")[0]! : "";
}

function* modules(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}${e.name}`;
    if (e.isDirectory) yield* modules(`${path}/`);
    else if (e.name.endsWith(".ts")) yield path;
  }
}

/** Relative specifiers a module imports, statically (`from "…"`) or dynamically (`import("…")`). */
function importsOf(source: string): string[] {
  const found = [...source.matchAll(/(?:from\s+|import\s*\(\s*)"(\.{1,2}\/[^"]+)"/g)].map((m) => m[1]!);
  return [...new Set(found)];
}

Deno.test("every directory of lib/ imports only from the layers below it", () => {
  const upward: string[] = [];
  for (const path of modules(LIB)) {
    const from = layerOf(path);
    assert.ok(from in RANK, `lib/${from} has no place in the layer order of this test`);
    for (const spec of importsOf(Deno.readTextFileSync(path))) {
      const target = new URL(spec, `file://${path}`).pathname;
      if (!target.startsWith(LIB)) continue;
      const to = layerOf(target);
      if (to !== from && !(RANK[to]! < RANK[from]!)) {
        upward.push(`${path.slice(LIB.length)} → ${target.slice(LIB.length)}`);
      }
    }
  }
  assert.deepEqual(upward, [], "imports that run back up the layers");
});

Deno.test("the layer check sees an import that runs back up", () => {
  assert.deepEqual(importsOf(`import type { X } from "../run/profile.ts";\nconst m = import("./a.ts");`), [
    "../run/profile.ts",
    "./a.ts",
  ]);
  assert.equal(layerOf(`${LIB}store/records.ts`), "store");
  assert.ok(!(RANK[layerOf(`${LIB}run/profile.ts`)]! < RANK[layerOf(`${LIB}store/records.ts`)]!));
});
