/** `tcp:` mappings (lib/net/tcp_map.ts): what is a mapping, and what is wrong with one that is not. */
import assert from "node:assert/strict";
import { PORTS } from "../../lib/net/policy_point.ts";
import { parseTcpMapping, RELAY_SERVICE_PORTS } from "../../lib/net/tcp_map.ts";

const good: [string, { text: string; port: number; host: string; hostPort: number }][] = [
  ["22=github.com:22", { text: "22=github.com:22", port: 22, host: "github.com", hostPort: 22 }],
  [" 2222 = GitHub.COM.:22 ", { text: "2222=github.com:22", port: 2222, host: "github.com", hostPort: 22 }],
  ["5432=10.0.0.5:5432", { text: "5432=10.0.0.5:5432", port: 5432, host: "10.0.0.5", hostPort: 5432 }],
  ["1=a:65535", { text: "1=a:65535", port: 1, host: "a", hostPort: 65535 }],
];
for (const [text, want] of good) {
  Deno.test(`tcp mapping ${JSON.stringify(text)}`, () => assert.deepEqual(parseTcpMapping(text), want));
}

const bad: [string, RegExp][] = [
  ["", /is not PORT=HOST:PORT/],
  ["github.com:22", /is not PORT=HOST:PORT/],
  ["22=github.com", /is not PORT=HOST:PORT/],
  ["22:github.com:22", /is not PORT=HOST:PORT/],
  ["x=github.com:22", /^"x" is not a port/],
  ["0=github.com:22", /^"0" is not a port/],
  ["65536=github.com:22", /^"65536" is not a port/],
  ["22=github.com:", /^"" is not a port/],
  ["22=github.com:0", /^"0" is not a port/],
  ["22=github.com:ssh", /^"ssh" is not a port/],
  ["53=a.io:53", /^port 53 is one of the relay's own/],
  ["80=a.io:80", /^port 80 is one of the relay's own/],
  ["443=a.io:443", /^port 443 is one of the relay's own/],
  ["3128=a.io:3128", /^port 3128 is one of the relay's own/],
  ["22=:22", /^an empty host$/],
  ["22=*.a.io:22", /no wildcard/],
  ["22=a_b.io:22", /is not a host name/],
  ["22=1.2.3.256:22", /is not a host name/],
  ["22=[::1]:22", /is not a host name/],
  ["22=a.io/x:22", /is not a host name/],
];
for (const [text, want] of bad) {
  Deno.test(`tcp mapping ${JSON.stringify(text)} is refused`, () => {
    const r = parseTcpMapping(text);
    assert.equal(typeof r, "string", JSON.stringify(r));
    assert.match(r as string, want);
  });
}

Deno.test("the ports a mapping cannot take are the relay's own", () => {
  assert.deepEqual([...RELAY_SERVICE_PORTS].sort(), Object.values(PORTS).sort());
});
