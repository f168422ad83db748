/**
 * What `moat --version`, `moat --help`, `moat list` and `moat run` load: never the YAML parser or the schema
 * library (they are the heaviest modules and only needed when a config file exists), and no `node:` module
 * (the first one makes Deno load its Node layer, 15–20 ms). Checked on the module graph
 * Deno builds (`deno info --json`): a module reached through static imports is loaded with its importer;
 * dynamic imports load only when their code runs.
 */
import assert from "node:assert/strict";
import { ROOT } from "../engine/helpers.ts";

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier?: string }; isDynamic?: boolean }[];
}

/** Every module loaded together with `entry`: the closure over static imports. */
async function staticGraph(entry: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { roots: string[]; modules: InfoModule[] };
  const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const todo = [...info.roots];
  while (todo.length) {
    const s = todo.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of bySpecifier.get(s)?.dependencies ?? []) {
      if (!d.isDynamic && d.code?.specifier) todo.push(d.code.specifier);
    }
  }
  return [...seen];
}

const heavy = (specifier: string) =>
  specifier.startsWith("npm:") || specifier.startsWith("node:") ||
  /\/node_modules\/|registry\.npmjs|\/lib\/config\/parse\.ts$/.test(specifier);

for (
  const [label, entries] of [
    ["moat --version", ["main.ts"]],
    ["moat --help", ["main.ts", "lib/cli/help.ts"]],
    ["moat list", ["main.ts", "lib/cli/list.ts"]],
    ["moat run without a config file", ["main.ts", "lib/cli/run.ts"]],
  ] as const
) {
  Deno.test(`${label} loads neither the YAML parser, zod nor a node: module`, async () => {
    const loaded = (await Promise.all(entries.map(staticGraph))).flat();
    assert.deepEqual(loaded.filter(heavy), []);
    assert.ok(loaded.some((s) => s.endsWith(`/${entries.at(-1)}`)), "the graph was read");
  });
}

Deno.test("the config parser does load them (so the check above can fail)", async () => {
  const loaded = await staticGraph("lib/config/parse.ts");
  assert.ok(loaded.filter(heavy).length >= 2, loaded.join("\n"));
  // And a node: builtin is seen: the parser's own test imports node:util as its oracle.
  assert.ok((await staticGraph("tests/cli/args_test.ts")).includes("node:util"));
});
