/**
 * tests/fault_proxy.ts against the fake engine as its upstream: the bytes it relays (compared with the
 * same exchange made directly), the 101 upgrade and half-close, and where each fault lands, at every split
 * point of a chunked stream. The real engine's side is tests/engine/fault_proxy_test.ts.
 */
import assert from "node:assert/strict";
import { DockerClient } from "../lib/docker/client.ts";
import { BufferedReader, readBody } from "../lib/docker/http.ts";
import { unixTransport } from "../lib/docker/transport.ts";
import { EngineApiError, EngineUnavailableError } from "../lib/errors.ts";
import { concat, FakeEngine, frame } from "./fake_engine.ts";
import { FaultProxy } from "./fault_proxy.ts";
import { rejection } from "./rejection.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One raw exchange: write `request` (then half-close, if asked), read until the peer closes. */
async function exchange(path: string, request: string | Uint8Array, halfClose = false): Promise<Uint8Array> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    const bytes = typeof request === "string" ? enc.encode(request) : request;
    let off = 0;
    while (off < bytes.byteLength) off += await conn.write(bytes.subarray(off));
    if (halfClose) await conn.closeWrite();
    const parts: Uint8Array[] = [];
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await conn.read(buf).catch((err) => {
        if (err instanceof Deno.errors.ConnectionReset) return null;
        throw err;
      });
      if (n === null) break;
      parts.push(buf.slice(0, n));
    }
    return concat(...parts);
  } finally {
    conn.close();
  }
}

function headEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.byteLength; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) return i + 4;
  }
  return -1;
}

/** The de-chunked body of a raw chunked response, and whether it ended properly (cut responses do not). */
async function chunkedPayload(raw: Uint8Array): Promise<{ payload: Uint8Array; complete: boolean }> {
  const body = raw.subarray(headEnd(raw));
  let given = false;
  const reader = new BufferedReader({
    read(p) {
      if (given) return Promise.resolve(null);
      given = true;
      p.set(body);
      return Promise.resolve(body.byteLength);
    },
  });
  const parts: Uint8Array[] = [];
  try {
    for await (const part of readBody(reader, { kind: "chunked" })) parts.push(part.slice());
    return { payload: concat(...parts), complete: true };
  } catch {
    return { payload: concat(...parts), complete: false };
  }
}

function get(path: string): string {
  return `GET /v1.44${path} HTTP/1.1\r\nHost: api.moby.localhost\r\nConnection: close\r\n\r\n`;
}

function clientFor(proxy: FaultProxy, timeoutMs = 2000): DockerClient {
  return new DockerClient(unixTransport(proxy.endpoint), { timeoutMs });
}

/** A multiplexed logs body of three frames (12, 13 and 14 bytes). */
const FRAMES = concat(frame(1, "one\n"), frame(2, "two!\n"), frame(1, "three\n"));

/** A fake engine whose logs answer FRAMES chunked, split at the byte offset given as `?split=`. */
async function logsEngine(): Promise<FakeEngine> {
  const engine = await FakeEngine.start();
  engine.on("GET /containers/:id/logs", async (req, res) => {
    const split = Number(req.query.get("split") ?? "0");
    await res.chunked(200, FRAMES, {
      splitAt: [split],
      headers: { "Content-Type": "application/vnd.docker.multiplexed-stream" },
    });
  });
  return engine;
}

// --- passthrough -----------------------------------------------------------------------------------------

Deno.test("the proxy relays requests and chunked, sized, close-delimited and empty replies byte for byte", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/:id/logs", async (_req, res) => {
    await res.head(200, { "Content-Type": "text/plain", "Transfer-Encoding": "chunked" });
    await res.write("3;ext=1\r\nabc\r\n");
    await res.write("A\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n");
  });
  engine.on("POST /containers/create", { status: 201, json: { Id: "abc", Warnings: [] } });
  engine.on("GET /containers/:id/archive", async (_req, res) => {
    await res.head(200, { "Content-Type": "application/x-tar" });
    await res.write(new Uint8Array([0, 1, 2, 255, 13, 10, 13, 10]));
  });
  engine.on("POST /containers/:id/start", { status: 204 });
  await using proxy = await FaultProxy.start({ upstream: engine.path });

  const body = '{"Image":"x","Cmd":["printf","\\u00ff"]}';
  const requests = [
    "GET /v1.44/containers/abc/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: x\r\nX-Odd-CASE:  v \r\n" +
    "Connection: close\r\n\r\n",
    `POST /v1.44/containers/create?name=n HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${enc.encode(body).byteLength}\r\nConnection: close\r\n\r\n${body}`,
    get("/containers/abc/archive?path=%2Fetc%2Fpasswd"),
    "POST /v1.44/containers/abc/start HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
  ];
  for (const request of requests) {
    const direct = await exchange(engine.path, request);
    const proxied = await exchange(proxy.path, request);
    assert.deepEqual(dec.decode(proxied), dec.decode(direct));
    assert.deepEqual(proxied, direct);
    const [a, b] = engine.requests.slice(-2);
    assert.deepEqual(b!.rawHeaders, a!.rawHeaders);
    assert.equal(b!.target, a!.target);
    assert.deepEqual(b!.body, a!.body);
  }
  assert.deepEqual(proxy.calls(), [
    "GET /containers/abc/logs",
    "POST /containers/create",
    "GET /containers/abc/archive",
    "POST /containers/abc/start",
  ]);
  assert.equal(dec.decode(proxy.requests[1]!.body), body);
  assert.equal(proxy.requests[1]!.query.get("name"), "n");
  assert.deepEqual(proxy.requests.map((r) => r.status), [200, 201, 200, 204]);
});

Deno.test("an attach through the proxy keeps its early bytes, and stdin EOF and the engine's EOF cross it", async () => {
  await using engine = await FakeEngine.start();
  engine.on("POST /containers/:id/attach", async (_req, res) => {
    const h = await res.hijack({ initial: frame(1, "ready\n") });
    const stdin = await h.readToEof(res.delay(5000));
    await h.writeFrame(1, stdin === undefined ? "no EOF seen\n" : `stdin was ${dec.decode(stdin)}`);
  });
  await using proxy = await FaultProxy.start({ upstream: engine.path });
  const attach = await clientFor(proxy).containerAttach("abc", { stdin: true });
  try {
    assert.equal(attach.reader.buffered, 14, "the frame came in the same read as the 101 head");
    await attach.write(enc.encode("hello\n"));
    await attach.closeWrite();
    const out: Uint8Array[] = [];
    for (let p = await attach.reader.readSome(); p !== null; p = await attach.reader.readSome()) {
      out.push(p.slice());
    }
    assert.deepEqual(concat(...out), concat(frame(1, "ready\n"), frame(1, "stdin was hello\n")));
  } finally {
    attach.close();
  }
  assert.deepEqual(proxy.calls(), ["GET /_ping", "POST /containers/abc/attach"]);
  assert.equal(proxy.requests[1]!.status, 101);
});

Deno.test("an engine socket that is missing is a 502 from the proxy, with the path", async () => {
  await using proxy = await FaultProxy.start({ upstream: "/nonexistent/docker.sock" });
  const raw = dec.decode(await exchange(proxy.path, get("/info")));
  assert.match(raw, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
  assert.match(raw, /cannot reach the engine at \/nonexistent\/docker.sock/);
});

// --- selection -------------------------------------------------------------------------------------------

Deno.test("nth, from, times and when pick which matching requests get a fault", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/:id/json", { status: 200, json: { Id: "x" } });
  await using proxy = await FaultProxy.start({ upstream: engine.path });
  const status = (n: number) => ({ kind: "status" as const, status: n });
  const second = proxy.inject("GET /containers/:id/json", status(501), { nth: 2 });
  const fromFourth = proxy.inject("GET /containers/:id/json", status(502), { from: 4, times: 2 });
  proxy.inject("* /containers/:id/json", status(503), { when: (r) => r.query.get("size") === "1" });
  const seen: number[] = [];
  for (let i = 1; i <= 7; i++) {
    const raw = dec.decode(
      await exchange(proxy.path, get(`/containers/c${i}/json${i === 7 ? "?size=1" : ""}`)),
    );
    seen.push(Number(raw.slice(9, 12)));
  }
  assert.deepEqual(seen, [200, 501, 200, 502, 502, 200, 503]);
  assert.equal(second.hits, 1);
  assert.equal(second.seen, 7);
  assert.equal(fromFourth.hits, 2);
  assert.equal(fromFourth.remaining, 0);
  assert.deepEqual(proxy.requests.map((r) => r.fault?.kind === "status" ? r.fault.status : undefined), [
    undefined,
    501,
    undefined,
    502,
    502,
    undefined,
    503,
  ]);
  // The engine saw only the requests that were not answered by the proxy.
  assert.deepEqual(engine.calls(), [
    "GET /containers/c1/json",
    "GET /containers/c3/json",
    "GET /containers/c6/json",
  ]);
});

// --- faults ----------------------------------------------------------------------------------------------

Deno.test("status answers without the engine, or after it with forward; the client reads the message", async () => {
  await using engine = await FakeEngine.start();
  engine.on("POST /containers/:id/start", { status: 204 });
  await using proxy = await FaultProxy.start({ upstream: engine.path });
  proxy.inject("POST /containers/:id/start", { kind: "status", status: 500, message: "no start" }, {
    nth: 1,
  });
  proxy.inject("POST /containers/:id/start", { kind: "status", status: 409, forward: true }, { nth: 2 });
  const client = clientFor(proxy);
  const first = await rejection(client.containerStart("abc"), EngineApiError);
  assert.equal(first.status, 500);
  assert.equal(first.daemonMessage, "no start");
  assert.deepEqual(engine.calls(), ["GET /_ping"]);
  const second = await rejection(client.containerStart("abc"), EngineApiError);
  assert.equal(second.status, 409);
  assert.equal(second.daemonMessage, "fault proxy: injected 409");
  assert.deepEqual(engine.calls(), ["GET /_ping", "POST /containers/abc/start"]);
  assert.equal(proxy.requests[2]!.status, 204, "the engine's own answer is recorded");
});

Deno.test("reset closes without an answer, before the engine or after it answered", async () => {
  await using engine = await FakeEngine.start();
  engine.on("POST /containers/create", { status: 201, json: { Id: "abc", Warnings: [] } });
  await using proxy = await FaultProxy.start({ upstream: engine.path });
  const before = proxy.inject("POST /containers/create", { kind: "reset" }, { nth: 1 });
  proxy.inject("POST /containers/create", { kind: "reset", forward: true }, { nth: 2 });
  const client = clientFor(proxy);
  const body = { Image: "x", HostConfig: {} };
  const a = await rejection(client.containerCreate(body), EngineUnavailableError);
  assert.equal(a.reason, "closed");
  assert.equal((await before.fired).call, "POST /containers/create");
  assert.deepEqual(engine.calls(), ["GET /_ping"]);
  const b = await rejection(client.containerCreate(body), EngineUnavailableError);
  assert.equal(b.reason, "closed");
  assert.deepEqual(engine.calls(), ["GET /_ping", "POST /containers/create"]);
  assert.deepEqual(await client.containerCreate(body), { Id: "abc", Warnings: [] });
});

Deno.test("a delayed request or response head outlasts the client's timeout; close() ends the delay", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", { status: 200, json: { ServerVersion: "25.0.5" } });
  engine.on("GET /containers/:id/json", { status: 200, json: { Id: "x" } });
  await using proxy = await FaultProxy.start({ upstream: engine.path });
  const onRequest = proxy.inject("GET /info", { kind: "delay", ms: 60_000 });
  const onResponse = proxy.inject("GET /containers/:id/json", {
    kind: "delay",
    ms: 60_000,
    hold: "response",
  });
  const client = clientFor(proxy, 300);
  const a = await rejection(client.systemInfo(), EngineUnavailableError);
  assert.equal(a.reason, "timeout");
  await onRequest.fired;
  assert.deepEqual(engine.calls(), ["GET /_ping"], "a held request does not reach the engine");
  const b = await rejection(client.maybeContainerInspect("x"), EngineUnavailableError);
  assert.equal(b.reason, "timeout");
  await onResponse.fired;
  assert.deepEqual(engine.calls(), ["GET /_ping", "GET /containers/x/json"]);
  // A short delay only delays.
  onRequest.remove();
  proxy.inject("GET /info", { kind: "delay", ms: 10 });
  assert.equal((await clientFor(proxy).systemInfo()).ServerVersion, "25.0.5");
});

Deno.test("garble replaces a body, chunked as one chunk or sized with a Content-Length that fits", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", async (_req, res) => {
    await res.chunked(200, '{"ServerVersion":"25.0.5"}\n', { splitAt: [5] });
  });
  engine.on("GET /containers/:id/json", { status: 200, json: { Id: "abcdef" } });
  await using proxy = await FaultProxy.start({ upstream: engine.path });
  proxy.inject("GET /info", { kind: "garble" });
  proxy.inject("GET /containers/:id/json", { kind: "garble", with: (text) => text.replace("abcdef", "é") });
  const info = dec.decode(await exchange(proxy.path, get("/info")));
  assert.match(info, /\r\nTransfer-Encoding: chunked\r\n\r\nd\r\n\{"ServerVersi\r\n0\r\n\r\n$/);
  const direct = dec.decode(await exchange(engine.path, get("/containers/x/json")));
  const garbled = dec.decode(await exchange(proxy.path, get("/containers/x/json")));
  assert.equal(garbled, direct.replace("Content-Length: 16", "Content-Length: 12").replace("abcdef", "é"));
  const err = await rejection(clientFor(proxy).systemInfo(), EngineUnavailableError);
  assert.match(err.message, /GET \/info answered with unreadable JSON: "\{\\"ServerVersi"/);
});

Deno.test("garble relays a chunked head at once: a wait is acknowledged, its result comes garbled", async () => {
  await using engine = await FakeEngine.start();
  const exited = Promise.withResolvers<void>();
  engine.on("POST /containers/:id/wait", async (_req, res) => {
    await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    await exited.promise;
    await res.chunk('{"StatusCode":0}\n');
    await res.endChunks();
  });
  await using proxy = await FaultProxy.start({ upstream: engine.path });
  proxy.inject("POST /containers/:id/wait", { kind: "garble", with: "" }, { nth: 1 });
  proxy.inject("POST /containers/:id/wait", { kind: "garble" }, { nth: 2 });
  for (const expected of [/ended without a result: ""/, /ended without a result: "\{\\"Status"\)$/]) {
    const wait = await clientFor(proxy).containerWait("abc");
    try {
      exited.resolve();
      await assert.rejects(wait.result, expected);
    } finally {
      wait.close();
    }
  }
});

Deno.test("truncate cuts after n bytes of the response, the body or the payload, at every chunk split", async () => {
  await using engine = await logsEngine();
  await using proxy = await FaultProxy.start({ upstream: engine.path });
  for (let split = 1; split < FRAMES.byteLength; split += 3) {
    const direct = await exchange(engine.path, get(`/containers/x/logs?split=${split}`));
    const head = headEnd(direct);
    for (const n of [0, 1, 12, 20, 38]) {
      for (const measure of ["response", "body", "payload"] as const) {
        const bytes = measure === "response" ? head + n : n;
        const injection = proxy.inject("GET /containers/:id/logs", { kind: "truncate", bytes, of: measure });
        const cut = await exchange(proxy.path, get(`/containers/x/logs?split=${split}`));
        injection.remove();
        const where = `split ${split}, ${n} bytes of ${measure}`;
        assert.deepEqual(cut, direct.subarray(0, cut.byteLength), `${where}: a prefix`);
        if (measure !== "payload") assert.equal(cut.byteLength, head + n, where);
        else {
          const { payload, complete } = await chunkedPayload(cut);
          assert.deepEqual(payload, FRAMES.subarray(0, n), where);
          assert.equal(complete, false, where);
          // Cut right after the nth payload byte (for 0: right after the head), not at the next one.
          if (n === 0) assert.equal(cut.byteLength, head, where);
          else {
            const less = await chunkedPayload(cut.subarray(0, cut.byteLength - 1));
            assert.equal(less.payload.byteLength, n - 1, where);
          }
        }
        await injection.fired;
      }
    }
  }
});

Deno.test("corrupt-frame changes one header byte of the chosen frame and nothing else, at every chunk split", async () => {
  await using engine = await logsEngine();
  await using proxy = await FaultProxy.start({ upstream: engine.path });
  const cases = [
    { fault: { frame: 2 }, at: 12, value: 0x02 ^ 0xff },
    { fault: { afterBytes: 1 }, at: 12, value: 0x02 ^ 0xff },
    { fault: { afterBytes: 12 }, at: 12, value: 0x02 ^ 0xff },
    { fault: { afterBytes: 13, byte: 7, value: 0x40 }, at: 25 + 7, value: 0x40 },
    { fault: { frame: 1, byte: 1 }, at: 1, value: 0xff },
  ];
  for (let split = 1; split < FRAMES.byteLength; split++) {
    const direct = await exchange(engine.path, get(`/containers/x/logs?split=${split}`));
    for (const c of cases) {
      const injection = proxy.inject("GET /containers/:id/logs", { kind: "corrupt-frame", ...c.fault });
      const proxied = await exchange(proxy.path, get(`/containers/x/logs?split=${split}`));
      injection.remove();
      const where = `split ${split}, ${JSON.stringify(c.fault)}`;
      assert.equal(proxied.byteLength, direct.byteLength, where);
      const diffs = [...proxied.keys()].filter((i) => proxied[i] !== direct[i]);
      assert.equal(diffs.length, 1, `${where}: one byte differs`);
      const { payload, complete } = await chunkedPayload(proxied);
      assert.equal(complete, true, where);
      const expected = FRAMES.slice();
      expected[c.at] = c.value;
      assert.deepEqual(payload, expected, where);
      await injection.fired;
    }
  }
});

Deno.test("stall holds a reply after its head, notes the engine's end, and release sends the rest", async () => {
  await using engine = await FakeEngine.start();
  engine.on("POST /containers/:id/wait", async (_req, res) => {
    await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    await res.chunk('{"StatusCode":7}\n');
    await res.endChunks();
  });
  await using proxy = await FaultProxy.start({ upstream: engine.path });
  const stall = proxy.inject("POST /containers/:id/wait", { kind: "stall", of: "body", bytes: 0 });
  const wait = await clientFor(proxy, 0).containerWait("abc");
  try {
    await stall.fired;
    await stall.upstreamEnded;
    const pending = Symbol("pending");
    // Nothing after the head left the proxy, so nothing can have settled the result.
    assert.equal(
      await Promise.race([wait.result, new Promise((r) => setTimeout(() => r(pending), 0))]),
      pending,
    );
    stall.release();
    assert.deepEqual(await wait.result, { StatusCode: 7 });
  } finally {
    wait.close();
  }
});

Deno.test("a stall that is never released ends with close(), the client's connection open until then", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", { status: 200, json: {} });
  const proxy = await FaultProxy.start({ upstream: engine.path });
  const stall = proxy.inject("GET /info", { kind: "stall" });
  const reply = exchange(proxy.path, get("/info"));
  await stall.fired;
  await stall.upstreamEnded;
  await proxy.close();
  assert.deepEqual(await reply, new Uint8Array(0), "nothing at all was sent");
});

Deno.test("end-early closes the client after n stream bytes while the engine's side stays open", async () => {
  await using engine = await FakeEngine.start();
  const clientSawEnd = Promise.withResolvers<void>();
  const lateWrite = Promise.withResolvers<unknown>();
  engine.on("POST /containers/:id/attach", async (_req, res) => {
    const h = await res.hijack({ initial: FRAMES });
    await clientSawEnd.promise;
    // The proxy still reads the engine's side: this write does not fail.
    lateWrite.resolve(await h.writeFrame(1, "later\n").then(() => "ok", (err) => err));
  });
  await using proxy = await FaultProxy.start({ upstream: engine.path });
  const end = proxy.inject("POST /containers/:id/attach", { kind: "end-early", bytes: 20 });
  const attach = await clientFor(proxy).containerAttach("abc", { stdin: false });
  try {
    const out: Uint8Array[] = [];
    for (let p = await attach.reader.readSome(); p !== null; p = await attach.reader.readSome()) {
      out.push(p.slice());
    }
    assert.deepEqual(concat(...out), FRAMES.subarray(0, 20));
    await end.fired;
  } finally {
    attach.close();
  }
  clientSawEnd.resolve();
  assert.equal(await lateWrite.promise, "ok");
});
