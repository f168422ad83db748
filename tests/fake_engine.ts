/**
 * A scriptable fake Docker Engine for client and lifecycle tests (CONVENTIONS.md "Tests").
 *
 * It listens on a unix socket in a fresh temp dir and speaks the HTTP/1.1 the daemon speaks
 * (Go's net/http): Content-Length and chunked replies, bodiless 204/304, the hand-written
 * `101 UPGRADED` of `/attach`, and a `/_ping` carrying `Api-Version`. Like the daemon's version middleware,
 * it answers 400 to `/v<x>/…` outside `[minApiVersion, apiVersion]`. It is written independently of
 * `lib/docker/http.ts` so a framing bug there cannot hide behind the same bug here.
 *
 * Each connection carries one request (moat sends `Connection: close`). A handler gets the parsed request
 * and a `FakeResponse`; the connection is closed when the handler returns (or throws), so a handler that
 * writes nothing simulates an engine that hangs up before answering.
 *
 * ```ts
 * await using engine = await FakeEngine.start({ apiVersion: "1.44" });
 * engine.on("GET /info", { status: 200, json: { Runtimes: { runsc: {} } } });
 * engine.on("POST /containers/:id/wait", async (req, res) => {
 *   await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
 *   await res.delay(50);
 *   await res.chunk(`{"StatusCode":0}\n`);
 *   await res.endChunks();
 * });
 * const client = new DockerClient(unixTransport(engine.endpoint), { timeoutMs: 2000 });
 * // …
 * assert.deepEqual(engine.calls(), ["GET /_ping", "GET /info"]);
 * ```
 *
 * Shutdown (`close()`, or `await using`) aborts `res.delay`/`res.signal`, closes every connection and the
 * listener, awaits the accept loop and every handler, and removes the temp dir, so `--sanitize-ops
 * --sanitize-resources` stay quiet. A handler that awaits a promise of its own must let it settle (or race
 * it with `res.signal`), or `close()` waits for it. Errors a handler throws — other than the peer having
 * gone away — are rethrown by `close()`, so a broken script fails its test.
 */

/** A request as the fake engine received it. */
export interface FakeRequest {
  method: string;
  /** The request target exactly as sent, e.g. `/v1.44/containers/json?all=1&filters=%7B…%7D`. */
  target: string;
  /** `"1.44"` for `/v1.44/…`; `undefined` for an unversioned path such as `/_ping`. */
  version: string | undefined;
  /** The path without the version prefix and without the query, e.g. `/containers/abc/start`. */
  path: string;
  /** `"POST /containers/abc/start"`: method and `path`, the form `calls()` lists. */
  call: string;
  query: URLSearchParams;
  /** Header names lower-cased; repeated headers joined with `", "`. */
  headers: Record<string, string>;
  /** Headers as sent, in order, names in their original case (to check that one is sent once). */
  rawHeaders: Array<[string, string]>;
  body: Uint8Array;
  /** The body decoded as UTF-8. */
  text: string;
  /** The body parsed as JSON when it is non-empty and `Content-Type` is JSON; otherwise `undefined`. */
  json: unknown;
  /** Values of `:name` segments of the matched route, URL-decoded. */
  params: Record<string, string>;
}

/** A canned answer: JSON (with `Content-Length`), text, or no body at all. */
export interface FakeReply {
  status: number;
  json?: unknown;
  text?: string;
  headers?: Record<string, string>;
}

export type FakeHandler = (req: FakeRequest, res: FakeResponse) => void | Promise<void>;

export interface FakeEngineOptions {
  /** `Api-Version` sent by `/_ping` and every reply; `null` omits the header. Default `"1.44"`. */
  apiVersion?: string | null;
  /** The oldest `/v<x>/` the engine accepts. Default `"1.24"` (Docker 25–28). */
  minApiVersion?: string;
  /** `Server` header. Default `"Docker/25.0.5 (linux)"`. */
  server?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const REASONS: Record<number, string> = {
  101: "UPGRADED", // the daemon's own reason phrase (postContainersAttach)
  200: "OK",
  201: "Created",
  204: "No Content",
  304: "Not Modified",
  400: "Bad Request",
  404: "Not Found",
  409: "Conflict",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** One multiplexed-stream frame (`[type,0,0,0,size u32 BE]` + payload), built independently of lib/. */
export function frame(stream: 0 | 1 | 2 | 3, payload: string | Uint8Array): Uint8Array {
  const data = typeof payload === "string" ? encoder.encode(payload) : payload;
  const out = new Uint8Array(8 + data.byteLength);
  const n = data.byteLength;
  out[0] = stream;
  out[4] = (n >>> 24) & 0xff;
  out[5] = (n >>> 16) & 0xff;
  out[6] = (n >>> 8) & 0xff;
  out[7] = n & 0xff;
  out.set(data, 8);
  return out;
}

/** Concatenate byte arrays, strings (UTF-8 encoded) and lists of byte values. */
export function concat(...parts: Array<Uint8Array | string | number[]>): Uint8Array {
  const bytes = parts.map((p) =>
    typeof p === "string" ? encoder.encode(p) : p instanceof Uint8Array ? p : new Uint8Array(p)
  );
  const out = new Uint8Array(bytes.reduce((n, b) => n + b.byteLength, 0));
  let off = 0;
  for (const b of bytes) {
    out.set(b, off);
    off += b.byteLength;
  }
  return out;
}

function toBytes(data: string | Uint8Array): Uint8Array {
  return typeof data === "string" ? encoder.encode(data) : data;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number), pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Errors that only mean the client went away (or we closed first); never a test failure. */
function isPeerGone(err: unknown): boolean {
  return err instanceof Deno.errors.BrokenPipe || err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted ||
    err instanceof Deno.errors.NotConnected || err instanceof Deno.errors.UnexpectedEof ||
    err instanceof Deno.errors.ConnectionAborted;
}

/** Reads one request off a connection; keeps what came after it (stdin sent after a 101). */
class ConnReader {
  #conn: Deno.Conn;
  buf: Uint8Array = new Uint8Array(0);
  eof = false;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async fill(): Promise<boolean> {
    if (this.eof) return false;
    const chunk = new Uint8Array(16 * 1024);
    const n = await this.#conn.read(chunk);
    if (n === null) {
      this.eof = true;
      return false;
    }
    this.buf = concat(this.buf, chunk.subarray(0, n));
    return true;
  }

  take(n: number): Uint8Array {
    const out = this.buf.slice(0, n);
    this.buf = this.buf.slice(n);
    return out;
  }
}

function indexOfHeadEnd(buf: Uint8Array): number {
  for (let i = 0; i + 3 < buf.byteLength; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

interface ParsedHead {
  method: string;
  target: string;
  rawHeaders: Array<[string, string]>;
  headers: Record<string, string>;
}

async function readRequestHead(reader: ConnReader): Promise<ParsedHead | undefined> {
  let idx: number;
  while ((idx = indexOfHeadEnd(reader.buf)) < 0) {
    if (!(await reader.fill())) return undefined;
  }
  const text = decoder.decode(reader.take(idx + 4)).slice(0, idx);
  const [requestLine = "", ...lines] = text.split("\r\n");
  const [method = "", target = ""] = requestLine.split(" ");
  const rawHeaders: Array<[string, string]> = [];
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    rawHeaders.push([name, value]);
    const key = name.toLowerCase();
    headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
  }
  return { method, target, rawHeaders, headers };
}

interface Route {
  method: string;
  segments: string[];
  handler: FakeHandler;
}

function parseRoute(route: string): { method: string; segments: string[] } {
  const m = /^([A-Z]+) (\/\S*)$/.exec(route);
  if (!m) throw new Error(`fake engine: route must look like "GET /containers/:id/json", got ${route}`);
  return { method: m[1]!, segments: m[2]!.split("/") };
}

function matchRoute(
  pattern: { method: string; segments: string[] },
  method: string,
  path: string,
): Record<string, string> | undefined {
  if (pattern.method !== method) return undefined;
  const parts = path.split("/");
  if (parts.length !== pattern.segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const want = pattern.segments[i]!, got = parts[i]!;
    if (want.startsWith(":")) {
      if (got === "") return undefined;
      params[want.slice(1)] = decodeURIComponent(got);
    } else if (want !== got) return undefined;
  }
  return params;
}

/** The hijacked connection after a `101`: raw bytes both ways (stdin in, multiplexed output out). */
export class FakeHijack {
  #conn: Deno.Conn;
  #reader: ConnReader;

  /** @internal */
  constructor(conn: Deno.Conn, reader: ConnReader) {
    this.#conn = conn;
    this.#reader = reader;
  }

  /** Write raw bytes to the client. */
  async write(data: string | Uint8Array): Promise<void> {
    const bytes = toBytes(data);
    let off = 0;
    while (off < bytes.byteLength) off += await this.#conn.write(bytes.subarray(off));
  }

  /** Write one multiplexed frame (stream 0–3). */
  writeFrame(stream: 0 | 1 | 2 | 3, payload: string | Uint8Array): Promise<void> {
    return this.write(frame(stream, payload));
  }

  /** The next bytes from the client (bytes that came right after the request first); `null` at EOF. */
  async read(): Promise<Uint8Array | null> {
    if (this.#reader.buf.byteLength === 0 && !(await this.#reader.fill())) return null;
    return this.#reader.take(this.#reader.buf.byteLength);
  }

  /**
   * Everything the client sends until it half-closes (`closeWrite`) or closes. Resolves `undefined` instead
   * if `giveUp` settles first (e.g. `res.delay(5000)`), so a test of half-close fails rather than hangs.
   */
  async readToEof(giveUp?: Promise<unknown>): Promise<Uint8Array | undefined> {
    const parts: Uint8Array[] = [];
    const all = (async () => {
      for (;;) {
        const part = await this.read();
        if (part === null) return concat(...parts);
        parts.push(part);
      }
    })();
    if (!giveUp) return await all;
    all.catch(() => {});
    return await Promise.race([all, giveUp.then(() => undefined)]);
  }

  /** Half-close our side: the client's reader sees EOF while it can still write. */
  closeWrite(): Promise<void> {
    return this.#conn.closeWrite();
  }
}

/** How a handler answers. Every method writes straight to the socket. */
export class FakeResponse {
  #engine: FakeEngine;
  #conn: Deno.Conn;
  #reader: ConnReader;
  #closeConn: () => void;
  /** True once anything was written. */
  started = false;
  /** Aborted when the engine shuts down. */
  readonly signal: AbortSignal;

  /** @internal */
  constructor(
    engine: FakeEngine,
    conn: Deno.Conn,
    reader: ConnReader,
    closeConn: () => void,
    signal: AbortSignal,
  ) {
    this.#engine = engine;
    this.#conn = conn;
    this.#reader = reader;
    this.#closeConn = closeConn;
    this.signal = signal;
  }

  /** Raw bytes, no framing added (hand-written heads, half-written chunks, garbage). */
  async write(data: string | Uint8Array): Promise<void> {
    this.started = true;
    const bytes = toBytes(data);
    let off = 0;
    while (off < bytes.byteLength) off += await this.#conn.write(bytes.subarray(off));
  }

  /**
   * Status line and headers. Adds the daemon's `Api-Version` (unless `null`), `Server`, `Ostype`; adds no
   * framing header — pass `Content-Length` or `Transfer-Encoding` yourself, or use the helpers below.
   */
  head(status: number, headers: Record<string, string> = {}): Promise<void> {
    const all: Record<string, string> = {};
    if (this.#engine.apiVersion !== null) all["Api-Version"] = this.#engine.apiVersion;
    all["Server"] = this.#engine.server;
    all["Ostype"] = "linux";
    Object.assign(all, headers);
    let text = `HTTP/1.1 ${status} ${REASONS[status] ?? "Status"}\r\n`;
    for (const [k, v] of Object.entries(all)) text += `${k}: ${v}\r\n`;
    return this.write(text + "\r\n");
  }

  /** `json` + `"\n"` like the daemon's `json.Encoder`, with `Content-Length`. */
  json(status: number, value: unknown, headers: Record<string, string> = {}): Promise<void> {
    return this.text(status, JSON.stringify(value) + "\n", {
      "Content-Type": "application/json",
      ...headers,
    });
  }

  /** A body with `Content-Length` (default type `text/plain; charset=utf-8`). */
  async text(status: number, body: string | Uint8Array, headers: Record<string, string> = {}): Promise<void> {
    const bytes = toBytes(body);
    await this.head(status, {
      "Content-Type": "text/plain; charset=utf-8",
      ...headers,
      "Content-Length": String(bytes.byteLength),
    });
    await this.write(bytes);
  }

  /** No body and no length (204, 304). */
  empty(status: number, headers: Record<string, string> = {}): Promise<void> {
    return this.head(status, headers);
  }

  /**
   * A `Transfer-Encoding: chunked` reply. `body` is split into one chunk per element, or at the byte
   * offsets in `splitAt`; `pauseMs` waits between chunks (aborted by shutdown); `trailers` go after `0`.
   */
  async chunked(
    status: number,
    body: string | Uint8Array | Array<string | Uint8Array>,
    opts: {
      headers?: Record<string, string>;
      splitAt?: number[];
      pauseMs?: number;
      trailers?: Record<string, string>;
    } = {},
  ): Promise<void> {
    let pieces: Uint8Array[];
    if (Array.isArray(body)) pieces = body.map(toBytes);
    else {
      const all = toBytes(body);
      const cuts = [0, ...(opts.splitAt ?? []).filter((n) => n > 0 && n < all.byteLength), all.byteLength];
      cuts.sort((a, b) => a - b);
      pieces = cuts.slice(1).map((end, i) => all.subarray(cuts[i]!, end)).filter((p) => p.byteLength > 0);
    }
    await this.head(status, {
      "Content-Type": "application/json",
      ...opts.headers,
      "Transfer-Encoding": "chunked",
    });
    for (const [i, piece] of pieces.entries()) {
      if (i > 0 && opts.pauseMs) await this.delay(opts.pauseMs);
      await this.chunk(piece);
    }
    await this.endChunks(opts.trailers);
  }

  /** One chunk: hex size, CRLF, data, CRLF. Empty data is skipped (it would end the body). */
  async chunk(data: string | Uint8Array): Promise<void> {
    const bytes = toBytes(data);
    if (bytes.byteLength === 0) return;
    await this.write(concat(`${bytes.byteLength.toString(16)}\r\n`, bytes, "\r\n"));
  }

  /** The terminating `0` chunk, optional trailers, and the blank line. */
  endChunks(trailers: Record<string, string> = {}): Promise<void> {
    let text = "0\r\n";
    for (const [k, v] of Object.entries(trailers)) text += `${k}: ${v}\r\n`;
    return this.write(text + "\r\n");
  }

  /**
   * Answer an attach like the daemon: `HTTP/1.1 101 UPGRADED` with `Content-Type` (default multiplexed),
   * `Connection: Upgrade`, `Upgrade: tcp`, and `initial` bytes in the SAME write, so they reach the client
   * together with the head (they belong to the stream). `status: 200` mimics old daemons. Returns the raw
   * connection.
   */
  async hijack(
    opts: { status?: number; headers?: Record<string, string>; initial?: Uint8Array } = {},
  ): Promise<FakeHijack> {
    const status = opts.status ?? 101;
    const headers: Record<string, string> = {
      "Content-Type": "application/vnd.docker.multiplexed-stream",
      ...(status === 101 ? { "Connection": "Upgrade", "Upgrade": "tcp" } : {}),
      ...opts.headers,
    };
    let text = `HTTP/1.1 ${status} ${REASONS[status] ?? "Status"}\r\n`;
    for (const [k, v] of Object.entries(headers)) text += `${k}: ${v}\r\n`;
    await this.write(concat(text, "\r\n", opts.initial ?? new Uint8Array(0)));
    return new FakeHijack(this.#conn, this.#reader);
  }

  /**
   * Wait `ms`, or less if the engine shuts down. True when the full time passed. Use it for "the engine is
   * slow" scripts; it leaves no timer behind at shutdown.
   */
  delay(ms: number): Promise<boolean> {
    const signal = this.signal;
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onAbort = () => {
        clearTimeout(timer);
        resolve(false);
      };
      const timer = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve(true);
      }, ms);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Drop the connection now, e.g. in the middle of a body. Further writes fail (ignored). */
  close(): void {
    this.started = true;
    this.#closeConn();
  }
}

/** The fake engine. Create with `FakeEngine.start()`, always `close()` (or `await using`). */
export class FakeEngine {
  /** The unix socket path. */
  readonly path: string;
  /** The temp dir holding the socket (removed at close). */
  readonly dir: string;
  /** `Api-Version` on every reply and the highest `/v<x>/` accepted; `null` omits the header. Mutable. */
  apiVersion: string | null;
  minApiVersion: string;
  server: string;
  /** Every request received, in arrival order. */
  readonly requests: FakeRequest[] = [];

  #listener: Deno.UnixListener;
  #routes: Route[] = [];
  #conns = new Set<Deno.Conn>();
  #tasks = new Set<Promise<void>>();
  #errors: unknown[] = [];
  #abort = new AbortController();
  #loop: Promise<void>;
  #closed: Promise<void> | undefined;

  private constructor(dir: string, opts: FakeEngineOptions) {
    this.dir = dir;
    this.path = `${dir}/docker.sock`;
    this.apiVersion = opts.apiVersion === undefined ? "1.44" : opts.apiVersion;
    this.minApiVersion = opts.minApiVersion ?? "1.24";
    this.server = opts.server ?? "Docker/25.0.5 (linux)";
    this.#listener = Deno.listen({ transport: "unix", path: this.path });
    this.#loop = this.#acceptLoop();
  }

  /** Listen on `<fresh temp dir>/docker.sock`. */
  static async start(opts: FakeEngineOptions = {}): Promise<FakeEngine> {
    const dir = await Deno.makeTempDir({ prefix: "moat-fake-engine-" });
    return new FakeEngine(dir, opts);
  }

  /** The endpoint to hand `unixTransport`. */
  get endpoint(): { kind: "unix"; path: string; source: "DOCKER_HOST" } {
    return { kind: "unix", path: this.path, source: "DOCKER_HOST" };
  }

  /**
   * Answer `route` ("METHOD /path", path without the `/v1.xx` prefix; `:name` matches one segment) with a
   * handler or a canned reply. A later registration of the same route replaces the earlier one.
   * Unregistered routes get the daemon's 404 `{"message":"page not found"}`; `GET`/`HEAD /_ping` are
   * built in until overridden.
   */
  on(route: string, answer: FakeHandler | FakeReply): this {
    const pattern = parseRoute(route);
    const handler: FakeHandler = typeof answer === "function" ? answer : (_req, res) => reply(res, answer);
    this.#routes = this.#routes.filter((r) =>
      !(r.method === pattern.method && r.segments.join("/") === pattern.segments.join("/"))
    );
    this.#routes.push({ ...pattern, handler });
    return this;
  }

  /**
   * Answer the network routes (`GET /networks`, `POST /networks/create`, `GET /networks/:id`,
   * `DELETE /networks/:id`) from a table of networks, starting with `initial`. `keep` decides what the
   * engine keeps of a create body (default: all of it, as Docker does); `refuse` makes create answer 400
   * with that message. Returns the live table: a test sees what is left.
   */
  withNetworks(
    initial: readonly object[] = [],
    opts: { refuse?: string; keep?: (body: Record<string, unknown>) => Record<string, unknown> } = {},
  ): Map<string, Record<string, unknown>> {
    const table = new Map<string, Record<string, unknown>>(
      initial.map((n) => [String((n as Record<string, unknown>)["Id"]), n as Record<string, unknown>]),
    );
    let next = 1;
    const find = (key: string) => [...table.values()].find((n) => n["Id"] === key || n["Name"] === key);
    this.on("GET /networks", (_req, res) => res.json(200, [...table.values()]));
    this.on("POST /networks/create", (req, res) => {
      if (opts.refuse) return res.json(400, { message: opts.refuse });
      const body = req.json as Record<string, unknown>;
      const id = String(next++).padStart(64, "e");
      const kept = (opts.keep ?? ((b) => b))(body);
      const { Name, Driver, Internal, IPAM, Options, Labels } = kept;
      table.set(id, { Name, Id: id, Driver, Internal, IPAM, Options, Labels });
      return res.json(201, { Id: id, Warning: "" });
    });
    this.on("GET /networks/:id", (req, res) => {
      const n = find(req.params["id"]!);
      return n ? res.json(200, n) : res.json(404, { message: `network ${req.params["id"]} not found` });
    });
    this.on("DELETE /networks/:id", (req, res) => {
      const n = find(req.params["id"]!);
      if (!n) return res.json(404, { message: `network ${req.params["id"]} not found` });
      table.delete(String(n["Id"]));
      return res.empty(204);
    });
    return table;
  }

  /** `["GET /_ping", "POST /containers/create", …]` in arrival order. */
  calls(): string[] {
    return this.requests.map((r) => r.call);
  }

  /** The requests that match a route pattern ("POST /containers/:id/start"). */
  requestsTo(route: string): FakeRequest[] {
    const pattern = parseRoute(route);
    return this.requests.filter((r) => matchRoute(pattern, r.method, r.path) !== undefined);
  }

  /** Stop: abort delays, close every connection and the listener, await all work, remove the temp dir. */
  close(): Promise<void> {
    this.#closed ??= this.#shutdown();
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(): Promise<void> {
    this.#abort.abort();
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    for (const conn of this.#conns) closeQuietly(conn);
    this.#conns.clear();
    await this.#loop;
    await Promise.allSettled([...this.#tasks]);
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    if (this.#errors.length > 0) {
      throw new AggregateError(
        this.#errors,
        `fake engine: ${this.#errors.length} handler error(s): ${this.#errors[0]}`,
      );
    }
  }

  async #acceptLoop(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (!this.#abort.signal.aborted && !isPeerGone(err)) this.#errors.push(err);
        return;
      }
      if (this.#abort.signal.aborted) {
        closeQuietly(conn);
        return;
      }
      this.#conns.add(conn);
      const task = this.#serve(conn).finally(() => {
        this.#tasks.delete(task);
      });
      this.#tasks.add(task);
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const closeConn = () => {
      if (this.#conns.delete(conn)) closeQuietly(conn);
    };
    try {
      const reader = new ConnReader(conn);
      const head = await readRequestHead(reader);
      if (!head) return;
      const res = new FakeResponse(this, conn, reader, closeConn, this.#abort.signal);
      const chunkedRequest = head.headers["transfer-encoding"] !== undefined;
      let body: Uint8Array = new Uint8Array(0);
      if (!chunkedRequest && head.headers["content-length"] !== undefined) {
        const length = Number(head.headers["content-length"]);
        while (reader.buf.byteLength < length) {
          if (!(await reader.fill())) break;
        }
        body = reader.take(length);
      }
      const req = this.#record(head, body);
      if (chunkedRequest) {
        // The daemon rejects chunked bodies on /start (moby postContainersStart); moat never sends one, so
        // refuse them all.
        await res.json(400, { message: "fake engine: chunked request bodies are not accepted" });
        return;
      }
      const versionError = this.#checkVersion(req.version);
      if (versionError) {
        await res.json(400, { message: versionError });
        return;
      }
      const match = this.#find(req);
      if (!match) {
        await res.json(404, { message: "page not found" });
        return;
      }
      req.params = match.params;
      await match.handler(req, res);
    } catch (err) {
      if (!isPeerGone(err)) this.#errors.push(err);
    } finally {
      closeConn();
    }
  }

  #record(head: ParsedHead, body: Uint8Array): FakeRequest {
    const q = head.target.indexOf("?");
    const rawPath = q < 0 ? head.target : head.target.slice(0, q);
    const query = new URLSearchParams(q < 0 ? "" : head.target.slice(q + 1));
    const vm = /^\/v(\d+\.\d+)(\/.*)$/.exec(rawPath);
    const path = vm ? vm[2]! : rawPath;
    const text = decoder.decode(body);
    let json: unknown = undefined;
    if (text.trim() !== "" && (head.headers["content-type"] ?? "").startsWith("application/json")) {
      try {
        json = JSON.parse(text);
      } catch { /* leave undefined: the test sees `text` */ }
    }
    const req: FakeRequest = {
      method: head.method,
      target: head.target,
      version: vm?.[1],
      path,
      call: `${head.method} ${path}`,
      query,
      headers: head.headers,
      rawHeaders: head.rawHeaders,
      body,
      text,
      json,
      params: {},
    };
    this.requests.push(req);
    return req;
  }

  /** The daemon's version middleware (daemon/server/middleware/version.go), same wording. */
  #checkVersion(version: string | undefined): string | undefined {
    if (version === undefined) return undefined;
    if (compareVersions(version, this.minApiVersion) < 0) {
      return `client version ${version} is too old. Minimum supported API version is ${this.minApiVersion}, ` +
        "please upgrade your client to a newer version";
    }
    if (this.apiVersion !== null && compareVersions(version, this.apiVersion) > 0) {
      return `client version ${version} is too new. Maximum supported API version is ${this.apiVersion}`;
    }
    return undefined;
  }

  #find(req: FakeRequest): { handler: FakeHandler; params: Record<string, string> } | undefined {
    for (let i = this.#routes.length - 1; i >= 0; i--) {
      const route = this.#routes[i]!;
      const params = matchRoute(route, req.method, req.path);
      if (params) return { handler: route.handler, params };
    }
    if (
      (req.method === "GET" || req.method === "HEAD") && req.path === "/_ping" && req.version === undefined
    ) {
      return { handler: (r, res) => this.#ping(r, res), params: {} };
    }
    return undefined;
  }

  /** `/_ping` as the daemon answers it (swagger SystemPing). */
  async #ping(req: FakeRequest, res: FakeResponse): Promise<void> {
    const headers = {
      "Content-Type": "text/plain; charset=utf-8",
      "Cache-Control": "no-cache, no-store, must-revalidate",
      "Pragma": "no-cache",
      "Docker-Experimental": "false",
      "Content-Length": "2",
    };
    await res.head(200, headers);
    if (req.method === "GET") await res.write("OK");
  }
}

function reply(res: FakeResponse, r: FakeReply): Promise<void> {
  if (r.json !== undefined) return res.json(r.status, r.json, r.headers);
  if (r.text !== undefined) return res.text(r.status, r.text, r.headers);
  return res.empty(r.status, r.headers);
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}
