/**
 * A fault-injecting proxy between moat and a real Docker engine socket, for tests that need the engine to
 * misbehave on cue: a slow answer, an error status, a cut or garbled body, a lost reply, a stalled or
 * corrupted output stream.
 *
 * It listens on a unix socket in a fresh temp dir and forwards each connection to the engine's socket
 * (default `/var/run/docker.sock`). Without a fault the bytes pass through unchanged in both directions:
 * the request as moat wrote it, the response as the engine wrote it (Content-Length, chunked or
 * close-delimited bodies alike), and after a `101` upgrade (`POST /containers/{id}/attach`) the raw stream
 * both ways. A half-close travels too: when the client shuts its write side (stdin EOF on an attach), the
 * proxy shuts its write side toward the engine, and the engine's end of the response reaches the client
 * as EOF. It parses HTTP heads itself, independently of `lib/docker/http.ts`, so a framing bug in moat's
 * client cannot hide behind the same bug here.
 *
 * One request per connection, as moat sends them (`Connection: close`): faults and the record apply to
 * the first request of a connection; anything after it is relayed as raw bytes.
 *
 * ```ts
 * await using proxy = await FaultProxy.start(); // or FaultProxy.start({ upstream: "/path/to/docker.sock" })
 * // The first start answers 500 without reaching the engine:
 * proxy.inject("POST /containers/:id/start", { kind: "status", status: 500, message: "boom" }, { nth: 1 });
 * // Every create reaches the engine, which creates the container, but the reply is lost:
 * proxy.inject("POST /containers/create", { kind: "reset", forward: true });
 * // The attach's output is held back after the 101 until `stall.release()`:
 * const stall = proxy.inject("POST /containers/:id/attach", { kind: "stall", of: "body", bytes: 0 });
 *
 * const client = new DockerClient(unixTransport(proxy.endpoint), { timeoutMs: 5000 }); // in-process, or
 * const env = { DOCKER_HOST: proxy.dockerHost };                                        // for main.ts
 * // …
 * await stall.fired;     // the output is being held now
 * stall.release();
 * assert.deepEqual(proxy.calls(), ["GET /_ping", "POST /containers/create", …]);
 * ```
 *
 * Routes are `"METHOD /path"` with the `/vX.Y` prefix and the query left out; a `:name` segment matches
 * any one segment, a `*` method any method. `inject` returns an `Injection`; which matching requests it
 * takes is set by `nth` (only those, 1-based), `from` (that one and every later one), `times` (at most
 * that many in all) and `when` (a predicate on the request, e.g. on its query). Each injection counts the
 * requests that match its route and predicate, whether or not an earlier injection took them; a request
 * gets the fault of the first injection (in the order they were made) that takes it.
 *
 * Faults (`Fault`):
 * - `delay`: hold the request `ms` before forwarding it (`hold: "request"`, the default), or forward it and
 *   hold the engine's response head `ms` before relaying it (`hold: "response"`). A request held past the
 *   client's giving up still reaches the engine afterwards, as late bytes on a socket would.
 * - `status`: answer `status` with `{"message": message}` (Content-Length framed) without reaching the
 *   engine; with `forward: true` the request goes to the engine first, and once the engine's response head
 *   arrives (it has done the work) the proxy drops that answer and sends its own.
 * - `truncate`: forward, relay the first `bytes` of the response and close both connections. `of` says
 *   what is counted: `"body"` (default: the bytes after the head, as on the wire, chunk framing included),
 *   `"response"` (from the status line on) or `"payload"` (the body without chunk framing; after a `101`,
 *   the stream).
 * - `reset`: close the client's connection without an answer: before forwarding (the engine never sees
 *   the request), or with `forward: true` once the engine's response head has arrived (a lost reply).
 *   Unix sockets have no RST: the client reads EOF, or ECONNRESET if it had unread bytes with us.
 * - `stall`: forward, relay the first `bytes` (default 0) counted as for `truncate` (`of` defaults to
 *   `"response"`: nothing at all is relayed), then send nothing more while keeping the client's
 *   connection open. The engine's bytes are read and kept meanwhile; `release()` sends them and relays the
 *   rest, and `close()` ends the stall without sending. `upstreamEnded` resolves when the engine finished
 *   a response that is being held (e.g. an attach whose container exited).
 * - `garble`: forward, read the whole body and send `with` instead (a string, or a function of the
 *   engine's body text); the default cuts the JSON in half. The framing stays valid: a chunked reply's
 *   head is relayed at once and the new body follows as one chunk once the engine's body has ended
 *   (so a `/wait` is acknowledged as usual and its garbled result comes at the exit); a sized or
 *   close-delimited reply is held until its end and sent with a new `Content-Length`. A bodiless or
 *   upgraded reply passes unchanged.
 * - `corrupt-frame`: forward, and in the multiplexed stream (the payload: after a `101`, or a logs body
 *   inside its chunks) change one byte of one frame's 8-byte header: frame number `frame` (1-based), or
 *   the first frame that starts at or after `afterBytes` of the stream; header byte `byte` (default 0, the
 *   stream type); set to `value` (default: the byte with every bit flipped). Nothing else changes.
 * - `end-early`: forward, relay `bytes` of the stream (payload, as above), then close the client's
 *   connection while the engine's stays open and is read to its end (a connection lost mid-output; the
 *   engine notices nothing, and a container reading stdin gets no EOF from it).
 *
 * An `Injection` tells what happened: `seen` (matching requests), `hits` (requests it took), `remaining`,
 * `fired` (resolves with the first request on which the fault took effect: the hold began, the answer or
 * the cut went out, the byte was changed; it never resolves for a fault that never took effect, such as a
 * truncate longer than the response), `upstreamEnded` (stall). `release()` lets every response it holds
 * go on and removes it; `remove()` only stops it taking more requests.
 *
 * `requests` records every request (method, target, path, query, headers, body, the engine's status,
 * the fault applied); `calls()` lists them as `"POST /containers/create"`. `close()` (or `await using`)
 * ends delays and stalls, closes every connection and the listener, awaits every task and removes the temp
 * dir, so `deno test --sanitize-ops --sanitize-resources` stays quiet; it rethrows errors of the proxy's
 * own (not a peer going away), so a broken proxy fails its test.
 */

/** What a byte count in a fault counts: see `Fault`. */
export type Measure = "response" | "body" | "payload";

/** One fault, applied to one request/response. See the top of this file. */
export type Fault =
  | { kind: "delay"; ms: number; hold?: "request" | "response" }
  | {
    kind: "status";
    status: number;
    message?: string;
    /** Extra headers on the injected answer (e.g. `Api-Version`). */
    headers?: Record<string, string>;
    forward?: boolean;
  }
  | { kind: "truncate"; bytes: number; of?: Measure }
  | { kind: "reset"; forward?: boolean }
  | { kind: "stall"; bytes?: number; of?: Measure }
  | { kind: "garble"; with?: string | ((body: string) => string) }
  | { kind: "corrupt-frame"; frame?: number; afterBytes?: number; byte?: number; value?: number }
  | { kind: "end-early"; bytes: number };

/** Which of the requests matching a route an injection takes. Without any field: all of them. */
export interface Selection {
  /** Only the nth matching request(s), 1-based. */
  nth?: number | number[];
  /** The nth matching request and every later one. */
  from?: number;
  /** At most this many requests in all (the remaining count). */
  times?: number;
  /** Only requests for which this returns true count as matching (e.g. `(r) => r.query.has("follow")`). */
  when?: (req: ProxyRequest) => boolean;
}

/** A request as the proxy received it. */
export interface ProxyRequest {
  method: string;
  /** The request target exactly as sent, e.g. `/v1.44/containers/json?all=1`. */
  target: string;
  /** `"1.44"` for `/v1.44/…`; `undefined` for an unversioned path such as `/_ping`. */
  version: string | undefined;
  /** The path without the version prefix and the query, e.g. `/containers/abc/start`. */
  path: string;
  /** `"POST /containers/abc/start"`: the form `calls()` lists. */
  call: string;
  query: URLSearchParams;
  /** Header names lower-cased; repeated headers joined with `", "`. */
  headers: Record<string, string>;
  /** The Content-Length body (empty for none or a chunked one). */
  body: Uint8Array;
  /** The status of the engine's response head, once it passed the proxy. */
  status: number | undefined;
  /** The fault applied to this request, if any. */
  fault: Fault | undefined;
}

export interface FaultProxyOptions {
  /** The engine's socket. Default `/var/run/docker.sock`. */
  upstream?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const REASONS: Record<number, string> = {
  200: "OK",
  201: "Created",
  204: "No Content",
  304: "Not Modified",
  400: "Bad Request",
  404: "Not Found",
  409: "Conflict",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

const MAX_HEAD = 64 * 1024;
const READ_SIZE = 64 * 1024;
/** Bytes queued toward a slow client before the proxy stops reading the engine (not while stalled). */
const QUEUE_LIMIT = 1024 * 1024;

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/** Errors that only mean a peer went away, or that we closed the connection ourselves. */
function isPeerGone(err: unknown): boolean {
  return err instanceof Deno.errors.BrokenPipe || err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted ||
    err instanceof Deno.errors.NotConnected || err instanceof Deno.errors.UnexpectedEof ||
    err instanceof Deno.errors.ConnectionAborted;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.byteLength) off += await conn.write(bytes.subarray(off));
}

/** A read buffer over one connection; keeps what came after a head. */
class ByteReader {
  #conn: Deno.Conn;
  buf: Uint8Array = new Uint8Array(0);
  eof = false;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async fill(): Promise<boolean> {
    if (this.eof) return false;
    const chunk = new Uint8Array(READ_SIZE);
    const n = await this.#conn.read(chunk);
    if (n === null) {
      this.eof = true;
      return false;
    }
    this.buf = this.buf.byteLength === 0 ? chunk.subarray(0, n) : concat(this.buf, chunk.subarray(0, n));
    return true;
  }

  take(n: number): Uint8Array {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** The buffered bytes, else one read; `null` at EOF. */
  async next(): Promise<Uint8Array | null> {
    if (this.buf.byteLength === 0 && !(await this.fill())) return null;
    return this.take(this.buf.byteLength);
  }
}

function indexOfHeadEnd(buf: Uint8Array, from: number): number {
  for (let i = Math.max(0, from); i + 3 < buf.byteLength; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

/**
 * Read through the blank line ending a head. `complete: false` when the peer closed (or the head grew
 * past 64 KiB) first; `raw` then holds what came.
 */
async function readHead(reader: ByteReader): Promise<{ raw: Uint8Array; text: string; complete: boolean }> {
  let scanned = 0;
  for (;;) {
    const idx = indexOfHeadEnd(reader.buf, scanned - 3);
    if (idx >= 0) {
      const raw = reader.take(idx + 4);
      return { raw, text: decoder.decode(raw.subarray(0, idx)), complete: true };
    }
    scanned = reader.buf.byteLength;
    if (scanned > MAX_HEAD || !(await reader.fill())) {
      const raw = reader.take(reader.buf.byteLength);
      return { raw, text: decoder.decode(raw), complete: false };
    }
  }
}

/** Header lines after the first line of a head: names lower-cased, repeats joined with ", ". */
function parseHeaderLines(lines: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
  }
  return headers;
}

interface ResponseHead {
  status: number;
  headers: Record<string, string>;
}

function parseResponseHead(text: string): ResponseHead | undefined {
  const [statusLine = "", ...lines] = text.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!m) return undefined;
  return { status: Number(m[1]), headers: parseHeaderLines(lines) };
}

/** How the body after a response head is delimited; `raw` is the stream after a `101`. */
type Framing =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "close" }
  | { kind: "raw" };

function framingOf(method: string, head: ResponseHead): Framing {
  const s = head.status;
  if (s === 101) return { kind: "raw" };
  if (method === "HEAD" || (s >= 100 && s < 200) || s === 204 || s === 304) return { kind: "none" };
  const te = head.headers["transfer-encoding"];
  if (te !== undefined && /(^|,)\s*chunked\s*$/i.test(te)) return { kind: "chunked" };
  const cl = head.headers["content-length"];
  if (cl !== undefined && /^\d+$/.test(cl)) return { kind: "length", length: Number(cl) };
  return { kind: "close" };
}

/** Payload bytes `buf[start, end)` are bytes `at…` of the body without its framing. */
interface Span {
  start: number;
  end: number;
  at: number;
}

/**
 * Follows a response body across reads and says which wire bytes are payload (everything but chunk
 * framing). Only reads; the bytes are relayed as they are.
 */
class BodyTracker {
  payload = 0;
  done = false;
  #framing: Framing;
  #left = 0;
  #state: "size" | "data" | "data-end" | "trailer" = "size";
  #line = "";

  constructor(framing: Framing) {
    this.#framing = framing;
    if (framing.kind === "none") this.done = true;
    if (framing.kind === "length") {
      this.#left = framing.length;
      this.done = framing.length === 0;
    }
  }

  push(buf: Uint8Array): Span[] {
    const spans: Span[] = [];
    const span = (start: number, end: number) => {
      spans.push({ start, end, at: this.payload });
      this.payload += end - start;
    };
    let i = 0;
    while (i < buf.byteLength && !this.done) {
      switch (this.#framing.kind) {
        case "close":
        case "raw":
          span(i, buf.byteLength);
          i = buf.byteLength;
          break;
        case "length": {
          const n = Math.min(this.#left, buf.byteLength - i);
          span(i, i + n);
          i += n;
          this.#left -= n;
          if (this.#left === 0) this.done = true;
          break;
        }
        case "chunked":
          i = this.#chunked(buf, i, span);
          break;
        case "none":
          this.done = true;
      }
    }
    return spans;
  }

  #chunked(buf: Uint8Array, i: number, span: (start: number, end: number) => void): number {
    if (this.#state === "data") {
      const n = Math.min(this.#left, buf.byteLength - i);
      span(i, i + n);
      this.#left -= n;
      if (this.#left === 0) this.#state = "data-end";
      return i + n;
    }
    const b = buf[i]!;
    if (this.#state === "data-end") {
      if (b === 10) this.#state = "size";
      return i + 1;
    }
    if (b !== 10) {
      if (this.#line.length < MAX_HEAD) this.#line += String.fromCharCode(b);
      return i + 1;
    }
    const line = this.#line.replace(/\r$/, "");
    this.#line = "";
    if (this.#state === "trailer") {
      if (line === "") this.done = true;
      return i + 1;
    }
    const size = parseInt(line.split(";", 1)[0]!.trim(), 16);
    if (!Number.isFinite(size)) {
      // Not chunked framing we can follow: relay the rest untracked.
      this.done = true;
    } else if (size === 0) {
      this.#state = "trailer";
    } else {
      this.#left = size;
      this.#state = "data";
    }
    return i + 1;
  }
}

/** Finds and changes one header byte in a multiplexed stream (8-byte headers, swagger "Stream format"). */
class FrameCorrupter {
  #fault: Extract<Fault, { kind: "corrupt-frame" }>;
  #frames = 0;
  #have = 0;
  #header = new Uint8Array(8);
  #owed = 0;
  #target: number | undefined;
  done = false;

  constructor(fault: Extract<Fault, { kind: "corrupt-frame" }>) {
    this.#fault = fault;
    if (fault.afterBytes === undefined) this.#target = fault.frame ?? 1;
  }

  /** Walk a payload span of `buf`, changing the target byte in place; true when it was changed here. */
  walk(buf: Uint8Array, span: Span): boolean {
    let changed = false;
    let i = span.start, at = span.at;
    while (i < span.end && !this.done) {
      if (this.#owed > 0) {
        const n = Math.min(this.#owed, span.end - i);
        this.#owed -= n;
        i += n;
        at += n;
        continue;
      }
      if (this.#have === 0) {
        this.#frames++;
        if (this.#target === undefined && at >= this.#fault.afterBytes!) this.#target = this.#frames;
      }
      const original = buf[i]!;
      this.#header[this.#have] = original;
      if (this.#frames === this.#target && this.#have === (this.#fault.byte ?? 0)) {
        buf[i] = this.#fault.value ?? (original ^ 0xff);
        this.done = changed = true;
      }
      this.#have++;
      i++;
      at++;
      if (this.#have === 8) {
        const h = this.#header;
        this.#owed = ((h[4]! << 24) >>> 0) + (h[5]! << 16) + (h[6]! << 8) + h[7]!;
        this.#have = 0;
      }
    }
    return changed;
  }
}

/** Where a count of `of` bytes reaches `at`, in wire positions of a piece (see `Shaper.shape`). */
interface Trigger {
  of: Measure;
  at: number;
  fired: boolean;
}

/**
 * Walks the response as it passes: the head, then body reads. Applies a frame corruption in place and
 * finds the position where a truncate/stall/end-early takes effect.
 */
class Shaper {
  #tracker: BodyTracker;
  #corrupter: FrameCorrupter | undefined;
  #trigger: Trigger | undefined;
  #wire = 0;
  #headLen = 0;
  corrupted = false;

  constructor(framing: Framing, fault: Fault | undefined) {
    this.#tracker = new BodyTracker(framing);
    if (fault?.kind === "corrupt-frame") this.#corrupter = new FrameCorrupter(fault);
    if (fault?.kind === "truncate") this.#trigger = { of: fault.of ?? "body", at: fault.bytes, fired: false };
    if (fault?.kind === "stall") {
      this.#trigger = { of: fault.of ?? "response", at: fault.bytes ?? 0, fired: false };
    }
    if (fault?.kind === "end-early") this.#trigger = { of: "payload", at: fault.bytes, fired: false };
  }

  /**
   * Shape one piece (the head, then each body read; `bytes` may be changed in place). Returns the index in
   * `bytes` at which the trigger takes effect — after the bytes before it, before the rest — if it does in
   * this piece.
   */
  shape(bytes: Uint8Array, isHead: boolean): number | undefined {
    const base = this.#wire;
    this.#wire += bytes.byteLength;
    if (isHead) {
      this.#headLen = bytes.byteLength;
      const t = this.#trigger;
      if (!t || t.fired) return undefined;
      if (t.of === "response" && t.at <= bytes.byteLength) return this.#fire(t.at);
      // The body (and its payload) begins where the head ends.
      if (t.of !== "response" && t.at === 0) return this.#fire(bytes.byteLength);
      return undefined;
    }
    const spans = this.#tracker.push(bytes);
    if (this.#corrupter) {
      for (const span of spans) if (this.#corrupter.walk(bytes, span)) this.corrupted = true;
    }
    const t = this.#trigger;
    if (!t || t.fired) return undefined;
    if (t.of === "response" || t.of === "body") {
      const offset = t.of === "response" ? base : base - this.#headLen;
      if (t.at >= offset && t.at <= offset + bytes.byteLength) return this.#fire(t.at - offset);
      return undefined;
    }
    for (const span of spans) {
      if (t.at > span.at && t.at <= span.at + (span.end - span.start)) {
        return this.#fire(span.start + (t.at - span.at));
      }
    }
    return undefined;
  }

  #fire(index: number): number {
    this.#trigger!.fired = true;
    return index;
  }
}

/** What the response relay hands its writer: bytes, or a fault's action at that point. */
type Item =
  | { kind: "data"; bytes: Uint8Array }
  | { kind: "stall" }
  | { kind: "cut" }
  | { kind: "end" };

/** A queue from the engine-reading side to the client-writing side of one response. */
class Outbox {
  #items: Item[] = [];
  #wake: (() => void) | undefined;
  #roomWake: (() => void) | undefined;
  bytes = 0;
  /** True while a stall holds the writer: the reader then buffers without limit. */
  holding = false;

  push(item: Item): void {
    this.#items.push(item);
    if (item.kind === "data") this.bytes += item.bytes.byteLength;
    this.#wake?.();
  }

  async next(): Promise<Item> {
    while (this.#items.length === 0) {
      await new Promise<void>((r) => this.#wake = r);
      this.#wake = undefined;
    }
    let item = this.#items.shift()!;
    if (item.kind === "data") {
      // Data queued back to back leaves in one write: a 101 head and the stream bytes that came with it
      // reach the client together, as they left the engine.
      const run = [item.bytes];
      while (this.#items[0]?.kind === "data") run.push((this.#items.shift() as { bytes: Uint8Array }).bytes);
      if (run.length > 1) item = { kind: "data", bytes: concat(...run) };
      this.bytes -= item.bytes.byteLength;
    }
    if (this.bytes < QUEUE_LIMIT) this.#roomWake?.();
    return item;
  }

  /** Resolves once there is room (or the writer is stalled or gone). */
  async room(gone: () => boolean): Promise<void> {
    while (this.bytes >= QUEUE_LIMIT && !this.holding && !gone()) {
      await new Promise<void>((r) => this.#roomWake = r);
      this.#roomWake = undefined;
    }
  }

  /** Wake a waiting reader (the writer stalled or went away). */
  poke(): void {
    this.#roomWake?.();
  }
}

interface Route {
  method: string;
  segments: string[];
}

function parseRoute(route: string): Route {
  const m = /^([A-Z]+|\*) (\/\S*)$/.exec(route);
  if (!m) throw new Error(`fault proxy: route must look like "GET /containers/:id/json", got ${route}`);
  return { method: m[1]!, segments: m[2]!.split("/") };
}

function matchRoute(route: Route, method: string, path: string): boolean {
  if (route.method !== "*" && route.method !== method) return false;
  const parts = path.split("/");
  if (parts.length !== route.segments.length) return false;
  return route.segments.every((want, i) => want.startsWith(":") ? parts[i] !== "" : want === parts[i]);
}

/** One `inject` call: counts its matching requests and says what it did. */
export class Injection {
  readonly route: string;
  readonly fault: Fault;
  /** Matching requests seen (route and `when`), whether or not this injection took them. */
  seen = 0;
  /** Requests this injection took. */
  hits = 0;
  /** How many more it may take (`times`; `Infinity` when unbounded). */
  remaining: number;
  /**
   * Resolves with the first request whose fault took effect: the hold began (delay, stall), the answer or
   * the cut went out (status, truncate, reset, garble, end-early), the byte was changed (corrupt-frame).
   * It never resolves if the fault never takes effect (e.g. a truncate longer than the response).
   */
  readonly fired: Promise<ProxyRequest>;
  /** (stall) Resolves once the engine finished a response this injection is holding back. */
  readonly upstreamEnded: Promise<ProxyRequest>;

  #route: Route;
  #selection: Selection;
  #onFired: (req: ProxyRequest) => void;
  #onEnded: (req: ProxyRequest) => void;
  #held = new Set<() => void>();
  #proxy: FaultProxy;
  released = false;

  /** @internal */
  constructor(proxy: FaultProxy, route: string, fault: Fault, selection: Selection) {
    this.#proxy = proxy;
    this.route = route;
    this.#route = parseRoute(route);
    this.fault = fault;
    this.#selection = selection;
    this.remaining = selection.times ?? Infinity;
    const fired = Promise.withResolvers<ProxyRequest>();
    this.fired = fired.promise;
    this.#onFired = fired.resolve;
    const ended = Promise.withResolvers<ProxyRequest>();
    this.upstreamEnded = ended.promise;
    this.#onEnded = ended.resolve;
  }

  /** @internal Count `req` if it matches; true when this injection takes it. */
  consider(req: ProxyRequest, alreadyTaken: boolean): boolean {
    if (!matchRoute(this.#route, req.method, req.path)) return false;
    if (this.#selection.when && !this.#selection.when(req)) return false;
    const n = ++this.seen;
    if (alreadyTaken || this.released || this.remaining <= 0) return false;
    const { nth, from } = this.#selection;
    if (nth !== undefined && !(Array.isArray(nth) ? nth.includes(n) : nth === n)) return false;
    if (from !== undefined && n < from) return false;
    this.remaining--;
    this.hits++;
    return true;
  }

  /** @internal */
  fire(req: ProxyRequest): void {
    this.#onFired(req);
  }

  /** @internal */
  ended(req: ProxyRequest): void {
    this.#onEnded(req);
  }

  /** @internal Hold until `release()`; resolves at once when already released. */
  hold(signal: AbortSignal): Promise<void> {
    if (this.released || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#held.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      this.#held.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  /** Let every response this injection holds go on, and take no more requests (it is removed). */
  release(): void {
    this.released = true;
    for (const done of [...this.#held]) done();
    this.#proxy.remove(this);
  }

  /** Take no more requests. Responses already held stay held until `release()` or `close()`. */
  remove(): void {
    this.#proxy.remove(this);
  }
}

/** The proxy. Create with `FaultProxy.start()`, always `close()` (or `await using`). */
export class FaultProxy {
  /** The proxy's unix socket path. */
  readonly path: string;
  /** The temp dir holding the socket (removed at close). */
  readonly dir: string;
  /** The engine socket it forwards to. */
  readonly upstream: string;
  /** Every request received, in arrival order. */
  readonly requests: ProxyRequest[] = [];

  #listener: Deno.UnixListener;
  #injections: Injection[] = [];
  #conns = new Set<Deno.Conn>();
  #tasks = new Set<Promise<void>>();
  #errors: unknown[] = [];
  #abort = new AbortController();
  #loop: Promise<void>;
  #closed: Promise<void> | undefined;

  private constructor(dir: string, upstream: string) {
    this.dir = dir;
    this.path = `${dir}/proxy.sock`;
    this.upstream = upstream;
    this.#listener = Deno.listen({ transport: "unix", path: this.path });
    this.#loop = this.#acceptLoop();
  }

  /** Listen on `<fresh temp dir>/proxy.sock`, forwarding to `upstream` (default `/var/run/docker.sock`). */
  static async start(opts: FaultProxyOptions = {}): Promise<FaultProxy> {
    const dir = await Deno.makeTempDir({ prefix: "moat-fault-proxy-" });
    return new FaultProxy(dir, opts.upstream ?? "/var/run/docker.sock");
  }

  /** The endpoint to hand `unixTransport`. */
  get endpoint(): { kind: "unix"; path: string; source: "DOCKER_HOST" } {
    return { kind: "unix", path: this.path, source: "DOCKER_HOST" };
  }

  /** `unix://<socket>`, for `DOCKER_HOST` of a spawned moat. */
  get dockerHost(): string {
    return `unix://${this.path}`;
  }

  /** Apply `fault` to the requests matching `route` that `selection` picks (default: all of them). */
  inject(route: string, fault: Fault, selection: Selection = {}): Injection {
    const injection = new Injection(this, route, fault, selection);
    this.#injections.push(injection);
    return injection;
  }

  /** Drop an injection (`Injection.remove()`); requests it holds stay held. */
  remove(injection: Injection): void {
    this.#injections = this.#injections.filter((i) => i !== injection);
  }

  /** `["GET /_ping", "POST /containers/create", …]` in arrival order. */
  calls(): string[] {
    return this.requests.map((r) => r.call);
  }

  /** The requests that match a route pattern ("POST /containers/:id/start"). */
  requestsTo(route: string): ProxyRequest[] {
    const pattern = parseRoute(route);
    return this.requests.filter((r) => matchRoute(pattern, r.method, r.path));
  }

  /** Stop: end delays and stalls, close every connection and the listener, await all work. */
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
        `fault proxy: ${this.#errors.length} error(s): ${this.#errors[0]}`,
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
      const task = this.#serve(conn).catch((err) => {
        if (!isPeerGone(err)) this.#errors.push(err);
      }).finally(() => {
        this.#tasks.delete(task);
      });
      this.#tasks.add(task);
    }
  }

  /** Close a connection of ours (once). */
  #drop(conn: Deno.Conn | undefined): void {
    if (conn && this.#conns.delete(conn)) closeQuietly(conn);
  }

  /** Wait `ms`, or less if the proxy closes; true when the full time passed. */
  #sleep(ms: number): Promise<boolean> {
    const signal = this.#abort.signal;
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

  async #serve(client: Deno.Conn): Promise<void> {
    let upstream: Deno.Conn | undefined;
    let pump: Promise<void> | undefined;
    try {
      const clientReader = new ByteReader(client);
      const head = await readHead(clientReader);
      if (!head.complete) return;
      const [requestLine = "", ...lines] = head.text.split("\r\n");
      const [method = "", target = ""] = requestLine.split(" ");
      const headers = parseHeaderLines(lines);
      let body: Uint8Array = new Uint8Array(0);
      const cl = headers["content-length"];
      if (headers["transfer-encoding"] === undefined && cl !== undefined && /^\d+$/.test(cl)) {
        while (clientReader.buf.byteLength < Number(cl) && (await clientReader.fill()));
        body = clientReader.take(Number(cl)).slice();
      }
      const req = this.#record(method, target, headers, body);
      let injection: Injection | undefined;
      for (const i of [...this.#injections]) {
        if (i.consider(req, injection !== undefined)) injection = i;
      }
      const fault = injection?.fault;
      req.fault = fault;
      const fire = () => injection!.fire(req);

      if (fault?.kind === "delay" && fault.hold !== "response") {
        fire();
        if (!(await this.#sleep(fault.ms))) return;
      }
      if (fault?.kind === "status" && !fault.forward) {
        await writeAll(client, cannedReply(fault));
        fire();
        return;
      }
      if (fault?.kind === "reset" && !fault.forward) {
        fire();
        return;
      }

      try {
        upstream = await Deno.connect({ transport: "unix", path: this.upstream });
      } catch (err) {
        const message = `fault proxy: cannot reach the engine at ${this.upstream}: ${(err as Error).message}`;
        await writeAll(client, cannedReply({ kind: "status", status: 502, message }));
        return;
      }
      if (this.#abort.signal.aborted) return closeQuietly(upstream);
      this.#conns.add(upstream);
      const up = upstream;
      await writeAll(up, concat(head.raw, body, clientReader.take(clientReader.buf.byteLength)));
      pump = this.#pumpRequest(clientReader, client, up);
      try {
        await this.#relayResponse(method, req, injection, client, up);
      } catch (err) {
        this.#drop(client);
        throw err;
      }
    } finally {
      // The client's side ends when the client closes; a relay that ended early closed it already.
      await pump;
      this.#drop(upstream);
      this.#drop(client);
    }
  }

  /** Client → engine, raw, after the request: stdin of an attach. The client's EOF half-closes upstream. */
  async #pumpRequest(reader: ByteReader, client: Deno.Conn, upstream: Deno.Conn): Promise<void> {
    try {
      for (;;) {
        const bytes = await reader.next();
        if (bytes === null) break;
        await writeAll(upstream, bytes);
      }
      // Only the client's own EOF, not our closing of its connection (end-early keeps the engine's side).
      if (this.#conns.has(client)) await upstream.closeWrite();
    } catch (err) {
      if (!isPeerGone(err)) throw err;
    }
  }

  async #relayResponse(
    method: string,
    req: ProxyRequest,
    injection: Injection | undefined,
    client: Deno.Conn,
    upstream: Deno.Conn,
  ): Promise<void> {
    const fault = injection?.fault;
    const fire = () => injection!.fire(req);
    const reader = new ByteReader(upstream);
    const head = await readHead(reader).catch((err) => {
      if (isPeerGone(err)) return undefined;
      throw err;
    });
    const parsed = head?.complete ? parseResponseHead(head.text) : undefined;
    if (!head || !parsed) {
      // The engine closed before (or inside) a head: the client sees the same.
      if (head) await writeAll(client, head.raw).catch(ignorePeerGone);
      this.#drop(client);
      return;
    }
    req.status = parsed.status;

    if (fault?.kind === "status") {
      this.#drop(upstream);
      await writeAll(client, cannedReply(fault));
      fire();
      this.#drop(client);
      return;
    }
    if (fault?.kind === "reset") {
      this.#drop(upstream);
      this.#drop(client);
      fire();
      return;
    }
    if (fault?.kind === "delay" && fault.hold === "response") {
      fire();
      if (!(await this.#sleep(fault.ms))) return;
    }
    const framing = framingOf(method, parsed);
    if (fault?.kind === "garble" && framing.kind !== "raw" && framing.kind !== "none") {
      await this.#garble(fault, head.raw, framing, reader, client);
      this.#drop(upstream);
      fire();
      return;
    }
    await this.#stream(req, injection, head.raw, framing, reader, client, upstream);
  }

  /** Read the whole body, replace it, send it with a Content-Length head. */
  async #garble(
    fault: Extract<Fault, { kind: "garble" }>,
    headRaw: Uint8Array,
    framing: Framing,
    reader: ByteReader,
    client: Deno.Conn,
  ): Promise<void> {
    // A chunked head goes out at once, as the engine sent it: a `/wait` is acknowledged by its head long
    // before its body comes (swagger ContainerWait).
    const chunked = framing.kind === "chunked";
    if (chunked) await writeAll(client, headRaw);
    const tracker = new BodyTracker(framing);
    const parts: Uint8Array[] = [];
    while (!tracker.done) {
      const bytes = await reader.next().catch((err) => {
        if (isPeerGone(err)) return null;
        throw err;
      });
      if (bytes === null) break;
      for (const span of tracker.push(bytes)) parts.push(bytes.slice(span.start, span.end));
    }
    const original = decoder.decode(concat(...parts));
    const replaced = typeof fault.with === "function" ? fault.with(original) : fault.with ?? halfOf(original);
    const newBody = encoder.encode(replaced);
    if (chunked) {
      const size = newBody.byteLength;
      const chunk = size === 0
        ? new Uint8Array(0)
        : concat(encoder.encode(`${size.toString(16)}\r\n`), newBody);
      await writeAll(client, concat(chunk, encoder.encode(size === 0 ? "0\r\n\r\n" : "\r\n0\r\n\r\n")));
    } else {
      const text = decoder.decode(headRaw.subarray(0, headRaw.byteLength - 4));
      const kept = text.split("\r\n").filter((line) =>
        !/^(content-length|transfer-encoding)\s*:/i.test(line)
      );
      const newHead = encoder.encode(`${kept.join("\r\n")}\r\nContent-Length: ${newBody.byteLength}\r\n\r\n`);
      await writeAll(client, concat(newHead, newBody));
    }
    await client.closeWrite().catch(ignorePeerGone);
  }

  /** Relay the response as it comes, with a stall, a cut or a corrupted byte at the fault's position. */
  async #stream(
    req: ProxyRequest,
    injection: Injection | undefined,
    headRaw: Uint8Array,
    framing: Framing,
    reader: ByteReader,
    client: Deno.Conn,
    upstream: Deno.Conn,
  ): Promise<void> {
    const fault = injection?.fault;
    const shaper = new Shaper(framing, fault);
    const outbox = new Outbox();
    let clientGone = false;
    let stallQueued = false;
    const action: Item | undefined = fault?.kind === "stall"
      ? { kind: "stall" }
      : fault?.kind === "truncate" || fault?.kind === "end-early"
      ? { kind: "cut" }
      : undefined;

    const produce = async () => {
      let cut = false;
      // Returns true when the engine's side is to be read no further (a truncate).
      const shape = (piece: Uint8Array, isHead: boolean): boolean => {
        const bytes = piece.slice();
        const at = shaper.shape(bytes, isHead);
        if (shaper.corrupted) {
          shaper.corrupted = false;
          injection?.fire(req);
        }
        if (at === undefined) {
          outbox.push({ kind: "data", bytes });
          return false;
        }
        if (at > 0) outbox.push({ kind: "data", bytes: bytes.subarray(0, at) });
        outbox.push(action!);
        if (action!.kind === "stall") {
          stallQueued = true;
          if (at < bytes.byteLength) outbox.push({ kind: "data", bytes: bytes.subarray(at) });
          return false;
        }
        cut = true;
        // A truncate ends the engine's side too; an end-early reads it to its end.
        return fault?.kind === "truncate";
      };
      // The head and the bytes that came with it are queued together (one write to the client).
      if (shape(headRaw, true)) return;
      if (reader.buf.byteLength > 0 && shape(reader.take(reader.buf.byteLength), false)) return;
      for (;;) {
        await outbox.room(() => clientGone);
        if (clientGone) return;
        const piece = await reader.next();
        if (piece === null) break;
        if (!cut && shape(piece, false)) return;
      }
      if (!cut) outbox.push({ kind: "end" });
      if (stallQueued && injection && !injection.released) injection.ended(req);
    };

    const consume = async () => {
      try {
        for (;;) {
          const item = await outbox.next();
          if (item.kind === "data") await writeAll(client, item.bytes);
          else if (item.kind === "stall") {
            outbox.holding = true;
            outbox.poke();
            injection!.fire(req);
            await injection!.hold(this.#abort.signal);
            outbox.holding = false;
            if (this.#abort.signal.aborted) return;
          } else if (item.kind === "cut") {
            this.#drop(client);
            injection!.fire(req);
            return;
          } else {
            await client.closeWrite();
            return;
          }
        }
      } catch (err) {
        if (!isPeerGone(err)) throw err;
        // The client went away: so does the engine's side.
        clientGone = true;
        outbox.poke();
        this.#drop(upstream);
      }
    };

    const producing = produce().catch((err) => {
      outbox.push({ kind: "end" });
      if (!isPeerGone(err)) throw err;
    });
    try {
      await consume();
    } finally {
      if (this.#abort.signal.aborted || clientGone) this.#drop(upstream);
      if (fault?.kind === "truncate") this.#drop(upstream);
      await producing;
    }
  }

  #record(method: string, target: string, headers: Record<string, string>, body: Uint8Array): ProxyRequest {
    const q = target.indexOf("?");
    const rawPath = q < 0 ? target : target.slice(0, q);
    const vm = /^\/v(\d+\.\d+)(\/.*)$/.exec(rawPath);
    const path = vm ? vm[2]! : rawPath;
    const req: ProxyRequest = {
      method,
      target,
      version: vm?.[1],
      path,
      call: `${method} ${path}`,
      query: new URLSearchParams(q < 0 ? "" : target.slice(q + 1)),
      headers,
      body,
      status: undefined,
      fault: undefined,
    };
    this.requests.push(req);
    return req;
  }
}

/** The daemon's error shape: `{"message": …}` with Content-Length (no body for 1xx/204/304). */
function cannedReply(fault: Extract<Fault, { kind: "status" }>): Uint8Array {
  const s = fault.status;
  const bodiless = (s >= 100 && s < 200) || s === 204 || s === 304;
  const body = bodiless
    ? ""
    : JSON.stringify({ message: fault.message ?? `fault proxy: injected ${s}` }) + "\n";
  const bytes = encoder.encode(body);
  let head = `HTTP/1.1 ${s} ${REASONS[s] ?? "Status"}\r\n`;
  const headers: Record<string, string> = bodiless
    ? { ...fault.headers }
    : { "Content-Type": "application/json", ...fault.headers, "Content-Length": String(bytes.byteLength) };
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  return concat(encoder.encode(head + "\r\n"), bytes);
}

/** The first half of a JSON text: never valid JSON for an object or array. */
function halfOf(text: string): string {
  const t = text.trimEnd();
  return t.slice(0, Math.floor(t.length / 2));
}

function ignorePeerGone(err: unknown): void {
  if (!isPeerGone(err)) throw err;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}
