/**
 * A command module parses flags, prints and maps errors; what it decides lives in lib/run and below. So no
 * command module imports another (issue 12): `moat status` reconciles runs with lib/run/reconcile.ts, not
 * with `moat list`'s module; `destroy` ends runs with lib/run/stop.ts, `logs -f` watches them with
 * lib/run/watch.ts. The command modules are the ones main.ts loads by name, and `run`.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);

/** The lib/cli/ files main.ts loads as commands (`import("./lib/cli/x.ts")`), help text aside. */
function commandModules(): Set<string> {
  const main = Deno.readTextFileSync(new URL("main.ts", ROOT));
  const found = [...main.matchAll(/import\(\s*"\.\/lib\/cli\/([a-z_]+\.ts)"\s*\)/g)].map((m) => m[1]!);
  return new Set(found.filter((f) => f !== "help.ts"));
}

/** The lib/cli/ files a lib/cli/ module imports, statically or dynamically. */
function cliImportsOf(file: string): string[] {
  const source = Deno.readTextFileSync(new URL(`lib/cli/${file}`, ROOT));
  return [...source.matchAll(/(?:from\s+|import\s*\(\s*)"\.\/([a-z_]+\.ts)"/g)].map((m) => m[1]!);
}

Deno.test("main.ts names the command modules (so the check below can see them)", () => {
  const commands = commandModules();
  for (const f of ["list.ts", "status.ts", "stop.ts", "run.ts"]) assert.ok(commands.has(f), f);
  assert.deepEqual(cliImportsOf("list.ts").filter((f) => f === "args.ts"), ["args.ts"]);
});

for (const file of new Set([...commandModules(), "run.ts"])) {
  Deno.test(`lib/cli/${file} imports no other command module`, () => {
    const commands = commandModules();
    assert.deepEqual(cliImportsOf(file).filter((f) => f !== file && commands.has(f)), []);
  });
}
