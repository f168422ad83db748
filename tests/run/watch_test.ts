/**
 * When a run has ended: the decision (`judgeRun`) and the exit code (`exitCodeOfEnd`) as tables, then
 * `RunWatcher` against a scripted `WatchIo` (records, owner liveness, engine answers, clock).
 */
import assert from "node:assert/strict";
import type { ContainerInspect } from "../../lib/docker/types.ts";
import { MoatError, UsageError } from "../../lib/errors.ts";
import type { Owner, RunRecord } from "../../lib/store/records.ts";
import {
  exitCodeOfEnd,
  judgeRun,
  type RunEnd,
  type RunFacts,
  type RunVerdict,
  RunWatcher,
  type WatchIo,
} from "../../lib/run/watch.ts";
import { baseRecord } from "./fixtures.ts";

const ID = "aaaa00000001";
const OWNER: Owner = { pid: 4242, bootId: "b", startTicks: 7 };

/** A finished run; override what a test is about. */
function record(patch: Partial<RunRecord> = {}): RunRecord {
  return { ...baseRecord, id: ID, state: "exited", exitCode: 0, owner: OWNER, ...patch };
}

/** A run in progress whose owner is `OWNER`. */
const running = record({ state: "running", exitCode: null });

function container(state: Partial<ContainerInspect["State"]>): ContainerInspect {
  return {
    Id: "c1",
    Name: `/moat-${ID}`,
    State: { Status: "running", Running: true, ExitCode: 0, ...state },
    Config: {},
    HostConfig: {},
  };
}

// ---- exitCodeOfEnd --------------------------------------------------------------------------------------

for (
  const [label, end, code] of [
    ["a final record gives its exit code", { kind: "final", record: record({ exitCode: 3 }) }, 3],
    ["an interrupted run gives 128 + signal", {
      kind: "final",
      record: record({ state: "interrupted", exitCode: 130 }),
    }, 130],
    ["a container that exited after its moat process died gives the container's code", {
      kind: "abandoned",
      id: ID,
      why: "x",
      exitCode: 5,
    }, 5],
  ] as const
) {
  Deno.test(`exitCodeOfEnd: ${label}`, () => assert.equal(exitCodeOfEnd(end as RunEnd), code));
}

for (
  const [label, end, message] of [
    [
      "a run that failed before its command ran",
      { kind: "final", record: record({ state: "failed", exitCode: null, error: "No image\nhint" }) },
      `Run ${ID} ended (failed) without an exit code: No image`,
    ],
    [
      "a removed record",
      { kind: "removed", id: ID },
      `Run ${ID} was removed before it ended: its exit code is unknown`,
    ],
    [
      "a run nobody records whose container's code cannot be had",
      { kind: "abandoned", id: ID, why: "the moat process that ran it is gone", exitCode: undefined },
      `Run ${ID} has no exit code: the moat process that ran it is gone`,
    ],
  ] as const
) {
  Deno.test(`exitCodeOfEnd: ${label} is an error (exit 125)`, () => {
    assert.throws(() => exitCodeOfEnd(end as RunEnd), (e: unknown) => {
      assert.ok(e instanceof MoatError && !(e instanceof UsageError));
      assert.equal(e.message, message);
      assert.equal(e.exitCode, 125);
      return true;
    });
  });
}

// ---- judgeRun -------------------------------------------------------------------------------------------

const GONE = "the moat process that ran it is gone";
const abandoned = (why: string, exitCode: number | undefined): RunVerdict => ({
  kind: "ended",
  end: { kind: "abandoned", id: ID, why, exitCode },
});

for (
  const [label, facts, verdict] of [
    ["a removed record has ended", { record: undefined }, {
      kind: "ended",
      end: { kind: "removed", id: ID },
    }],
    ["a final record has ended, whatever else is known", {
      record: record({ exitCode: 3 }),
      ownerAlive: true,
      engine: { container: container({}) },
    }, { kind: "ended", end: { kind: "final", record: record({ exitCode: 3 }) } }],
    ["a run in progress with an owner needs the owner's liveness first", { record: running }, {
      kind: "ask-owner",
      owner: OWNER,
    }],
    ["a run whose owner lives goes on, the engine unasked", { record: running, ownerAlive: true }, {
      kind: "going",
    }],
    ["a run whose owner is gone needs the engine", { record: running, ownerAlive: false }, {
      kind: "ask-engine",
      containerId: "c1",
    }],
    ["a run in progress that names no owner needs the engine, not liveness", {
      record: record({ state: "running", exitCode: null, owner: undefined }),
    }, { kind: "ask-engine", containerId: "c1" }],
    ["a run whose owner is gone before it had a container has ended with no code", {
      record: record({ state: "creating", exitCode: null, containerId: null }),
      ownerAlive: false,
    }, abandoned(GONE, undefined)],
    ["a run whose owner is gone goes on while its container runs", {
      record: running,
      ownerAlive: false,
      engine: { container: container({}) },
    }, { kind: "going" }],
    ["a container that exited gives its code", {
      record: running,
      ownerAlive: false,
      engine: { container: container({ Status: "exited", Running: false, ExitCode: 5 }) },
    }, abandoned(`${GONE} and its container is not running`, 5)],
    ["a dead container gives its code", {
      record: running,
      ownerAlive: false,
      engine: { container: container({ Status: "dead", Running: false, ExitCode: 137 }) },
    }, abandoned(`${GONE} and its container is not running`, 137)],
    ["a container that never started has no code, whatever its ExitCode field says", {
      record: running,
      ownerAlive: false,
      engine: { container: container({ Status: "created", Running: false, ExitCode: 0 }) },
    }, abandoned(`${GONE} and its container is not running`, undefined)],
    ["a container the engine does not have has no code", {
      record: running,
      ownerAlive: false,
      engine: { container: undefined },
    }, abandoned(`${GONE} and its container is not running`, undefined)],
    [
      "an engine that cannot be asked ends the watch, saying why",
      {
        record: running,
        ownerAlive: false,
        engine: { error: "Cannot connect to the Docker engine" },
      },
      abandoned(
        `${GONE}, and the engine could not be asked about its container (Cannot connect to the Docker engine)`,
        undefined,
      ),
    ],
  ] as const
) {
  Deno.test(`judgeRun: ${label}`, () => {
    assert.deepEqual(judgeRun(ID, facts as RunFacts), verdict);
  });
}

// ---- RunWatcher -----------------------------------------------------------------------------------------

/** A `WatchIo` whose record, liveness, engine answers and clock the test sets; counts what is asked. */
function scriptedIo(rec: RunRecord | undefined) {
  const s = {
    record: rec,
    ownerAlive: false,
    now: 0,
    /** What each inspect answers (or throws). */
    inspect: (): Promise<ContainerInspect | undefined> => Promise.resolve(container({})),
    clientError: undefined as Error | undefined,
    clientsMade: 0,
    inspects: 0,
    sleeps: [] as number[],
    /** Called on each sleep, to move the run on. */
    onSleep: () => {},
  };
  const io: WatchIo = {
    readRecord: (id) => s.record?.id === id ? s.record : undefined,
    isOwnerAlive: (owner) => {
      assert.deepEqual(owner, OWNER);
      return s.ownerAlive;
    },
    client: () => {
      s.clientsMade++;
      if (s.clientError) throw s.clientError;
      return {
        maybeContainerInspect: (id) => {
          assert.equal(id, "c1");
          s.inspects++;
          return s.inspect();
        },
      };
    },
    now: () => s.now,
    sleep: (ms) => {
      s.sleeps.push(ms);
      s.onSleep();
      return Promise.resolve();
    },
  };
  return { s, io };
}

Deno.test("a watcher never makes an engine client while the run's owner lives", async () => {
  const { s, io } = scriptedIo(running);
  s.ownerAlive = true;
  const w = new RunWatcher(ID, io);
  assert.equal(await w.inProgress(), true);
  assert.equal(await w.inProgress(), true);
  assert.equal(s.clientsMade, 0);
  assert.equal(w.end, undefined);
});

Deno.test("a watcher asks the engine at most once a second; between asks its last answer holds", async () => {
  const { s, io } = scriptedIo(running);
  const w = new RunWatcher(ID, io);
  assert.equal(await w.inProgress(), true);
  assert.equal(s.inspects, 1);
  s.inspect = () => Promise.resolve(container({ Status: "exited", Running: false, ExitCode: 4 }));
  s.now = 999;
  assert.equal(await w.inProgress(), true, "the container ran at the last ask, under a second ago");
  assert.equal(s.inspects, 1);
  s.now = 1000;
  assert.equal(await w.inProgress(), false);
  assert.equal(s.inspects, 2);
  assert.deepEqual(w.end, {
    kind: "abandoned",
    id: ID,
    why: `${GONE} and its container is not running`,
    exitCode: 4,
  });
});

Deno.test("a watcher whose owner comes back to life stops asking the engine", async () => {
  const { s, io } = scriptedIo(running);
  const w = new RunWatcher(ID, io);
  assert.equal(await w.inProgress(), true);
  s.ownerAlive = true;
  s.now = 5000;
  assert.equal(await w.inProgress(), true);
  assert.equal(s.inspects, 1);
});

Deno.test("a watcher that cannot make an engine client ends the watch with the error's first line", async () => {
  const { s, io } = scriptedIo(running);
  s.clientError = new UsageError('DOCKER_API_VERSION "x" is not an API version such as 1.44', "Unset it");
  const w = new RunWatcher(ID, io);
  assert.equal(await w.inProgress(), false);
  assert.deepEqual(w.end, {
    kind: "abandoned",
    id: ID,
    why: `${GONE}, and the engine could not be asked about its container ` +
      '(DOCKER_API_VERSION "x" is not an API version such as 1.44)',
    exitCode: undefined,
  });
});

Deno.test("a watcher whose inspect fails ends the watch with the error's first line", async () => {
  const { s, io } = scriptedIo(running);
  s.inspect = () => Promise.reject(new MoatError("Engine timed out\nsecond line", "hint"));
  const w = new RunWatcher(ID, io);
  assert.equal(await w.inProgress(), false);
  assert.equal(
    w.end?.kind === "abandoned" && w.end.why,
    `${GONE}, and the engine could not be asked about its container (Engine timed out)`,
  );
});

Deno.test("waitForEnd reads the record again after each sleep until it is final", async () => {
  const { s, io } = scriptedIo(running);
  s.ownerAlive = true;
  s.onSleep = () => {
    if (s.sleeps.length === 3) s.record = record({ exitCode: 7 });
  };
  const end = await new RunWatcher(ID, io).waitForEnd();
  assert.deepEqual(end, { kind: "final", record: record({ exitCode: 7 }) });
  assert.deepEqual(s.sleeps, [100, 100, 100]);
  assert.equal(s.clientsMade, 0);
});

Deno.test("waitForEnd of a record removed while waiting ends as removed", async () => {
  const { s, io } = scriptedIo(running);
  s.ownerAlive = true;
  s.onSleep = () => s.record = undefined;
  assert.deepEqual(await new RunWatcher(ID, io).waitForEnd(), { kind: "removed", id: ID });
});
