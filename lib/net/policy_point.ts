/**
 * moat's policy point: the host end of a run's relay (lib/net/relay.ts). Every connection the sandbox makes
 * arrives here, from the relay's unix socket, after a PROXY header that says which of the relay's ports it
 * was made to, and so what it is:
 *
 * - 53, a DNS question (a datagram): answered here, never passed on. An allowed name gets the relay's
 *   address (so the sandbox's connection comes back here); any other name does not exist (NXDOMAIN).
 * - 3128, the explicit proxy: `CONNECT host:port`, or a plain-HTTP request in absolute form.
 * - 80, plain HTTP made straight to a name (by a client without proxy settings): by its `Host` header.
 * - 443, TLS made straight to a name: by the server name of its ClientHello, passed through without being
 *   decrypted.
 * - a port of the policy's `tcp` map: to the one upstream mapped to it.
 *
 * Each is decided against the allow list (lib/net/host_policy.ts) and logged (`Decision`). An allowed one is
 * connected by `Upstreams.dial` to the name it asked for (moat resolves it; an address the sandbox chose is
 * never used), and its bytes carried both ways. A denied one is told why where its protocol can say so (an
 * HTTP 403 naming the host and what to add to moat.yaml), else closed. A plain-HTTP request is sent upstream
 * with `Connection: close`, so each connection carries one request: a second one, which could name another
 * host, is never read unchecked.
 *
 * TLS to a host with a grant (its credential is added: lib/net/intercept.ts) or with rules (each request is
 * checked by them: lib/net/http_rules.ts), on port 443 straight or through CONNECT, is read by moat: it ends
 * the sandbox's TLS with a leaf of the run's CA (`Policy.tls`) and makes its own, verified, upstream. Any
 * other TLS is passed through by its server name, never decrypted. Plain HTTP to a host with rules is
 * checked the same way; a credential is never added to plain HTTP.
 */
import { after } from "../timer.ts";
import { buildAnswer, type DnsQuery, formErrorFor, parseQuery, TYPE_A, TYPE_AAAA } from "./dns.ts";
import { allowedBy, type HostPattern, normalizeHost } from "./host_policy.ts";
import { decideRequest, ruleDeniedText } from "./http_rules.ts";
import {
  closingResponse,
  readRequestHead,
  redactQuery,
  type RequestHead,
  rewrittenHead,
} from "./http_head.ts";
import { decodeProxyHeader, type ProxiedConnection } from "./proxy_header.ts";
import { splice, writeAll } from "./relay.ts";
import { readClientHello } from "./tls_hello.ts";
import { Reader } from "./reader.ts";
import { declaredBody } from "./http_body.ts";
import type { GrantUse } from "./intercept.ts";
import type { Leaf, RunCa } from "./x509.ts";

/** The relay's ports for each service (the `tcp` map's come on top). */
export interface ServicePorts {
  dns: number;
  proxy: number;
  http: number;
  tls: number;
}

/** The relay's usual ports. */
export const PORTS: Readonly<ServicePorts> = { dns: 53, proxy: 3128, http: 80, tls: 443 };

/** What a run's sandbox may reach. */
export interface Policy {
  allow: readonly HostPattern[];
  /** Relay ports passed to one upstream each (`tcp:` in moat.yaml), e.g. 22 → github.com:22. */
  tcp: ReadonlyMap<number, { host: string; port: number }>;
  /** The relay's address on the run's network: the answer to a DNS question for an allowed name. */
  relayAddress: string;
  /** Credentials added to the requests of a host (normalized), over TLS moat reads itself only. */
  grants?: ReadonlyMap<string, GrantUse>;
  /** What reading TLS takes. Without it, TLS to a host with rules is refused and no grant applies. */
  tls?: TlsInterception;
}

/** What moat reads TLS with: the run's CA for the sandbox's side, and what it trusts upstream. */
export interface TlsInterception {
  ca: RunCa;
  /** CA certificates (PEM, each string may hold several) upstream servers are verified with. */
  upstreamCaCerts: readonly string[];
}

/** One decision, for the run's network log. */
export interface Decision {
  /** ISO 8601. */
  time: string;
  via: "dns" | "proxy" | "http" | "tls" | "tcp";
  /** The sandbox's address and port. */
  source: string;
  host: string | null;
  port: number | null;
  /** For HTTP: the method, and the path with its query string redacted. */
  method?: string;
  path?: string;
  decision: "allow" | "deny";
  /**
   * The allow-list entry that allowed it; for a host with rules, the entry and the rule that decided
   * (`api.example.com: allow GET /v1/*`), when one did.
   */
  rule?: string;
  /** Why it was denied, or why an allowed one failed. */
  reason?: string;
  /** The grant whose credential was added to the request (its name only). */
  grant?: string;
  /** Bytes from the sandbox upstream, and back, once the connection is over. */
  sent?: number;
  received?: number;
}

/** How moat reaches an upstream the policy allowed. */
export interface Upstreams {
  /** Connect to `host` on `port`, allowed by `rule`; throws with a message saying why it cannot. */
  dial(host: string, port: number, rule: HostPattern): Promise<Deno.Conn>;
}

/** The longest moat waits for the start of a connection (its header, request head, or ClientHello). */
export const FIRST_BYTES_MS = 10_000;

const encoder = new TextEncoder();

/** The allow-list entry to add for `host:port` (what a denial tells the sandbox's user). */
export function allowHint(host: string, port: number): string {
  return port === 80 || port === 443 ? host : `${host}:${port}`;
}

/** The body of a 403 for a denied HTTP request or CONNECT. Pure. */
export function deniedText(host: string, port: number): string {
  const entry = allowHint(host, port);
  return `moat: ${host}:${port} is not allowed by this run's network policy.\n` +
    `To allow it, run moat with  --allow ${entry}  or add to moat.yaml:\n  network:\n    allow:\n      - ${entry}\n`;
}

/**
 * The most bytes passed upstream after the head of a request to a host with rules: its body, so that a
 * second request sent after it on the connection, which the rules did not check, never reaches the server.
 * `undefined` (no limit) for a host without rules. Pure.
 */
function bodyLimit(entry: HostPattern, head: RequestHead): number | undefined {
  const body = declaredBody(head);
  return entry.rules === undefined || body === "chunked" ? undefined : body;
}

/** Why a chunked request to a host with rules is refused. Pure. */
function chunkedReason(host: string): string {
  return `requests to ${host}, which has rules, need a Content-Length (a chunked body is not passed on)`;
}

/**
 * Why TLS or a CONNECT to a host with rules is refused: on a port other than 443, or by a policy point that
 * reads no TLS (`readsTls` false: given no CA). Pure.
 */
export function interceptionReason(host: string, readsTls = true): string {
  return readsTls
    ? `rules for ${host} are checked on HTTPS (port 443) and plain HTTP (port 80) only`
    : `rules for ${host} are checked on plain HTTP only: this policy point reads no TLS`;
}

/** The body of a 403 for a CONNECT to a host with rules that cannot be checked. Pure. */
export function interceptionText(host: string, port: number, readsTls = true): string {
  return `moat: ${host}:${port} is refused: ${interceptionReason(host, readsTls)}.\n` +
    `Send its requests to ${readsTls ? `https://${host}/ or ` : ""}http://${host}/, or drop its rules.\n`;
}

/** A request head to send upstream: origin form, without hop-by-hop `Connection`s, then `Connection: close`. */
export function upstreamHead(head: RequestHead, raw: Uint8Array): Uint8Array {
  return rewrittenHead(head, raw, HOP_BY_HOP, ["Connection: close"]);
}

/** What a request head loses on its way upstream through moat: its own connection's fields. */
const HOP_BY_HOP: ReadonlySet<string> = new Set(["connection", "keep-alive", "proxy-connection"]);

export class PolicyPoint {
  #policy: Policy;
  #upstreams: Upstreams;
  #log: (d: Decision) => void;
  #ports: ServicePorts;
  /** Leaves of the run's CA, by host, made on first use. */
  #leaves = new Map<string, Promise<Leaf>>();

  /** `ports`: the relay's ports for each service, when not the usual ones (`PORTS`; tests). */
  constructor(
    policy: Policy,
    upstreams: Upstreams,
    log: (d: Decision) => void,
    ports: Partial<ServicePorts> = {},
  ) {
    this.#policy = policy;
    this.#upstreams = upstreams;
    this.#log = log;
    this.#ports = { ...PORTS, ...ports };
  }

  /** Serve every connection of `listener` (the relay's socket) until it is closed. */
  async serve(listener: Deno.Listener, onReady?: () => void): Promise<void> {
    const open = new Set<Promise<void>>();
    try {
      for await (const conn of listener) {
        // A failure of moat's own ends the connection: the sandbox's side never hangs.
        const p = this.handle(conn, onReady).catch(() => close(conn)).finally(() => open.delete(p));
        open.add(p);
      }
    } catch { /* closed */ }
    await Promise.all(open);
  }

  /** One connection from the relay: its header, then what it carries. `onReady` for the relay's own. */
  async handle(conn: Deno.Conn, onReady?: () => void): Promise<void> {
    const reader = new Reader(conn);
    const cancel = after(FIRST_BYTES_MS, () => conn.close());
    let header;
    try {
      header = await reader.until((b) => {
        const h = decodeProxyHeader(b);
        return h ? { kind: "header" as const, ...h } : { kind: "more" as const };
      });
    } catch {
      cancel();
      return close(conn); // not from the relay: nothing to say to it
    }
    if (!header) return (cancel(), close(conn));
    if ("local" in header.connection) {
      cancel();
      onReady?.();
      return close(conn);
    }
    const c = header.connection;
    reader.bytes = reader.bytes.subarray(header.size);
    const port = c.destination.port;
    try {
      if (c.transport === "datagram") return await this.#dns(conn, reader, c, cancel);
      if (port === this.#ports.proxy) return await this.#proxy(conn, reader, c, cancel);
      if (port === this.#ports.http) return await this.#http(conn, reader, c, cancel);
      if (port === this.#ports.tls) return await this.#tls(conn, reader, c, cancel);
      const mapped = this.#policy.tcp.get(port);
      cancel();
      if (mapped) return await this.#tcp(conn, reader, c, mapped);
      this.#decide({ via: "tcp", c, host: null, port, decision: "deny", reason: "no service on that port" });
      close(conn);
    } finally {
      cancel();
    }
  }

  #decide(d: Omit<Decision, "time" | "source"> & { c: ProxiedConnection }): void {
    const { c, ...rest } = d;
    this.#log({ time: new Date().toISOString(), source: `${c.source.address}:${c.source.port}`, ...rest });
  }

  /**
   * The rule that lets the sandbox ask for `name` at all, for DNS: an allow-list entry for it (on any of
   * its ports), or a mapped TCP port's upstream (so `git@github.com` reaches the port mapped to
   * github.com:22 by name).
   */
  #knownName(name: string): HostPattern | undefined {
    const host = normalizeHost(name);
    const allowed = this.#policy.allow.find((p) =>
      p.wildcard ? host.endsWith(`.${p.host}`) : host === p.host
    );
    if (allowed) return allowed;
    for (const [port, t] of this.#policy.tcp) {
      if (normalizeHost(t.host) === host) return tcpRule(port, t);
    }
    return undefined;
  }

  async #dns(conn: Deno.Conn, reader: Reader, c: ProxiedConnection, cancel: () => void): Promise<void> {
    const framed = await reader.until((b) => {
      if (b.byteLength < 2) return { kind: "more" as const };
      const n = (b[0]! << 8) | b[1]!;
      return b.byteLength < 2 + n
        ? { kind: "more" as const }
        : { kind: "message" as const, message: b.slice(2, 2 + n) };
    });
    cancel();
    if (!framed) return close(conn);
    let query: DnsQuery;
    let answer: Uint8Array | undefined;
    try {
      query = parseQuery(framed.message);
    } catch (err) {
      answer = formErrorFor(framed.message);
      this.#decide({ via: "dns", c, host: null, port: null, decision: "deny", reason: String(err) });
      if (answer) await writeAll(conn, frame(answer));
      return close(conn);
    }
    const name = query.question.name;
    const rule = this.#knownName(name);
    if (!rule) {
      answer = buildAnswer(query, { kind: "nxdomain" });
      this.#decide({
        via: "dns",
        c,
        host: name,
        port: null,
        decision: "deny",
        reason: "not in the allow list",
      });
    } else {
      const type = query.question.type;
      answer = buildAnswer(
        query,
        type === TYPE_A ? { kind: "a", addresses: [this.#policy.relayAddress], ttl: 60 } : { kind: "empty" },
      );
      this.#decide({
        via: "dns",
        c,
        host: name,
        port: null,
        decision: "allow",
        rule: rule.text,
        ...(type === TYPE_A || type === TYPE_AAAA ? {} : { reason: `type ${type} has no answer` }),
      });
    }
    await writeAll(conn, frame(answer));
    close(conn);
  }

  async #proxy(conn: Deno.Conn, reader: Reader, c: ProxiedConnection, cancel: () => void): Promise<void> {
    const r = await reader.until(readRequestHead);
    cancel();
    if (!r) return close(conn);
    if (r.kind === "bad") {
      this.#decide({ via: "proxy", c, host: null, port: null, decision: "deny", reason: r.reason });
      await writeAll(conn, closingResponse(r.status, "Bad Request", `moat: ${r.reason}\n`)).catch(() => {});
      return close(conn);
    }
    if (r.kind !== "head") return close(conn);
    const head = r.head;
    const host = head.host!;
    const port = head.port!;
    const what = { via: "proxy" as const, c, host, port, method: head.method, path: redactQuery(head.path) };
    if (head.form !== "authority" && head.form !== "absolute") {
      this.#decide({ ...what, decision: "deny", reason: "not a proxy request (CONNECT, or a URL)" });
      await writeAll(
        conn,
        closingResponse(400, "Bad Request", "moat: send CONNECT host:port or a full URL\n"),
      )
        .catch(() => {});
      return close(conn);
    }
    const allowed = allowedBy(this.#policy.allow, host, port);
    if (!allowed) {
      this.#decide({ ...what, decision: "deny", reason: "not in the allow list" });
      await writeAll(conn, closingResponse(403, "Forbidden", deniedText(host, port))).catch(() => {});
      return close(conn);
    }
    if (head.form === "authority" && port === PORTS.tls && this.#intercepts(host, allowed)) {
      await writeAll(conn, encoder.encode("HTTP/1.1 200 Connection Established\r\n\r\n"));
      reader.bytes = reader.bytes.subarray(r.size);
      const late = after(FIRST_BYTES_MS, () => close(conn));
      const hello = await reader.until(readClientHello).catch(() => undefined).finally(late);
      if (!hello) {
        this.#decide({
          ...what,
          decision: "deny",
          rule: allowed.text,
          reason: "the tunnel ended before TLS began",
        });
        return close(conn);
      }
      if (
        hello.kind !== "hello" || hello.serverName === undefined || normalizeHost(hello.serverName) !== host
      ) {
        const reason = hello.kind !== "hello"
          ? `not TLS inside the tunnel: ${hello.reason}`
          : `the TLS server name (${hello.serverName ?? "none"}) is not the tunnel's host`;
        this.#decide({ ...what, decision: "deny", rule: allowed.text, reason });
        return close(conn);
      }
      return await this.#intercept(what, allowed, conn, reader.bytes);
    }
    if (allowed.rules && head.form === "authority") {
      const readsTls = this.#policy.tls !== undefined;
      this.#decide({
        ...what,
        decision: "deny",
        rule: allowed.text,
        reason: interceptionReason(host, readsTls),
      });
      await writeAll(conn, closingResponse(403, "Forbidden", interceptionText(host, port, readsTls)))
        .catch(() => {});
      return close(conn);
    }
    const admitted = await this.#admitRequest(conn, what, allowed, host, port, head);
    if (!admitted) return close(conn);
    const { rule, upstream } = admitted;
    const rest = reader.bytes.subarray(r.size);
    if (head.form === "authority") {
      await writeAll(conn, encoder.encode("HTTP/1.1 200 Connection Established\r\n\r\n"));
    } else {
      await writeAll(upstream, upstreamHead(head, reader.bytes));
    }
    await this.#carry(what, rule, conn, upstream, rest, bodyLimit(allowed, head));
  }

  async #http(conn: Deno.Conn, reader: Reader, c: ProxiedConnection, cancel: () => void): Promise<void> {
    const r = await reader.until(readRequestHead);
    cancel();
    if (!r) return close(conn);
    if (r.kind === "bad") {
      this.#decide({ via: "http", c, host: null, port: PORTS.http, decision: "deny", reason: r.reason });
      await writeAll(conn, closingResponse(r.status, "Bad Request", `moat: ${r.reason}\n`)).catch(() => {});
      return close(conn);
    }
    if (r.kind !== "head") return close(conn);
    const head = r.head;
    const host = head.host;
    const port = PORTS.http;
    const what = {
      via: "http" as const,
      c,
      host: host ?? null,
      port,
      method: head.method,
      path: redactQuery(head.path),
    };
    const allowed = host === undefined ? undefined : allowedBy(this.#policy.allow, host, port);
    if (!allowed || host === undefined) {
      this.#decide({ ...what, decision: "deny", reason: host ? "not in the allow list" : "no Host header" });
      const body = host
        ? deniedText(host, port)
        : "moat: a request without a Host header cannot be checked\n";
      await writeAll(conn, closingResponse(403, "Forbidden", body)).catch(() => {});
      return close(conn);
    }
    const admitted = await this.#admitRequest(conn, what, allowed, host, port, head);
    if (!admitted) return close(conn);
    const { rule, upstream } = admitted;
    await writeAll(upstream, upstreamHead(head, reader.bytes));
    await this.#carry(what, rule, conn, upstream, reader.bytes.subarray(r.size), bodyLimit(allowed, head));
  }

  async #tls(conn: Deno.Conn, reader: Reader, c: ProxiedConnection, cancel: () => void): Promise<void> {
    const r = await reader.until(readClientHello);
    cancel();
    const port = PORTS.tls;
    if (!r) return close(conn);
    if (r.kind !== "hello" || r.serverName === undefined) {
      const reason = r.kind === "not-tls" ? `not TLS: ${r.reason}` : "a TLS hello without a server name";
      this.#decide({ via: "tls", c, host: null, port, decision: "deny", reason });
      return close(conn);
    }
    const host = r.serverName;
    const what = { via: "tls" as const, c, host, port };
    const rule = allowedBy(this.#policy.allow, host, port);
    if (!rule) {
      this.#decide({ ...what, decision: "deny", reason: "not in the allow list" });
      return close(conn);
    }
    if (this.#intercepts(host, rule)) return await this.#intercept(what, rule, conn, reader.bytes);
    if (rule.rules) {
      const reason = interceptionReason(host, this.#policy.tls !== undefined);
      this.#decide({ ...what, decision: "deny", rule: rule.text, reason });
      return close(conn);
    }
    const upstream = await this.#dial(what, host, port, rule, () => Promise.resolve());
    if (!upstream) return close(conn);
    await this.#carry(what, rule, conn, upstream, reader.bytes);
  }

  /** Whether moat reads the TLS of connections to `host` (allowed by `rule`): it has a grant, or rules. */
  #intercepts(host: string, rule: HostPattern): boolean {
    return this.#policy.tls !== undefined &&
      (rule.rules !== undefined || this.#policy.grants?.has(normalizeHost(host)) === true);
  }

  /**
   * A TLS connection to an allowed host moat reads inside (lib/net/intercept.ts): ended with a leaf of the
   * run's CA for its host, each request checked, and carried over moat's own verified TLS upstream.
   */
  async #intercept(
    what: Omit<Decision, "time" | "source" | "decision"> & {
      c: ProxiedConnection;
      host: string;
      port: number;
    },
    rule: HostPattern,
    conn: Deno.Conn,
    first: Uint8Array,
  ): Promise<void> {
    const tls = this.#policy.tls!;
    const host = normalizeHost(what.host);
    let plain;
    try {
      let leaf = this.#leaves.get(host);
      if (!leaf) this.#leaves.set(host, leaf = import("./x509.ts").then((x) => x.makeLeaf(tls.ca, host)));
      const { acceptTls } = await import("./tls_server.ts");
      plain = await acceptTls(conn, first, await leaf, FIRST_BYTES_MS);
    } catch (err) {
      const reason = `TLS with the sandbox failed (does its client trust the run's CA?): ${
        err instanceof Error ? err.message : String(err)
      }`;
      this.#decide({ ...what, decision: "allow", rule: rule.text, reason });
      return close(conn);
    }
    const grant = this.#policy.grants?.get(host);
    // Loaded with the first connection moat reads: a run without grants or rules never loads it.
    const { serveIntercepted } = await import("./intercept.ts");
    await serveIntercepted(plain, {
      host,
      port: what.port,
      entry: rule,
      ...(grant ? { grant } : {}),
      dial: () => this.#dialTls(host, what.port, rule, tls.upstreamCaCerts),
      decide: (d) => this.#decide({ ...what, ...d }),
    });
  }

  /** Dial `host` and start TLS with it, its certificate verified for its name; throws saying why not. */
  async #dialTls(
    host: string,
    port: number,
    rule: HostPattern,
    caCerts: readonly string[],
  ): Promise<Deno.Conn> {
    const tcp = await this.#upstreams.dial(host, port, rule);
    let tls: Deno.TlsConn | undefined;
    const cancel = after(FIRST_BYTES_MS, () => {
      try {
        tcp.close();
      } catch { /* closed already */ }
    });
    try {
      tls = await Deno.startTls(tcp as Deno.TcpConn, {
        hostname: host,
        caCerts: [...caCerts],
        alpnProtocols: (await import("./tls_server.ts")).ALPN,
      });
      await tls.handshake();
      return tls;
    } catch (err) {
      try {
        (tls ?? tcp).close();
      } catch { /* closed already */ }
      throw new Error(`TLS with ${host} failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      cancel();
    }
  }

  /**
   * An allowed plain-HTTP request checked by its entry's rules, when it has some: the entry to go on with
   * (named with the rule that allowed the request, for the log), or `undefined` once a denial is logged
   * and answered with a 403.
   */
  /**
   * An HTTP request to an allowed host: its rules, then the upstream. `undefined` when either refuses, the
   * client told why (403, 411 or 502).
   */
  async #admitRequest(
    conn: Deno.Conn,
    what: Omit<Decision, "time" | "source" | "decision"> & { c: ProxiedConnection },
    entry: HostPattern,
    host: string,
    port: number,
    head: RequestHead,
  ): Promise<{ rule: HostPattern; upstream: Deno.Conn } | undefined> {
    const rule = await this.#checkRules(conn, what, entry, host, head);
    if (!rule) return undefined;
    const upstream = await this.#dial(
      what,
      host,
      port,
      rule,
      (reason) => badGateway(conn, host, port, reason),
    );
    return upstream ? { rule, upstream } : undefined;
  }

  async #checkRules(
    conn: Deno.Conn,
    what: Omit<Decision, "time" | "source" | "decision"> & { c: ProxiedConnection },
    entry: HostPattern,
    host: string,
    head: RequestHead,
  ): Promise<HostPattern | undefined> {
    if (!entry.rules) return entry;
    if (declaredBody(head) === "chunked") {
      this.#decide({ ...what, decision: "deny", rule: entry.text, reason: chunkedReason(host) });
      const body =
        `moat: ${head.method} ${redactQuery(head.path)} to ${host} is refused: ${chunkedReason(host)}.\n` +
        "Send the request with a Content-Length.\n";
      await writeAll(conn, closingResponse(411, "Length Required", body)).catch(() => {});
      return undefined;
    }
    const verdict = decideRequest(entry.rules, head.method, head.path);
    const rule = verdict.rule ? `${entry.text}: ${verdict.rule.text}` : entry.text;
    if (verdict.action === "allow") return { ...entry, text: rule };
    this.#decide({
      ...what,
      decision: "deny",
      rule,
      reason: verdict.rule ? "denied by a rule" : verdict.reason,
    });
    const body = ruleDeniedText(host, head.method, redactQuery(head.path), entry.text, verdict);
    await writeAll(conn, closingResponse(403, "Forbidden", body)).catch(() => {});
    return undefined;
  }

  async #tcp(
    conn: Deno.Conn,
    reader: Reader,
    c: ProxiedConnection,
    mapped: { host: string; port: number },
  ): Promise<void> {
    const what = { via: "tcp" as const, c, host: mapped.host, port: mapped.port };
    const rule = tcpRule(c.destination.port, mapped);
    const upstream = await this.#dial(what, mapped.host, mapped.port, rule, () => Promise.resolve());
    if (!upstream) return close(conn);
    await this.#carry(what, rule, conn, upstream, reader.bytes);
  }

  /**
   * Send upstream what the sandbox sent already (`first`: after a request head, or the ClientHello), then
   * carry bytes both ways until the connection is over, and log it with the bytes each way (the request
   * head moat read is not counted; what it passed on unread is). `limit`: the most bytes passed upstream
   * (a checked request's body); what the sandbox sends after is dropped.
   */
  async #carry(
    what: Omit<Decision, "time" | "source" | "decision"> & { c: ProxiedConnection },
    rule: HostPattern,
    conn: Deno.Conn,
    upstream: Deno.Conn,
    first: Uint8Array,
    limit?: number,
  ): Promise<void> {
    const now = limit === undefined ? first : first.subarray(0, limit);
    if (now.byteLength) await writeAll(upstream, now);
    const { sent, received } = await splice(
      conn,
      upstream,
      limit === undefined ? undefined : limit - now.byteLength,
    );
    this.#decide({ ...what, decision: "allow", rule: rule.text, sent: sent + now.byteLength, received });
  }

  /** Dial an allowed upstream; when it fails, log why, let `tell` say it to the sandbox, and give `undefined`. */
  async #dial(
    what: Omit<Decision, "time" | "source" | "decision"> & { c: ProxiedConnection },
    host: string,
    port: number,
    rule: HostPattern,
    tell: (reason: string) => Promise<void>,
  ): Promise<Deno.Conn | undefined> {
    try {
      return await this.#upstreams.dial(host, port, rule);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.#decide({ ...what, decision: "allow", rule: rule.text, reason: `cannot connect: ${reason}` });
      await tell(reason);
      return undefined;
    }
  }
}

/** The rule a mapped TCP port stands for, as the log names it: `tcp 22=github.com:22`. Pure. */
function tcpRule(port: number, to: { host: string; port: number }): HostPattern {
  return {
    text: `tcp ${port}=${to.host}:${to.port}`,
    host: normalizeHost(to.host),
    wildcard: false,
    ports: [to.port],
  };
}

function frame(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + message.byteLength);
  out[0] = message.byteLength >> 8;
  out[1] = message.byteLength & 0xff;
  out.set(message, 2);
  return out;
}

function close(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* closed already */ }
}

/** Tell an HTTP client that moat could not reach the upstream it allowed. */
async function badGateway(conn: Deno.Conn, host: string, port: number, reason: string): Promise<void> {
  await writeAll(conn, closingResponse(502, "Bad Gateway", `moat: ${host}:${port}: ${reason}\n`)).catch(
    () => {},
  );
}
