/**
 * The head of an HTTP/1.x request (RFC 9112 sections 2, 3, 5 and 6; RFC 9110 section 7.2): what moat reads
 * from a connection a sandbox makes to its explicit proxy (port 3128: `CONNECT host:port` for TLS, or an
 * absolute-form `GET http://host/path`) or straight to port 80 (an origin-form `GET /path` with a `Host`
 * header), so that its egress policy can decide on the host, port, method and path before it passes the
 * connection on. An absolute-form head is sent upstream rewritten to origin-form (`originFormHead`). Pure:
 * bytes in, a verdict out.
 *
 * The bytes come from an untrusted program, and the head moat reads is the head the upstream server will
 * read: whatever two parsers could read differently (request smuggling, host confusion) is refused rather
 * than repaired. Decisions:
 *
 * - Lines end in CRLF only: a bare LF or a CR not followed by LF is refused (RFC 9112 2.2 lets a recipient
 *   take a bare LF; the server upstream might not). So is an empty line before the request line.
 * - The request line is `method SP target SP HTTP/x.y`, one space apart, nothing else; HTTP/1.0 and 1.1
 *   only (505 for any other version, HTTP/2's preface included). The target is visible ASCII, no `#`.
 * - Header lines: a token name, a colon right after it, the value without its leading and trailing spaces
 *   and tabs; no folded lines (obs-fold), no control characters in a value. Bytes 0x80-0xFF (obs-text) are
 *   kept, one character per byte (latin1), so values round trip.
 * - At most one `Host`. Content-Length and Transfer-Encoding never together; Content-Length values (several
 *   fields or a list) all the same digits; Transfer-Encoding not in HTTP/1.0, and ending in `chunked`, once.
 * - Host names: letters, digits, `-`, `_` and dots (an optional trailing dot kept), lowercased; no
 *   percent-encoding, no user information. A name whose last label is a number (`127.1`, `0x7f.1`, which
 *   some resolvers read as IPv4 addresses) must be a canonical dotted-quad. IPv6 literals are taken in
 *   brackets and given bracketless in `host` (moat's network is IPv4 only: the policy will find nothing to
 *   allow there, but the head is well formed). Ports are 1 to 65535; an empty port (`host:`) is refused.
 * - Authority-form (`CONNECT`): host and port from the target, the port required. A `Host` header, when
 *   there is one, must name the same host (and the same port, when it gives one). No content: a
 *   Transfer-Encoding or a Content-Length other than 0 is refused, since the tunnel starts after the head.
 * - Absolute-form: `http://` only; any other scheme, `https://` included, is refused with 501 (a proxy
 *   client asks for TLS with CONNECT; moat does not originate TLS). Port 80 when the URL gives none. A
 *   `Host` header is optional, but when there is one it must agree with the target's authority (RFC 9112
 *   3.2.2 says the target wins; refusing is safer). `path` is the origin-form path sent upstream: `/` for
 *   an empty path, or `*` for `OPTIONS http://host`.
 * - Origin-form and asterisk-form (`OPTIONS *` only): host and port from the `Host` header, which HTTP/1.1
 *   requires and must not be empty; `port` is undefined when the header gives none (the caller knows which
 *   port the connection came to). In HTTP/1.0 `host` is undefined when there is no `Host` (or it is empty).
 * - `path` is the target's path as sent, not decoded or normalized (`/a/../b`, `%2e`), without its query;
 *   rules on paths must allow for that.
 *
 * Statuses in a refusal: 400 malformed, 414 request line too long, 431 head too large or too many fields,
 * 501 a scheme other than http, 505 an HTTP version other than 1.0 and 1.1. Reasons are for moat's log and
 * never quote the refused bytes.
 */

/**
 * Bytes of a head, request line to the final CRLFCRLF included. Real requests stay far below (browsers
 * send a few KiB; cookies make the most); the bound is what moat holds per connection before deciding.
 */
export const MAX_HEAD_BYTES = 32 * 1024;

/** Header fields in a head. Real requests have a few dozen at most; each is a small cost to check. */
export const MAX_HEADERS = 100;

/**
 * Bytes of the request line, without its CRLF. Long URLs (8 KiB is what common servers take) fit; a line
 * that does not end by then is refused without waiting for the rest of the head.
 */
export const MAX_REQUEST_LINE = 8 * 1024;

/** A request head moat takes. */
export interface RequestHead {
  /** As sent (methods are case-sensitive). */
  method: string;
  /** As sent. */
  target: string;
  /** RFC 9112 3.2: `/path?q`, `http://host/path?q`, `host:port` (CONNECT), `*` (OPTIONS). */
  form: "origin" | "absolute" | "authority" | "asterisk";
  version: "1.0" | "1.1";
  /** In order, names as sent, values without their leading and trailing spaces and tabs. */
  headers: Array<[name: string, value: string]>;
  /**
   * Lowercased, IPv6 literals without brackets. Undefined only for an HTTP/1.0 origin- or asterisk-form
   * request without a `Host` (or with an empty one).
   */
  host: string | undefined;
  /** The target's (CONNECT); the URL's or 80 (absolute-form); the `Host` header's or undefined (others). */
  port: number | undefined;
  /**
   * Without the query, as sent (not decoded, not normalized): `/a/b`; for absolute-form the path sent
   * upstream (`/` for none, `*` for `OPTIONS http://host`); `*` for asterisk-form; `""` for CONNECT.
   */
  path: string;
}

export type HeadResult =
  | { kind: "more" }
  | { kind: "head"; head: RequestHead; size: number }
  | { kind: "bad"; status: number; reason: string };

const CR = 0x0d;
const LF = 0x0a;

/** RFC 9110 5.6.2. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Visible ASCII but `#` (0x23): a request target has no fragment. */
const TARGET = /^[\x21\x22\x24-\x7e]+$/;
/** Whether a field value has a control character (CR and LF never get this far; HTAB is allowed). */
function hasControl(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

class Refusal {
  constructor(readonly status: number, readonly reason: string) {}
}

function refuse(status: number, reason: string): never {
  throw new Refusal(status, reason);
}

/**
 * Read the request head at the start of `bytes` (all the bytes received so far on the connection). Call it
 * again with more bytes on `more`; on `head`, the bytes from `size` on are the content or, for CONNECT, the
 * tunnel. A refusal comes as soon as the bytes show one, complete head or not.
 */
export function readRequestHead(bytes: Uint8Array): HeadResult {
  try {
    const size = headSize(bytes);
    if (size === undefined) return { kind: "more" };
    return { kind: "head", head: parseHead(latin1(bytes.subarray(0, size - 4))), size };
  } catch (e) {
    if (e instanceof Refusal) return { kind: "bad", status: e.status, reason: e.reason };
    throw e;
  }
}

/**
 * The size of the head (to its first empty line), or undefined while it is incomplete and under the
 * limits. Looks at each byte once, and at most `MAX_HEAD_BYTES + 1` of them.
 */
function headSize(bytes: Uint8Array): number | undefined {
  const scan = Math.min(bytes.byteLength, MAX_HEAD_BYTES);
  let lineStart = 0;
  let lines = 0;
  for (let i = 0; i < scan; i++) {
    const b = bytes[i]!;
    if (lines === 0 && i === MAX_REQUEST_LINE && b !== CR) {
      refuse(414, `a request line over ${MAX_REQUEST_LINE} bytes`);
    }
    if (b === CR) {
      if (i + 1 < bytes.byteLength && bytes[i + 1] !== LF) refuse(400, "a CR not followed by LF");
    } else if (b === LF) {
      if (i === 0 || bytes[i - 1] !== CR) refuse(400, "a line that ends in a bare LF");
      const length = i - 1 - lineStart;
      if (length === 0) {
        if (lines === 0) refuse(400, "an empty line before the request line");
        return i + 1;
      }
      if (lines > MAX_HEADERS) refuse(431, `more than ${MAX_HEADERS} header fields`);
      lines++;
      lineStart = i + 1;
    }
  }
  // Any end past here would make the head longer than the limit.
  if (bytes.byteLength >= MAX_HEAD_BYTES) refuse(431, `a head over ${MAX_HEAD_BYTES} bytes`);
  return undefined;
}

/** One character per byte (not TextDecoder's "latin1", which is windows-1252). */
function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.byteLength; i += 4096) {
    s += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  return s;
}

function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Without leading and trailing SP and HTAB (by hand: a regular expression can take quadratic time). */
function trimOws(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && (s[start] === " " || s[start] === "\t")) start++;
  while (end > start && (s[end - 1] === " " || s[end - 1] === "\t")) end--;
  return s.slice(start, end);
}

/** The head's text, without its final CRLFCRLF; every line ends in CRLF (`headSize` saw to it). */
function parseHead(text: string): RequestHead {
  const lines = text.split("\r\n");
  const parts = lines[0]!.split(" ");
  if (parts.length !== 3) {
    refuse(400, "a request line that is not method, target and version, one space apart");
  }
  const [method, target, versionText] = parts as [string, string, string];
  if (!TOKEN.test(method)) refuse(400, "a method that is not a token");
  if (target.includes("#")) refuse(400, "a fragment in the request target");
  if (!TARGET.test(target)) refuse(400, "a request target with a character it cannot have");
  if (!/^HTTP\/\d\.\d$/.test(versionText)) refuse(400, "a request line without an HTTP version");
  if (versionText !== "HTTP/1.1" && versionText !== "HTTP/1.0") {
    refuse(505, "an HTTP version other than 1.0 and 1.1");
  }
  const version = versionText === "HTTP/1.1" ? "1.1" : "1.0";

  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    if (line[0] === " " || line[0] === "\t") refuse(400, "a folded header line (obs-fold)");
    const colon = line.indexOf(":");
    if (colon < 0) refuse(400, "a header line without a colon");
    const name = line.slice(0, colon);
    if (name === "") refuse(400, "a header line with no name");
    const last = name[name.length - 1];
    if (last === " " || last === "\t") refuse(400, "whitespace before a header's colon");
    if (!TOKEN.test(name)) refuse(400, "a header name with a character it cannot have");
    const value = trimOws(line.slice(colon + 1));
    if (hasControl(value)) refuse(400, `a control character in a ${name} header`);
    headers.push([name, value]);
  }
  const values = (name: string) => headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);

  const hosts = values("host");
  if (hosts.length > 1) refuse(400, "more than one Host header");
  const hostHeader = hosts[0];
  const lengths = values("content-length");
  const codings = values("transfer-encoding");
  if (lengths.length > 0 && codings.length > 0) refuse(400, "both Content-Length and Transfer-Encoding");
  let contentLength: string | undefined;
  if (lengths.length > 0) {
    const list = lengths.flatMap((v) => v.split(",")).map(trimOws);
    if (list.some((v) => !/^\d+$/.test(v))) refuse(400, "a Content-Length that is not a number");
    if (list.some((v) => v !== list[0])) refuse(400, "Content-Length values that differ");
    contentLength = list[0];
  }
  if (codings.length > 0) {
    if (version === "1.0") refuse(400, "Transfer-Encoding in an HTTP/1.0 request");
    const list = codings.flatMap((v) => v.split(",")).map((v) => trimOws(v).toLowerCase()).filter((v) => v);
    if (list.indexOf("chunked") !== list.length - 1 || list.length === 0) {
      refuse(400, "a Transfer-Encoding that does not end in chunked, once");
    }
  }

  const base: Pick<RequestHead, "method" | "target" | "version" | "headers"> = {
    method,
    target,
    version,
    headers,
  };
  if (method === "CONNECT") {
    const { host, port } = parseAuthority(target, "CONNECT target");
    if (port === undefined) refuse(400, "a CONNECT target without a port");
    if (hostHeader !== undefined) {
      const h = parseAuthority(hostHeader, "Host header");
      if (h.host !== host || (h.port !== undefined && h.port !== port)) {
        refuse(400, "a Host header that disagrees with the CONNECT target");
      }
    }
    if (codings.length > 0 || (contentLength !== undefined && !/^0+$/.test(contentLength))) {
      refuse(400, "a CONNECT request with content");
    }
    return { ...base, form: "authority", host, port, path: "" };
  }
  if (target === "*" || target.startsWith("/")) {
    if (target === "*" && method !== "OPTIONS") {
      refuse(400, "an asterisk target for a method other than OPTIONS");
    }
    let host: string | undefined;
    let port: number | undefined;
    if (hostHeader === undefined || hostHeader === "") {
      if (version === "1.1") {
        refuse(400, hostHeader === undefined ? "no Host header" : "an empty Host header");
      }
    } else {
      ({ host, port } = parseAuthority(hostHeader, "Host header"));
    }
    const form = target === "*" ? "asterisk" : "origin";
    return { ...base, form, host, port, path: withoutQuery(target) };
  }
  const url = splitAbsolute(target);
  if (url.scheme.toLowerCase() !== "http") {
    refuse(501, "an absolute-form target with a scheme other than http");
  }
  const { host, port: givenPort } = parseAuthority(url.authority, "request target");
  const port = givenPort ?? 80;
  if (hostHeader !== undefined) {
    const h = hostHeader === "" ? undefined : parseAuthority(hostHeader, "Host header");
    if (h === undefined || h.host !== host || (h.port ?? 80) !== port) {
      refuse(400, "a Host header that disagrees with the request target");
    }
  }
  return { ...base, form: "absolute", host, port, path: withoutQuery(upstreamTarget(method, url.rest)) };
}

function withoutQuery(target: string): string {
  const q = target.indexOf("?");
  return q < 0 ? target : target.slice(0, q);
}

/** `scheme://authority rest` of an absolute-form target; refuses what has no scheme or no authority. */
function splitAbsolute(target: string): { scheme: string; authority: string; rest: string } {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(target);
  if (!m) refuse(400, "a request target in none of HTTP's forms");
  const scheme = m[1]!;
  const hier = target.slice(m[0].length);
  // Without `//` it is no URL HTTP takes (and `host:port` for a method other than CONNECT reads as one).
  if (!hier.startsWith("//")) refuse(400, "a request target in none of HTTP's forms");
  const afterSlashes = hier.slice(2);
  const cut = afterSlashes.search(/[/?]/);
  const end = cut < 0 ? afterSlashes.length : cut;
  return { scheme, authority: afterSlashes.slice(0, end), rest: afterSlashes.slice(end) };
}

/** The origin-form target for what follows the authority of an absolute-form one (RFC 9112 3.2.1, 3.2.4). */
function upstreamTarget(method: string, rest: string): string {
  if (rest === "") return method === "OPTIONS" ? "*" : "/";
  return rest.startsWith("?") ? "/" + rest : rest;
}

/** `host[:port]` of a CONNECT target, a URL or a Host header. */
function parseAuthority(text: string, what: string): { host: string; port: number | undefined } {
  if (text.includes("@")) refuse(400, `user information in the ${what}`);
  let host: string;
  let portText: string | undefined;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) refuse(400, `an unclosed IP literal in the ${what}`);
    host = text.slice(1, close).toLowerCase();
    if (!isIPv6(host)) refuse(400, `an IP literal that is not an IPv6 address in the ${what}`);
    const after = text.slice(close + 1);
    if (after !== "" && after[0] !== ":") refuse(400, `something after the IP literal in the ${what}`);
    portText = after === "" ? undefined : after.slice(1);
  } else {
    const colon = text.indexOf(":");
    host = (colon < 0 ? text : text.slice(0, colon)).toLowerCase();
    portText = colon < 0 ? undefined : text.slice(colon + 1);
    if (!isHostName(host)) refuse(400, `a host that is neither a name nor an IPv4 address in the ${what}`);
  }
  if (portText === undefined) return { host, port: undefined };
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535) {
    refuse(400, `a port that is not one in the ${what}`);
  }
  return { host, port };
}

/** Dotted-decimal, four parts 0-255, no leading zeros. */
function isIPv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

/** A lowercased host name: DNS-like labels, an optional trailing dot, or a canonical IPv4 address. */
function isHostName(host: string): boolean {
  if (host.length === 0 || host.length > 254) return false;
  if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$/.test(host)) return false;
  const bare = host.endsWith(".") ? host.slice(0, -1) : host;
  const lastLabel = bare.slice(bare.lastIndexOf(".") + 1);
  // WHATWG URL (and inet_aton) read a host that ends in a number as an IPv4 address, in any of its forms.
  if (/^(\d+|0x[0-9a-f]*)$/.test(lastLabel)) return host === bare && isIPv4(host);
  return true;
}

/** RFC 4291 2.2 text form, lowercased: up to 8 hex groups, one `::`, an IPv4 address last. No zone. */
function isIPv6(s: string): boolean {
  if (s.length > 45) return false;
  let text = s;
  const lastColon = s.lastIndexOf(":");
  if (lastColon < 0) return false;
  const tail = s.slice(lastColon + 1);
  if (tail.includes(".")) {
    if (!isIPv4(tail)) return false;
    text = s.slice(0, lastColon + 1) + "0:0";
  }
  const halves = text.split("::");
  if (halves.length > 2) return false;
  const groups = halves.map((h) => h === "" ? [] : h.split(":"));
  if (!groups.every((g) => g.every((x) => /^[0-9a-f]{1,4}$/.test(x)))) return false;
  const count = groups.reduce((n, g) => n + g.length, 0);
  return halves.length === 2 ? count <= 7 : count === 8;
}

/**
 * The head to send upstream for `head`, read by `readRequestHead` from `raw` (which may go on past the head:
 * only the head is returned). For an absolute-form request: the request line with the origin-form target
 * (path and query; `/` for an empty path, `*` for `OPTIONS http://host`), then the header lines byte for
 * byte as sent but for `Proxy-Connection` and `Proxy-Authorization`, which are dropped, and a
 * `Host: <the target's authority, as sent>` line after the request line when there was no `Host` (when there
 * is one it agrees with the target: `readRequestHead` saw to it). Any other form: the head unchanged.
 * Throws `RangeError` when `raw` holds no complete head.
 */
export function originFormHead(head: RequestHead, raw: Uint8Array): Uint8Array {
  let size = -1;
  for (let i = 3; i < raw.byteLength; i++) {
    if (raw[i] === LF && raw[i - 1] === CR && raw[i - 2] === LF && raw[i - 3] === CR) {
      size = i + 1;
      break;
    }
  }
  if (size < 0) throw new RangeError("no complete request head in the bytes");
  if (head.form !== "absolute") return raw.subarray(0, size);
  const fieldLines = latin1(raw.subarray(0, size - 4)).split("\r\n").slice(1);
  const nameOf = (line: string) => line.slice(0, Math.max(0, line.indexOf(":"))).toLowerCase();
  const kept = fieldLines.filter((l) =>
    nameOf(l) !== "proxy-connection" && nameOf(l) !== "proxy-authorization"
  );
  let url: ReturnType<typeof splitAbsolute>;
  try {
    url = splitAbsolute(head.target);
  } catch {
    throw new RangeError("an absolute-form head whose target is not a URL");
  }
  const lines = [`${head.method} ${upstreamTarget(head.method, url.rest)} HTTP/${head.version}`];
  if (!kept.some((l) => nameOf(l) === "host")) lines.push(`Host: ${url.authority}`);
  lines.push(...kept, "", "");
  return latin1Bytes(lines.join("\r\n"));
}

/**
 * The head to send upstream for `head` (read from `raw`): `originFormHead`'s, without the header fields whose
 * names are in `drop` (lowercase), and with the lines of `add` (text, sent as UTF-8) after the rest. The
 * fields kept go byte for byte as sent. Pure.
 */
export function rewrittenHead(
  head: RequestHead,
  raw: Uint8Array,
  drop: ReadonlySet<string>,
  add: readonly string[] = [],
): Uint8Array {
  const lines = latin1(originFormHead(head, raw)).slice(0, -4).split("\r\n");
  const kept = lines.filter((l, i) => i === 0 || !drop.has(l.slice(0, l.indexOf(":")).toLowerCase()));
  const encoder = new TextEncoder();
  for (const line of add) kept.push(latin1(encoder.encode(line)));
  return latin1Bytes(`${kept.join("\r\n")}\r\n\r\n`);
}

/**
 * `target` for a log: the query replaced by `?…` (so the log still shows there was one, even an empty one)
 * and any fragment dropped. Works on any form of target (and on full URLs).
 */
export function redactQuery(target: string): string {
  const hash = target.indexOf("#");
  const t = hash < 0 ? target : target.slice(0, hash);
  const q = t.indexOf("?");
  return q < 0 ? t : t.slice(0, q) + "?…";
}

/** An HTTP response that ends the connection. Pure. */
export function closingResponse(status: number, reason: string, body: string): Uint8Array {
  const bytes = new TextEncoder().encode(body);
  return new TextEncoder().encode(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${bytes.byteLength}\r\nConnection: close\r\n\r\n${body}`,
  );
}
