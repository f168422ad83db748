/**
 * The requests of one TLS connection moat reads inside (issue 14): a connection to a host that carries a
 * grant, or rules, once lib/net/tls_server.ts has ended the sandbox's TLS with a leaf of the run's CA. Each
 * request is read, checked and passed on in turn over one upstream TLS connection that moat dialled itself,
 * by the host's name, and verified with the host's trust store:
 *
 * - Its `Host` must be the connection's server name (the SNI, which its leaf was made for and which moat
 *   dialled): a request for another host on this connection is refused (421), so a grant's credential can
 *   only go to the host it belongs to.
 * - A host's rules decide on its method and path, as for plain HTTP.
 * - For a host with a grant, every header that could carry a credential the sandbox sent itself
 *   (`CREDENTIAL_HEADERS`, and the grant's own header) is taken out, and the grant's header added: the
 *   upstream never sees the sandbox's placeholder next to the credential, nor a key of the sandbox's own.
 *
 * Requests follow each other on the connection (keep-alive), each body passed on as its head frames it
 * (lib/net/http_body.ts), never held. A request with `Upgrade` (a WebSocket) is the last one read: what
 * follows is carried unread; so a host with rules refuses it (403), since what follows could not be checked. Responses are carried back as they come. A refusal after earlier requests
 * waits for their responses first (moat ends its side upstream and carries what is left), so the 403 is the
 * answer to the request that was refused.
 */
import { after } from "../timer.ts";
import { BodyError, BodyScanner, declaredBody } from "./http_body.ts";
import {
  closingResponse,
  readRequestHead,
  redactQuery,
  type RequestHead,
  rewrittenHead,
} from "./http_head.ts";
import { decideRequest, ruleDeniedText } from "./http_rules.ts";
import { type HostPattern, normalizeHost } from "./host_policy.ts";
import { Reader } from "./reader.ts";
import { type ByteStream, copy, copyThenCloseWrite, writeAll } from "./relay.ts";

/** A credential the policy point adds to a host's requests: the grant's name, and the header it makes. */
export interface GrantUse {
  name: string;
  header: string;
  /** The header's value, the secret in it: never logged, never shown. */
  value: string;
}

/**
 * Headers that carry credentials, taken out of a granted host's requests whatever the grant's own header is
 * (lowercase).
 */
export const CREDENTIAL_HEADERS: readonly string[] = [
  "authorization",
  "proxy-authorization",
  "x-api-key",
  "api-key",
  "x-auth-token",
  "private-token",
];

/** What one request decided, for the run's network log. */
export interface RequestDecision {
  method: string;
  path: string;
  decision: "allow" | "deny";
  rule?: string;
  grant?: string;
  reason?: string;
}

export interface InterceptOptions {
  /** The connection's server name (normalized): what its leaf names, and what moat dials. */
  host: string;
  port: number;
  /** The allow-list entry that allowed the host (its rules, if any, decide each request). */
  entry: HostPattern;
  grant?: GrantUse;
  /** Connect to the host, TLS verified; throws saying why it cannot. */
  dial: () => Promise<ByteStream>;
  decide: (d: RequestDecision) => void;
  /** The longest wait for the responses to earlier requests before a refusal is sent (ms). */
  drainMs?: number;
}

/**
 * The head to send upstream for `head` (read from `raw`): origin form, without `Proxy-Connection`; for a
 * granted host without any header of `CREDENTIAL_HEADERS` or the grant's own, and with the grant's header
 * last. Pure.
 */
export function forwardedHead(head: RequestHead, raw: Uint8Array, grant?: GrantUse): Uint8Array {
  const drop = new Set(["proxy-connection", "proxy-authorization"]);
  if (grant) { for (const h of [...CREDENTIAL_HEADERS, grant.header.toLowerCase()]) drop.add(h); }
  return rewrittenHead(head, raw, drop, grant ? [`${grant.header}: ${grant.value}`] : []);
}

/** Whether a request asks to switch protocols (RFC 9110 7.8): after it, the connection is not HTTP/1.1. */
function upgrades(head: RequestHead): boolean {
  const has = (name: string) => head.headers.some(([n]) => n.toLowerCase() === name);
  const connection = head.headers.filter(([n]) => n.toLowerCase() === "connection").map(([, v]) => v)
    .join(",").toLowerCase().split(",").map((t) => t.trim());
  return has("upgrade") && connection.includes("upgrade");
}

/** Serve the requests of `client` (the plaintext of the sandbox's TLS connection) until it ends. */
export async function serveIntercepted(client: ByteStream, opts: InterceptOptions): Promise<void> {
  const reader = new Reader(client);
  let upstream: ByteStream | undefined;
  /** Carrying the upstream's responses back; resolves when the upstream has ended its side. */
  let responses: Promise<unknown> | undefined;
  let refusal: Uint8Array | undefined;
  /** Set once no more requests are read: the end of the responses no longer ends the sandbox's side. */
  let stopping = false;
  try {
    for (;;) {
      let r;
      try {
        r = await reader.until(readRequestHead);
      } catch {
        break; // the sandbox's side failed
      }
      if (!r) break;
      if (r.kind === "bad") {
        opts.decide({ method: "", path: "", decision: "deny", reason: r.reason });
        refusal = closingResponse(r.status, "Bad Request", `moat: ${r.reason}\n`);
        break;
      }
      const head = r.head;
      const path = redactQuery(head.path);
      const what = { method: head.method, path };
      const named = head.host === undefined ? undefined : normalizeHost(head.host);
      if (named !== opts.host || (head.port !== undefined && head.port !== opts.port)) {
        const asked = head.host === undefined ? "no host" : `${named}${head.port ? `:${head.port}` : ""}`;
        const reason = `the request names ${asked}, but this connection is to ${opts.host}`;
        opts.decide({ ...what, decision: "deny", rule: opts.entry.text, reason });
        refusal = closingResponse(
          421,
          "Misdirected Request",
          `moat: ${reason}: open a connection to that host for it.\n`,
        );
        break;
      }
      let rule = opts.entry.text;
      if (opts.entry.rules) {
        const verdict = decideRequest(opts.entry.rules, head.method, head.path);
        rule = verdict.rule ? `${opts.entry.text}: ${verdict.rule.text}` : opts.entry.text;
        if (verdict.action !== "allow") {
          const reason = verdict.rule ? "denied by a rule" : verdict.reason;
          opts.decide({ ...what, decision: "deny", rule, reason });
          const body = ruleDeniedText(opts.host, head.method, path, opts.entry.text, verdict);
          refusal = closingResponse(403, "Forbidden", body);
          break;
        }
        // After an upgrade moat reads nothing more of the connection: were the server to refuse it, further
        // requests would pass unchecked. So a host with rules takes none.
        if (upgrades(head)) {
          const reason = `a connection upgrade (${
            head.headers.find(([n]) => n.toLowerCase() === "upgrade")?.[1] ?? "?"
          }) cannot be checked by the rules of ${opts.entry.text}`;
          opts.decide({ ...what, decision: "deny", rule, reason });
          refusal = closingResponse(
            403,
            "Forbidden",
            `moat: ${head.method} ${path} to ${opts.host} is refused: ${reason}.\n`,
          );
          break;
        }
      }
      if (!upstream) {
        try {
          upstream = await opts.dial();
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          opts.decide({ ...what, decision: "allow", rule, reason: `cannot connect: ${reason}` });
          refusal = closingResponse(502, "Bad Gateway", `moat: ${opts.host}:${opts.port}: ${reason}\n`);
          break;
        }
        // When the upstream ends its side between requests, so does moat: the client opens a new connection.
        responses = copy(upstream, client).then(async () => {
          if (!stopping) await client.closeWrite().catch(() => {});
        });
      }
      opts.decide({ ...what, decision: "allow", rule, ...(opts.grant ? { grant: opts.grant.name } : {}) });
      const rest = reader.bytes.subarray(r.size);
      try {
        await writeAll(upstream, forwardedHead(head, reader.bytes, opts.grant));
        if (upgrades(head)) {
          // What follows is not HTTP/1.1: carried unread, as the response to this request is.
          if (rest.byteLength) await writeAll(upstream, rest);
          await copyThenCloseWrite(client, upstream);
          break;
        }
        reader.bytes = await passBody(reader, new BodyScanner(declaredBody(head)), upstream, rest);
      } catch (err) {
        if (err instanceof BodyError) opts.decide({ ...what, decision: "deny", rule, reason: err.message });
        break; // either side failed: the connection is over
      }
    }
  } finally {
    stopping = true;
    await upstream?.closeWrite().catch(() => {});
    if (responses) {
      const cancel = after(opts.drainMs ?? 10_000, () => upstream?.close());
      await responses;
      cancel();
    }
    if (refusal) await writeAll(client, refusal).catch(() => {});
    for (const c of [client, upstream]) {
      try {
        c?.close();
      } catch { /* closed already */ }
    }
  }
}

/**
 * Pass a request's body upstream as `scanner` frames it, from `first` (the bytes after its head) and then
 * the connection; the bytes that come after it (the next request's).
 */
async function passBody(
  reader: Reader,
  scanner: BodyScanner,
  upstream: ByteStream,
  first: Uint8Array,
): Promise<Uint8Array> {
  let bytes = first;
  for (;;) {
    const used = scanner.feed(bytes);
    if (used) await writeAll(upstream, bytes.subarray(0, used));
    if (scanner.done) return bytes.subarray(used);
    reader.bytes = new Uint8Array(0);
    if (!(await reader.more())) throw new Error("the connection ended inside a request's body");
    bytes = reader.bytes;
  }
}
