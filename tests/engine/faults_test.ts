/**
 * moat run against the real engine and gVisor with tests/fault_proxy.ts in between (`DOCKER_HOST` points at
 * the proxy): a start answered too late, a lost create reply, damaged and lost wait replies, attach and log
 * streams that end early, stall after the exit or carry a corrupt frame. Each run must report what really
 * happened: the command's exit code, every byte of its output on stdout and in `moat logs` (or a warning
 * that says the output is incomplete), a final record, and no container left.
 */
import assert from "node:assert/strict";
import { FaultProxy } from "../fault_proxy.ts";
import {
  containersFor,
  moat,
  onlyRecord,
  requireEngine,
  type Result,
  TEST_IMAGE,
  withScratch,
} from "./helpers.ts";

await requireEngine();

/** 40 numbered lines over about two seconds, one line on stderr, exit 3. */
const SLOW = "i=0; while [ $i -lt 40 ]; do echo line $i; i=$((i+1)); sleep 0.05; done; echo err >&2; exit 3";
const SLOW_OUT = Array.from({ length: 40 }, (_, i) => `line ${i}\n`).join("");

interface Case {
  home: string;
  ws: string;
  proxy: FaultProxy;
  run(args: string[], env?: Record<string, string>): Promise<Result>;
}

/** A scratch workspace and home, a proxy in front of the engine, and `moat` aimed at it. */
async function withProxy(fn: (c: Case) => Promise<void>): Promise<void> {
  await withScratch(async ({ ws, home }) => {
    await using proxy = await FaultProxy.start();
    await fn({
      home,
      ws,
      proxy,
      run: (args, env = {}) => moat(args, { home, env: { DOCKER_HOST: proxy.dockerHost, ...env } }),
    });
  });
}

/** The foreground run of SLOW; checks what every such run must show whatever the fault. */
async function runSlow(c: Case, env: Record<string, string> = {}, extra: string[] = []): Promise<Result> {
  // On the engine's network: the faults are the sandbox's (the relay of a run's own network would take the
  // first create, start and wait).
  const r = await c.run(
    ["run", "--network", "default", "--image", TEST_IMAGE, ...extra, c.ws, "--", "sh", "-c", SLOW],
    env,
  );
  assert.doesNotMatch(r.stderr, /internal error/);
  assert.deepEqual(await containersFor(c.ws), [], "no container is left");
  return r;
}

/** The run's record is final and `moat logs` (straight from the engine, no proxy) holds every byte. */
async function assertRecorded(c: Case, exitCode: number) {
  const rec = await onlyRecord(c.home);
  assert.deepEqual([rec.state, rec.exitCode, rec.outputIncomplete], ["exited", exitCode, undefined]);
  assert.ok(rec.startedAt, "the record says the command started");
  const logs = await moat(["logs", String(rec.id)], { home: c.home });
  assert.equal(logs.out, SLOW_OUT);
  assert.equal(logs.stderr, "err\n");
}

Deno.test("a start answered after its budget ran out, by an engine that did start it: a normal run", async () => {
  await withProxy(async (c) => {
    c.proxy.inject("POST /containers/:id/start", { kind: "delay", ms: 3000, hold: "response" });
    const r = await runSlow(c, { MOAT_ENGINE_START_TIMEOUT: "1" });
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.out, SLOW_OUT);
    assert.equal(r.stderr, "err\n");
    await assertRecorded(c, 3);
  });
});

Deno.test("a start the engine never got within the budget: reported as not started, container removed", async () => {
  await withProxy(async (c) => {
    // Held in the proxy past the budget; the proxy lets it through once moat has given up.
    c.proxy.inject("POST /containers/:id/start", { kind: "delay", ms: 4000 });
    const r = await runSlow(c, { MOAT_ENGINE_START_TIMEOUT: "1" });
    assert.equal(r.code, 125, r.stderr);
    assert.equal(r.out, "");
    assert.match(r.stderr, /^moat: The engine did not start container [0-9a-f]{12}: .*took longer than 1 s/);
    const rec = await onlyRecord(c.home);
    assert.deepEqual([rec.state, rec.startedAt, rec.exitCode], ["failed", null, null]);
  });
});

Deno.test("a create whose reply is lost: the container the engine made is removed by name", async () => {
  await withProxy(async (c) => {
    c.proxy.inject("POST /containers/create", { kind: "reset", forward: true });
    const r = await runSlow(c);
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, /closed the connection/);
    const deletes = c.proxy.calls().filter((x) => x.startsWith("DELETE /containers/moat-"));
    assert.equal(deletes.length, 1, c.proxy.calls().join("\n"));
  });
});

const waitFaults: Array<[string, Parameters<FaultProxy["inject"]>[1]]> = [
  ["lost after its head, while the command runs", { kind: "truncate", bytes: 0, of: "payload" }],
  ["cut inside its body", { kind: "truncate", bytes: 5, of: "payload" }],
];
for (const [label, fault] of waitFaults) {
  Deno.test(`a wait reply ${label}: the exit code still comes from the engine`, async () => {
    await withProxy(async (c) => {
      c.proxy.inject("POST /containers/:id/wait", fault, { nth: 1 });
      const r = await runSlow(c);
      assert.equal(r.code, 3, r.stderr);
      assert.equal(r.out, SLOW_OUT);
      await assertRecorded(c, 3);
    });
  });
}

const attachFaults: Array<[string, Parameters<FaultProxy["inject"]>[1]]> = [
  ["ends while the command runs", { kind: "end-early", bytes: 100 }],
  ["stays open and silent from the middle on, past the exit", { kind: "stall", bytes: 150, of: "payload" }],
  ["carries a corrupt frame header", { kind: "corrupt-frame", frame: 5 }],
];
for (const [label, fault] of attachFaults) {
  Deno.test(`an attach stream that ${label}: every byte still arrives once, from the engine's log`, async () => {
    await withProxy(async (c) => {
      c.proxy.inject("POST /containers/:id/attach", fault);
      const r = await runSlow(c);
      assert.equal(r.code, 3, r.stderr);
      assert.equal(r.out, SLOW_OUT);
      assert.equal(r.stderr, "err\n");
      await assertRecorded(c, 3);
      assert.ok(
        c.proxy.calls().some((x) => /^GET \/containers\/[0-9a-f]+\/logs$/.test(x)),
        "the log was read",
      );
    });
  });
}

Deno.test("a broken attach stream whose log the engine cannot give: the run says its output is incomplete", async () => {
  await withProxy(async (c) => {
    c.proxy.inject("POST /containers/:id/attach", { kind: "end-early", bytes: 100 });
    c.proxy.inject("GET /containers/:id/logs", { kind: "status", status: 501, message: "no log for you" });
    const r = await runSlow(c);
    assert.equal(r.code, 3, r.stderr);
    assert.ok(SLOW_OUT.startsWith(r.out) && r.out.length < SLOW_OUT.length, r.out);
    assert.match(
      r.stderr,
      /^moat: warning: the output of run [0-9a-f]{12} is incomplete: the output stream ended (inside a frame|while the container was running), and its log could not be read: .*no log for you$/m,
    );
    const rec = await onlyRecord(c.home);
    assert.deepEqual([rec.state, rec.exitCode], ["exited", 3]);
    assert.match(String(rec.outputIncomplete), /no log for you/);
  });
});

Deno.test("a -t run whose stream ends early gets the rest from its log", async () => {
  await withProxy(async (c) => {
    c.proxy.inject("POST /containers/:id/attach", { kind: "end-early", bytes: 60 });
    // -t needs a terminal on stdin: `script` gives moat one.
    const cmd =
      `DOCKER_HOST=${c.proxy.dockerHost} MOAT_HOME=${c.home} MOAT_STANDBY=0 ${Deno.execPath()} run -A ${
        new URL("../../main.ts", import.meta.url).pathname
      } run -t --network default --image ${TEST_IMAGE} ${c.ws} -- sh -c '${SLOW}'`;
    const out = await new Deno.Command("script", {
      args: ["-qec", cmd, "/dev/null"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 3, text);
    // The terminal shows the spinner first (stderr is the same terminal), then the command's output.
    assert.equal(text.slice(text.indexOf("line 0")).replace(/\r+\n/g, "\n"), SLOW_OUT + "err\n");
    assert.deepEqual(await containersFor(c.ws), []);
  });
});

Deno.test("a detached run whose followed log ends early or stalls is recorded whole by its recorder", async () => {
  for (
    const fault of [{ kind: "end-early", bytes: 80 }, { kind: "stall", bytes: 120, of: "payload" }] as const
  ) {
    await withProxy(async (c) => {
      c.proxy.inject("GET /containers/:id/logs", fault, {
        nth: 1,
        when: (q) => q.query.get("follow") === "1",
      });
      const r = await c.run(["run", "-d", "--image", TEST_IMAGE, c.ws, "--", "sh", "-c", SLOW]);
      assert.equal(r.code, 0, r.stderr);
      const id = r.out.trim();
      const followed = await moat(["logs", "-f", id], { home: c.home });
      assert.equal(followed.out, SLOW_OUT, fault.kind);
      await assertRecorded(c, 3);
      assert.deepEqual(await containersFor(c.ws), []);
    });
  }
});
