/** The MOAT_HOME id (lib/store/home_id.ts): made once, kept, shared by runs starting together. */
import assert from "node:assert/strict";
import { ensureHomeId, maybeHomeId } from "../../lib/store/home_id.ts";
import { MoatError } from "../../lib/errors.ts";

async function withHome(fn: (home: string) => Promise<void>): Promise<void> {
  const parent = await Deno.makeTempDir({ prefix: "moat-home-id-" });
  try {
    await fn(`${parent}/home`);
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
}

Deno.test("a MOAT_HOME has no id until the first run makes one; then it keeps it", async () => {
  await withHome(async (home) => {
    assert.equal(maybeHomeId(home), undefined, "reading never creates the home");
    await assert.rejects(Deno.stat(home), Deno.errors.NotFound);
    const id = ensureHomeId(home);
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.equal(maybeHomeId(home), id);
    assert.equal(ensureHomeId(home), id, "made once");
    assert.equal(await Deno.readTextFile(`${home}/home-id`), `${id}\n`);
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(home))).map((e) => e.name),
      ["home-id"],
      "no temp file left",
    );
  });
});

Deno.test("two MOAT_HOMEs get different ids", async () => {
  await withHome(async (a) => {
    await withHome((b) => Promise.resolve(assert.notEqual(ensureHomeId(a), ensureHomeId(b))));
  });
});

Deno.test("an id made by another moat first is the one used", async () => {
  await withHome(async (home) => {
    await Deno.mkdir(home, { recursive: true });
    await Deno.writeTextFile(`${home}/home-id`, "00000000000000000000000000000001\n");
    assert.equal(ensureHomeId(home), "00000000000000000000000000000001");
  });
});

Deno.test("an identity file that holds no id is reported with how to replace it", async () => {
  await withHome(async (home) => {
    await Deno.mkdir(home, { recursive: true });
    await Deno.writeTextFile(`${home}/home-id`, "garbage\n");
    assert.equal(maybeHomeId(home), undefined);
    assert.throws(() => ensureHomeId(home), (err: unknown) => {
      assert.ok(err instanceof MoatError);
      assert.equal(err.message, `The identity file of MOAT_HOME, ${home}/home-id, does not hold an id`);
      assert.match(err.hint!, new RegExp(`^Remove it, and moat makes a new one: {2}rm ${home}/home-id\\n`));
      return true;
    });
  });
});
