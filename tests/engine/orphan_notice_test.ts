/**
 * The notice about containers left behind, on the real engine: after `kill -9` of a `moat run`, the next
 * `moat list` says so in one stderr line (stdout untouched) until `moat clean` removes the container; a
 * container kept with `--keep` after its run ended is never noticed, from this MOAT_HOME or another.
 *
 * The engine is shared with other tests and sessions, which may leave orphans of their own: a notice that
 * does not name this test's container is theirs. The notice names the newest containers first, and this
 * test's is the newest. Where it expects no notice at all, it first checks there was none before it began.
 */
import assert from "node:assert/strict";
import {
  containersFor,
  docker,
  moat,
  onlyRecord,
  requireEngine,
  sandboxesFor,
  scratch,
  TEST_IMAGE,
} from "./helpers.ts";
import { orphanedRun, removeContainersOf } from "./background_run.ts";

await requireEngine();

const NOTICE = "moat: notice: ";

function notices(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.startsWith(NOTICE));
}

/** The notice lines a `moat list` in a fresh, empty MOAT_HOME prints now: other people's orphans. */
async function noticesBefore(): Promise<string[]> {
  const s = await scratch();
  try {
    const r = await moat(["list"], { home: s.home });
    assert.equal(r.code, 0, r.stderr);
    return notices(r.stderr);
  } finally {
    await s.cleanup();
  }
}

Deno.test("after kill -9 of moat run, moat list notices the orphan on stderr until moat clean removes it", async () => {
  const before = await noticesBefore();
  const s = await scratch();
  try {
    const { id } = await orphanedRun(s);

    const r = await moat(["list"], { home: s.home });
    assert.equal(r.code, 0, r.stderr);
    const lines = notices(r.stderr);
    assert.equal(lines.length, 1, `exactly one notice line:\n${r.stderr}`);
    assert.match(
      lines[0]!,
      new RegExp(`left behind by .*\\bmoat-${id}\\b.*remove (it|them) with: {2}moat clean$`),
    );
    // stdout is the table alone: the header and this home's one run, still running.
    const rows = r.out.trimEnd().split("\n");
    assert.match(rows[0]!, /^NAME +ID +STATE/);
    assert.equal(rows.length, 2, r.out);
    assert.match(rows[1]!, new RegExp(`^- +${id} +running +`));
    assert.doesNotMatch(r.out, /notice/);

    const j = await moat(["list", "--json"], { home: s.home });
    assert.equal(j.code, 0, j.stderr);
    assert.deepEqual(
      (JSON.parse(j.out) as Array<{ id: string }>).map((i) => i.id),
      [id],
      "stdout stays JSON",
    );
    assert.equal(notices(j.stderr).length, 1);

    // --workspace keeps this test to its own containers: the engine is shared with other tests.
    const c = await moat(["clean", "-f", "--workspace", s.ws], { home: s.home });
    assert.equal(c.code, 0, c.stderr);
    assert.doesNotMatch(c.stderr, /notice/, "moat clean reports orphans itself");
    assert.deepEqual(await containersFor(s.ws), []);

    const after = await moat(["list"], { home: s.home });
    assert.equal(after.code, 0, after.stderr);
    assert.ok(
      notices(after.stderr).every((l) => !l.includes(id)),
      `no notice names the removed container:\n${after.stderr}`,
    );
    if (before.length === 0) assert.deepEqual(notices(after.stderr), [], after.stderr);
  } finally {
    await removeContainersOf(s.ws);
    await s.cleanup();
  }
});

Deno.test("a container kept with --keep after its run ended gets no notice, from this MOAT_HOME or another", async () => {
  const s = await scratch();
  const other = await scratch();
  try {
    const run = await moat(["run", "--keep", "--image", TEST_IMAGE, s.ws, "--", "true"], { home: s.home });
    assert.equal(run.code, 0, run.stderr);
    const id = (await onlyRecord(s.home)).id as string;
    assert.equal((await containersFor(s.ws)).length, 1, "the container was kept");

    // Were it taken for an orphan it would be named: the notice names the newest first, and it is the newest.
    for (const home of [s.home, other.home]) {
      const r = await moat(["list"], { home });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(
        notices(r.stderr).every((l) => !l.includes(id)),
        `the kept container is not noticed:\n${r.stderr}`,
      );
    }
  } finally {
    await removeContainersOf(s.ws);
    await s.cleanup();
    await other.cleanup();
  }
});

Deno.test("a container left behind is this MOAT_HOME's alone: another home neither hears of it nor cleans it", async () => {
  const s = await scratch();
  const other = await scratch();
  try {
    const { id, cid } = await orphanedRun(s);

    // The container carries the id of the MOAT_HOME that made it.
    const homeId = (await Deno.readTextFile(`${s.home}/home-id`)).trim();
    assert.match(homeId, /^[0-9a-f]{32}$/);
    assert.equal(
      (await docker("inspect", "--format", '{{index .Config.Labels "dev.moat.home"}}', cid!)).trim(),
      homeId,
    );

    // Another MOAT_HOME (another user of this engine): no notice, nothing to clean, not listed…
    const list = await moat(["list"], { home: other.home });
    assert.equal(list.code, 0, list.stderr);
    assert.ok(notices(list.stderr).every((l) => !l.includes(id)), `no notice names it:\n${list.stderr}`);
    const clean = await moat(["clean", "--dry-run"], { home: other.home });
    assert.equal(clean.code, 0, clean.stderr);
    assert.doesNotMatch(clean.out, new RegExp(id));
    const sys = await moat(["system", "containers"], { home: other.home });
    assert.doesNotMatch(sys.out, new RegExp(cid!));
    // … unless asked for every home.
    const all = await moat(["system", "containers", "--all-homes"], { home: other.home });
    assert.match(
      all.out,
      new RegExp(`^${cid}\\s+${id}\\s+orphaned\\s+running\\s+\\S+\\s+other\\s+docker rm -f ${cid}$`, "m"),
    );
    assert.deepEqual(await sandboxesFor(s.ws), [cid], "the other home removed nothing");
    assert.equal((await containersFor(s.ws)).length, 2, "the run's relay neither");

    // Its own home hears of it.
    const own = await moat(["list"], { home: s.home });
    assert.ok(notices(own.stderr).some((l) => l.includes(id)), own.stderr);
  } finally {
    await removeContainersOf(s.ws);
    await s.cleanup();
    await other.cleanup();
  }
});
