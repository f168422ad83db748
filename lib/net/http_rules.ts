/**
 * Rules for the HTTP requests a run may send to one host (issue 13: `- host: api.example.com` with
 * `rules: ["allow GET /v1/*", "deny * /*"]` in moat.yaml's `network.allow`). Pure.
 *
 * A rule is `ACTION METHOD PATH`: `allow` or `deny`; a method (`GET`, compared exactly: methods are
 * case-sensitive, RFC 9110 9.1) or `*` for any; a path that starts with `/`, where `*` stands for any run of
 * characters, `/` included (`/v1/*` covers `/v1/a/b`). A request is matched on its path without the query
 * string, as sent (lib/net/http_head.ts: not decoded, not normalized). The first rule that matches decides;
 * a request no rule matches is denied.
 *
 * Since the path is matched as sent and the server reads it decoded and normalized, a path two readers could
 * take for different paths is refused whatever the rules say: one with a `.` or `..` segment, an empty
 * segment (`//`), a `;` (segment parameters some servers drop), a backslash, or a percent-encoded `/`, `\` or
 * unreserved character (RFC 3986 2.3 and 6.2.2.2: `%61` is `a` to a server,
 * so `/%61dmin` would slip past `deny * /admin*`).
 */

/** One rule, checked. */
export interface HttpRule {
  /** As moat writes it back: `allow GET /v1/*`, one space apart. */
  text: string;
  action: "allow" | "deny";
  /** A method, or `*`. */
  method: string;
  /** A path pattern (`*`: any run of characters). */
  path: string;
}

/** RFC 9110 5.6.2, without `*` (which means any method here). */
const METHOD = /^[!#$%&'+\-.^_`|~0-9A-Za-z]+$/;

/** Parse one rule; a string is what is wrong with it (for a config error). Pure. */
export function parseHttpRule(text: string): HttpRule | string {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== 3 || parts[0] === "") {
    return `"${text}" is not ACTION METHOD PATH, such as "allow GET /v1/*"`;
  }
  const [action, method, path] = parts as [string, string, string];
  if (action !== "allow" && action !== "deny") return `"${action}" is not allow or deny`;
  if (method !== "*" && !METHOD.test(method)) {
    return `"${method}" is not a method (such as GET or POST) or * for any`;
  }
  if (method !== "*" && method !== method.toUpperCase()) {
    return `"${method}" is not upper case: methods are case-sensitive, and a server takes ${method.toUpperCase()}`;
  }
  if (!path.startsWith("/")) return `"${path}" is not a path: it starts with /, such as /v1/*`;
  if (path.includes("?") || path.includes("#")) {
    return `"${path}" has a query or fragment: rules match the path without its query string`;
  }
  return { text: `${action} ${method} ${path}`, action, method, path };
}

/** Whether `path` matches `pattern`, where `*` is any run of characters. Pure; linear in practice. */
export function pathMatches(pattern: string, path: string): boolean {
  let p = 0;
  let s = 0;
  let star = -1;
  let from = 0;
  while (s < path.length) {
    if (p < pattern.length && pattern[p] === "*") {
      star = p++;
      from = s;
    } else if (p < pattern.length && pattern[p] === path[s]) {
      p++;
      s++;
    } else if (star >= 0) {
      p = star + 1;
      s = ++from;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === "*") p++;
  return p === pattern.length;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** Why rules cannot check `path` (see the module's comment), or `undefined` when they can. Pure. */
export function uncheckablePath(path: string): string | undefined {
  if (path.split("/").some((seg) => seg === "." || seg === "..")) return 'it has a "." or ".." segment';
  if (path.includes("\\")) return "it has a backslash";
  // Many servers read `//` as `/`, and `;…` in a segment as parameters they drop (`/admin;x` as `/admin`).
  if (path.slice(1).split("/").slice(0, -1).includes("") || path.startsWith("//")) {
    return "it has an empty segment (//)";
  }
  if (path.includes(";")) return 'it has a ";"';
  for (const m of path.matchAll(/%([0-9A-Fa-f]{2})/g)) {
    const c = String.fromCharCode(parseInt(m[1]!, 16));
    if (c === "/" || c === "\\" || UNRESERVED.test(c)) return `it has ${m[0]}, an encoded "${c}"`;
  }
  return undefined;
}

/** What rules say about a request: the rule that decided, or why it was denied with none. */
export type RuleVerdict =
  | { action: "allow" | "deny"; rule: HttpRule }
  | { action: "deny"; rule?: undefined; reason: string };

/** The verdict of `rules` on `method` and `path` (without its query): the first rule that matches. Pure. */
export function decideRequest(rules: readonly HttpRule[], method: string, path: string): RuleVerdict {
  const unclear = uncheckablePath(path);
  if (unclear) return { action: "deny", reason: `the path cannot be checked by rules: ${unclear}` };
  const rule = rules.find((r) => (r.method === "*" || r.method === method) && pathMatches(r.path, path));
  return rule ? { action: rule.action, rule } : { action: "deny", reason: "no rule matches it" };
}

/** The body of a 403 for an HTTP request the rules for its host (entry `entry`) denied. Pure. */
export function ruleDeniedText(
  host: string,
  method: string,
  path: string,
  entry: string,
  verdict: RuleVerdict,
): string {
  const what = `moat: ${method} ${path} to ${host} is denied by this run's network policy: `;
  if (verdict.rule === undefined && verdict.reason.startsWith("the path")) {
    return `${what}${verdict.reason}.\nSend the path as the server reads it (no ".", "..", or encoded letters).\n`;
  }
  const why = verdict.rule ? `the rule "${verdict.rule.text}"` : `no rule for ${entry} matches it`;
  const eg = `allow ${method} ${path}`;
  return `${what}${why}.\nTo allow it, add a rule ${
    verdict.rule ? `before "${verdict.rule.text}"` : "to that host's rules"
  } in moat.yaml, such as:\n  network:\n    allow:\n      - host: ${
    entry.startsWith("*") ? JSON.stringify(entry) : entry
  }\n        rules: [${JSON.stringify(eg)}]\n`;
}
