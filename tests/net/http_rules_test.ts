/** Rules for a host's HTTP requests (lib/net/http_rules.ts): parsing, path patterns, and the verdict. */
import assert from "node:assert/strict";
import {
  decideRequest,
  type HttpRule,
  parseHttpRule,
  pathMatches,
  ruleDeniedText,
  uncheckablePath,
} from "../../lib/net/http_rules.ts";

const good: [string, HttpRule][] = [
  ["allow GET /v1/*", { text: "allow GET /v1/*", action: "allow", method: "GET", path: "/v1/*" }],
  ["  deny   *  /*  ", { text: "deny * /*", action: "deny", method: "*", path: "/*" }],
  ["allow PROPFIND /dav", { text: "allow PROPFIND /dav", action: "allow", method: "PROPFIND", path: "/dav" }],
  ["deny\tPOST\t/", { text: "deny POST /", action: "deny", method: "POST", path: "/" }],
];
for (const [text, want] of good) {
  Deno.test(`rule ${JSON.stringify(text)}`, () => assert.deepEqual(parseHttpRule(text), want));
}

const bad: [string, RegExp][] = [
  ["", /is not ACTION METHOD PATH/],
  ["allow GET", /is not ACTION METHOD PATH/],
  ["allow GET /a /b", /is not ACTION METHOD PATH/],
  ["permit GET /", /^"permit" is not allow or deny$/],
  ["Allow GET /", /^"Allow" is not allow or deny$/],
  ["allow get /", /^"get" is not upper case: methods are case-sensitive, and a server takes GET$/],
  ["allow G* /", /^"G\*" is not a method/],
  ["allow GET/ /", /^"GET\/" is not a method/],
  ["allow GET v1/*", /^"v1\/\*" is not a path: it starts with \//],
  ["allow GET *", /^"\*" is not a path/],
  ["allow GET /v1?x=1", /has a query or fragment/],
  ["allow GET /v1#top", /has a query or fragment/],
];
for (const [text, want] of bad) {
  Deno.test(`rule ${JSON.stringify(text)} is refused`, () => {
    const r = parseHttpRule(text);
    assert.equal(typeof r, "string", JSON.stringify(r));
    assert.match(r as string, want);
  });
}

const paths: [string, string, boolean][] = [
  ["/v1/*", "/v1/a", true],
  ["/v1/*", "/v1/a/b/c", true],
  ["/v1/*", "/v1/", true],
  ["/v1/*", "/v1", false],
  ["/v1/*", "/v2/a", false],
  ["/v1/*", "/x/v1/a", false],
  ["/*", "/", true],
  ["/*", "*", false],
  ["/a", "/a", true],
  ["/a", "/a/", false],
  ["/a", "/ab", false],
  ["/a*", "/ab", true],
  ["/*.json", "/a/b.json", true],
  ["/*.json", "/a/b.jsonx", false],
  ["/*/raw/*", "/o/r/raw/main/f", true],
  ["/*/raw/*", "/o/r/blob/main/f", false],
  ["/a**b", "/ab", true],
  ["/a*b*c", "/abxbxc", true],
  ["/a*b*c", "/abxbx", false],
  ["/V1/*", "/v1/a", false],
];
for (const [pattern, path, want] of paths) {
  Deno.test(`path ${path} ${want ? "matches" : "does not match"} ${pattern}`, () => {
    assert.equal(pathMatches(pattern, path), want);
  });
}

Deno.test("a path with many stars against a long path is decided quickly", () => {
  const t = performance.now();
  assert.equal(pathMatches("/" + "*a".repeat(30) + "b", "/" + "a".repeat(8000)), false);
  assert.ok(performance.now() - t < 2000);
});

const unclear: [string, RegExp | undefined][] = [
  ["/v1/a", undefined],
  ["/v1/a%20b", undefined],
  ["/v1/%E2%82%AC", undefined],
  ["/v1/..", /"\." or "\.\." segment/],
  ["/v1/../admin", /"\." or "\.\." segment/],
  ["/v1/./a", /"\." or "\.\." segment/],
  ["/v1/a..b", undefined],
  ["/v1/%2e%2e/admin", /%2e, an encoded "\."/],
  ["/v1%2Fadmin", /%2F, an encoded "\/"/],
  ["/v1/%5c", /an encoded "\\"/],
  ["/%61dmin", /%61, an encoded "a"/],
  ["/v1\\..\\admin", /backslash/],
  ["//admin", /empty segment/],
  ["/v1//admin", /empty segment/],
  ["/v1/", undefined],
  ["/", undefined],
  ["/admin;x=1", /";"/],
];
for (const [path, want] of unclear) {
  Deno.test(`path ${path} ${want ? "cannot be checked" : "can be checked"}`, () => {
    const r = uncheckablePath(path);
    if (want) assert.match(r ?? "", want);
    else assert.equal(r, undefined);
  });
}

Deno.test("the first rule that matches decides; none matching is a denial", () => {
  const rules = ["allow GET /v1/*", "deny * /v1/admin*", "allow POST /v1/admin/login", "deny * /*"].map((r) =>
    parseHttpRule(r) as HttpRule
  );
  const verdict = (method: string, path: string) => {
    const v = decideRequest(rules, method, path);
    return `${v.action} ${v.rule ? v.rule.text : v.reason}`;
  };
  assert.equal(verdict("GET", "/v1/repos"), "allow allow GET /v1/*");
  assert.equal(verdict("GET", "/v1/admin"), "allow allow GET /v1/*", "the first that matches");
  assert.equal(verdict("POST", "/v1/admin/login"), "deny deny * /v1/admin*", "not a later one");
  assert.equal(verdict("get", "/v1/repos"), "deny deny * /*", "methods are case-sensitive");
  assert.equal(verdict("PUT", "/v2"), "deny deny * /*");
  assert.equal(
    verdict("GET", "/v1/../admin"),
    'deny the path cannot be checked by rules: it has a "." or ".." segment',
  );
  const some = ["allow GET /v1/*"].map((r) => parseHttpRule(r) as HttpRule);
  assert.deepEqual(decideRequest(some, "GET", "/v2"), { action: "deny", reason: "no rule matches it" });
});

Deno.test("the 403 for a request a wildcard entry's rules deny quotes the entry, as YAML needs", () => {
  const verdict = decideRequest(["deny * /*"].map((r) => parseHttpRule(r) as HttpRule), "GET", "/x");
  const body = ruleDeniedText("a.example.com", "GET", "/x", "*.example.com", verdict);
  assert.match(body, /the rule "deny \* \/\*"\.\n/);
  assert.match(body, /\n {6}- host: "\*\.example\.com"\n {8}rules: \["allow GET \/x"\]\n$/);
});
