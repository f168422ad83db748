/**
 * The host-isolation probe's pure parts: its output read fail-closed, connect errors classified, the host
 * addresses chosen, the container asked for, and `moat reach`'s arguments.
 */
import assert from "node:assert/strict";
import {
  attemptLine,
  classifyConnectError,
  MAX_TARGETS,
  parseReachOutput,
  REACH_DONE,
  REACH_READY,
  reachContainerBody,
  reachTargets,
  type ReachVerdict,
} from "../../lib/doctor/reach.ts";
import { parseReachArgs } from "../../lib/cli/reach.ts";
import type { NetworkInspect } from "../../lib/docker/types.ts";
import { UsageError } from "../../lib/errors.ts";

const A = "10.237.0.1:40000";
const B = "172.17.0.1:40000";
const ok = (...lines: string[]) => [REACH_READY, ...lines, REACH_DONE].join("\n") + "\n";

/** Output → verdict kind. Only the first row is isolated: every other way of failing must not pass. */
const outputs: Array<[string, string, ReachVerdict["kind"], RegExp?]> = [
  ["every target blocked", ok(`blocked ${A} (timed out)`, `blocked ${B} (refused)`), "isolated"],
  ["the same, in the other order", ok(`blocked ${B} (refused)`, `blocked ${A} (timed out)`), "isolated"],
  ["empty output", "", "inconclusive", /printed nothing/],
  ["whitespace only", "\n \n", "inconclusive", /printed nothing/],
  [
    "blocked lines without the marker",
    `blocked ${A} (timed out)\nblocked ${B} (refused)\n${REACH_DONE}\n`,
    "inconclusive",
    /did not print "moat reach: ready"/,
  ],
  [
    "blocked lines before the marker",
    `blocked ${A} (timed out)\nblocked ${B} (refused)\n${REACH_READY}\n${REACH_DONE}\n`,
    "inconclusive",
    /no result for 10\.237\.0\.1:40000/,
  ],
  [
    "the marker, then nothing (killed before the attempts ended)",
    `${REACH_READY}\n`,
    "inconclusive",
    /did not print "moat reach: done"/,
  ],
  [
    "a missing end marker",
    `${REACH_READY}\nblocked ${A} (timed out)\nblocked ${B} (refused)\n`,
    "inconclusive",
    /did not print "moat reach: done"/,
  ],
  ["one target missing", ok(`blocked ${A} (timed out)`), "inconclusive", /no result for 172\.17\.0\.1:40000/],
  ["a target reached", ok(`blocked ${A} (timed out)`, `reached ${B}`), "reached"],
  ["a target reached without any marker", `reached ${A}\n`, "reached"],
  [
    "an error the probe did not know",
    ok(`blocked ${A} (timed out)`, `error ${B} (PermissionDenied: no)`),
    "inconclusive",
    /172\.17\.0\.1:40000: error \(PermissionDenied: no\)/,
  ],
  [
    "a target both blocked and errored",
    ok(`blocked ${A} (timed out)`, `blocked ${B} (refused)`, `error ${B} (x)`),
    "inconclusive",
  ],
  [
    "another target's line does not stand in",
    ok(`blocked ${A} (timed out)`, "blocked 172.17.0.1:40001 (refused)"),
    "inconclusive",
  ],
  ["a timeout message instead of results", `${REACH_READY}\nError: timed out after 30 s\n`, "inconclusive"],
  ["a crash after the marker", `${REACH_READY}\nerror: Uncaught (in promise) TypeError\n`, "inconclusive"],
  [
    "the marker's text inside a longer line",
    `x ${REACH_READY}\nblocked ${A} (t)\nblocked ${B} (t)\n${REACH_DONE}\n`,
    "inconclusive",
  ],
];

for (const [label, stdout, kind, why] of outputs) {
  Deno.test(`parseReachOutput: ${label} → ${kind}`, () => {
    const v = parseReachOutput(stdout, [A, B]);
    assert.equal(v.kind, kind, JSON.stringify(v));
    if (why && v.kind === "inconclusive") assert.match(v.why, why);
  });
}

Deno.test("parseReachOutput: the blocked targets and why, in the order given; reached ones named", () => {
  assert.deepEqual(parseReachOutput(ok(`blocked ${B} (refused)`, `blocked ${A} (timed out)`), [A, B]), {
    kind: "isolated",
    blocked: [{ target: A, why: "timed out" }, { target: B, why: "refused" }],
  });
  assert.deepEqual(parseReachOutput(ok(`reached ${B}`, `reached ${B}`), [A, B]), {
    kind: "reached",
    reached: [B],
  });
});

Deno.test("parseReachOutput: no target at all proves nothing", () => {
  assert.equal(parseReachOutput(ok(), []).kind, "inconclusive");
});

const errors: Array<[string, string, string]> = [
  ["ConnectionRefused", "Connection refused (os error 111)", "blocked refused"],
  ["TimeoutError", "The operation was aborted due to timeout", "blocked timed out"],
  ["Error", "No route to host (os error 113)", "blocked no route to host"],
  ["Error", "Network is unreachable (os error 101)", "blocked network unreachable"],
  ["Error", "Connection timed out (os error 110)", "blocked timed out"],
  ["PermissionDenied", "Requires net access", "error PermissionDenied: Requires net access"],
  ["AddrInUse", "Address in use (os error 98)", "error AddrInUse: Address in use (os error 98)"],
  ["Error", "os error 1110", "error Error: os error 1110"],
];
for (const [name, message, expected] of errors) {
  Deno.test(`classifyConnectError(${name}, ${JSON.stringify(message)}) is ${expected}`, () => {
    const r = classifyConnectError(name, message);
    assert.equal(r.kind === "reached" ? "reached" : `${r.kind} ${r.why}`, expected);
  });
}

Deno.test("attemptLine round-trips through parseReachOutput", () => {
  const out = ok(
    attemptLine(A, classifyConnectError("TimeoutError", "")),
    attemptLine(B, classifyConnectError("ConnectionRefused", "")),
  );
  assert.equal(parseReachOutput(out, [A, B]).kind, "isolated");
  assert.equal(attemptLine(A, { kind: "reached" }), `reached ${A}`);
  assert.equal(
    parseReachOutput(ok(attemptLine(A, { kind: "reached" }), `blocked ${B} (x)`), [A, B]).kind,
    "reached",
  );
});

const net = (name: string, id: string, config: Array<{ Subnet?: string; Gateway?: string }>, more = {}) =>
  ({ Name: name, Id: id, Driver: "bridge", IPAM: { Config: config }, ...more }) as NetworkInspect;

Deno.test("reachTargets: the probe network's gateway (or first address), docker0's first, then other bridges", () => {
  const probe = net("moat-net-x", "p", [{ Subnet: "10.237.0.16/28" }]);
  const all = [
    net("tnet", "t", [{ Subnet: "172.20.0.0/16", Gateway: "172.20.0.1" }]),
    net("host", "h", [], { Driver: "host" }),
    net("bridge", "b", [{ Subnet: "172.17.0.0/16", Gateway: "172.17.0.1" }, {
      Subnet: "fd00::/64",
      Gateway: "fd00::1",
    }]),
    net("macv", "m", [{ Subnet: "192.168.5.0/24", Gateway: "192.168.5.1" }], { Driver: "macvlan" }),
    net("dup", "d", [{ Subnet: "172.17.0.0/16", Gateway: "172.17.0.1/16" }]),
    probe,
  ];
  assert.deepEqual(reachTargets(probe, all, 4242), [
    "10.237.0.17:4242",
    "172.17.0.1:4242",
    "172.20.0.1:4242",
  ]);
  const withGateway = net("moat-net-y", "q", [{ Subnet: "10.237.0.32/28", Gateway: "10.237.0.33" }]);
  assert.deepEqual(reachTargets(withGateway, [], 1), ["10.237.0.33:1"]);
});

Deno.test("reachTargets: at most MAX_TARGETS addresses", () => {
  const probe = net("moat-net-x", "p", [{ Subnet: "10.237.0.0/28" }]);
  const many = Array.from(
    { length: 20 },
    (_, i) => net(`n${i}`, `i${i}`, [{ Gateway: `172.${20 + i}.0.1` }]),
  );
  const targets = reachTargets(probe, many, 9);
  assert.equal(targets.length, MAX_TARGETS);
  assert.equal(targets[0], "10.237.0.1:9");
});

Deno.test("reachContainerBody: moat reach under the gVisor runtime, on the network only, moat's files read-only", () => {
  const body = reachContainerBody({
    image: "debian:bookworm-slim",
    runtime: "runsc",
    network: "moat-net-x",
    moat: {
      executable: "/usr/bin/deno",
      libraries: [{ path: "/lib64/ld-linux-x86-64.so.2", name: "ld-linux-x86-64.so.2" }],
      code: { source: "/src/moat" },
    },
    user: "1000:1000",
    labels: { "dev.moat.managed": "true", "dev.moat.probe": "doctor" },
    targets: [A, B],
    attemptMs: 2000,
  });
  assert.deepEqual(body.Entrypoint, ["/opt/moat/lib/ld-linux-x86-64.so.2"]);
  assert.deepEqual(body.Cmd!.slice(-6), ["/opt/moat/code/main.ts", "reach", "--timeout-ms", "2000", A, B]);
  assert.equal(body.HostConfig.Runtime, "runsc");
  assert.equal(body.HostConfig["NetworkMode"], "moat-net-x");
  assert.equal(body.HostConfig.AutoRemove, false);
  assert.ok(body.HostConfig.Binds!.every((b) => b.endsWith(":ro")), "only moat's files, read-only");
  assert.deepEqual(body.HostConfig["CapDrop"], ["ALL"]);
  assert.equal(body.Labels!["dev.moat.probe"], "doctor");
  assert.equal(body.User, "1000:1000");
});

Deno.test("parseReachArgs: IPv4:PORT targets and a timeout; anything else is refused", () => {
  assert.deepEqual(parseReachArgs(["--timeout-ms", "500", A]), {
    help: false,
    timeoutMs: 500,
    targets: [{ host: "10.237.0.1", port: 40000, text: A }],
  });
  for (
    const bad of [[A], ["--timeout-ms", "0", A], ["--timeout-ms", "5"], ["--timeout-ms", "5", "host:1"], [
      "--timeout-ms",
      "5",
      "1.2.3.4:70000",
    ]]
  ) {
    assert.throws(() => parseReachArgs(bad), UsageError, JSON.stringify(bad));
  }
});
