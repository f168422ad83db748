/**
 * Audit logs of real runs under gVisor (issue 15): a run's log holds its settings, each change of its state
 * and every network decision, ends in a signed final checkpoint, and `moat audit verify` says it is intact;
 * an exported bundle verifies on its own with the key kept from `moat audit key`, and not once changed or
 * with another key; a detached run's log, written by moat run -d and then its recorder, is one chain; a run
 * whose moat is killed (`kill -9`) leaves a log that verifies up to its last entry and says it was cut short.
 */
import assert from "node:assert/strict";
import { startBackgroundRun } from "./background_run.ts";
import { moat, onlyRecord, requireEngine, TEST_IMAGE, withScratch } from "./helpers.ts";

interface Entry {
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

async function entriesOf(home: string, id: string): Promise<Entry[]> {
  const r = await moat(["audit", id, "--json"], { home });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.out);
}

Deno.test("a run's audit log: its settings, states and network decisions, signed at the end; export and verify elsewhere", async () => {
  await requireEngine();
  const ac = new AbortController();
  const web = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    () => new Response("ok\n"),
  );
  try {
    await withScratch(async ({ ws, home }) => {
      const r = await moat([
        "run",
        "--image",
        "debian:bookworm-slim",
        "--allow",
        "web.allowed.test",
        ws,
        "--",
        "bash",
        "-c",
        "getent hosts denied.example || true; exec 3<>/dev/tcp/web.allowed.test/80 && " +
        "printf 'GET /x HTTP/1.0\\r\\nHost: web.allowed.test\\r\\n\\r\\n' >&3 && cat <&3 >/dev/null; exit 3",
      ], {
        home,
        env: { MOAT_TEST_UPSTREAMS: JSON.stringify({ "web.allowed.test": `127.0.0.1:${web.addr.port}` }) },
      });
      assert.equal(r.code, 3, r.stderr);
      const { id } = await onlyRecord(home) as { id: string };

      const entries = await entriesOf(home, id);
      const types = entries.map((e) => e.type);
      assert.equal(types[0], "run");
      assert.equal(types[1], "config");
      assert.match(String(entries[1]!.data.imageId), /^sha256:[0-9a-f]{64}$/);
      assert.equal(entries[1]!.data.sandboxSource, "default");
      const states = entries.filter((e) => e.type === "record" && e.data.state).map((e) => e.data.state);
      assert.deepEqual(states, ["created", "running", "exited"]);
      assert.equal(entries.find((e) => e.data.state === "exited")!.data.exitCode, 3);
      const net = entries.filter((e) => e.type === "network").map((e) =>
        `${e.data.via} ${e.data.host} ${e.data.decision}`
      );
      for (
        const want of ["dns denied.example deny", "dns web.allowed.test allow", "http web.allowed.test allow"]
      ) {
        assert.ok(net.includes(want), `${want} in ${net.join(", ")}`);
      }
      const last = entries.at(-1)!;
      assert.deepEqual([last.type, last.data.final, last.data.size], [
        "checkpoint",
        true,
        entries.length - 1,
      ]);

      const verified = await moat(["audit", "verify", id], { home });
      assert.equal(verified.code, 0, verified.stderr);
      assert.match(
        verified.out,
        new RegExp(`^run ${id}'s audit log is intact: ${entries.length} entries, 1 signed checkpoint`),
      );

      // Off the host: the bundle and the key kept from moat audit key; checked in another MOAT_HOME.
      const key = (await moat(["audit", "key"], { home })).out.trim();
      assert.match(key, /^ed25519:[A-Za-z0-9+/]{43}=$/);
      const bundle = `${ws}/run.audit.json`;
      const exported = await moat(["audit", "export", id, "-o", bundle], { home });
      assert.equal(exported.code, 0, exported.stderr);
      const elsewhere = `${ws}/other-home`;
      const ok = await moat(["audit", "verify", bundle, "--key", key], { home: elsewhere });
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      assert.match(ok.out, /is intact/);
      // Changed: an entry's exit code rewritten in the bundle.
      const b = JSON.parse(await Deno.readTextFile(bundle));
      b.log = b.log.replace('"exitCode":3', '"exitCode":0');
      await Deno.writeTextFile(bundle, JSON.stringify(b));
      const changed = await moat(["audit", "verify", bundle, "--key", key], { home: elsewhere });
      assert.equal(changed.code, 1);
      assert.match(
        changed.out,
        /is not as moat wrote it: entry \d+ was changed: its hash does not match its contents/,
      );
      // Another host's key: the signatures are not the kept key's.
      const otherKey = (await moat(["audit", "key"], { home: elsewhere })).out.trim();
      const wrongKey = await moat(["audit", "verify", id, "--key", otherKey], { home });
      assert.equal(wrongKey.code, 1);
      assert.match(wrongKey.out, /is signed by key [0-9a-f]{16}, not by the key checked with/);
    });
  } finally {
    ac.abort();
    await web.finished;
  }
});

Deno.test("a detached run's log is one chain, written by moat run -d and then by its recorder", async () => {
  await requireEngine();
  await withScratch(async ({ ws, home }) => {
    const d = await moat(["run", "-d", "--image", TEST_IMAGE, ws, "--", "sh", "-c", "echo hi"], { home });
    assert.equal(d.code, 0, d.stderr);
    const id = d.out.trim();
    assert.equal((await moat(["wait", id], { home })).code, 0);
    const v = await moat(["audit", "verify", id], { home });
    assert.equal(v.code, 0, v.out + v.stderr);
    const entries = await entriesOf(home, id);
    assert.ok(entries.some((e) => e.type === "record" && e.data.owner), "the recorder took the run over");
    assert.deepEqual(entries.filter((e) => e.data.state).map((e) => e.data.state).at(-1), "exited");
  });
});

Deno.test("kill -9 of moat mid-run: the log verifies up to its last entry and says it was cut short", async () => {
  await requireEngine();
  await withScratch(async (s) => {
    const run = await startBackgroundRun(s, [], 60);
    run.child.kill("SIGKILL");
    await run.done;
    const { id } = await onlyRecord(s.home) as { id: string };
    const v = await moat(["audit", "verify", id], { home: s.home });
    assert.equal(v.code, 1, v.stderr);
    assert.match(
      v.out,
      new RegExp(
        `^run ${id}'s audit log was cut short: the log ends after entry (\\d+) without its final checkpoint .*` +
          `The \\1 entries before are as written, none under a signed checkpoint`,
      ),
    );
    const states = (await entriesOf(s.home, id)).filter((e) => e.type === "record" && e.data.state)
      .map((e) => e.data.state);
    assert.deepEqual(states, ["created", "running"], "up to the last thing moat did");
    assert.equal((await moat(["clean", "-f"], { home: s.home })).code, 0);
  });
});
