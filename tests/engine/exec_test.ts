/**
 * `moat exec RUN -- COMMAND` on the real engine, under gVisor (issue 16): in a run started with `moat run -d`,
 * the command gets the run's sandbox (its workspace, gVisor) with moat run's streams, stdin, environment,
 * user and exit codes; an interrupt of moat sends the command SIGTERM; a run that is over refuses; an image
 * without /bin/sh still runs commands (then moat cannot signal them); each command is recorded.
 */
import assert from "node:assert/strict";
import { docker, moat, moatEnv, requireEngine, ROOT, TEST_IMAGE, withScratch } from "./helpers.ts";
import { COLS, lines, onPty, ROWS } from "./pty.ts";

const dec = new TextDecoder();

async function detached(
  ws: string,
  home: string,
  image = TEST_IMAGE,
  command = ["sleep", "300"],
): Promise<string> {
  const r = await moat(["run", "-d", "--image", image, ws, "--", ...command], { home });
  assert.equal(r.code, 0, r.stderr);
  return r.out.trim();
}

Deno.test("moat exec in a detached run: its sandbox, streams apart, exit codes, stdin, env, user; recorded", async () => {
  await requireEngine();
  await withScratch(async ({ ws, home }) => {
    const id = await detached(ws, home);
    const exec = (args: string[], stdin?: string) =>
      moat(["exec", ...args], {
        home,
        ...(stdin === undefined ? {} : { stdin: new TextEncoder().encode(stdin) }),
      });

    const streams = await exec([id, "--", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert.deepEqual(
      [streams.code, streams.out, streams.stderr],
      [7, "out\n", "err\n"],
      "the pid line is not output",
    );
    // A command whose output starts like the engine's refusal: its output all the same, in order.
    const lookalike = await exec([
      id,
      "--",
      "sh",
      "-c",
      'echo "OCI runtime exec failed: not really"; echo after',
    ]);
    assert.deepEqual([lookalike.code, lookalike.out], [0, "OCI runtime exec failed: not really\nafter\n"]);
    const notFound = await exec([id, "--", "/nonexistent"]);
    assert.equal(notFound.code, 127);
    assert.match(notFound.stderr, /\/nonexistent: not found/);
    const notExecutable = await exec([id, "--", "/etc/passwd"]);
    assert.equal(notExecutable.code, 126, notExecutable.stderr);
    assert.equal((await exec(["-i", id, "--", "cat"], "hello\n")).out, "hello\n");
    const env = await exec(["-e", "FOO=bar", id, "--", "sh", "-c", 'echo "$FOO $(pwd) $(id -u)"']);
    assert.equal(env.out, "bar /workspace 0\n", env.stderr);
    assert.equal((await exec(["-u", "1234", id, "--", "id", "-u"])).out, "1234\n");
    const kernel = await exec([id, "--", "dmesg"]);
    assert.match(kernel.out, /Starting gVisor/, "the command runs in the run's gVisor sandbox");
    assert.equal((await exec([id, "--", "touch", "/workspace/made-by-exec"])).code, 0);
    await Deno.stat(`${ws}/made-by-exec`);

    // Recorded: execs.jsonl and the audit log, the command and its exit code.
    const lines = (await Deno.readTextFile(`${home}/runs/${id}/execs.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.deepEqual(lines.map((l) => l.exitCode), [7, 0, 127, 126, 0, 0, 0, 0, 0]);
    assert.deepEqual(lines[0].command, ["sh", "-c", "echo out; echo err >&2; exit 7"]);
    const audit = await moat(["audit", id, "--json"], { home });
    const types = JSON.parse(audit.out).map((e: { type: string }) => e.type);
    assert.equal(types.filter((t: string) => t === "exec.end").length, 9);
    assert.equal((await moat(["stop", id], { home })).code, 0);
    assert.equal((await moat(["audit", "verify", id], { home })).code, 0, "one chain, with the execs in it");

    // Over: refused, saying how to get a run that stays up.
    const over = await exec([id, "--", "true"]);
    assert.equal(over.code, 125);
    assert.match(over.stderr, new RegExp(`Run ${id} is (stopped|exited|interrupted), not running`));
    assert.match(over.stderr, /moat run -d/);
  });
});

Deno.test("an interrupt of moat exec sends the command SIGTERM; its exit code is moat exec's", async () => {
  await requireEngine();
  await withScratch(async ({ ws, home }) => {
    const id = await detached(ws, home);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}/main.ts`,
        "exec",
        id,
        "--",
        "sh",
        "-c",
        'trap "echo got TERM; exit 143" TERM; echo ready; while :; do sleep 0.1; done',
      ],
      env: moatEnv(home),
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.getReader();
    let out = "";
    while (!out.includes("ready")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += dec.decode(value);
    }
    child.kill("SIGINT");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += dec.decode(value);
    }
    const status = await child.status;
    const stderr = dec.decode((await new Response(child.stderr).arrayBuffer()) as ArrayBuffer);
    assert.equal(status.code, 143, stderr);
    assert.equal(out, "ready\ngot TERM\n");
    assert.match(stderr, /moat: stopping the command \(SIGTERM\)/);
    assert.equal((await moat(["stop", id], { home })).code, 0);
  });
});

Deno.test("an image without /bin/sh: moat exec runs the command as it is, and says what the engine could not start", async () => {
  await requireEngine();
  const image = `moat-test/no-shell:${crypto.randomUUID().slice(0, 8)}`;
  const dir = await Deno.makeTempDir({ prefix: "moat-noshell-" });
  try {
    await Deno.copyFile("/bin/busybox", `${dir}/busybox`);
    const tar = new Deno.Command("tar", { args: ["-C", dir, "-cf", "-", "."], stdout: "piped" }).spawn();
    const imported = new Deno.Command("docker", {
      args: ["import", "-", image],
      stdin: "piped",
      stdout: "null",
    })
      .spawn();
    await tar.stdout.pipeTo(imported.stdin);
    assert.equal((await imported.status).code, 0);
    await withScratch(async ({ ws, home }) => {
      const id = await detached(ws, home, image, ["/busybox", "sleep", "300"]);
      const hi = await moat(["exec", id, "--", "/busybox", "echo", "hi"], { home });
      assert.deepEqual([hi.code, hi.out], [0, "hi\n"], hi.stderr);
      const missing = await moat(["exec", id, "--", "/nonexistent"], { home });
      assert.equal(missing.code, 127);
      assert.match(
        missing.stderr,
        /^moat: cannot run \/nonexistent in the run's container: failed to load \/nonexistent: no such file or directory$/m,
      );
      assert.doesNotMatch(missing.out + missing.stderr, /OCI runtime/);
      assert.equal((await moat(["stop", id], { home })).code, 0);
    });
  } finally {
    await docker("rmi", "-f", image).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("moat exec -it: a terminal of the host terminal's size, keys to the command, Ctrl-C a key, exit code", async () => {
  await requireEngine();
  await withScratch(async ({ ws, home }) => {
    const id = await detached(ws, home);
    // The size arrives by a resize just after the start: waited for, rather than for a fixed time.
    const cmd =
      `i=0; while [ "$(stty size)" != "${ROWS} ${COLS}" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
      echo "size=$(stty size)"; test -t 0 && echo "stdin=terminal"
      trap 'echo got INT' INT; echo ready; while [ -z "$line" ]; do read line; done; echo "line=$line"; exit 5`;
    const run = await onPty(["exec", "-it", id, "--", "sh", "-c", cmd], [
      { expect: "ready" },
      { write: "\x03" },
      { expect: "got INT" },
      { write: "typed\r" },
    ], home);
    const out = lines(run);
    assert.equal(run.done.exit, 5, run.done.output);
    for (const want of [`size=${ROWS} ${COLS}`, "stdin=terminal", "line=typed"]) {
      assert.ok(out.includes(want), `${want} in ${run.done.output}`);
    }
    assert.match(run.done.output, /got INT/, "Ctrl-C went to the command as a key, not to moat");
    assert.equal(run.done.restored, true, `termios changed: ${run.done.changed}`);
    assert.equal((await moat(["stop", id], { home })).code, 0);
  });
});
