/**
 * Sockets, requests and version negotiation. One connection per request (`Connection: close`): unix
 * connects are cheap and long calls (`/wait`, `/attach`) must not share a connection anyway (HTTP/1.1
 * cannot multiplex). Operation modules (`containers.ts`, `images.ts`, `system.ts`) only say which method,
 * path and statuses; this module does the rest.
 */
import { EngineApiError, EngineUnavailableError, InterruptedError, MoatError } from "../errors.ts";
import { after } from "../timer.ts";
import {
  type Endpoint,
  endpointUrl,
  type TcpEndpoint,
  type TlsFiles,
  type UnixEndpoint,
} from "./endpoint.ts";
import {
  bodyFraming,
  BufferedReader,
  HttpProtocolError,
  readAll,
  readBody,
  type ResponseHead,
  serializeRequest,
} from "./http.ts";

/** The byte pipe to the engine. `closeWrite` half-closes (stdin EOF on a hijacked attach). */
export interface Conn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  closeWrite(): Promise<void>;
  close(): void;
}

/** Opens connections to one endpoint. */
export interface Transport {
  readonly endpoint: Endpoint;
  connect(): Promise<Conn>;
}

/** Unix-socket transport over `Deno.connect`. */
export function unixTransport(endpoint: UnixEndpoint): Transport {
  return {
    endpoint,
    async connect(): Promise<Conn> {
      try {
        return await Deno.connect({ transport: "unix", path: endpoint.path });
      } catch (err) {
        throw classifyConnectError(endpoint, err);
      }
    },
  };
}

/**
 * TCP transport: `Deno.connect`, or `Deno.connectTls` verifying the engine's certificate against the CA of
 * its TLS files and presenting the client's certificate when there is one. The handshake is done at connect,
 * and the engine's later refusal of the client's certificate is mapped too, so a certificate either side
 * refuses is reported as such, not as a broken request.
 */
export function tcpTransport(endpoint: TcpEndpoint): Transport {
  let material: { caCerts: string[]; cert?: string; key?: string } | undefined;
  return {
    endpoint,
    async connect(): Promise<Conn> {
      const { host: hostname, port, tls } = endpoint;
      if (!tls) {
        try {
          return await Deno.connect({ hostname, port });
        } catch (err) {
          throw classifyConnectError(endpoint, err);
        }
      }
      material ??= readTlsFiles(endpoint, tls);
      let conn: Deno.TlsConn | undefined;
      try {
        conn = await Deno.connectTls({ hostname, port, ...material });
        await conn.handshake();
      } catch (err) {
        conn?.close();
        throw classifyTlsError(endpoint, tls, err);
      }
      // With TLS 1.3 the engine judges the client's certificate after the handshake: its refusal is an alert
      // on the first read.
      // An engine that closes without a word before answering at all refused it too.
      const c = conn;
      let answered = false;
      const mapped = (err: unknown) => {
        const refused = err instanceof Deno.errors.InvalidData ||
          (err instanceof Deno.errors.UnexpectedEof && !answered);
        throw refused ? classifyTlsError(endpoint, tls, err) : err;
      };
      return {
        read: (p) =>
          c.read(p).then((n) => {
            if (n) answered = true;
            return n;
          }, mapped),
        write: (p) => c.write(p).catch(mapped),
        closeWrite: () => c.closeWrite(),
        close: () => c.close(),
      };
    },
  };
}

function readTlsFiles(
  endpoint: TcpEndpoint,
  tls: TlsFiles,
): { caCerts: string[]; cert?: string; key?: string } {
  const read = (path: string) => {
    try {
      return Deno.readTextFileSync(path);
    } catch (err) {
      throw new MoatError(
        `The TLS file ${path} for ${endpointUrl(endpoint)} cannot be read: ${
          err instanceof Error ? err.message : err
        }`,
        "Check DOCKER_CERT_PATH (or the context's TLS files):  ls -l " + path.replace(/\/[^/]*$/, ""),
      );
    }
  };
  return {
    caCerts: [read(tls.ca)],
    ...(tls.cert && tls.key ? { cert: read(tls.cert), key: read(tls.key) } : {}),
  };
}

/** What a failed TLS connection means for the user: whose certificate was refused, and what to check. */
function classifyTlsError(endpoint: TcpEndpoint, tls: TlsFiles, err: unknown): MoatError {
  if (
    !(err instanceof Error) || err instanceof Deno.errors.ConnectionRefused ||
    err instanceof Deno.errors.NotCapable
  ) {
    return classifyConnectError(endpoint, err);
  }
  const url = endpointUrl(endpoint);
  const msg = err.message;
  if (
    /UnknownIssuer|BadSignature|invalid peer certificate|NotValidForName|certificate/i.test(msg) &&
    !/alert/i.test(msg)
  ) {
    const expired = /Expired|NotValidYet/i.test(msg);
    return new EngineUnavailableError(
      url,
      "other",
      expired
        ? `its TLS certificate is expired or not valid yet (${msg})`
        : `its TLS certificate is not one ${tls.ca} vouches for (${msg})`,
      { cause: err },
    );
  }
  if (/alert|handshake|reset|closed|EOF/i.test(msg)) {
    return new EngineUnavailableError(
      url,
      "other",
      `the engine refused the TLS connection (${msg}); it wants a client certificate it trusts` +
        (tls.cert
          ? `, and ${tls.cert} is not one (or it has expired)`
          : `, and there is no cert.pem next to ${tls.ca}`),
      { cause: err },
    );
  }
  return classifyConnectError(endpoint, err);
}

/** A failed connect as the error moat reports: absent, refused, not allowed by Deno, or other. */
export function classifyConnectError(endpoint: Endpoint, err: unknown): MoatError {
  const url = endpointUrl(endpoint);
  const detail = err instanceof Error ? err.message : String(err);
  if (err instanceof Deno.errors.NotFound) {
    return new EngineUnavailableError(url, "absent", detail, { cause: err });
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return new EngineUnavailableError(url, "permission", detail, { cause: err });
  }
  if (err instanceof Deno.errors.ConnectionRefused) {
    return new EngineUnavailableError(url, "refused", detail, { cause: err });
  }
  if (err instanceof Deno.errors.NotCapable) {
    const allow = endpoint.kind === "unix"
      ? `--allow-net=unix:${endpoint.path} --allow-read --allow-write`
      : "--allow-net --allow-run";
    return new MoatError(
      `Deno did not allow moat to reach ${url}`,
      `Run it with that allowed:  deno run ${allow} … (or -A)`,
      { cause: err },
    );
  }
  return new EngineUnavailableError(url, "other", detail, { cause: err });
}

/** The API version range this client speaks. Every field moat sends exists at the floor (swagger v1.40). */
export const MIN_API_VERSION = "1.40";
export const MAX_API_VERSION = "1.44";

/** Compare dotted API versions numerically ("1.9" < "1.41"). */
export function compareApiVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number), pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Pure negotiation over `/_ping`'s `Api-Version` (as moby client/client.go negotiateAPIVersion):
 * min(server, ours); an absent header means ours; below our floor is refused.
 */
export function negotiateApiVersion(serverVersion: string | undefined, endpoint: string): string {
  if (!serverVersion || !/^\d+\.\d+$/.test(serverVersion)) return MAX_API_VERSION;
  if (compareApiVersions(serverVersion, MIN_API_VERSION) < 0) {
    throw new MoatError(
      `Docker engine at ${endpoint} speaks API ${serverVersion}, older than the ${MIN_API_VERSION} moat needs`,
      "Upgrade the engine to Docker 19.03 or newer:  sudo apt-get install docker.io",
    );
  }
  return compareApiVersions(serverVersion, MAX_API_VERSION) < 0 ? serverVersion : MAX_API_VERSION;
}

export interface CallOptions {
  query?: Record<string, string | number | boolean | object | undefined>;
  /** JSON-encoded as the request body. */
  json?: unknown;
  headers?: Record<string, string>;
  /** Milliseconds until the engine must have answered; default: the transport's timeout. 0 = none. */
  timeoutMs?: number;
  /**
   * A call whose time grows with the engine's load (create, attach, wait, start, stop, remove): bounded by
   * the start budget instead of the short one, unless `timeoutMs` is given; a timeout names
   * MOAT_ENGINE_START_TIMEOUT either way.
   */
  slow?: boolean;
  /**
   * Extra abort (e.g. a signal handler); closing the connection cancels the daemon-side work (its handlers
   * run in the request's context).
   */
  signal?: AbortSignal;
}

/** A response whose body is still on the wire. Always `close()` it (idempotent). */
export interface StreamingResponse {
  head: ResponseHead;
  body: AsyncGenerator<Uint8Array>;
  close(): void;
}

/** A hijacked connection after `101`: `reader` holds the bytes read with the head (moby client/hijack.go). */
export interface Hijacked {
  head: ResponseHead;
  reader: BufferedReader;
  conn: Conn;
  close(): void;
}

/**
 * Build `?a=1&filters=%7B…%7D`: booleans as 1/0 (the daemon's BoolValue reads any other word, even "off",
 * as true), objects as JSON.
 */
export function buildQuery(query: CallOptions["query"]): string {
  if (!query) return "";
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue;
    const s = typeof v === "boolean"
      ? (v ? "1" : "0")
      : typeof v === "object"
      ? JSON.stringify(v)
      : String(v);
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(s)}`);
  }
  return parts.length ? `?${parts.join("&")}` : "";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The engine's HTTP surface: negotiated, versioned requests with classified errors. Holds no state but
 * the negotiated version.
 */
export class EngineHttp {
  readonly transport: Transport;
  /** Bound for short calls (`MOAT_ENGINE_TIMEOUT`). */
  readonly timeoutMs: number;
  /** Bound for calls marked `slow` (`MOAT_ENGINE_START_TIMEOUT`). */
  readonly startTimeoutMs: number;
  #version: Promise<string> | undefined;
  #pinned: string | undefined;
  /** What `/_ping` said, once negotiated: the engine's own max API version and `Server` header. */
  serverApiVersion: string | undefined;
  server: string | undefined;

  constructor(
    transport: Transport,
    opts: { timeoutMs: number; startTimeoutMs: number; apiVersion?: string },
  ) {
    this.transport = transport;
    this.timeoutMs = opts.timeoutMs;
    this.startTimeoutMs = opts.startTimeoutMs;
    this.#pinned = opts.apiVersion;
  }

  get url(): string {
    return endpointUrl(this.transport.endpoint);
  }

  /** Ping once (unversioned `GET /_ping`) and settle the API version for the life of this client. */
  apiVersion(): Promise<string> {
    if (this.#pinned) return Promise.resolve(this.#pinned);
    // A failed ping is not remembered (like systemInfo's cache): the next call pings again.
    this.#version ??= this.#negotiate().catch((err) => {
      this.#version = undefined;
      throw err;
    });
    return this.#version;
  }

  async #negotiate(): Promise<string> {
    const res = await this.#send("GET", "/_ping", {});
    try {
      const serverVersion = res.head.headers.get("api-version");
      this.serverApiVersion = serverVersion;
      this.server = res.head.headers.get("server");
      // /_ping may answer 500 with the same headers when the daemon is unhealthy (swagger SystemPing).
      if (res.head.status >= 400 && !serverVersion) await this.#throwApiError("GET", "/_ping", res);
      return negotiateApiVersion(serverVersion, this.url);
    } finally {
      res.close();
    }
  }

  /** Send a versioned request; non-2xx/304 statuses become `EngineApiError`. */
  async stream(method: string, path: string, opts: CallOptions = {}): Promise<StreamingResponse> {
    const v = await this.apiVersion();
    const full = `/v${v}${path}${buildQuery(opts.query)}`;
    const res = await this.#send(method, full, opts);
    if (res.head.status >= 400) await this.#throwApiError(method, path, res);
    return res;
  }

  /** A request whose whole (small) body is read: JSON decoded when the engine says it is JSON. */
  async call<T = unknown>(
    method: string,
    path: string,
    opts: CallOptions = {},
  ): Promise<{ status: number; body: T }> {
    const res = await this.stream(method, path, opts);
    try {
      const bytes = await this.#guard(readAll(res.body), opts, method, path, res.close);
      const text = decoder.decode(bytes);
      const type = res.head.headers.get("content-type") ?? "";
      if (!type.startsWith("application/json") || text.trim() === "") {
        return { status: res.head.status, body: text as T };
      }
      try {
        return { status: res.head.status, body: JSON.parse(text) as T };
      } catch {
        // A proxy's HTML page, a cut stream: say what came back instead of failing inside JSON.parse.
        throw new EngineUnavailableError(
          this.url,
          "other",
          `${method} ${path} answered with unreadable JSON: ${JSON.stringify(text.slice(0, 120))}`,
        );
      }
    } finally {
      res.close();
    }
  }

  /**
   * `POST …/attach`-style upgrade. Sends `Connection: Upgrade` and `Upgrade: tcp` (Podman needs both);
   * accepts `101`, or `200` with a raw stream from older daemons.
   */
  async hijack(method: string, path: string, opts: CallOptions = {}): Promise<Hijacked> {
    const v = await this.apiVersion();
    const full = `/v${v}${path}${buildQuery(opts.query)}`;
    const res = await this.#send(method, full, {
      ...opts,
      headers: { ...opts.headers, "Connection": "Upgrade", "Upgrade": "tcp" },
    }, true);
    const { head } = res;
    if (head.status !== 101 && head.status !== 200) {
      // Hijack-path errors are plain text, not JSON (moby container_routes.go postContainersAttach).
      await this.#throwApiError(method, path, res);
    }
    return { head, reader: res.reader, conn: res.conn, close: res.close };
  }

  async #send(
    method: string,
    path: string,
    opts: CallOptions,
    keepReader = false,
  ): Promise<StreamingResponse & { reader: BufferedReader; conn: Conn }> {
    const connecting = this.transport.connect();
    let conn: Conn;
    try {
      conn = await this.#guard(connecting, opts, method, path);
    } catch (err) {
      // Timed out or aborted while connecting: a connection that arrives later must not leak.
      connecting.then((c) => c.close(), () => {});
      throw err;
    }
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch { /* already closed */ }
    };
    try {
      const body = opts.json === undefined ? undefined : encoder.encode(JSON.stringify(opts.json));
      const headers: Record<string, string> = { ...opts.headers };
      if (body) headers["Content-Type"] = "application/json";
      const bytes = serializeRequest({ method, path, headers, body });
      await this.#guard(writeAll(conn, bytes), opts, method, path, close);
      const reader = new BufferedReader(conn);
      const head = await this.#guard(reader.readHead(), opts, method, path, close);
      // After a successful upgrade the bytes are the raw stream (left in `reader`); a refused hijack still
      // has a plain-text body to read for the error message (moby postContainersAttach).
      const upgraded = keepReader && (head.status === 101 || head.status === 200);
      const framing = upgraded ? { kind: "none" as const } : bodyFraming(method, head);
      const raw = readBody(reader, framing);
      const url = this.url;
      const wrapped = (async function* () {
        try {
          yield* raw;
        } catch (err) {
          if (err instanceof HttpProtocolError || err instanceof Deno.errors.ConnectionReset) {
            throw new EngineUnavailableError(url, "closed", err.message, { cause: err });
          }
          throw err;
        }
      })();
      return { head, body: wrapped, close, reader, conn };
    } catch (err) {
      close();
      throw err;
    }
  }

  /** Bound a promise by the timeout and abort signal; on either, close the connection and throw. */
  async #guard<T>(
    p: Promise<T>,
    opts: CallOptions,
    method: string,
    path: string,
    onAbort?: () => void,
  ): Promise<T> {
    const ms = opts.timeoutMs ?? (opts.slow ? this.startTimeoutMs : this.timeoutMs);
    const variable = opts.slow ? "MOAT_ENGINE_START_TIMEOUT" : "MOAT_ENGINE_TIMEOUT";
    const signal = opts.signal;
    if (ms <= 0 && !signal) return await this.#mapErr(p, method, path);
    let cancelTimer: (() => void) | undefined;
    let onSignal: (() => void) | undefined;
    const stop = new Promise<never>((_, reject) => {
      if (ms > 0) {
        cancelTimer = after(ms, () => {
          onAbort?.();
          reject(
            new EngineUnavailableError(
              this.url,
              "timeout",
              `${method} ${path} took longer than ${ms / 1000} s`,
              { variable },
            ),
          );
        });
      }
      if (signal) {
        onSignal = () => {
          onAbort?.();
          reject(new InterruptedError(String(signal.reason ?? "SIGINT")));
        };
        if (signal.aborted) onSignal();
        else signal.addEventListener("abort", onSignal, { once: true });
      }
    });
    try {
      return await Promise.race([this.#mapErr(p, method, path), stop]);
    } finally {
      cancelTimer?.();
      if (onSignal) signal!.removeEventListener("abort", onSignal);
      // A late rejection of `p` after we settled must not surface as unhandled.
      p.catch(() => {});
    }
  }

  async #mapErr<T>(p: Promise<T>, method: string, path: string): Promise<T> {
    try {
      return await p;
    } catch (err) {
      if (err instanceof MoatError) throw err;
      if (
        err instanceof HttpProtocolError || err instanceof Deno.errors.ConnectionReset ||
        err instanceof Deno.errors.BrokenPipe || err instanceof Deno.errors.BadResource
      ) {
        throw new EngineUnavailableError(this.url, "closed", `${method} ${path}: ${err.message}`, {
          cause: err,
        });
      }
      throw err;
    }
  }

  async #throwApiError(method: string, path: string, res: StreamingResponse): Promise<never> {
    let message: string;
    try {
      const bytes = await this.#guard(readAll(res.body, 1024 * 1024), {}, method, path, res.close);
      const text = decoder.decode(bytes).trim();
      const type = res.head.headers.get("content-type") ?? "";
      message = text;
      if (type.startsWith("application/json")) {
        try {
          const parsed = JSON.parse(text) as { message?: unknown };
          if (typeof parsed.message === "string") message = parsed.message;
        } catch { /* keep the text */ }
      }
      if (message === "") message = `${res.head.status} ${res.head.reason}`.trim();
    } catch {
      message = `${res.head.status} ${res.head.reason}`.trim();
    } finally {
      res.close();
    }
    throw new EngineApiError(res.head.status, method, path, message);
  }
}

async function writeAll(conn: Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.byteLength) off += await conn.write(bytes.subarray(off));
}

export { writeAll };
