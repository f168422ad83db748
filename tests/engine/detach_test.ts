/**
 * `moat run -d` on the real engine: it returns while the command runs, its recorder records everything
 * (early output included), `moat logs -f` follows it to the end, the container is removed, and a stopped
 * run is finished by the recorder.
 */
import assert from "node:assert/strict";
import {
  containersFor,
  docker,
  moat,
  moatEnv,
  requireEngine,
  ROOT,
  type Scratch,
  TEST_IMAGE,
  withScratch,
} from "./helpers.ts";

await requireEngine();

const dec = new TextDecoder();

async function runDetached(s: Scratch, command: string[], extra: string[] = []): Promise<string> {
  const r = await moat(["run", "-d", "--image", TEST_IMAGE, ...extra, s.ws, "--", ...command], {
    home: s.home,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.out, /^[0-9a-f]{12}\n$/, "only the run id on stdout");
  assert.equal(r.stderr, "");
  return r.out.trim();
}

async function readRecord(home: string, id: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(`${home}/runs/${id}/run.json`));
}

/** `moat logs -f` spawned, its stdout readable as it comes. */
function follow(home: string, args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/main.ts`, "logs", "-f", ...args],
    env: moatEnv(home),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.getReader();
  const seen = { text: "" };
  const finish = async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen.text += dec.decode(value, { stream: true });
    }
    reader.releaseLock();
    return { code: (await child.status).code, stdout: seen.text, stderr: await stderr };
  };
  return {
    seen,
    /** Read until the output so far contains `want`; after 60 s, end logs -f and fail (never hang). */
    async until(want: string) {
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      try {
        while (!seen.text.includes(want)) {
          const { value, done } = await reader.read();
          if (done) {
            const r = await finish();
            assert.fail(`logs -f ended (${r.code}) before ${JSON.stringify(want)}: ${JSON.stringify(r)}`);
          }
          seen.text += dec.decode(value, { stream: true });
        }
      } finally {
        clearTimeout(timer);
      }
    },
    /** Read to the end; the exit status and stderr. */
    end: finish,
  };
}

Deno.test("moat run -d prints an id and returns; logs -f streams the run to its end; the container is gone", async () => {
  await withScratch(async (s) => {
    const id = await runDetached(s, ["sh", "-c", "for i in 1 2 3; do echo $i; sleep 1; done"]);
    const r = await moat(["logs", "-f", id], { home: s.home });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, "1\n2\n3\n");
    assert.equal(r.stderr, "");
    const rec = await readRecord(s.home, id);
    assert.deepEqual([rec.state, rec.exitCode, rec.detached, rec.removed], ["exited", 0, true, true]);
    assert.equal(rec.runtime, "runsc");
    assert.deepEqual(await containersFor(s.ws), []);
  });
});

Deno.test("moat run -d returns while the command still runs, and logs -f shows output as it comes", async () => {
  await withScratch(async (s) => {
    // The command cannot end before the test creates /workspace/go: returning proves -d did not wait.
    const id = await runDetached(s, [
      "sh",
      "-c",
      "echo waiting; while [ ! -e /workspace/go ]; do sleep 0.1; done; echo go; exit 3",
    ]);
    const rec = await readRecord(s.home, id);
    assert.equal(rec.state, "running");
    const state = await docker("inspect", "-f", "{{.State.Running}}", rec.containerId as string);
    assert.equal(state.trim(), "true");
    const f = follow(s.home, [id]);
    await f.until("waiting\n");
    await Deno.writeTextFile(`${s.ws}/go`, "");
    const r = await f.end();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "waiting\ngo\n");
    const done = await readRecord(s.home, id);
    assert.deepEqual([done.state, done.exitCode, done.removed], ["exited", 3, true]);
    assert.deepEqual(await containersFor(s.ws), []);
  });
});

Deno.test("the early output of a fast detached command is not lost, on either stream", async () => {
  await withScratch(async (s) => {
    const id = await runDetached(s, ["sh", "-c", "echo early; echo early-err >&2; seq 1 5000"]);
    const r = await moat(["logs", "-f", id], { home: s.home });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.out.split("\n");
    assert.equal(lines[0], "early");
    assert.equal(lines.length, 5002, "early, 1..5000, and the empty string after the last newline");
    assert.equal(lines.at(-2), "5000");
    assert.equal(r.stderr, "early-err\n");
    const tail = await moat(["logs", "-n", "2", id], { home: s.home });
    assert.equal(tail.out, "4999\n5000\n");
    assert.equal(tail.stderr, "", "the last two lines are 4999 and 5000; early-err is long before");
    assert.equal((await readRecord(s.home, id)).exitCode, 0);
  });
});

Deno.test("a detached run stopped from outside is finished by its recorder, and logs -f ends", async () => {
  await withScratch(async (s) => {
    const id = await runDetached(s, [
      "sh",
      "-c",
      "trap 'echo stopping; exit 7' TERM; echo up; sleep 100 & wait",
    ]);
    const f = follow(s.home, [id]);
    await f.until("up\n");
    const rec = await readRecord(s.home, id);
    // What `moat stop` does to the engine: stop the container (SIGTERM, then SIGKILL after the grace period).
    await docker("stop", "-t", "10", rec.containerId as string);
    const r = await f.end();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "up\nstopping\n");
    const done = await readRecord(s.home, id);
    assert.deepEqual([done.state, done.exitCode, done.removed], ["exited", 7, true]);
    assert.deepEqual(await containersFor(s.ws), []);
  });
});

Deno.test("moat run -d --keep records the run and leaves the container", async () => {
  await withScratch(async (s) => {
    const id = await runDetached(s, ["sh", "-c", "echo kept"], ["--keep"]);
    const r = await moat(["logs", "-f", id], { home: s.home });
    assert.equal(r.out, "kept\n");
    const rec = await readRecord(s.home, id);
    assert.deepEqual([rec.state, rec.exitCode, rec.kept, rec.removed], ["exited", 0, true, false]);
    assert.deepEqual(await containersFor(s.ws), [(rec.containerId as string).slice(0, 12)]);
  });
});

Deno.test("moat run -d of a missing command: the run records exit 127 and the init's message; no container is left", async () => {
  await withScratch(async (s) => {
    // The container's init starts fine and only then fails to exec the command, so -d cannot know at start.
    const id = await runDetached(s, ["/no/such/command"]);
    const r = await moat(["logs", "-f", id], { home: s.home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /exec \/no\/such\/command failed: No such file or directory/);
    const rec = await readRecord(s.home, id);
    assert.deepEqual([rec.state, rec.exitCode], ["exited", 127]);
    assert.deepEqual(await containersFor(s.ws), []);
  });
});

Deno.test("when the recorder is killed, logs -f follows until the container ends and says why it stopped", async () => {
  await withScratch(async (s) => {
    const id = await runDetached(s, [
      "sh",
      "-c",
      "echo one; while [ ! -e /workspace/go ]; do sleep 0.1; done",
    ]);
    const f = follow(s.home, [id]);
    await f.until("one\n");
    // "one" is recorded. The recorder is this test's own descendant (moat run -d started it): end it by pid.
    const owner = (await readRecord(s.home, id)).owner as { pid: number };
    Deno.kill(owner.pid, "SIGKILL");
    await Deno.writeTextFile(`${s.ws}/go`, "");
    const r = await f.end();
    assert.equal(r.code, 0);
    assert.match(r.stderr, /stopped following run [0-9a-f]{12}: the moat process that ran it is gone/);
    assert.equal((await readRecord(s.home, id)).state, "running", "nobody finished the record");
  });
});
