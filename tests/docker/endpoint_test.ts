import assert from "node:assert/strict";
import { MoatError, UsageError } from "../../lib/errors.ts";
import { DEFAULT_SOCKET, type Endpoint, endpointUrl, resolveEndpoint } from "../../lib/docker/endpoint.ts";
import {
  buildQuery,
  compareApiVersions,
  MAX_API_VERSION,
  MIN_API_VERSION,
  negotiateApiVersion,
} from "../../lib/docker/transport.ts";

Deno.test("resolveEndpoint picks the socket from DOCKER_HOST, else the default", () => {
  const cases: Array<{ env: Record<string, string | undefined>; want: Endpoint }> = [
    { env: {}, want: { kind: "unix", path: DEFAULT_SOCKET, source: "default" } },
    { env: { DOCKER_HOST: undefined }, want: { kind: "unix", path: DEFAULT_SOCKET, source: "default" } },
    { env: { DOCKER_HOST: "" }, want: { kind: "unix", path: DEFAULT_SOCKET, source: "default" } },
    { env: { DOCKER_HOST: "   " }, want: { kind: "unix", path: DEFAULT_SOCKET, source: "default" } },
    {
      env: { DOCKER_HOST: "unix:///run/user/1000/docker.sock" },
      want: { kind: "unix", path: "/run/user/1000/docker.sock", source: "DOCKER_HOST" },
    },
    {
      env: { DOCKER_HOST: "  unix:///tmp/d.sock\n" },
      want: { kind: "unix", path: "/tmp/d.sock", source: "DOCKER_HOST" },
    },
    { env: { DOCKER_HOST: "unix://" }, want: { kind: "unix", path: DEFAULT_SOCKET, source: "DOCKER_HOST" } },
    {
      env: { DOCKER_CONTEXT: "rootless", DOCKER_HOST: "unix:///var/run/docker.sock" },
      want: { kind: "unix", path: "/var/run/docker.sock", source: "DOCKER_HOST" },
    },
  ];
  for (const c of cases) assert.deepEqual(resolveEndpoint(c.env), c.want, JSON.stringify(c.env));
  assert.equal(DEFAULT_SOCKET, "/var/run/docker.sock");
});

Deno.test("resolveEndpoint refuses DOCKER_HOST forms it cannot speak, naming the scheme", () => {
  const cases: Array<{ host: string; message: RegExp }> = [
    { host: "unix://relative/docker.sock", message: /must name an absolute socket path/ },
    { host: "tcp://10.0.0.2:2375", message: /uses tcp:\/\/.*only unix:\/\/ sockets work/ },
    { host: "ssh://me@build-box", message: /uses ssh:\/\// },
    { host: "npipe:////./pipe/docker_engine", message: /uses npipe:\/\// },
    { host: "localhost:2375", message: /uses tcp:\/\// },
    { host: "HTTPS://example:2376", message: /uses HTTPS:\/\// },
  ];
  for (const c of cases) {
    assert.throws(() => resolveEndpoint({ DOCKER_HOST: c.host }), (err: unknown) => {
      assert.ok(err instanceof UsageError, c.host);
      assert.equal(err.exitCode, 2);
      assert.ok(err.message.includes(`"${c.host}"`), `${c.host}: the value is quoted in ${err.message}`);
      assert.match(err.message, c.message);
      assert.ok(err.hint && /DOCKER_HOST=unix:\/\//.test(err.hint), `${c.host}: hint says what to type`);
      return true;
    });
  }
});

Deno.test("endpointUrl writes a unix endpoint as a unix:// URL", () => {
  assert.equal(
    endpointUrl({ kind: "unix", path: "/x/docker.sock", source: "default" }),
    "unix:///x/docker.sock",
  );
});

Deno.test("compareApiVersions compares dotted versions numerically", () => {
  const cases: Array<[string, string, -1 | 0 | 1]> = [
    ["1.9", "1.41", -1],
    ["1.41", "1.41", 0],
    ["1.44", "1.41", 1],
    ["1.100", "1.99", 1],
    ["2.0", "1.99", 1],
    ["1.40", "1.4", 1],
    ["1", "1.0", 0],
    ["1.24", "1.24.1", -1],
  ];
  for (const [a, b, want] of cases) {
    assert.equal(Math.sign(compareApiVersions(a, b)), want, `${a} vs ${b}`);
    assert.equal(Math.sign(compareApiVersions(b, a)), -want || 0, `${b} vs ${a}`);
  }
});

Deno.test("negotiateApiVersion takes the lower of the engine's and ours, or ours when unsaid", () => {
  assert.equal(MIN_API_VERSION, "1.40");
  assert.equal(MAX_API_VERSION, "1.44");
  const cases: Array<[string | undefined, string]> = [
    [undefined, "1.44"],
    ["", "1.44"],
    ["not-a-version", "1.44"],
    ["1.40", "1.40"],
    ["1.41", "1.41"],
    ["1.43", "1.43"],
    ["1.44", "1.44"],
    ["1.51", "1.44"],
    ["1.100", "1.44"],
  ];
  for (const [server, want] of cases) {
    assert.equal(negotiateApiVersion(server, "unix:///s"), want, String(server));
  }
});

Deno.test("negotiateApiVersion refuses an engine older than our floor, naming both versions", () => {
  for (const server of ["1.39", "1.24", "1.9"]) {
    assert.throws(() => negotiateApiVersion(server, "unix:///run/docker.sock"), (err: unknown) => {
      assert.ok(err instanceof MoatError, server);
      assert.equal(err.exitCode, 125);
      assert.ok(err.message.includes(server), err.message);
      assert.ok(err.message.includes(MIN_API_VERSION), err.message);
      assert.ok(err.message.includes("unix:///run/docker.sock"), err.message);
      assert.ok(err.hint, "a hint says what to do");
      return true;
    });
  }
});

Deno.test("buildQuery encodes booleans as 1/0, objects as JSON, and skips undefined", () => {
  const cases: Array<[Parameters<typeof buildQuery>[0], string]> = [
    [undefined, ""],
    [{}, ""],
    [{ name: undefined }, ""],
    [{ stream: true, stdin: false }, "?stream=1&stdin=0"],
    [{ t: 10, signal: "SIGTERM" }, "?t=10&signal=SIGTERM"],
    [{ name: "moat-a b&c=d/é" }, "?name=moat-a%20b%26c%3Dd%2F%C3%A9"],
    [
      { all: true, filters: { label: ["moat.managed=true"] } },
      "?all=1&filters=%7B%22label%22%3A%5B%22moat.managed%3Dtrue%22%5D%7D",
    ],
    [{ condition: "next-exit", name: undefined, x: 0 }, "?condition=next-exit&x=0"],
  ];
  for (const [query, want] of cases) assert.equal(buildQuery(query), want, JSON.stringify(query));
});

Deno.test("buildQuery output decodes back to the values it was given", () => {
  const filters = { label: ["moat.managed=true", "moat.run=r-1"], status: ["exited"] };
  const q = new URLSearchParams(buildQuery({ all: true, filters, name: "a&b" }).slice(1));
  assert.equal(q.get("all"), "1");
  assert.deepEqual(JSON.parse(q.get("filters")!), filters);
  assert.equal(q.get("name"), "a&b");
});
