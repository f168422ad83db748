/**
 * Getting a detached run's exit code on the real engine: `moat wait` prints it (like `docker wait`) and
 * `moat logs -f --exit-code` exits with it, so `id=$(moat run -d -- make test) && moat logs -f --exit-code
 * "$id"` fails when the command fails.
 */
import assert from "node:assert/strict";
import { moat, moatEnv, requireEngine, ROOT, type Scratch, TEST_IMAGE, withScratch } from "./helpers.ts";

await requireEngine();

const dec = new TextDecoder();

async function runDetached(s: Scratch, script: string): Promise<string> {
  const r = await moat(["run", "-d", "--image", TEST_IMAGE, s.ws, "--", "sh", "-c", script], {
    home: s.home,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.out, /^[0-9a-f]{12}\n$/);
  return r.out.trim();
}

function spawnMoat(home: string, args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/main.ts`, ...args],
    env: moatEnv(home),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Never hang: a command that does not end is killed, and its assertions fail.
  const guard = setTimeout(() => child.kill("SIGKILL"), 90_000);
  return { child, guard };
}

Deno.test("a detached sh -c 'exit 3': moat wait prints 3 and exits 0, moat logs -f --exit-code exits 3", async () => {
  await withScratch(async (s) => {
    const id = await runDetached(s, "echo out; echo err >&2; exit 3");
    const wait = await moat(["wait", id], { home: s.home });
    assert.equal(wait.code, 0, wait.stderr);
    assert.equal(wait.out, "3\n");
    assert.equal(wait.stderr, "");

    const logs = await moat(["logs", "-f", "--exit-code", id], { home: s.home });
    assert.equal(logs.code, 3, logs.stderr);
    assert.equal(logs.out, "out\n");
    assert.equal(logs.stderr, "err\n");
    // Without --exit-code, following still ends with 0.
    const plain = await moat(["logs", "-f", id], { home: s.home });
    assert.equal(plain.code, 0, plain.stderr);
  });
});

Deno.test("moat wait and moat logs -f --exit-code block while the detached run runs, then give its code", async () => {
  await withScratch(async (s) => {
    const id = await runDetached(
      s,
      "echo started; while [ ! -e /workspace/go ]; do sleep 0.1; done; echo finished; exit 3",
    );
    const waiter = spawnMoat(s.home, ["wait", id]);
    const follower = spawnMoat(s.home, ["logs", "-f", "--exit-code", id]);
    try {
      // logs -f shows the run in progress; only then may it end.
      const reader = follower.child.stdout.getReader();
      let text = "";
      while (!text.includes("started\n")) {
        const { value, done } = await reader.read();
        if (done) assert.fail(`logs -f ended before the run did: ${JSON.stringify(text)}`);
        text += dec.decode(value, { stream: true });
      }
      // The exit code 3 exists only once this file does: both commands must still be waiting for it.
      await Deno.writeTextFile(`${s.ws}/go`, "");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += dec.decode(value, { stream: true });
      }
      reader.releaseLock();
      const [logsStatus, logsErr] = await Promise.all([
        follower.child.status,
        new Response(follower.child.stderr).text(),
      ]);
      assert.equal(logsStatus.code, 3, logsErr);
      assert.equal(text, "started\nfinished\n");
      const w = await waiter.child.output();
      assert.equal(w.code, 0, dec.decode(w.stderr));
      assert.equal(dec.decode(w.stdout), "3\n");
    } finally {
      clearTimeout(waiter.guard);
      clearTimeout(follower.guard);
      await Deno.writeTextFile(`${s.ws}/go`, "").catch(() => {});
    }
  });
});
