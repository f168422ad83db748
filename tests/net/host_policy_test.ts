/** Allow-list patterns and the decision for a host and port (tables). */
import assert from "node:assert/strict";
import {
  allowedBy,
  type HostPattern,
  isHostName,
  isIpv4,
  normalizeHost,
  parseHostPattern,
} from "../../lib/net/host_policy.ts";

Deno.test("parseHostPattern: names, wildcards, addresses, ports; and what is refused", () => {
  const ok: Array<[string, Omit<HostPattern, "text">]> = [
    ["api.github.com", { host: "api.github.com", wildcard: false, ports: [80, 443] }],
    ["API.GitHub.COM.", { host: "api.github.com", wildcard: false, ports: [80, 443] }],
    ["*.npmjs.org", { host: "npmjs.org", wildcard: true, ports: [80, 443] }],
    ["api.example.com:8443", { host: "api.example.com", wildcard: false, ports: [8443] }],
    ["*.example.com:22", { host: "example.com", wildcard: true, ports: [22] }],
    ["127.0.0.1:8080", { host: "127.0.0.1", wildcard: false, ports: [8080] }],
    ["localhost", { host: "localhost", wildcard: false, ports: [80, 443] }],
    [" x-1.io ", { host: "x-1.io", wildcard: false, ports: [80, 443] }],
  ];
  for (const [text, want] of ok) {
    assert.deepEqual(parseHostPattern(text), { text: text.trim(), ...want }, text);
  }
  const bad: Array<[string, RegExp]> = [
    ["", /empty/],
    ["api.github.com:0", /not a port/],
    ["api.github.com:65536", /not a port/],
    ["api.github.com:https", /not a port/],
    ["api.*.com", /whole first label/],
    ["*", /whole first label/],
    ["**.x.com", /whole first label/],
    ["*.10.0.0.1", /not a host name|before an address/],
    ["-bad.com", /not a host name/],
    ["bad-.com", /not a host name/],
    ["a..b", /not a host name/],
    ["under_score.com", /not a host name/],
    ["10.0.0.256", /not a host name/],
    [`${"a".repeat(64)}.com`, /not a host name/],
    ["[::1]:443", /not a host name/],
    ["https://api.github.com", /not a port|not a host name/],
  ];
  for (const [text, why] of bad) {
    const got = parseHostPattern(text);
    assert.equal(typeof got, "string", text);
    assert.match(got as string, why, text);
  }
});

Deno.test("allowedBy: exact names, wildcards below a domain, the default ports, the first rule that allows", () => {
  const patterns = ["api.github.com", "*.npmjs.org", "git.example.com:22", "127.0.0.1:8080"]
    .map((t) => parseHostPattern(t) as HostPattern);
  const cases: Array<[string, number, string | undefined]> = [
    ["api.github.com", 443, "api.github.com"],
    ["API.GITHUB.COM.", 80, "api.github.com"],
    ["api.github.com", 22, undefined],
    ["github.com", 443, undefined],
    ["xapi.github.com", 443, undefined],
    ["registry.npmjs.org", 443, "*.npmjs.org"],
    ["a.b.npmjs.org", 443, "*.npmjs.org"],
    ["npmjs.org", 443, undefined],
    ["evilnpmjs.org", 443, undefined],
    ["npmjs.org.evil.com", 443, undefined],
    ["git.example.com", 22, "git.example.com:22"],
    ["git.example.com", 443, undefined],
    ["127.0.0.1", 8080, "127.0.0.1:8080"],
    ["127.0.0.1", 80, undefined],
  ];
  for (const [host, port, rule] of cases) {
    assert.equal(allowedBy(patterns, host, port)?.text, rule, `${host}:${port}`);
  }
  assert.equal(allowedBy([], "api.github.com", 443), undefined, "an empty list denies everything");
});

Deno.test("isHostName, isIpv4, normalizeHost", () => {
  for (
    const [name, want] of [["a.b", true], ["a", true], ["1.2.3.4", false], ["a.123", false], [
      "",
      false,
    ]] as const
  ) {
    assert.equal(isHostName(name), want, name);
  }
  for (
    const [text, want] of [["1.2.3.4", true], ["255.255.255.255", true], ["01.2.3.4", false], [
      "1.2.3",
      false,
    ]] as const
  ) {
    assert.equal(isIpv4(text), want, text);
  }
  assert.equal(normalizeHost("Example.COM."), "example.com");
});

Deno.test("allowedBy: an entry with rules comes before one without for what both cover", () => {
  const plain = parseHostPattern("*.example.com") as HostPattern;
  const ruled = { ...(parseHostPattern("api.example.com") as HostPattern), rules: [] };
  const other = parseHostPattern("api.example.com:8443") as HostPattern;
  const patterns = [plain, other, ruled];
  assert.equal(allowedBy(patterns, "api.example.com", 443), ruled, "the rules apply, though listed last");
  assert.equal(allowedBy(patterns, "www.example.com", 443), plain);
  assert.equal(allowedBy(patterns, "api.example.com", 8443), other, "a port the ruled entry does not cover");
});
