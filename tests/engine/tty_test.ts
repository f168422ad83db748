/**
 * `moat run -t` on a real pseudo-terminal against the real engine: moat runs under tests/engine/pty_helper.py,
 * which is the user's terminal (it sets the size, types keys, resizes, signals moat, and says whether the
 * terminal was left as it was found).
 *
 * "restored" is what the user sees after moat exits. Deno itself also resets the terminal's mode when its
 * process exits, so these tests cannot tell moat's own restore from Deno's; tests/run/lifecycle_tty_test.ts
 * checks that moat restores it on every path, before the container is removed.
 */
import assert from "node:assert/strict";
import { containersFor, moat, onlyRecord, requireEngine, scratch, TEST_IMAGE } from "./helpers.ts";
import { COLS, ENV, lines, modes, onPty, ROWS } from "./pty.ts";

await requireEngine();

const img = ["--image", TEST_IMAGE];
Deno.test("under gVisor a -t run has a terminal on stdin of the host terminal's size, and tty says 'not a tty'", async () => {
  const s = await scratch();
  try {
    // On API 1.41 the size arrives by a resize just after the start (the docker CLI races the same way):
    // wait for it rather than for a fixed time; a size that never comes shows as the wrong size.
    const cmd =
      `i=0; while [ "$(stty size)" != "${ROWS} ${COLS}" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
      test -t 0 && echo "stdin=terminal"; tty; echo "kernel=$(uname -r)"; echo "size=$(stty size)"`;
    const run = await onPty(["run", "-it", ...img, s.ws, "--", "sh", "-c", cmd], [], s.home);
    const out = lines(run);
    assert.equal(run.done.exit, 0, run.done.output);
    assert.ok(out.includes("stdin=terminal"), run.done.output);
    assert.ok(out.includes("not a tty"), `gVisor's pty arrives as a host fd: ${run.done.output}`);
    assert.ok(out.includes("kernel=4.4.0"), run.done.output);
    assert.ok(out.includes(`size=${ROWS} ${COLS}`), run.done.output);
    assert.equal(run.done.restored, true, `termios changed: ${run.done.changed}`);
    const rec = await onlyRecord(s.home);
    assert.equal(rec.runtime, "runsc");
    assert.equal(rec.tty, true);
    assert.equal(rec.state, "exited");
    assert.equal(rec.exitCode, 0);
    assert.deepEqual(await containersFor(s.ws), [], "the container is removed");
  } finally {
    await s.cleanup();
  }
});

Deno.test("every resize of the host terminal reaches the container's pty", async () => {
  const s = await scratch();
  try {
    // Prints each size it sees, from the first one on, and ends at the last size the script sets.
    const cmd = `while [ "$(stty size)" != "${ROWS} ${COLS}" ]; do sleep 0.1; done; last=
      while [ "$last" != "41 90" ]; do s=$(stty size)
        if [ "$s" != "$last" ]; then echo "size=$s"; last=$s; fi; sleep 0.1; done`;
    const run = await onPty(["run", "-it", ...img, s.ws, "--", "sh", "-c", cmd], [
      { expect: `size=${ROWS} ${COLS}\r\n`, timeout: 30 },
      { resize: [30, 100] },
      { expect: "size=30 100\r\n", timeout: 10 },
      { resize: [41, 90] },
      { expect: "size=41 90\r\n", timeout: 10 },
    ], s.home);
    assert.equal(run.done.exit, 0, run.done.output);
    assert.equal(run.done.restored, true, `termios changed: ${run.done.changed}`);
    assert.deepEqual(await containersFor(s.ws), []);
  } finally {
    await s.cleanup();
  }
});

Deno.test("Ctrl-C reaches a trap inside the container, moat keeps running, and 'exit 3' makes moat exit 3", async () => {
  const s = await scratch();
  try {
    // The shell echoes what is typed, so each marker is computed: the echo of the command never matches.
    const run = await onPty(["run", "-it", ...img, s.ws, "--", "sh"], [
      { expect: "[#$] ", timeout: 30 },
      { termios: true },
      { write: `trap 'echo "trapped=$((40+2))"' INT; echo "armed=$((1+1))"\r` },
      // Ctrl-C only once the shell is back at its prompt: a SIGINT that lands while the shell is still finishing
      // the echo leaves busybox ash's trap pending until the next command, and the marker never comes.
      { expect: "armed=2\r\n[^\n]*[#$] ", timeout: 10 },
      { write: "\x03" },
      { expect: "trapped=42", timeout: 10 },
      { write: `echo "alive=$((3+4))"\r` },
      { expect: "alive=7", timeout: 10 },
      { write: "exit 3\r" },
    ], s.home);
    assert.equal(modes(run)[0]?.raw, true, "the host terminal is raw while attached");
    assert.equal(run.done.exit, 3, run.done.output);
    assert.equal(run.done.restored, true, `termios changed: ${run.done.changed}`);
    const rec = await onlyRecord(s.home);
    assert.equal(rec.exitCode, 3);
    assert.equal(rec.state, "exited");
    assert.deepEqual(await containersFor(s.ws), []);
  } finally {
    await s.cleanup();
  }
});

Deno.test("SIGTERM to moat during a -t run restores the terminal, exits 143 and leaves no container", async () => {
  const s = await scratch();
  try {
    const run = await onPty(["run", "-it", ...img, s.ws, "--", "sh", "-c", 'echo "up=$((1+1))"; sleep 60'], [
      { expect: "up=2", timeout: 30 },
      { termios: true },
      { signal: "SIGTERM" },
    ], s.home);
    assert.equal(modes(run)[0]?.raw, true, "the host terminal is raw while attached");
    assert.equal(run.done.exit, 143, run.done.output);
    assert.equal(run.done.restored, true, `termios changed: ${run.done.changed}`);
    const rec = await onlyRecord(s.home);
    assert.equal(rec.state, "interrupted");
    assert.equal(rec.signal, "SIGTERM");
    assert.equal(rec.exitCode, 143);
    assert.deepEqual(await containersFor(s.ws), [], "no container is left");
  } finally {
    await s.cleanup();
  }
});

Deno.test("-t is refused when stdin is not a terminal, before anything is created", async () => {
  const s = await scratch();
  try {
    for (const [flags, stdin] of [[["-t"], new TextEncoder().encode("x\n")], [["-it"], undefined]] as const) {
      const r = await moat(["run", ...flags, ...img, s.ws, "--", "true"], {
        home: s.home,
        env: ENV,
        ...(stdin ? { stdin } : {}),
      });
      assert.equal(r.code, 2, `${flags}: ${r.stderr}`);
      assert.match(r.stderr, /(stdin|standard input) is not (a terminal|one)/, `${flags}: ${r.stderr}`);
      assert.match(r.stderr, /terminal/, `${flags}: ${r.stderr}`);
      assert.equal(r.out, "");
      assert.deepEqual(await containersFor(s.ws), [], `${flags}: no container`);
      const runs = await Array.fromAsync(Deno.readDir(`${s.home}/runs`)).catch(() => []);
      assert.deepEqual(runs, [], `${flags}: no run record`);
    }
  } finally {
    await s.cleanup();
  }
});

Deno.test("with --no-sandbox a -t run has a terminal on stdin and its exit code comes back", async () => {
  const s = await scratch();
  try {
    const cmd = 'test -t 0 && echo "stdin=terminal"; tty; exit 5';
    const run = await onPty(["run", "-it", "--no-sandbox", ...img, s.ws, "--", "sh", "-c", cmd], [], s.home);
    const out = lines(run);
    assert.equal(run.done.exit, 5, run.done.output);
    assert.ok(out.includes("stdin=terminal"), run.done.output);
    assert.ok(
      out.some((l) => /^\/dev\/pts\/\d+$/.test(l)),
      `outside gVisor tty names the pty: ${run.done.output}`,
    );
    assert.equal(run.done.restored, true, `termios changed: ${run.done.changed}`);
    const rec = await onlyRecord(s.home);
    assert.equal(rec.exitCode, 5);
    assert.equal(rec.state, "exited");
    assert.deepEqual(await containersFor(s.ws), []);
  } finally {
    await s.cleanup();
  }
});
