/**
 * `moat logs` of runs made on the real engine: the recorded output is what the run printed, byte for byte
 * and stream for stream; `-n`; `-f` of a foreground run in progress; and no engine is needed to read it.
 */
import assert from "node:assert/strict";
import { moat, moatEnv, requireEngine, ROOT, TEST_IMAGE, withScratch } from "./helpers.ts";

await requireEngine();

const dec = new TextDecoder();

async function onlyRunId(home: string): Promise<string> {
  const ids = (await Array.fromAsync(Deno.readDir(`${home}/runs`))).map((e) => e.name);
  assert.equal(ids.length, 1);
  return ids[0]!;
}

Deno.test("moat logs replays a run's stdout and stderr exactly as the run printed them", async () => {
  await withScratch(async (s) => {
    const script = "printf 'a\\000\\377b\\n'; echo to-err >&2; printf 'no newline'; printf '\\001\\002' >&2";
    const run = await moat(["run", "--image", TEST_IMAGE, s.ws, "--", "sh", "-c", script], { home: s.home });
    assert.equal(run.code, 0, run.stderr);
    const id = await onlyRunId(s.home);
    const r = await moat(["logs", id], { home: s.home });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout, run.stdout);
    assert.deepEqual(r.stderrBytes, run.stderrBytes);
    assert.deepEqual(
      r.stdout,
      new Uint8Array([97, 0, 255, 98, 10, ...new TextEncoder().encode("no newline")]),
    );
  });
});

Deno.test("moat logs -n 3 prints the last three lines of a real run, and needs no engine", async () => {
  await withScratch(async (s) => {
    const run = await moat(["run", "--image", TEST_IMAGE, s.ws, "--", "seq", "1", "10"], { home: s.home });
    assert.equal(run.code, 0, run.stderr);
    const r = await moat(["logs", "-n", "3"], {
      home: s.home,
      env: { DOCKER_HOST: "unix:///nonexistent/docker.sock" },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, "8\n9\n10\n");
    assert.match(r.stderr, /^moat: showing logs of run [0-9a-f]{12}\n$/);
  });
});

Deno.test("moat logs -f follows a foreground moat run in progress and ends when it ends", async () => {
  await withScratch(async (s) => {
    const runChild = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}/main.ts`,
        "run",
        "--image",
        TEST_IMAGE,
        s.ws,
        "--",
        "sh",
        "-c",
        "echo a; while [ ! -e /workspace/go ]; do sleep 0.1; done; echo b >&2; echo c",
      ],
      env: moatEnv(s.home),
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const runStderr = new Response(runChild.stderr).text();
    try {
      // Wait until the run has recorded "a" (bounded), then follow it.
      const deadline = Date.now() + 60_000;
      let id = "";
      for (;;) {
        const ids = await Array.fromAsync(Deno.readDir(`${s.home}/runs`)).catch(() => []);
        if (ids.length === 1) {
          id = ids[0]!.name;
          const out = await Deno.readFile(`${s.home}/runs/${id}/output.bin`).catch(() => new Uint8Array());
          if (dec.decode(out).includes("a\n")) break;
        }
        if (Date.now() > deadline) assert.fail("the run never recorded its first line");
        await new Promise((r) => setTimeout(r, 50));
      }
      const logs = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${ROOT}/main.ts`, "logs", "-f", id],
        env: moatEnv(s.home),
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const guard = setTimeout(() => logs.kill("SIGKILL"), 60_000);
      const reader = logs.stdout.getReader();
      let text = "";
      while (!text.includes("a\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += dec.decode(value, { stream: true });
      }
      assert.equal(text, "a\n", "logs -f printed what was recorded so far and kept following");
      await Deno.writeTextFile(`${s.ws}/go`, "");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += dec.decode(value, { stream: true });
      }
      reader.releaseLock();
      const [status, logsErr] = await Promise.all([logs.status, new Response(logs.stderr).text()]);
      clearTimeout(guard);
      assert.equal(status.code, 0, logsErr);
      assert.equal(text, "a\nc\n");
      assert.equal(logsErr, "b\n");
    } finally {
      await Deno.writeTextFile(`${s.ws}/go`, "").catch(() => {});
      const status = await runChild.status;
      assert.equal(status.code, 0, await runStderr);
    }
  });
});
