/**
 * Warm runs (lib/run/warm.ts) on the real engine, under gVisor: after a run with warm runs on, moat boots the
 * next run's sandbox in the background; the next run with the same settings takes it (its id becomes the
 * run's), runs its command in it through an exec, and it is removed after that one run. A warm run sees
 * nothing of the run before, keeps a cold run's streams, exit codes, variables, terminal and interrupts; a
 * sandbox made with other settings is not taken; one nobody takes is gone by itself; `kill -9` of moat leaves
 * nothing `moat clean` does not find.
 */
import assert from "node:assert/strict";
import { startBackgroundRun } from "./background_run.ts";
import { docker, moat, moatEnv, requireEngine, ROOT, TEST_IMAGE, withScratch } from "./helpers.ts";
import { COLS, lines, onPty, ROWS } from "./pty.ts";

// A minute's idle time: what a test leaves waiting is gone soon by itself.
const WARM = { MOAT_STANDBY: "1", MOAT_WARM: "1", MOAT_STANDBY_IDLE: "60" };

interface WarmFile {
  id: string;
  sandbox?: string;
  network?: string;
  relayId?: string;
  expiresAt: number;
}

/** The waiting sandboxes of `home` (`standby/<id>.json` with a sandbox). */
function waiting(home: string): WarmFile[] {
  try {
    return [...Deno.readDirSync(`${home}/standby`)].filter((e) => e.name.endsWith(".json"))
      .map((e) => JSON.parse(Deno.readTextFileSync(`${home}/standby/${e.name}`)) as WarmFile)
      .filter((s) => s.sandbox !== undefined);
  } catch {
    return [];
  }
}

/** Wait (up to 60 s: it is booted in the background) for a waiting sandbox of `home` besides `not`. */
async function nextSandbox(home: string, not: string[] = []): Promise<WarmFile> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const found = waiting(home).find((s) => !not.includes(s.id));
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no sandbox was booted ahead in ${home} within 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The `moat standby` processes at work for `home` (found in /proc: their command line and MOAT_HOME). */
function standbyProcesses(home: string): number[] {
  const found: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
      if (!cmdline.includes("\0standby\0")) continue;
      if (Deno.readTextFileSync(`/proc/${e.name}/environ`).includes(`\0MOAT_HOME=${home}\0`)) {
        found.push(+e.name);
      }
    } catch { /* gone meanwhile */ }
  }
  return found;
}

/**
 * `withScratch` with every waiting sandbox, relay and network of its home removed at the end, once the
 * background processes that make them are done (they would outlive the test's MOAT_HOME).
 */
async function withWarmScratch(fn: (s: { ws: string; home: string }) => Promise<void>): Promise<void> {
  await withScratch(async (s) => {
    try {
      await fn(s);
    } finally {
      const deadline = Date.now() + 60_000;
      while (standbyProcesses(s.home).length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      for (const w of waiting(s.home)) {
        for (const id of [w.sandbox, w.relayId]) if (id) await docker("rm", "-f", id).catch(() => {});
        if (w.network) await docker("network", "rm", w.network).catch(() => {});
      }
    }
  });
}

/** Whether container `id` is still on the engine (in any state). */
async function exists(id: string): Promise<boolean> {
  return (await docker("ps", "-aq", "--no-trunc", "--filter", `id=${id}`)).trim() !== "";
}

/** Wait (up to `ms`) until container `id` is gone from the engine; fails with `what` otherwise. */
async function gone(id: string, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (await exists(id)) {
    assert.ok(Date.now() < deadline, what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Entries of run `id`'s audit log of `type`. */
async function auditOf(home: string, id: string, type: string): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(`${home}/runs/${id}/audit.jsonl`);
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.type === type)
    .map((e) => e.data);
}

/** The role `moat system containers` gives container `id`. */
async function roleOf(home: string, id: string): Promise<string[]> {
  const items = JSON.parse((await moat(["system", "containers", "--json"], { home })).out) as Record<
    string,
    string
  >[];
  return items.filter((i) => i.id === id).map((i) => String(i.role));
}

/** `moat run --image TEST_IMAGE --network none ARGS WS -- sh -c SCRIPT` with warm runs on. */
function run(
  s: { ws: string; home: string },
  script: string,
  args: string[] = [],
  env: Record<string, string> = {},
) {
  return moat(
    ["run", "--image", TEST_IMAGE, "--network", "none", ...args, s.ws, "--", "sh", "-c", script],
    { home: s.home, env: { ...WARM, ...env } },
  );
}

Deno.test("a warm run takes the sandbox booted ahead: nothing of the run before, a cold run's streams and codes", async () => {
  await requireEngine();
  await withWarmScratch(async (s) => {
    // The first run starts cold; the second takes the sandbox booted after it, and leaves a file and a
    // process behind in it.
    assert.equal((await run(s, "true")).code, 0);
    const before = await nextSandbox(s.home);
    const first = await run(s, "echo x > /tmp/left; sleep 987 & echo started");
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.out, "started\n");
    assert.ok(
      await Deno.stat(`${s.home}/runs/${before.id}`),
      "the second run did not take the waiting sandbox",
    );
    const made = await nextSandbox(s.home, [before.id]);
    const sandbox = made.sandbox!;
    assert.equal(
      (await docker("inspect", "-f", "{{.State.Running}} {{.HostConfig.Runtime}}", sandbox)).trim(),
      "true runsc",
    );
    // Waiting, it is nobody's leftover: a standby, left alone by moat clean and the orphan notice.
    assert.deepEqual(await roleOf(s.home, sandbox), ["standby"]);
    const clean = await moat(["clean", "-f"], { home: s.home });
    assert.equal(clean.code, 0, clean.stderr);
    assert.doesNotMatch(clean.stderr + clean.out, /left behind|orphan/i);
    assert.ok(await exists(sandbox), "moat clean removed a waiting sandbox");

    const second = await run(
      s,
      'test -e /tmp/left && echo left-file; ps | grep -c "[s]leep 987"; dmesg | grep -c "Starting gVisor"; ' +
        'echo "FOO=$FOO"; pwd; echo err >&2; exit 7',
      ["-e", "FOO=bar"],
    );
    assert.equal(second.code, 7, second.stderr);
    assert.equal(
      second.out,
      "0\n1\nFOO=bar\n/workspace\n",
      "a fresh sandbox under gVisor, the run's variables",
    );
    assert.equal(second.stderr, "err\n");
    // It was the sandbox booted ahead: the run's id is its id, its audit log names it, and the record ends.
    const rec = JSON.parse(await Deno.readTextFile(`${s.home}/runs/${made.id}/run.json`));
    assert.equal(rec.containerId, sandbox);
    assert.equal(rec.state, "exited");
    assert.equal(rec.exitCode, 7);
    assert.deepEqual(await auditOf(s.home, made.id, "warm"), [{ container: sandbox }]);
    const logs = await moat(["logs", made.id], { home: s.home });
    assert.equal(logs.out, "0\n1\nFOO=bar\n/workspace\n");
    const verify = await moat(["audit", "verify", made.id], { home: s.home });
    assert.equal(verify.code, 0, verify.out + verify.stderr);
    // Removed after its one run, in the background, whatever it left running; the next one is booted.
    await gone(before.sandbox!, "the sandbox with a process left in it was not removed");
    await gone(sandbox, "the warm run's sandbox was not removed");
    const next = await nextSandbox(s.home, [before.id, made.id]);

    // A command the image does not have: 127 and moat's message, as a cold run says it.
    const missing = await moat(
      ["run", "--image", TEST_IMAGE, "--network", "none", s.ws, "--", "no-such-command"],
      { home: s.home, env: WARM },
    );
    assert.equal(missing.code, 127, missing.stderr);
    assert.match(missing.stderr, /^moat: The command was not found in the image: .*no-such-command/m);
    assert.equal(JSON.parse(await Deno.readTextFile(`${s.home}/runs/${next.id}/run.json`)).state, "failed");
    await gone(next.sandbox!, "the sandbox of a command not found was not removed");
  });
});

Deno.test("warm runs: other settings are not taken, stdin and an allow list work, an idle sandbox is gone by itself", async () => {
  await requireEngine();
  await withWarmScratch(async (s) => {
    // Waits 4 s: taken only in its first 3 s (the last quarter is too close to its end).
    const idle = { MOAT_STANDBY_IDLE: "4" };
    assert.equal((await run(s, "true", [], idle)).code, 0);
    const made = await nextSandbox(s.home);
    // Another memory limit is another sandbox: this run starts cold and leaves the waiting one alone.
    const other = await run(s, "true", ["--memory", "256m"], idle);
    assert.equal(other.code, 0, other.stderr);
    assert.ok(
      !(await Deno.stat(`${s.home}/runs/${made.id}`).catch(() => undefined)),
      "taken with other settings",
    );
    assert.ok(await exists(made.sandbox!), "the waiting sandbox went");
    // Nobody takes it: its main process ends at its time, and the engine removes it.
    await gone(made.sandbox!, "an idle sandbox did not end by itself", made.expiresAt - Date.now() + 30_000);
    assert.ok(Date.now() >= made.expiresAt - 1000, "it ended before its time");
  });
  await withWarmScratch(async (s) => {
    assert.equal((await run(s, "true")).code, 0);
    const made = await nextSandbox(s.home);
    // stdin to the end (-i), in the sandbox booted ahead.
    const echoed = await moat(
      ["run", "-i", "--image", TEST_IMAGE, "--network", "none", s.ws, "--", "sh", "-c", "cat; echo end"],
      { home: s.home, env: WARM, stdin: new TextEncoder().encode("one\ntwo\n") },
    );
    assert.equal(echoed.code, 0, echoed.stderr);
    assert.equal(echoed.out, "one\ntwo\nend\n");
    assert.ok(await Deno.stat(`${s.home}/runs/${made.id}`), "the -i run did not take the waiting sandbox");

    // The workspace removed and made again at its path: the next sandbox, booted with the old directory, is
    // not taken; the run sees the new one.
    const next = await nextSandbox(s.home, [made.id]);
    while (standbyProcesses(s.home).length > 0) await new Promise((r) => setTimeout(r, 100));
    await Deno.remove(s.ws, { recursive: true });
    await Deno.mkdir(s.ws);
    await Deno.writeTextFile(`${s.ws}/marker`, "new\n");
    const fresh = await run(s, "cat /workspace/marker");
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.equal(fresh.out, "new\n");
    assert.ok(!(await Deno.stat(`${s.home}/runs/${next.id}`).catch(() => undefined)), "took a stale sandbox");
  });
});

Deno.test("a warm run on the allow list: the policy of the run that takes it, whatever the allow list it was booted after; clean --standby", async () => {
  await requireEngine();
  const ac = new AbortController();
  const web = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => new Response(`path=${new URL(req.url).pathname}\n`),
  );
  const env = {
    ...WARM,
    MOAT_TEST_UPSTREAMS: JSON.stringify({ "web.allowed.test": `127.0.0.1:${web.addr.port}` }),
  };
  try {
    await withWarmScratch(async (s) => {
      const allow = (host: string, script: string) =>
        moat(["run", "--image", TEST_IMAGE, "--allow", host, s.ws, "--", "sh", "-c", script], {
          home: s.home,
          env,
        });
      assert.equal((await allow("other.test", "true")).code, 0);
      const made = await nextSandbox(s.home);
      assert.ok(made.network && made.relayId, "booted on a network made ahead");
      const r = await allow("web.allowed.test", "wget -q -O - http://web.allowed.test/warm");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.out, "path=/warm\n");
      assert.deepEqual(await auditOf(s.home, made.id, "warm"), [{ container: made.sandbox }]);
      const decisions = await Deno.readTextFile(`${s.home}/runs/${made.id}/network.jsonl`);
      assert.match(decisions, /"host":"web.allowed.test".*"decision":"allow"/);
      await gone(made.sandbox!, "the sandbox was not removed");
      await gone(made.relayId!, "the relay was not removed");
      // The next one waits; moat clean --standby removes it, its relay and its network when asked.
      const next = await nextSandbox(s.home, [made.id]);
      while (standbyProcesses(s.home).length > 0) await new Promise((r) => setTimeout(r, 100));
      const clean = await moat(["clean", "-f", "--standby"], { home: s.home });
      assert.equal(clean.code, 0, clean.stderr);
      assert.match(clean.out, new RegExp(`^${next.id} .* standby `, "m"));
      for (const id of [next.sandbox!, next.relayId!]) assert.equal(await exists(id), false, `${id} is left`);
      assert.equal((await docker("network", "ls", "-q", "--filter", `name=^${next.network}$`)).trim(), "");
      assert.deepEqual(waiting(s.home), [], "its file is left");
    });
  } finally {
    ac.abort();
    await web.finished;
  }
});

Deno.test("a warm run: an interrupt gives the command its SIGTERM; kill -9 of moat leaves what moat clean removes", async () => {
  await requireEngine();
  await withWarmScratch(async (s) => {
    assert.equal((await run(s, "true")).code, 0);
    let made = await nextSandbox(s.home);
    const trapped = await startBackgroundRun(s, ["--network", "none"], 30, WARM);
    trapped.child.kill("SIGINT");
    const ended = await trapped.done;
    assert.equal(ended.code, 130, ended.stderr);
    assert.match(ended.stderr, /moat: stopping run [0-9a-f]+ \(SIGINT\)/);
    const rec = JSON.parse(await Deno.readTextFile(`${s.home}/runs/${made.id}/run.json`));
    assert.equal(rec.state, "interrupted");
    await gone(made.sandbox!, "the interrupted run's sandbox was not removed");

    made = await nextSandbox(s.home, [made.id]);
    const killed = await startBackgroundRun(s, ["--network", "none"], 600, WARM);
    killed.child.kill("SIGKILL");
    await killed.done;
    assert.ok(await exists(made.sandbox!), "the sandbox of a killed moat is still there (its command runs)");
    const clean = await moat(["clean", "-f"], { home: s.home });
    assert.equal(clean.code, 0, clean.stderr);
    assert.equal(await exists(made.sandbox!), false, "moat clean did not remove the killed run's sandbox");
  });
});

Deno.test("a warm run out of memory: exit 137, reported as the memory limit", async () => {
  await requireEngine();
  await withWarmScratch(async (s) => {
    const args = ["--memory", "32m"];
    assert.equal((await run(s, "true", args)).code, 0);
    const made = await nextSandbox(s.home);
    const r = await run(s, 'echo start; x=a; while :; do x="$x$x"; done', args);
    assert.equal(r.out, "start\n", "the command ran");
    assert.equal(r.code, 137, r.stderr);
    assert.match(r.stderr, /the command ran out of memory and was killed by the memory limit \(32 MiB\)/);
    const rec = JSON.parse(await Deno.readTextFile(`${s.home}/runs/${made.id}/run.json`));
    assert.equal(rec.oomKilled, true);
    assert.equal(rec.exitCode, 137);
  });
});

Deno.test("a warm run with -it: the host terminal's size, Ctrl-C as a key, typed input", async () => {
  await requireEngine();
  await withWarmScratch(async (s) => {
    assert.equal((await run(s, "true")).code, 0);
    const made = await nextSandbox(s.home);
    // The size is read once a line was typed: an engine before API 1.42 sizes an exec's pty only once its
    // process has started.
    const cmd = 'trap "echo got INT" INT; [ -t 0 ] && echo stdin=terminal; echo ready; ' +
      'while [ -z "$line" ]; do read line; done; echo "line=$line"; echo "size=$(stty size)"; exit 5';
    const pty = await onPty(
      ["run", "-it", "--image", TEST_IMAGE, "--network", "none", s.ws, "--", "sh", "-c", cmd],
      [{ expect: "ready" }, { write: "\x03" }, { expect: "got INT" }, { write: "typed\r" }],
      s.home,
      WARM,
    );
    assert.equal(pty.done.exit, 5, pty.done.output);
    const out = lines(pty);
    for (const want of [`size=${ROWS} ${COLS}`, "stdin=terminal", "line=typed"]) {
      assert.ok(out.includes(want), `${want} in ${pty.done.output}`);
    }
    assert.equal(pty.done.restored, true, `termios changed: ${pty.done.changed}`);
    assert.deepEqual(await auditOf(s.home, made.id, "warm"), [{ container: made.sandbox }]);
  });
});

Deno.test("a warm run whose reader goes away: the command gets SIGPIPE (exit 141), as in a cold run", async () => {
  await requireEngine();
  await withWarmScratch(async (s) => {
    assert.equal((await run(s, "true")).code, 0);
    const made = await nextSandbox(s.home);
    // moat's own exit status goes through a file: the pipeline's status is head's.
    const script = `'${Deno.execPath()}' run -A '${ROOT}/main.ts' run --image ${TEST_IMAGE} --network none ` +
      `'${s.ws}' -- seq 10000000; echo $? > '${s.home}/code'`;
    const r = await new Deno.Command("sh", {
      args: ["-c", `(${script}) | head -n 1`],
      env: moatEnv(s.home, WARM),
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(new TextDecoder().decode(r.stdout), "1\n");
    const stderr = new TextDecoder().decode(r.stderr);
    assert.equal((await Deno.readTextFile(`${s.home}/code`)).trim(), "141", stderr);
    assert.deepEqual(await auditOf(s.home, made.id, "warm"), [{ container: made.sandbox }]);
  });
});
