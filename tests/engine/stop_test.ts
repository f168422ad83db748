/** `moat stop` and `moat destroy` on real runs in progress: the engine stops them, the records end. */
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
import { removeContainersOf, startBackgroundRun } from "./background_run.ts";

await requireEngine();

Deno.test("moat stop stops a foreground run in progress and its record ends with an exit code", async () => {
  const s = await scratch();
  try {
    const run = await startBackgroundRun(s, ["--keep"]);
    const id = (await onlyRecord(s.home)).id as string;
    const r = await moat(["stop", "-t", "1"], { home: s.home });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, `${id}\n`);
    assert.match(r.stderr, new RegExp(`^moat: the newest running run is ${id}$`, "m"));
    assert.match(r.stderr, /^moat: run \w+ stopped: (exited|interrupted), exit code \d+/m);
    const ended = await run.done;
    const rec = await onlyRecord(s.home);
    assert.ok(rec.state === "exited" || rec.state === "interrupted", `state ${rec.state}`);
    assert.equal(typeof rec.exitCode, "number");
    assert.ok([137, 143].includes(rec.exitCode as number), `exit code ${rec.exitCode}`);
    assert.equal(ended.code, rec.exitCode, ended.stderr);
    // --keep: the container is still there, and stopped.
    const [cid] = await containersFor(s.ws);
    assert.ok(cid, "the kept container is still there");
    assert.equal((await docker("inspect", "-f", "{{.State.Status}}", cid)).trim(), "exited");

    const again = await moat(["stop", id], { home: s.home });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already ended/);
  } finally {
    await removeContainersOf(s.ws);
    await s.cleanup();
  }
});

Deno.test("moat stop of a foreground --allow run: once its moat has ended, its relay and its network are gone", async () => {
  const s = await scratch();
  try {
    const run = await startBackgroundRun(s, ["--allow", "x.example"]);
    const id = (await onlyRecord(s.home)).id as string;
    const running = await docker("ps", "-q", "--filter", `label=dev.moat.run-id=${id}`);
    assert.equal(running.trim().split("\n").length, 2, `the sandbox and the relay: ${running}`);
    assert.notEqual(
      await docker("network", "ls", "-q", "--filter", `name=moat-net-${id}`),
      "",
      "the network",
    );
    const r = await moat(["stop", "-t", "1"], { home: s.home });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, `${id}\n`);
    const ended = await run.done;
    const rec = await onlyRecord(s.home);
    assert.ok(rec.state === "exited" || rec.state === "interrupted", `state ${rec.state}`);
    assert.equal(ended.code, rec.exitCode, ended.stderr);
    assert.equal(rec.removed, true);
    assert.equal(
      await docker("ps", "-aq", "--filter", `label=dev.moat.run-id=${id}`),
      "",
      "no container, relay included",
    );
    assert.equal(await docker("network", "ls", "-q", "--filter", `name=moat-net-${id}`), "", "no network");
  } finally {
    await removeContainersOf(s.ws);
    await s.cleanup();
  }
});

Deno.test("moat stop of a detached --allow run: once moat stop returns, its relay and its network are gone", async () => {
  const s = await scratch();
  try {
    const r = await moat(
      ["run", "-d", "--image", TEST_IMAGE, "--allow", "x.example", s.ws, "--", "sh", "-c", "sleep 60"],
      { home: s.home },
    );
    assert.equal(r.code, 0, r.stderr);
    const id = r.out.trim();
    assert.match(id, /^[0-9a-f]{12}$/);
    const running = await docker("ps", "-q", "--filter", `label=dev.moat.run-id=${id}`);
    assert.equal(running.trim().split("\n").length, 2, `the sandbox and the relay: ${running}`);
    assert.notEqual(
      await docker("network", "ls", "-q", "--filter", `name=moat-net-${id}`),
      "",
      "the network",
    );
    // Its owner is the recorder, which lives: not a run left behind (moat clean would remove it).
    const listed = await moat(["list"], { home: s.home });
    assert.equal(listed.code, 0, listed.stderr);
    assert.doesNotMatch(listed.stderr, /left behind/);
    const stopped = await moat(["stop", "-t", "1", id], { home: s.home });
    assert.equal(stopped.code, 0, stopped.stderr);
    // No wait: the recorder removes the network before it writes the end, and moat stop waits for that.
    assert.equal(
      await docker("ps", "-aq", "--filter", `label=dev.moat.run-id=${id}`),
      "",
      "no container, relay included",
    );
    assert.equal(await docker("network", "ls", "-q", "--filter", `name=moat-net-${id}`), "", "no network");
    const rec = await onlyRecord(s.home);
    assert.ok(rec.state === "exited" || rec.state === "interrupted", `state ${rec.state}`);
    assert.equal(rec.removed, true);
  } finally {
    await removeContainersOf(s.ws);
    await s.cleanup();
  }
});

Deno.test("moat destroy refuses a running run without --force, and removes it with --force", async () => {
  const s = await scratch();
  try {
    const run = await startBackgroundRun(s, ["--name", "destroy-me"]);
    const refused = await moat(["destroy", "destroy-me"], { home: s.home });
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /is running; moat destroy does not remove a running run/);
    assert.equal((await sandboxesFor(s.ws)).length, 1, "still running");

    const forced = await moat(["destroy", "--force", "-t", "1", "destroy-me"], { home: s.home });
    assert.equal(forced.code, 0, forced.stderr);
    await run.done;
    assert.deepEqual(await containersFor(s.ws), []);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(`${s.home}/runs`)), [], "the record is gone");
  } finally {
    await removeContainersOf(s.ws);
    await s.cleanup();
  }
});
