/** `moat wait`: its arguments as a table, then the command black-box (the exit-code decision: tests/run/watch_test.ts). */
import assert from "node:assert/strict";
import { parseWaitArgs } from "../../lib/cli/wait.ts";
import { UsageError } from "../../lib/errors.ts";
import { currentOwner } from "../../lib/store/owner.ts";
import { RunStore } from "../../lib/store/records.ts";
import { moat, moatEnv, ROOT } from "../engine/helpers.ts";
import { FakeEngine } from "../fake_engine.ts";
import { DEAD_OWNER, record, writeRecords } from "./run_records.ts";
import { withHome } from "../temp_home.ts";

const NO_ENGINE = { DOCKER_HOST: "unix:///nonexistent/moat-wait-test.sock" };

// ---- pure -----------------------------------------------------------------------------------------------

Deno.test("wait args: one RUN, or --help", () => {
  assert.deepEqual(parseWaitArgs(["3f2a"]), { help: false, ref: "3f2a" });
  assert.equal(parseWaitArgs(["-h"]).help, true);
});

for (
  const [args, re] of [
    [[], /^moat wait needs the run to wait for$/],
    [["a", "b"], /^Unexpected argument "b": moat wait takes one run$/],
    [["--all"], /^Unknown option '--all'$/],
  ] as const
) {
  Deno.test(`wait args: ${JSON.stringify(args)} is a usage error`, () => {
    assert.throws(
      () => parseWaitArgs([...args]),
      (e: unknown) => e instanceof UsageError && re.test(e.message),
    );
  });
}

const ID = "aaaa00000001";

// ---- black box ------------------------------------------------------------------------------------------

Deno.test("moat wait of a finished run prints its exit code and exits 0, with no engine", async () => {
  await withHome(async (home) => {
    await writeRecords(home, [record(ID, { exitCode: 3, name: "tests" })]);
    const r = await moat(["wait", "tests"], { home, env: NO_ENGINE });
    assert.deepEqual([r.code, r.out, r.stderr], [0, "3\n", ""]);
  });
});

Deno.test("moat wait of a run that failed before its command ran exits 125 saying so", async () => {
  await withHome(async (home) => {
    await writeRecords(home, [record(ID, { state: "failed", exitCode: null, error: "Image gone" })]);
    const r = await moat(["wait", ID], { home, env: NO_ENGINE });
    assert.equal(r.code, 125);
    assert.equal(r.out, "");
    assert.equal(
      r.stderr,
      `moat: Run ${ID} ended (failed) without an exit code: Image gone\n  See what it printed:  moat logs ${ID}\n`,
    );
  });
});

Deno.test("moat wait of no such run is a usage error", async () => {
  await withHome(async (home) => {
    const r = await moat(["wait", "zzz"], { home, env: NO_ENGINE });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^moat: No run matches "zzz"/);
  });
});

Deno.test("moat wait blocks while the run's owner lives, and prints the code the owner records", async () => {
  await withHome(async (home) => {
    // This test process plays the run's owner: alive, so moat wait keeps waiting.
    const store = RunStore.create(
      home,
      record(ID, { state: "running", exitCode: null, finishedAt: null, owner: currentOwner() }),
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}/main.ts`, "wait", ID],
      env: moatEnv(home, NO_ENGINE),
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const guard = setTimeout(() => child.kill("SIGKILL"), 60_000);
    try {
      store.update({ state: "exited", exitCode: 7, finishedAt: new Date().toISOString() });
      const r = await child.output();
      assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
      assert.equal(new TextDecoder().decode(r.stdout), "7\n");
    } finally {
      clearTimeout(guard);
    }
  });
});

Deno.test("moat wait of a run whose moat process died gives its container's exit code from the engine", async () => {
  await using engine = await FakeEngine.start();
  const container = "c".repeat(64);
  engine.on("GET /containers/:id/json", {
    status: 200,
    json: {
      Id: container,
      Name: `/moat-${ID}`,
      State: { Status: "exited", Running: false, ExitCode: 5 },
      Config: { Labels: {} },
      HostConfig: {},
    },
  });
  await withHome(async (home) => {
    await writeRecords(home, [
      record(ID, {
        state: "running",
        exitCode: null,
        finishedAt: null,
        containerId: container,
        owner: DEAD_OWNER,
      }),
    ]);
    const env = { DOCKER_HOST: `unix://${engine.endpoint.path}` };
    const r = await moat(["wait", ID], { home, env });
    assert.deepEqual([r.code, r.out, r.stderr], [0, "5\n", ""]);
    // A container that never started has no exit code of its own, whatever the engine's field says.
    engine.on("GET /containers/:id/json", {
      status: 200,
      json: {
        Id: container,
        Name: `/moat-${ID}`,
        State: { Status: "created", Running: false, ExitCode: 0 },
        Config: { Labels: {} },
        HostConfig: {},
      },
    });
    const created = await moat(["wait", ID], { home, env });
    assert.equal(created.code, 125);
    assert.equal(
      created.stderr.split("\n")[0],
      `moat: Run ${ID} has no exit code: the moat process that ran it is gone and its container is not running`,
    );
  });
});

Deno.test("moat wait of a run whose run.json cannot be read exits 125 naming the file", async () => {
  await withHome(async (home) => {
    await Deno.mkdir(`${home}/runs/${ID}`, { recursive: true });
    await Deno.writeTextFile(`${home}/runs/${ID}/run.json`, "");
    const r = await moat(["wait", ID], { home, env: NO_ENGINE });
    assert.equal(r.code, 125);
    assert.equal(
      r.stderr,
      `moat: Damaged run record ${ID}: ${home}/runs/${ID}/run.json: empty\n` +
        "  Its exit code cannot be read.\n  Remove it:  moat clean\n",
    );
  });
});
