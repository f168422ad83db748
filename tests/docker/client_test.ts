import assert from "node:assert/strict";
import {
  clientFromEnv,
  DockerClient,
  engineStartTimeoutMs,
  engineTimeoutMs,
} from "../../lib/docker/client.ts";
import { firstTarEntry } from "../../lib/docker/containers.ts";
import { Demuxer, type StreamType } from "../../lib/docker/demux.ts";
import type { BufferedReader } from "../../lib/docker/http.ts";
import { splitImageReference } from "../../lib/docker/images.ts";
import { unixTransport } from "../../lib/docker/transport.ts";
import {
  EngineApiError,
  EngineUnavailableError,
  InterruptedError,
  MoatError,
  UsageError,
} from "../../lib/errors.ts";
import { concat, FakeEngine, frame } from "../fake_engine.ts";
import { rejection } from "../rejection.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function clientFor(engine: FakeEngine, timeoutMs = 2000): DockerClient {
  return new DockerClient(unixTransport(engine.endpoint), { timeoutMs });
}

function clientAt(path: string, timeoutMs = 2000): DockerClient {
  return new DockerClient(unixTransport({ kind: "unix", path, source: "DOCKER_HOST" }), { timeoutMs });
}

/** Read a hijacked stream to EOF and demux it into text per stream. */
async function drain(reader: BufferedReader): Promise<Record<StreamType, string>> {
  const d = new Demuxer();
  const out: Record<StreamType, Uint8Array[]> = { 0: [], 1: [], 2: [], 3: [] };
  for (let part = await reader.readSome(); part !== null; part = await reader.readSome()) {
    for (const f of d.push(part)) out[f.stream].push(f.data.slice());
  }
  assert.deepEqual(d.end(), { truncated: false });
  const text = (s: StreamType) => dec.decode(concat(...out[s]));
  return { 0: text(0), 1: text(1), 2: text(2), 3: text(3) };
}

const INFO = {
  ServerVersion: "25.0.5",
  Runtimes: { runc: { path: "runc" }, runsc: { path: "/usr/bin/runsc" } },
};

// --- version negotiation ---------------------------------------------------------------------------------

Deno.test("the client uses the engine's version when it is under ours (1.41 → /v1.41/)", async () => {
  await using engine = await FakeEngine.start({ apiVersion: "1.41" });
  engine.on("GET /info", { status: 200, json: INFO });
  const client = clientFor(engine);
  assert.deepEqual(await client.systemPing(), {
    apiVersion: "1.41",
    serverApiVersion: "1.41",
    server: "Docker/25.0.5 (linux)",
  });
  assert.deepEqual(await client.systemInfo(), INFO);
  assert.deepEqual(engine.calls(), ["GET /_ping", "GET /info"]);
  assert.equal(engine.requests[0]!.target, "/_ping");
  assert.equal(engine.requests[0]!.version, undefined);
  assert.equal(engine.requests[1]!.target, "/v1.41/info");
});

Deno.test("the client caps the version at its own max (engine 1.51 → /v1.44/)", async () => {
  await using engine = await FakeEngine.start({ apiVersion: "1.51" });
  engine.on("GET /info", { status: 200, json: INFO });
  const client = clientFor(engine);
  await client.systemInfo();
  assert.deepEqual(engine.requests.map((r) => r.target), ["/_ping", "/v1.44/info"]);
  assert.equal((await client.systemPing()).serverApiVersion, "1.51");
});

Deno.test("the client refuses an engine older than 1.40 before sending anything else", async () => {
  await using engine = await FakeEngine.start({ apiVersion: "1.39" });
  engine.on("GET /info", { status: 200, json: INFO });
  const err = await rejection(clientFor(engine).systemInfo(), MoatError);
  assert.ok(!(err instanceof EngineApiError) && !(err instanceof EngineUnavailableError), err.name);
  assert.match(err.message, /1\.39/);
  assert.match(err.message, /1\.40/);
  assert.ok(err.hint);
  assert.deepEqual(engine.calls(), ["GET /_ping"]);
});

Deno.test("the client uses its max version when /_ping has no Api-Version", async () => {
  await using engine = await FakeEngine.start({ apiVersion: null });
  engine.on("GET /info", { status: 200, json: INFO });
  const client = clientFor(engine);
  await client.systemInfo();
  assert.equal(engine.requests[0]!.headers["api-version"], undefined);
  assert.deepEqual(engine.requests.map((r) => r.target), ["/_ping", "/v1.44/info"]);
  assert.equal((await client.systemPing()).serverApiVersion, undefined);
});

Deno.test("the client pings once however many calls start together", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", { status: 200, json: INFO });
  engine.on("GET /images/:name/json", { status: 200, json: { Id: "sha256:1" } });
  engine.on("GET /containers/json", { status: 200, json: [] });
  const client = clientFor(engine);
  await Promise.all([client.systemInfo(), client.maybeImageInspect("alpine"), client.containerList(["a=b"])]);
  await client.maybeImageInspect("busybox");
  await client.systemPing();
  assert.equal(engine.requestsTo("GET /_ping").length, 1);
  assert.equal(engine.requests.length, 5);
});

Deno.test("a pinned API version skips the ping", async () => {
  await using engine = await FakeEngine.start({ apiVersion: "1.51" });
  engine.on("GET /info", { status: 200, json: INFO });
  const pinned = new DockerClient(unixTransport(engine.endpoint), { timeoutMs: 2000, apiVersion: "1.41" });
  await pinned.systemInfo();
  const fromEnv = clientFromEnv({ DOCKER_HOST: `unix://${engine.path}`, DOCKER_API_VERSION: "1.42" });
  await fromEnv.systemInfo();
  assert.deepEqual(engine.requests.map((r) => r.target), ["/v1.41/info", "/v1.42/info"]);
});

Deno.test("a /_ping that fails with an Api-Version still settles the version", async () => {
  // The daemon answers 500 with the usual headers when unhealthy (swagger SystemPing).
  await using engine = await FakeEngine.start({ apiVersion: "1.43" });
  engine.on("GET /_ping", { status: 500, json: { message: "unhealthy" } });
  engine.on("GET /info", { status: 200, json: INFO });
  await clientFor(engine).systemInfo();
  assert.deepEqual(engine.requests.map((r) => r.target), ["/_ping", "/v1.43/info"]);
});

Deno.test("a /_ping that fails without an Api-Version is an engine error on /_ping", async () => {
  await using engine = await FakeEngine.start({ apiVersion: null });
  engine.on("GET /_ping", { status: 500, text: "Service not ready\n" });
  const err = await rejection(clientFor(engine).systemInfo(), EngineApiError);
  assert.equal(err.status, 500);
  assert.equal(err.method, "GET");
  assert.equal(err.path, "/_ping");
  assert.equal(err.daemonMessage, "Service not ready");
  assert.deepEqual(engine.calls(), ["GET /_ping"]);
});

Deno.test("a failed ping is retried by the next call, then remembered", async () => {
  await using engine = await FakeEngine.start({ apiVersion: "1.44" });
  let pings = 0;
  engine.on("GET /_ping", async (_req, res) => {
    if (++pings === 1) return res.close(); // hang up without answering
    await res.text(200, "OK");
  });
  engine.on("GET /info", { status: 200, json: INFO });
  const client = clientFor(engine);
  const err = await rejection(client.systemInfo(), EngineUnavailableError);
  assert.equal(err.reason, "closed");
  assert.deepEqual(await client.systemInfo(), INFO);
  await client.maybeImageInspect("x");
  assert.equal(pings, 2);
});

// --- /info -----------------------------------------------------------------------------------------------

Deno.test("systemInfo asks the engine once for two calls", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", { status: 200, json: INFO });
  const client = clientFor(engine);
  const [a, b] = await Promise.all([client.systemInfo(), client.systemInfo()]);
  const c = await client.systemInfo();
  assert.deepEqual(a, INFO);
  assert.equal(a, b);
  assert.equal(a, c);
  assert.equal(engine.requestsTo("GET /info").length, 1);
});

Deno.test("an /info slower than the timeout is EngineUnavailableError timeout, and is not cached", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", async (_req, res) => {
    await res.delay(2000);
    await res.json(200, INFO);
  });
  const client = clientFor(engine, 200);
  const err = await rejection(client.systemInfo(), EngineUnavailableError);
  assert.equal(err.reason, "timeout");
  assert.equal(err.endpoint, `unix://${engine.path}`);
  assert.match(err.message, /did not answer in time/);
  assert.match(err.hint ?? "", /MOAT_ENGINE_TIMEOUT/);
  engine.on("GET /info", { status: 200, json: INFO });
  assert.deepEqual(await client.systemInfo(), INFO);
  assert.equal(engine.requestsTo("GET /info").length, 2);
});

Deno.test("an /info whose body stalls after the head is a timeout too", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", async (_req, res) => {
    await res.head(200, { "Content-Type": "application/json", "Content-Length": "100" });
    await res.write('{"ServerVersion":');
    await res.delay(2000);
  });
  const err = await rejection(clientFor(engine, 200).systemInfo(), EngineUnavailableError);
  assert.equal(err.reason, "timeout");
});

Deno.test("an /info sent chunked is decoded whole", async () => {
  await using engine = await FakeEngine.start();
  const big = { ...INFO, Padding: "x".repeat(5000) };
  engine.on(
    "GET /info",
    (_req, res) => res.chunked(200, JSON.stringify(big) + "\n", { splitAt: [1, 17, 2048, 4097] }),
  );
  assert.deepEqual(await clientFor(engine).systemInfo(), big);
});

// --- error replies -------------------------------------------------------------------------------------

Deno.test("maybeImageInspect returns undefined for a 404 and the image otherwise", async () => {
  await using engine = await FakeEngine.start();
  engine.on(
    "GET /images/:name/json",
    (req, res) =>
      req.params.name === "ghcr.io/acme/tool:1.2"
        ? res.json(200, { Id: "sha256:abc", RepoTags: ["ghcr.io/acme/tool:1.2"] })
        : res.json(404, { message: `No such image: ${req.params.name}` }),
  );
  const client = clientFor(engine);
  assert.equal(await client.maybeImageInspect("alpine:3.20"), undefined);
  assert.deepEqual(await client.maybeImageInspect("ghcr.io/acme/tool:1.2"), {
    Id: "sha256:abc",
    RepoTags: ["ghcr.io/acme/tool:1.2"],
  });
  assert.equal(engine.requests.at(-1)!.target, "/v1.44/images/ghcr.io%2Facme%2Ftool%3A1.2/json");
});

Deno.test("maybeImageInspect still throws errors other than 404", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /images/:name/json", { status: 500, json: { message: "layer store broken" } });
  const err = await rejection(clientFor(engine).maybeImageInspect("alpine"), EngineApiError);
  assert.equal(err.status, 500);
  assert.equal(err.daemonMessage, "layer store broken");
});

Deno.test("a 409 on create is an EngineApiError that is a conflict and carries the daemon's message", async () => {
  await using engine = await FakeEngine.start();
  const message = 'Conflict. The container name "/moat-x" is already in use by container "0123abcd". ' +
    "You have to remove (or rename) that container to be able to reuse that name.";
  engine.on("POST /containers/create", { status: 409, json: { message } });
  const body = {
    Image: "alpine:3.20",
    Cmd: ["echo", "hé"],
    HostConfig: { Runtime: "runsc", AutoRemove: false },
  };
  const err = await rejection(clientFor(engine).containerCreate(body, "moat-x"), EngineApiError);
  assert.equal(err.isConflict, true);
  assert.equal(err.isNotFound, false);
  assert.equal(err.status, 409);
  assert.equal(err.method, "POST");
  assert.equal(err.path, "/containers/create");
  assert.equal(err.daemonMessage, message);
  assert.ok(err.message.includes(message));
  const req = engine.requestsTo("POST /containers/create")[0]!;
  assert.equal(req.query.get("name"), "moat-x");
  assert.deepEqual(req.json, body);
  assert.equal(req.headers["content-type"], "application/json");
  assert.equal(req.headers["content-length"], String(req.body.byteLength));
});

Deno.test("containerCreate returns the Id and Warnings of a 201", async () => {
  await using engine = await FakeEngine.start();
  engine.on("POST /containers/create", {
    status: 201,
    json: { Id: "f".repeat(64), Warnings: ["Your kernel does not support pids limit capabilities"] },
  });
  const created = await clientFor(engine).containerCreate({ Image: "alpine", HostConfig: {} });
  assert.deepEqual(created, {
    Id: "f".repeat(64),
    Warnings: ["Your kernel does not support pids limit capabilities"],
  });
  assert.equal(engine.requests.at(-1)!.query.has("name"), false);
});

Deno.test("error bodies are read as JSON only when the engine says they are JSON", async () => {
  await using engine = await FakeEngine.start();
  const cases: Array<{ reply: () => Parameters<FakeEngine["on"]>[1]; status: number; message: string }> = [
    {
      reply: () => ({ status: 500, text: "Internal Server Error: disk full\n" }),
      status: 500,
      message: "Internal Server Error: disk full",
    },
    {
      reply: () => ({ status: 502, text: '{"message":"from a proxy"}' }),
      status: 502,
      message: '{"message":"from a proxy"}',
    },
    {
      reply: () => ({
        status: 400,
        text: '{"message":"unknown or invalid runtime name: runsc"}\n',
        headers: { "Content-Type": "application/json; charset=utf-8" },
      }),
      status: 400,
      message: "unknown or invalid runtime name: runsc",
    },
    { reply: () => ({ status: 500, text: "" }), status: 500, message: "500 Internal Server Error" },
    { reply: () => ({ status: 500, json: { notMessage: 1 } }), status: 500, message: '{"notMessage":1}' },
  ];
  for (const c of cases) {
    engine.on("GET /info", c.reply());
    const err = await rejection(clientFor(engine).systemInfo(), EngineApiError);
    assert.equal(err.status, c.status, c.message);
    assert.equal(err.daemonMessage, c.message);
    assert.equal(err.path, "/info");
  }
});

Deno.test("a 200 that claims JSON but is not is an engine error naming the call, not a crash", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /info", {
    status: 200,
    text: "<html>proxy login</html>",
    headers: { "Content-Type": "application/json" },
  });
  const err = await rejection(clientFor(engine).systemInfo(), EngineUnavailableError);
  assert.match(err.message, /GET \/info answered with unreadable JSON: "<html>proxy login<\/html>"/);
});

// --- the socket itself -----------------------------------------------------------------------------------

Deno.test("a missing socket is EngineUnavailableError absent", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/docker.sock`;
    const err = await rejection(clientAt(path).systemPing(), EngineUnavailableError);
    assert.equal(err.reason, "absent");
    assert.equal(err.endpoint, `unix://${path}`);
    assert.ok(err.message.includes(path));
    assert.ok(err.cause instanceof Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a socket file nobody listens on is EngineUnavailableError refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A socket file left without a listener (as after a daemon crash): Deno unlinks a socket when its
    // listener closes, so keep a second hard link to the inode.
    const live = `${dir}/live.sock`, stale = `${dir}/docker.sock`;
    const listener = Deno.listen({ transport: "unix", path: live });
    await Deno.link(live, stale);
    listener.close();
    assert.ok((await Deno.lstat(stale)).isSocket);
    const err = await rejection(clientAt(stale).systemPing(), EngineUnavailableError);
    assert.equal(err.reason, "refused");
    assert.match(err.message, /not running/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const CAN_DROP_TO_NOBODY = Deno.uid() === 0 &&
  ["/usr/bin/setpriv", "/bin/setpriv"].some((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });

Deno.test({
  name: "a socket the user may not open is EngineUnavailableError permission",
  ignore: Deno.uid() === 0 && !CAN_DROP_TO_NOBODY,
  async fn() {
    await using engine = await FakeEngine.start();
    if (Deno.uid() !== 0) {
      await Deno.chmod(engine.path, 0o000);
      const err = await rejection(clientFor(engine).systemPing(), EngineUnavailableError);
      assert.equal(err.reason, "permission");
    } else {
      // root ignores file modes, so run the client as `nobody` (like docker.sock root:docker 0660 for a user
      // outside the group).
      await Deno.chmod(engine.dir, 0o755);
      await Deno.chmod(engine.path, 0o660);
      const home = await Deno.makeTempDir({ prefix: "moat-nobody-" });
      try {
        await Deno.chmod(home, 0o777);
        const code = `
          import { DockerClient } from ${JSON.stringify(import.meta.resolve("../../lib/docker/client.ts"))};
          import { unixTransport } from ${
          JSON.stringify(import.meta.resolve("../../lib/docker/transport.ts"))
        };
          const ep = { kind: "unix", path: ${JSON.stringify(engine.path)}, source: "DOCKER_HOST" };
          try {
            await new DockerClient(unixTransport(ep), { timeoutMs: 5000 }).systemPing();
            console.log(JSON.stringify({ uid: Deno.uid(), ok: true }));
          } catch (err) {
            console.log(JSON.stringify({ uid: Deno.uid(), name: err.name, reason: err.reason, message: err.message }));
          }`;
        const out = await new Deno.Command("setpriv", {
          args: [
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            Deno.execPath(),
            "eval",
            "--no-config",
            code,
          ],
          cwd: home,
          clearEnv: true,
          env: {
            DENO_DIR: `${home}/deno`,
            HOME: home,
            NO_COLOR: "1",
            PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
          },
          stdout: "piped",
          stderr: "piped",
        }).output();
        const stdout = dec.decode(out.stdout), stderr = dec.decode(out.stderr);
        assert.equal(out.code, 0, stderr);
        const got = JSON.parse(stdout.trim().split("\n").at(-1)!);
        assert.equal(got.uid, 65534, stdout);
        assert.equal(got.name, "EngineUnavailableError", stdout);
        assert.equal(got.reason, "permission", stdout);
        assert.match(got.message, /permission denied/);
      } finally {
        await Deno.remove(home, { recursive: true });
      }
    }
    assert.deepEqual(engine.calls(), []);
  },
});

Deno.test("an engine that hangs up mid-body is EngineUnavailableError closed", async () => {
  await using engine = await FakeEngine.start();
  const client = clientFor(engine);
  await client.systemPing();
  const scripts: Array<Parameters<FakeEngine["on"]>[1]> = [
    async (_req, res) => {
      await res.head(200, { "Content-Type": "application/json", "Content-Length": "100" });
      await res.write('{"ServerVersion":"25.0.5",');
      res.close();
    },
    async (_req, res) => {
      await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
      await res.write('40\r\n{"ServerVersion":');
      res.close();
    },
    async (_req, res) => {
      await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
      await res.chunk('{"ServerVersion":"25.0.5"}');
      res.close(); // no terminating chunk
    },
    () => {}, // no answer at all
    async (_req, res) => await res.write("HTTP/1.1 200 OK\r\nContent-Le"),
  ];
  for (const [i, script] of scripts.entries()) {
    engine.on("GET /info", script);
    const err = await rejection(client.systemInfo(), EngineUnavailableError);
    assert.equal(err.reason, "closed", `script ${i}: ${err.message}`);
  }
});

// --- attach ----------------------------------------------------------------------------------------------

Deno.test("attach keeps the stream bytes that arrive with the 101 head", async () => {
  await using engine = await FakeEngine.start();
  const early = concat(frame(1, "early out\n"), frame(2, "early err\n"), frame(1, "more out\n"));
  engine.on("POST /containers/:id/attach", async (_req, res) => {
    await res.hijack({ initial: early });
  });
  const attach = await clientFor(engine).containerAttach("abc", { stdin: false });
  try {
    assert.equal(attach.mediaType, "application/vnd.docker.multiplexed-stream");
    assert.equal(attach.reader.buffered, early.byteLength, "the bytes came in the same read as the head");
    const out = await drain(attach.reader);
    assert.equal(out[1], "early out\nmore out\n");
    assert.equal(out[2], "early err\n");
  } finally {
    attach.close();
  }
  const req = engine.requestsTo("POST /containers/:id/attach")[0]!;
  assert.equal(req.target, "/v1.44/containers/abc/attach?stream=1&stdin=0&stdout=1&stderr=1");
  assert.equal(req.headers["connection"], "Upgrade");
  assert.equal(req.headers["upgrade"], "tcp");
  assert.equal(req.headers["content-length"], "0");
});

Deno.test("attach closeWrite reaches the engine as EOF on stdin while output still flows", async () => {
  await using engine = await FakeEngine.start();
  engine.on("POST /containers/:id/attach", async (_req, res) => {
    const h = await res.hijack();
    await h.writeFrame(1, "ready\n");
    const stdin = await h.readToEof(res.delay(5000));
    await h.writeFrame(
      1,
      stdin === undefined ? "no EOF seen\n" : `stdin was ${JSON.stringify(dec.decode(stdin))}\n`,
    );
    await h.writeFrame(2, "bye\n");
  });
  const attach = await clientFor(engine).containerAttach("abc", { stdin: true });
  try {
    await attach.write(enc.encode("hello\n"));
    await attach.write(enc.encode("world\n"));
    await attach.closeWrite();
    const out = await drain(attach.reader);
    assert.equal(out[1], 'ready\nstdin was "hello\\nworld\\n"\n');
    assert.equal(out[2], "bye\n");
  } finally {
    attach.close();
  }
  assert.equal(engine.requests.at(-1)!.query.get("stdin"), "1");
});

Deno.test("attach accepts the 200 raw stream of older engines", async () => {
  await using engine = await FakeEngine.start({ apiVersion: "1.41" });
  engine.on("POST /containers/:id/attach", async (_req, res) => {
    const h = await res.hijack({
      status: 200,
      headers: { "Content-Type": "application/vnd.docker.raw-stream" },
    });
    await h.writeFrame(1, "old\n");
  });
  const attach = await clientFor(engine).containerAttach("abc", { stdin: false });
  try {
    assert.equal(attach.mediaType, "application/vnd.docker.raw-stream");
    assert.equal((await drain(attach.reader))[1], "old\n");
  } finally {
    attach.close();
  }
});

Deno.test("an attach refused with the daemon's plain-text reply is an EngineApiError with its text", async () => {
  await using engine = await FakeEngine.start();
  engine.on("POST /containers/:id/attach", async (req, res) => {
    // postContainersAttach's hand-written error: no length, plain text, then close.
    await res.write(
      "HTTP/1.1 404 Not Found\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n" +
        `No such container: ${req.params.id}\r\n`,
    );
  });
  const err = await rejection(clientFor(engine).containerAttach("nope", { stdin: false }), EngineApiError);
  assert.equal(err.isNotFound, true);
  assert.equal(err.method, "POST");
  assert.equal(err.path, "/containers/nope/attach");
  assert.equal(err.daemonMessage, "No such container: nope");
});

// --- wait ------------------------------------------------------------------------------------------------

Deno.test("containerWait resolves once the headers arrive and the result follows later, chunked", async () => {
  await using engine = await FakeEngine.start();
  let bodySent = false;
  const release = Promise.withResolvers<void>();
  engine.on("POST /containers/:id/wait", async (_req, res) => {
    await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    // Bounded so that a client that waits for the body fails the test instead of hanging it.
    await Promise.race([release.promise, res.delay(5000)]);
    bodySent = true;
    await res.chunk('{"Stat');
    await res.chunk('usCode":13');
    await res.chunk("7}\n");
    await res.endChunks();
  });
  const wait = await clientFor(engine).containerWait("abc");
  try {
    assert.equal(bodySent, false, "containerWait returned before the engine sent the result");
    release.resolve();
    assert.deepEqual(await wait.result, { StatusCode: 137 });
  } finally {
    wait.close();
  }
  assert.equal(engine.requests.at(-1)!.target, "/v1.44/containers/abc/wait?condition=next-exit");
  assert.equal(engine.requests.at(-1)!.headers["content-length"], "0");
});

Deno.test("containerWait passes the condition and returns an Error the engine reports", async () => {
  await using engine = await FakeEngine.start();
  engine.on(
    "POST /containers/:id/wait",
    (_req, res) =>
      res.chunked(200, ['{"Error":{"Message":"container removal failed"},', '"StatusCode":-1}\n']),
  );
  const wait = await clientFor(engine).containerWait("abc", "removed");
  assert.deepEqual(await wait.result, { Error: { Message: "container removal failed" }, StatusCode: -1 });
  wait.close();
  assert.equal(engine.requests.at(-1)!.query.get("condition"), "removed");
});

Deno.test("a wait whose connection drops before the result rejects with closed", async () => {
  await using engine = await FakeEngine.start();
  engine.on("POST /containers/:id/wait", async (_req, res) => {
    await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    await res.chunk('{"StatusCo');
    res.close();
  });
  const wait = await clientFor(engine).containerWait("abc");
  const err = await rejection(wait.result, EngineUnavailableError);
  assert.equal(err.reason, "closed");
  wait.close();
});

Deno.test("a wait on a container that is gone throws not-found at once", async () => {
  await using engine = await FakeEngine.start();
  engine.on("POST /containers/:id/wait", { status: 404, json: { message: "No such container: abc" } });
  const err = await rejection(clientFor(engine).containerWait("abc"), EngineApiError);
  assert.equal(err.isNotFound, true);
});

// --- start, kill, stop, remove, list, inspect ------------------------------------------------------------

Deno.test("containerStart sends an empty POST and treats 304 as done", async () => {
  await using engine = await FakeEngine.start();
  engine.on("POST /containers/:id/start", (req, res) => res.empty(req.params.id === "started" ? 304 : 204));
  const client = clientFor(engine);
  await client.containerStart("abc");
  await client.containerStart("started");
  for (const req of engine.requestsTo("POST /containers/:id/start")) {
    assert.equal(req.headers["content-length"], "0");
    assert.equal(req.headers["transfer-encoding"], undefined);
    assert.equal(req.rawHeaders.filter(([k]) => k.toLowerCase() === "content-length").length, 1);
    assert.equal(req.body.byteLength, 0);
  }
  engine.on("POST /containers/:id/start", { status: 404, json: { message: "No such container: abc" } });
  assert.equal((await rejection(client.containerStart("abc"), EngineApiError)).isNotFound, true);
});

Deno.test("containerKill treats a 409 not-running as success and throws other errors", async () => {
  await using engine = await FakeEngine.start();
  const client = clientFor(engine);
  engine.on("POST /containers/:id/kill", { status: 204 });
  await client.containerKill("abc");
  await client.containerKill("abc", "SIGTERM");
  assert.deepEqual(engine.requestsTo("POST /containers/:id/kill").map((r) => r.query.get("signal")), [
    "SIGKILL",
    "SIGTERM",
  ]);
  engine.on("POST /containers/:id/kill", { status: 409, json: { message: "container abc is not running" } });
  await client.containerKill("abc");
  engine.on("POST /containers/:id/kill", { status: 404, json: { message: "No such container: abc" } });
  assert.equal((await rejection(client.containerKill("abc"), EngineApiError)).status, 404);
  engine.on("POST /containers/:id/kill", { status: 500, json: { message: "runsc: kill failed" } });
  assert.equal((await rejection(client.containerKill("abc"), EngineApiError)).status, 500);
});

Deno.test("containerStop sends the grace period and accepts 304", async () => {
  await using engine = await FakeEngine.start();
  engine.on("POST /containers/:id/stop", { status: 304 });
  await clientFor(engine).containerStop("abc", 10);
  assert.equal(engine.requests.at(-1)!.target, "/v1.44/containers/abc/stop?t=10");
});

Deno.test("containerRemove treats gone and removal-in-progress as removed", async () => {
  await using engine = await FakeEngine.start();
  const client = clientFor(engine);
  const ok: Array<Parameters<FakeEngine["on"]>[1]> = [
    { status: 204 },
    { status: 404, json: { message: "No such container: abc" } },
    { status: 409, json: { message: "removal of container abc is already in progress" } },
  ];
  for (const reply of ok) {
    engine.on("DELETE /containers/:id", reply);
    await client.containerRemove("abc");
  }
  for (const req of engine.requestsTo("DELETE /containers/:id")) {
    assert.equal(req.target, "/v1.44/containers/abc?force=1&v=1");
  }
  engine.on("DELETE /containers/:id", {
    status: 409,
    json: {
      message:
        "You cannot remove a running container abc. Stop the container before attempting removal or force remove",
    },
  });
  assert.equal((await rejection(client.containerRemove("abc"), EngineApiError)).isConflict, true);
  engine.on("DELETE /containers/:id", { status: 500, json: { message: "driver failed" } });
  assert.equal((await rejection(client.containerRemove("abc"), EngineApiError)).status, 500);
});

Deno.test("containerList sends all=1 and the labels as URL-encoded JSON filters", async () => {
  await using engine = await FakeEngine.start();
  const summary = {
    Id: "a".repeat(64),
    Names: ["/moat-r1"],
    Image: "alpine",
    State: "exited",
    Status: "Exited (0) 1 second ago",
    Labels: { "moat.managed": "true" },
    Created: 1700000000,
  };
  engine.on("GET /containers/json", { status: 200, json: [summary] });
  const list = await clientFor(engine).containerList(["moat.managed=true", "moat.run=r 1"]);
  assert.deepEqual(list, [summary]);
  const req = engine.requests.at(-1)!;
  assert.equal(req.query.get("all"), "1");
  assert.deepEqual(JSON.parse(req.query.get("filters")!), { label: ["moat.managed=true", "moat.run=r 1"] });
  assert.ok(
    req.target.includes(
      "filters=%7B%22label%22%3A%5B%22moat.managed%3Dtrue%22%2C%22moat.run%3Dr%201%22%5D%7D",
    ),
    req.target,
  );
});

Deno.test("maybeContainerInspect returns undefined for a 404", async () => {
  await using engine = await FakeEngine.start();
  engine.on(
    "GET /containers/:id/json",
    (req, res) =>
      req.params.id === "abc"
        ? res.json(200, {
          Id: "abc",
          Name: "/moat-x",
          State: { Status: "exited", Running: false, ExitCode: 3 },
        })
        : res.json(404, { message: `No such container: ${req.params.id}` }),
  );
  const client = clientFor(engine);
  assert.equal(await client.maybeContainerInspect("gone"), undefined);
  assert.equal((await client.maybeContainerInspect("abc"))?.State.ExitCode, 3);
});

// --- images ----------------------------------------------------------------------------------------------

Deno.test("imageCreate reports progress lines, even split across chunks", async () => {
  await using engine = await FakeEngine.start();
  const lines = [
    { status: "Pulling from library/alpine", id: "3.20" },
    { status: "Downloading", id: "abc", progress: "[=>   ] 1MB/3MB" },
    { status: "Status: Downloaded newer image for alpine:3.20" },
  ];
  const wire = lines.map((l) => JSON.stringify(l) + "\r\n").join("");
  engine.on("POST /images/create", (_req, res) => res.chunked(200, wire, { splitAt: [5, 40, 41, 90] }));
  const seen: unknown[] = [];
  await clientFor(engine).imageCreate("alpine:3.20", (p) => seen.push(p));
  assert.deepEqual(seen, lines);
  const req = engine.requests.at(-1)!;
  assert.equal(req.query.get("fromImage"), "alpine");
  assert.equal(req.query.get("tag"), "3.20");
});

Deno.test("imageCreate throws an in-band error after a 200", async () => {
  await using engine = await FakeEngine.start();
  engine.on("POST /images/create", (_req, res) =>
    res.chunked(200, [
      '{"status":"Pulling from library/nope","id":"latest"}\r\n',
      '{"errorDetail":{"message":"manifest for nope:latest not found"},"error":"manifest for nope:latest not found"}\r\n',
    ]));
  const seen: unknown[] = [];
  const err = await rejection(clientFor(engine).imageCreate("nope", (p) => seen.push(p)), MoatError);
  assert.match(err.message, /manifest for nope:latest not found/);
  assert.equal(seen.length, 1);
  assert.equal(engine.requests.at(-1)!.query.get("tag"), "latest");
});

Deno.test("an interrupt while a pull downloads cancels it at once as an InterruptedError", async () => {
  await using engine = await FakeEngine.start();
  engine.on("POST /images/create", async (_req, res) => {
    await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    await res.chunk('{"status":"Downloading","id":"l1"}\r\n');
    await res.delay(10_000); // a slow registry; the client must not wait for it
  });
  const ctl = new AbortController();
  const err = await rejection(
    clientFor(engine).imageCreate("a:1", () => ctl.abort("SIGINT"), ctl.signal),
    InterruptedError,
  );
  assert.equal(err.exitCode, 130);
});

Deno.test("an interrupt before the engine answers a pull is an InterruptedError too", async () => {
  await using engine = await FakeEngine.start();
  engine.on("POST /images/create", async (_req, res) => {
    await res.delay(10_000);
  });
  const ctl = new AbortController();
  setTimeout(() => ctl.abort("SIGTERM"), 50);
  const err = await rejection(
    clientFor(engine, 20_000).imageCreate("a:1", () => {}, ctl.signal),
    InterruptedError,
  );
  assert.equal(err.exitCode, 143);
});

Deno.test("splitImageReference separates name and tag the way the engine wants them", () => {
  const cases: Array<[string, { fromImage: string; tag?: string }]> = [
    ["alpine", { fromImage: "alpine", tag: "latest" }],
    ["alpine:3.20", { fromImage: "alpine", tag: "3.20" }],
    ["localhost:5000/tools/x", { fromImage: "localhost:5000/tools/x", tag: "latest" }],
    ["localhost:5000/tools/x:1", { fromImage: "localhost:5000/tools/x", tag: "1" }],
    ["alpine@sha256:0123", { fromImage: "alpine@sha256:0123" }],
  ];
  for (const [ref, want] of cases) assert.deepEqual(splitImageReference(ref), want, ref);
});

// --- files out of a container ----------------------------------------------------------------------------

function tarEntry(name: string, type: string, data: Uint8Array | string): Uint8Array {
  const body = typeof data === "string" ? enc.encode(data) : data;
  const h = new Uint8Array(512);
  const put = (s: string, off: number) => h.set(enc.encode(s), off);
  put(name, 0);
  put("0000644\0", 100);
  put("0000000\0", 108);
  put("0000000\0", 116);
  put(body.byteLength.toString(8).padStart(11, "0") + "\0", 124);
  put("00000000000\0", 136);
  put("        ", 148);
  put(type, 156);
  put("ustar\0" + "00", 257);
  put(h.reduce((n, b) => n + b, 0).toString(8).padStart(6, "0") + "\0 ", 148);
  return concat(h, body, new Uint8Array((512 - (body.byteLength % 512)) % 512));
}

function tarOf(...entries: Uint8Array[]): Uint8Array {
  return concat(...entries, new Uint8Array(1024));
}

Deno.test("firstTarEntry returns the first regular file of an archive", () => {
  const passwd = "root:x:0:0:root:/root:/bin/sh\n";
  const big = new Uint8Array(1500).fill(0x62);
  const cases: Array<{ name: string; tar: Uint8Array; want: Uint8Array | string | undefined }> = [
    { name: "one file", tar: tarOf(tarEntry("passwd", "0", passwd)), want: passwd },
    { name: "old-style type NUL", tar: tarOf(tarEntry("passwd", "\0", passwd)), want: passwd },
    {
      name: "after a pax header and a directory",
      tar: tarOf(
        tarEntry("PaxHeaders/x", "x", "30 path=some/very/long/name\n"),
        tarEntry("etc/", "5", ""),
        tarEntry("etc/passwd", "0", passwd),
      ),
      want: passwd,
    },
    {
      name: "a file of exactly 512 bytes",
      tar: tarOf(tarEntry("f", "0", "a".repeat(512)), tarEntry("g", "0", "no")),
      want: "a".repeat(512),
    },
    { name: "a file spanning blocks", tar: tarOf(tarEntry("f", "0", big)), want: big },
    { name: "an empty file", tar: tarOf(tarEntry("f", "0", "")), want: "" },
    { name: "only a directory", tar: tarOf(tarEntry("d/", "5", "")), want: undefined },
    { name: "an empty archive", tar: new Uint8Array(1024), want: undefined },
    { name: "nothing", tar: new Uint8Array(0), want: undefined },
    { name: "a truncated header", tar: tarEntry("f", "0", passwd).subarray(0, 300), want: undefined },
  ];
  for (const c of cases) {
    const want = typeof c.want === "string" ? enc.encode(c.want) : c.want;
    assert.deepEqual(firstTarEntry(c.tar), want, c.name);
  }
});

Deno.test("firstTarEntry reads an archive written by GNU tar with a long name", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const long = "d".repeat(120);
    await Deno.mkdir(`${dir}/${long}`);
    await Deno.writeTextFile(`${dir}/${long}/config.yaml`, "image: alpine\n");
    for (const format of ["gnu", "pax"]) {
      const out = await new Deno.Command("tar", {
        args: [`--format=${format}`, "-cf", "-", "-C", dir, `${long}/config.yaml`],
        stdout: "piped",
      }).output();
      assert.equal(out.code, 0);
      assert.equal(dec.decode(firstTarEntry(out.stdout)), "image: alpine\n", format);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("maybeContainerFile returns the file's bytes, or undefined when the path is missing", async () => {
  await using engine = await FakeEngine.start();
  const passwd = "root:x:0:0:root:/root:/bin/sh\nme:x:1000:1000::/home/me:/bin/sh\n";
  engine.on(
    "GET /containers/:id/archive",
    (req, res) =>
      req.query.get("path") === "/etc/passwd"
        ? res.chunked(200, tarOf(tarEntry("passwd", "0", passwd)), {
          headers: { "Content-Type": "application/x-tar" },
          splitAt: [100, 511, 512, 513, 700],
        })
        : res.json(404, {
          message: `Could not find the file ${req.query.get("path")} in container ${req.params.id}`,
        }),
  );
  const client = clientFor(engine);
  assert.equal(dec.decode(await client.maybeContainerFile("abc", "/etc/passwd")), passwd);
  assert.equal(await client.maybeContainerFile("abc", "/etc/nope"), undefined);
  assert.equal(engine.requests.at(-2)!.target, "/v1.44/containers/abc/archive?path=%2Fetc%2Fpasswd");
});

// --- a whole run, in the documented order ----------------------------------------------------------------

Deno.test("the fake engine records a run as create, attach, wait, start, remove", async () => {
  await using engine = await FakeEngine.start();
  const id = "c".repeat(64);
  const waitReleased = Promise.withResolvers<void>();
  engine.on("POST /containers/create", { status: 201, json: { Id: id, Warnings: [] } });
  engine.on("POST /containers/:id/attach", async (_req, res) => {
    const h = await res.hijack();
    const stdin = await h.readToEof(res.delay(5000));
    await h.writeFrame(1, `echo: ${dec.decode(stdin ?? new Uint8Array())}`);
    waitReleased.resolve();
  });
  engine.on("POST /containers/:id/wait", async (_req, res) => {
    await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    await Promise.race([waitReleased.promise, res.delay(5000)]);
    await res.chunk('{"StatusCode":0}\n');
    await res.endChunks();
  });
  engine.on("POST /containers/:id/start", { status: 204 });
  engine.on("DELETE /containers/:id", { status: 204 });
  const client = clientFor(engine);
  const created = await client.containerCreate(
    { Image: "alpine", HostConfig: { Runtime: "runsc" } },
    "moat-r1",
  );
  const attach = await client.containerAttach(created.Id, { stdin: true });
  const wait = await client.containerWait(created.Id);
  await client.containerStart(created.Id);
  await attach.write(enc.encode("hi"));
  await attach.closeWrite();
  const out = await drain(attach.reader);
  attach.close();
  const result = await wait.result;
  wait.close();
  await client.containerRemove(created.Id);
  assert.equal(out[1], "echo: hi");
  assert.deepEqual(result, { StatusCode: 0 });
  assert.deepEqual(engine.calls(), [
    "GET /_ping",
    "POST /containers/create",
    `POST /containers/${id}/attach`,
    `POST /containers/${id}/wait`,
    `POST /containers/${id}/start`,
    `DELETE /containers/${id}`,
  ]);
});

Deno.test("the fake engine answers versions outside its window like the daemon", async () => {
  await using engine = await FakeEngine.start({ apiVersion: "1.41" });
  engine.on("GET /info", { status: 200, json: INFO });
  const tooNew = new DockerClient(unixTransport(engine.endpoint), { timeoutMs: 2000, apiVersion: "1.44" });
  const err = await rejection(tooNew.systemInfo(), EngineApiError);
  assert.equal(err.status, 400);
  assert.match(err.daemonMessage, /client version 1\.44 is too new/);
  assert.deepEqual(engine.calls(), ["GET /info"]);
});

// --- environment ---------------------------------------------------------------------------------------

Deno.test("engineTimeoutMs reads MOAT_ENGINE_TIMEOUT in seconds", () => {
  assert.equal(engineTimeoutMs({}), 5000);
  assert.equal(engineTimeoutMs({ MOAT_ENGINE_TIMEOUT: " " }), 5000);
  assert.equal(engineTimeoutMs({ MOAT_ENGINE_TIMEOUT: "30" }), 30_000);
  assert.equal(engineTimeoutMs({ MOAT_ENGINE_TIMEOUT: "0.25" }), 250);
  for (const bad of ["0", "-1", "abc", "Infinity"]) {
    assert.throws(() => engineTimeoutMs({ MOAT_ENGINE_TIMEOUT: bad }), UsageError, bad);
  }
});

Deno.test("engineStartTimeoutMs reads MOAT_ENGINE_START_TIMEOUT in seconds, default 120", () => {
  assert.equal(engineStartTimeoutMs({}), 120_000);
  assert.equal(engineStartTimeoutMs({ MOAT_ENGINE_START_TIMEOUT: "" }), 120_000);
  assert.equal(engineStartTimeoutMs({ MOAT_ENGINE_START_TIMEOUT: "300" }), 300_000);
  assert.equal(engineStartTimeoutMs({ MOAT_ENGINE_START_TIMEOUT: "1.5", MOAT_ENGINE_TIMEOUT: "9" }), 1500);
  for (const bad of ["0", "-1", "abc", "Infinity"]) {
    assert.throws(
      () => engineStartTimeoutMs({ MOAT_ENGINE_START_TIMEOUT: bad }),
      (err: Error) =>
        err instanceof UsageError && err.message.startsWith(`MOAT_ENGINE_START_TIMEOUT "${bad}"`),
    );
  }
});

Deno.test("calls whose time grows with load get the start budget, short calls the short one; the hint names which", async () => {
  await using engine = await FakeEngine.start();
  const slow = (
    _req: unknown,
    res: { delay(ms: number): Promise<boolean>; empty(s: number): Promise<void> },
  ) => res.delay(300).then(() => res.empty(204));
  engine.on("POST /containers/:id/start", slow);
  engine.on("POST /containers/:id/kill", slow);
  const client = new DockerClient(unixTransport(engine.endpoint), { timeoutMs: 100, startTimeoutMs: 2000 });
  await client.containerStart("c1"); // 300 ms: within the start budget
  const err = await rejection(client.containerKill("c1"), EngineUnavailableError);
  assert.match(err.message, /POST \/v1\.44\/containers\/c1\/kill\?signal=SIGKILL took longer than 0\.1 s/);
  assert.match(err.hint ?? "", /MOAT_ENGINE_TIMEOUT=30/);

  const tight = new DockerClient(unixTransport(engine.endpoint), { timeoutMs: 2000, startTimeoutMs: 100 });
  const startErr = await rejection(tight.containerStart("c1"), EngineUnavailableError);
  assert.match(startErr.message, /POST \/v1\.44\/containers\/c1\/start took longer than 0\.1 s/);
  assert.match(startErr.hint ?? "", /MOAT_ENGINE_START_TIMEOUT=300/);
});
