/**
 * tests/fault_proxy.ts in front of the real engine: what passes through it arrives intact (a ping, a run
 * with stdin, output and exit code, its logs, a black-box `moat run`), and each fault is seen by moat's
 * client as the proxy's documentation says. Containers are labelled per test and removed after it.
 */
import assert from "node:assert/strict";
import { DockerClient } from "../../lib/docker/client.ts";
import type { AttachStream } from "../../lib/docker/containers.ts";
import { Demuxer, DemuxError } from "../../lib/docker/demux.ts";
import { readAll } from "../../lib/docker/http.ts";
import { unixTransport } from "../../lib/docker/transport.ts";
import type { ContainerCreateBody } from "../../lib/docker/types.ts";
import { EngineApiError, EngineUnavailableError } from "../../lib/errors.ts";
import { concat } from "../fake_engine.ts";
import { FaultProxy } from "../fault_proxy.ts";
import { docker, moat, requireEngine, TEST_IMAGE, withScratch } from "./helpers.ts";
import { rejection } from "../rejection.ts";

await requireEngine();

const enc = new TextEncoder();
const dec = new TextDecoder();
const LABEL = "dev.moat.test.fault-proxy";

/** One bound for every call, short or load-dependent: these tests time the proxy, not the engine. */
function clientFor(proxy: FaultProxy, timeoutMs = 20_000): DockerClient {
  return new DockerClient(unixTransport(proxy.endpoint), { timeoutMs, startTimeoutMs: timeoutMs });
}

/** A test's containers: a create body carrying its label, a unique name, and removal of all of them after. */
async function withContainers(
  fn: (
    t: { body(cmd: string, opts?: { stdin?: boolean }): ContainerCreateBody; name(): string },
  ) => Promise<void>,
): Promise<void> {
  const tag = crypto.randomUUID().slice(0, 12);
  let n = 0;
  try {
    await fn({
      body: (cmd, opts = {}) => ({
        Image: TEST_IMAGE,
        Cmd: ["sh", "-c", cmd],
        Labels: { [LABEL]: tag },
        ...(opts.stdin ? { OpenStdin: true, StdinOnce: true, AttachStdin: true } : {}),
        HostConfig: { Runtime: "runsc" },
      }),
      name: () => `moat-fault-proxy-${tag}-${++n}`,
    });
  } finally {
    const ids = (await docker("ps", "-aq", "--filter", `label=${LABEL}=${tag}`)).split("\n").filter(Boolean);
    if (ids.length > 0) await docker("rm", "-f", ...ids);
  }
}

/** What `docker inspect` (an independent client) says of a container's state; undefined if it is absent. */
async function stateOf(nameOrId: string): Promise<string | undefined> {
  const out = await docker("inspect", "--format", "{{.State.Status}}", nameOrId).catch(() => undefined);
  return out?.trim();
}

/** Read an attach (or any multiplexed stream) to its end: raw bytes, and text per stream. */
async function drainAttach(attach: AttachStream): Promise<{ raw: Uint8Array; out: string; err: string }> {
  const parts: Uint8Array[] = [];
  for (let p = await attach.reader.readSome(); p !== null; p = await attach.reader.readSome()) {
    parts.push(p.slice());
  }
  const raw = concat(...parts);
  return { raw, ...demuxText(raw) };
}

function demuxText(raw: Uint8Array): { out: string; err: string } {
  const d = new Demuxer();
  const out: Uint8Array[] = [], err: Uint8Array[] = [];
  for (const f of d.push(raw)) (f.stream === 2 ? err : out).push(f.data.slice());
  assert.deepEqual(d.end(), { truncated: false });
  return { out: dec.decode(concat(...out)), err: dec.decode(concat(...err)) };
}

const SEQ = Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join("");

Deno.test("the engine's ping and info pass through the proxy, and each call is recorded", async () => {
  await using proxy = await FaultProxy.start();
  const client = clientFor(proxy);
  const ping = await client.systemPing();
  const info = await client.systemInfo();
  const direct = new DockerClient(unixTransport({ kind: "unix", path: proxy.upstream, source: "default" }), {
    timeoutMs: 20_000,
  });
  assert.deepEqual(ping, await direct.systemPing());
  assert.equal(info.ServerVersion, (await direct.systemInfo()).ServerVersion);
  assert.ok(info.Runtimes?.["runsc"]);
  assert.deepEqual(proxy.calls(), ["GET /_ping", "GET /info"]);
  assert.deepEqual(proxy.requests.map((r) => r.status), [200, 200]);
  assert.equal(proxy.requests[1]!.version, ping.apiVersion);
});

Deno.test("a run through the proxy keeps stdin, its EOF, the output and the exit code intact; so do its logs", async () => {
  await using proxy = await FaultProxy.start();
  const client = clientFor(proxy);
  await withContainers(async (t) => {
    const { Id: id } = await client.containerCreate(
      t.body("cat; seq 1 20000; printf 'err\\000\\377' >&2; exit 3", { stdin: true }),
    );
    const attach = await client.containerAttach(id, { stdin: true });
    try {
      const wait = await client.containerWait(id);
      try {
        await client.containerStart(id);
        await attach.write(enc.encode("hello\n"));
        await attach.closeWrite();
        const { out, err } = await drainAttach(attach);
        assert.equal(out, "hello\n" + SEQ);
        assert.equal(err, "err\u0000\ufffd");
        assert.equal((await wait.result).StatusCode, 3);
      } finally {
        wait.close();
      }
    } finally {
      attach.close();
    }
    const logs = await client.containerLogs(id, { follow: false });
    try {
      const { out } = demuxText(await readAll(logs.body));
      assert.equal(out, "hello\n" + SEQ, "the logs, a chunked body, arrive whole");
    } finally {
      logs.close();
    }
    assert.deepEqual(proxy.calls().slice(1).map((c) => c.replace(id, ":id")), [
      "POST /containers/create",
      "POST /containers/:id/attach",
      "POST /containers/:id/wait",
      "POST /containers/:id/start",
      "GET /containers/:id/logs",
    ]);
  });
});

Deno.test("status: an injected 500 on start leaves the container created; with forward, a create's answer is replaced", async () => {
  await using proxy = await FaultProxy.start();
  const client = clientFor(proxy);
  await withContainers(async (t) => {
    proxy.inject("POST /containers/create", { kind: "status", status: 500, message: "lost", forward: true }, {
      nth: 1,
    });
    const name = t.name();
    const err = await rejection(client.containerCreate(t.body("true"), name), EngineApiError);
    assert.equal(err.status, 500);
    assert.equal(err.daemonMessage, "lost");
    assert.equal(proxy.requestsTo("POST /containers/create")[0]!.status, 201, "the engine created it");
    assert.equal(await stateOf(name), "created");

    const { Id: id } = await client.containerCreate(t.body("true"));
    proxy.inject("POST /containers/:id/start", { kind: "status", status: 500 });
    const start = await rejection(client.containerStart(id), EngineApiError);
    assert.equal(start.status, 500);
    assert.equal(await stateOf(id), "created", "the engine never saw the start");
  });
});

Deno.test("reset with forward loses the reply of a create the engine made; without, the engine sees nothing", async () => {
  await using proxy = await FaultProxy.start();
  const client = clientFor(proxy);
  await withContainers(async (t) => {
    proxy.inject("POST /containers/create", { kind: "reset" }, { nth: 1 });
    proxy.inject("POST /containers/create", { kind: "reset", forward: true }, { nth: 2 });
    const before = t.name(), after = t.name();
    assert.equal(
      (await rejection(client.containerCreate(t.body("true"), before), EngineUnavailableError)).reason,
      "closed",
    );
    assert.equal(await stateOf(before), undefined);
    assert.equal(
      (await rejection(client.containerCreate(t.body("true"), after), EngineUnavailableError)).reason,
      "closed",
    );
    assert.equal(await stateOf(after), "created");
  });
});

Deno.test("delay: a held create never reaches the engine; one whose answer is held past the timeout was made", async () => {
  await using proxy = await FaultProxy.start();
  await withContainers(async (t) => {
    proxy.inject("POST /containers/create", { kind: "delay", ms: 600_000 }, { nth: 1 });
    proxy.inject("POST /containers/create", { kind: "delay", ms: 600_000, hold: "response" }, { nth: 2 });
    const client = clientFor(proxy, 2000);
    const [before, after] = [t.name(), t.name()];
    const a = await rejection(client.containerCreate(t.body("true"), before), EngineUnavailableError);
    assert.equal(a.reason, "timeout");
    const b = await rejection(client.containerCreate(t.body("true"), after), EngineUnavailableError);
    assert.equal(b.reason, "timeout");
    assert.deepEqual(proxy.requestsTo("POST /containers/create").map((r) => r.status), [undefined, 201]);
    assert.equal(await stateOf(before), undefined);
    assert.equal(await stateOf(after), "created");
  });
});

Deno.test("truncate and garble: cut or unreadable replies are engine errors for the client", async () => {
  await using proxy = await FaultProxy.start();
  const client = clientFor(proxy);
  await client.systemPing();
  proxy.inject("GET /containers/json", { kind: "truncate", bytes: 1 }, { nth: 1 });
  proxy.inject("GET /containers/json", { kind: "truncate", bytes: 12, of: "response" }, { nth: 2 });
  proxy.inject("GET /containers/json", { kind: "garble" }, { nth: 3 });
  const a = await rejection(client.containerList([`${LABEL}=none`]), EngineUnavailableError);
  assert.equal(a.reason, "closed");
  assert.match(a.message, /body ended after 1 of \d+ bytes|connection closed inside a (line|chunk)/);
  const b = await rejection(client.containerList([`${LABEL}=none`]), EngineUnavailableError);
  assert.match(b.message, /connection closed inside a response head/);
  const c = await rejection(client.containerList([`${LABEL}=none`]), EngineUnavailableError);
  assert.match(c.message, /GET \/containers\/json answered with unreadable JSON: "\["/);
  assert.deepEqual(await client.containerList([`${LABEL}=none`]), []);
});

Deno.test("stall: an attach's output is held while the container runs and after it exits, then released", async () => {
  await using proxy = await FaultProxy.start();
  const client = clientFor(proxy);
  await withContainers(async (t) => {
    const { Id: id } = await client.containerCreate(t.body("echo hi; echo there >&2"));
    const stall = proxy.inject("POST /containers/:id/attach", { kind: "stall", of: "body", bytes: 0 });
    const attach = await client.containerAttach(id, { stdin: false });
    try {
      const wait = await client.containerWait(id);
      await client.containerStart(id);
      assert.equal((await wait.result).StatusCode, 0);
      wait.close();
      await stall.upstreamEnded;
      assert.equal(attach.reader.buffered, 0);
      const pending = Symbol("pending");
      const first = attach.reader.readSome();
      assert.equal(await Promise.race([first, new Promise((r) => setTimeout(() => r(pending), 0))]), pending);
      stall.release();
      const rest = await drainAttach(attach);
      const all = concat((await first)!.slice(), rest.raw);
      assert.deepEqual(demuxText(all), { out: "hi\n", err: "there\n" });
    } finally {
      attach.close();
    }
  });
});

Deno.test("corrupt-frame: moat's demuxer stops at the chosen frame of a logs body and of an attach", async () => {
  await using proxy = await FaultProxy.start();
  const client = clientFor(proxy);
  await withContainers(async (t) => {
    const { Id: id } = await client.containerCreate(t.body("echo one; echo two; echo three"));
    proxy.inject("POST /containers/:id/attach", { kind: "corrupt-frame", frame: 1 });
    const attach = await client.containerAttach(id, { stdin: false });
    try {
      const wait = await client.containerWait(id);
      await client.containerStart(id);
      await wait.result;
      wait.close();
      const { raw } = await (async () => {
        const parts: Uint8Array[] = [];
        for (let p = await attach.reader.readSome(); p !== null; p = await attach.reader.readSome()) {
          parts.push(p.slice());
        }
        return { raw: concat(...parts) };
      })();
      assert.equal(raw[0], 0x01 ^ 0xff);
      assert.throws(() => new Demuxer().push(raw), DemuxError);
    } finally {
      attach.close();
    }

    proxy.inject("GET /containers/:id/logs", { kind: "corrupt-frame", frame: 2 });
    const logs = await client.containerLogs(id, { follow: false });
    try {
      const d = new Demuxer();
      const got: string[] = [];
      await assert.rejects(async () => {
        for await (const part of logs.body) for (const f of d.push(part)) got.push(dec.decode(f.data));
      }, DemuxError);
      assert.deepEqual(got, ["one\n"]);
    } finally {
      logs.close();
    }
  });
});

Deno.test("end-early: an attach or a followed log ends for the client while the container runs on", async () => {
  await using proxy = await FaultProxy.start();
  const client = clientFor(proxy);
  await withContainers(async (t) => {
    const { Id: id } = await client.containerCreate(t.body("while true; do echo tick; sleep 0.2; done"));
    const cut = proxy.inject("POST /containers/:id/attach", { kind: "end-early", bytes: 13 });
    const attach = await client.containerAttach(id, { stdin: false });
    try {
      await client.containerStart(id);
      const { raw } = await drainAttach(attach);
      assert.deepEqual(demuxText(raw), { out: "tick\n", err: "" });
      await cut.fired;
    } finally {
      attach.close();
    }
    proxy.inject("GET /containers/:id/logs", { kind: "end-early", bytes: 13 });
    const logs = await client.containerLogs(id, { follow: true });
    const got: Uint8Array[] = [];
    try {
      await rejection(
        (async () => {
          for await (const part of logs.body) got.push(part.slice());
        })(),
        EngineUnavailableError,
      );
    } finally {
      logs.close();
    }
    assert.deepEqual(demuxText(concat(...got)), { out: "tick\n", err: "" });
    assert.equal(await stateOf(id), "running");
  });
});

Deno.test("moat run with DOCKER_HOST at the proxy prints the command's output intact", async () => {
  await using proxy = await FaultProxy.start();
  await withScratch(async (s) => {
    const r = await moat(["run", "--image", TEST_IMAGE, s.ws, "--", "sh", "-c", "seq 1 20000; echo e >&2"], {
      home: s.home,
      env: { DOCKER_HOST: proxy.dockerHost },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, SEQ);
    assert.equal(r.stderr, "e\n");
    // The run's own network (no network settings: nothing allowed) and its relay, then the sandbox.
    const calls = proxy.calls();
    for (
      const [call, n] of [
        ["POST /networks/create", 1],
        ["POST /containers/create", 2],
        ["POST /containers/:id/attach", 1],
        ["POST /containers/:id/start", 2],
        ["DELETE /containers/:id", 2],
        ["DELETE /networks/:id", 1],
      ] as const
    ) {
      assert.equal(proxy.requestsTo(call).length, n, `${call} in ${calls.join(", ")}`);
    }
  });
});
