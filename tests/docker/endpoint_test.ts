import assert from "node:assert/strict";
import { MoatError, UsageError } from "../../lib/errors.ts";
import {
  DEFAULT_SOCKET,
  type Endpoint,
  endpointUrl,
  engineProduct,
  type HostView,
  resolveEndpoint,
} from "../../lib/docker/endpoint.ts";
import {
  buildQuery,
  compareApiVersions,
  MAX_API_VERSION,
  MIN_API_VERSION,
  negotiateApiVersion,
} from "../../lib/docker/transport.ts";
import { sshArgs, unixPath } from "../../lib/docker/ssh.ts";
import { sshOptions } from "../../lib/docker/client.ts";

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

Deno.test("resolveEndpoint refuses DOCKER_HOST forms it cannot speak or use safely, saying why", () => {
  const cases: Array<{ host: string; env?: Record<string, string>; message: RegExp; hint: RegExp }> = [
    { host: "unix://relative/docker.sock", message: /must name an absolute socket path/, hint: /unix:\/\// },
    {
      host: "npipe:////./pipe/docker_engine",
      message: /uses npipe:\/\/, which moat does not speak/,
      hint: /unset/,
    },
    { host: "HTTPS://example:2376", message: /uses HTTPS:\/\//, hint: /unset DOCKER_HOST/ },
    { host: "tcp://10.0.0.2:2375", message: /plain TCP to another host/, hint: /DOCKER_TLS_VERIFY=1/ },
    { host: "build-box:2375", message: /plain TCP to another host/, hint: /MOAT_PLAIN_TCP=1/ },
    { host: "tcp://box:99999", message: /no valid port/, hint: /tcp:\/\/build-box:2376/ },
    { host: "tcp://box:2376/prefix", message: /not of the form tcp:\/\/HOST:PORT/, hint: /DOCKER_HOST=tcp/ },
    {
      host: "tcp://box:2376",
      env: { DOCKER_TLS: "1" },
      message: /without checking the engine's certificate/,
      hint: /DOCKER_TLS_VERIFY=1/,
    },
    {
      host: "tcp://box:2376",
      env: { DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: "/nowhere" },
      message: /no CA to verify the engine with: \/nowhere\/ca\.pem is absent/,
      hint: /DOCKER_CERT_PATH=/,
    },
    { host: "ssh://", message: /not of the form ssh:\/\//, hint: /ssh:\/\/me@build-box/ },
    { host: "ssh://me@box:0", message: /not of the form ssh:\/\//, hint: /ssh:\/\/me@build-box/ },
  ];
  for (const c of cases) {
    assert.throws(() => resolveEndpoint({ DOCKER_HOST: c.host, ...c.env }), (err: unknown) => {
      assert.ok(err instanceof UsageError, c.host);
      assert.equal(err.exitCode, 2);
      assert.ok(
        err.message.includes(`"${c.host}"`) || /DOCKER_TLS_VERIFY/.test(err.message),
        `${c.host}: ${err.message}`,
      );
      assert.match(err.message, c.message, c.host);
      assert.match(err.hint ?? "", c.hint, `${c.host}: hint says what to type`);
      return true;
    });
  }
});

/** A host whose files are `files` (path → text; `null`: exists, unreadable, e.g. a socket). */
function host(files: Record<string, string | null>): HostView {
  return {
    exists: (p) => p in files,
    read: (p) => files[p] ?? undefined,
    list: (
      dir,
    ) => [
      ...new Set(
        Object.keys(files).filter((p) => p.startsWith(`${dir}/`)).map((p) =>
          p.slice(dir.length + 1).split("/")[0]!
        ),
      ),
    ],
  };
}

Deno.test("resolveEndpoint: tcp:// with and without TLS, ssh://, as the docker CLI reads them", () => {
  const certs = host({ "/c/ca.pem": "", "/c/cert.pem": "", "/c/key.pem": "", "/h/.docker/ca.pem": "" });
  const cases: Array<{ env: Record<string, string>; want: Endpoint; view?: HostView }> = [
    {
      env: { DOCKER_HOST: "tcp://127.0.0.1:2375" },
      want: { kind: "tcp", host: "127.0.0.1", port: 2375, source: "DOCKER_HOST" },
    },
    {
      env: { DOCKER_HOST: "localhost" },
      want: { kind: "tcp", host: "localhost", port: 2375, source: "DOCKER_HOST" },
    },
    {
      env: { DOCKER_HOST: "tcp://[::1]:2375" },
      want: { kind: "tcp", host: "::1", port: 2375, source: "DOCKER_HOST" },
    },
    {
      env: { DOCKER_HOST: "tcp://10.0.0.2:2375", MOAT_PLAIN_TCP: "1" },
      want: { kind: "tcp", host: "10.0.0.2", port: 2375, source: "DOCKER_HOST" },
    },
    {
      env: { DOCKER_HOST: "tcp://box", DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: "/c" },
      want: {
        kind: "tcp",
        host: "box",
        port: 2376,
        tls: { ca: "/c/ca.pem", cert: "/c/cert.pem", key: "/c/key.pem" },
        source: "DOCKER_HOST",
      },
      view: certs,
    },
    {
      env: { DOCKER_HOST: "tcp://box:3376", DOCKER_TLS_VERIFY: "yes", HOME: "/h" },
      want: { kind: "tcp", host: "box", port: 3376, tls: { ca: "/h/.docker/ca.pem" }, source: "DOCKER_HOST" },
      view: certs,
    },
    { env: { DOCKER_HOST: "ssh://box" }, want: { kind: "ssh", host: "box", source: "DOCKER_HOST" } },
    {
      env: { DOCKER_HOST: "ssh://me@box:2222/run/user/1000/docker.sock" },
      want: {
        kind: "ssh",
        host: "box",
        user: "me",
        port: 2222,
        socket: "/run/user/1000/docker.sock",
        source: "DOCKER_HOST",
      },
    },
  ];
  for (const c of cases) assert.deepEqual(resolveEndpoint(c.env, c.view), c.want, JSON.stringify(c.env));
});

Deno.test("resolveEndpoint: a Docker context by DOCKER_CONTEXT or currentContext, with its TLS files", () => {
  const meta = (name: string, hostSpec: string, skip = false) =>
    JSON.stringify({
      Name: name,
      Metadata: {},
      Endpoints: { docker: { Host: hostSpec, SkipTLSVerify: skip } },
    });
  const view = host({
    "/h/.docker/config.json": JSON.stringify({ currentContext: "rootless" }),
    "/h/.docker/contexts/meta/aaa/meta.json": meta("rootless", "unix:///run/user/1000/docker.sock"),
    "/h/.docker/contexts/meta/bbb/meta.json": meta("remote", "tcp://box:2376"),
    "/h/.docker/contexts/tls/bbb/docker/ca.pem": "",
    "/h/.docker/contexts/tls/bbb/docker/cert.pem": "",
    "/h/.docker/contexts/tls/bbb/docker/key.pem": "",
    "/h/.docker/contexts/meta/ccc/meta.json": meta("lax", "tcp://box:2376", true),
    "/h/.docker/contexts/meta/ddd/meta.json": "{not json",
    "/d/config.json": JSON.stringify({ currentContext: "remote" }),
    "/d/contexts/meta/bbb/meta.json": meta("remote", "ssh://me@box"),
  });
  const home = { HOME: "/h" };
  assert.deepEqual(resolveEndpoint(home, view), {
    kind: "unix",
    path: "/run/user/1000/docker.sock",
    source: "context",
    context: "rootless",
  }, "currentContext");
  assert.deepEqual(resolveEndpoint({ ...home, DOCKER_CONTEXT: "remote" }, view), {
    kind: "tcp",
    host: "box",
    port: 2376,
    tls: {
      ca: "/h/.docker/contexts/tls/bbb/docker/ca.pem",
      cert: "/h/.docker/contexts/tls/bbb/docker/cert.pem",
      key: "/h/.docker/contexts/tls/bbb/docker/key.pem",
    },
    source: "context",
    context: "remote",
  }, "DOCKER_CONTEXT beats currentContext; its TLS files");
  assert.deepEqual(resolveEndpoint({ ...home, DOCKER_CONFIG: "/d" }, view), {
    kind: "ssh",
    host: "box",
    user: "me",
    source: "context",
    context: "remote",
  }, "DOCKER_CONFIG");
  assert.equal(resolveEndpoint({ ...home, DOCKER_CONTEXT: "default" }, view).source, "default");
  assert.equal(
    resolveEndpoint({ ...home, DOCKER_HOST: "unix:///x.sock", DOCKER_CONTEXT: "remote" }, view).source,
    "DOCKER_HOST",
    "DOCKER_HOST beats a context",
  );
  assert.throws(
    () => resolveEndpoint({ ...home, DOCKER_CONTEXT: "nope" }, view),
    /There is no Docker context "nope" \(DOCKER_CONTEXT\)/,
  );
  assert.throws(() => resolveEndpoint({ ...home, DOCKER_CONTEXT: "lax" }, view), /skips TLS verification/);
});

Deno.test("resolveEndpoint: without the default socket, rootless Docker's, then Podman's, said so", () => {
  const env = { XDG_RUNTIME_DIR: "/run/user/1000" };
  const cases: Array<{ files: string[]; want: Endpoint }> = [
    {
      files: [DEFAULT_SOCKET, "/run/user/1000/docker.sock"],
      want: { kind: "unix", path: DEFAULT_SOCKET, source: "default" },
    },
    {
      files: ["/run/user/1000/docker.sock", "/run/user/1000/podman/podman.sock"],
      want: { kind: "unix", path: "/run/user/1000/docker.sock", source: "rootless" },
    },
    {
      files: ["/run/user/1000/podman/podman.sock", "/run/podman/podman.sock"],
      want: { kind: "unix", path: "/run/user/1000/podman/podman.sock", source: "podman" },
    },
    {
      files: ["/run/podman/podman.sock"],
      want: { kind: "unix", path: "/run/podman/podman.sock", source: "podman" },
    },
    { files: [], want: { kind: "unix", path: DEFAULT_SOCKET, source: "default" } },
  ];
  for (const c of cases) {
    const view = host(Object.fromEntries(c.files.map((f) => [f, null])));
    assert.deepEqual(resolveEndpoint(env, view), c.want, c.files.join(", "));
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

Deno.test("endpointUrl and sshArgs for tcp and ssh endpoints", () => {
  assert.equal(
    endpointUrl({ kind: "tcp", host: "box", port: 2376, source: "DOCKER_HOST" }),
    "tcp://box:2376",
  );
  assert.equal(
    endpointUrl({ kind: "tcp", host: "::1", port: 2375, source: "DOCKER_HOST" }),
    "tcp://[::1]:2375",
  );
  const ssh = {
    kind: "ssh" as const,
    host: "box",
    user: "me",
    port: 2222,
    socket: "/s.sock",
    source: "DOCKER_HOST" as const,
  };
  assert.equal(endpointUrl(ssh), "ssh://me@box:2222/s.sock");
  assert.deepEqual(sshArgs(ssh), [
    "-T",
    "-o",
    "ConnectTimeout=30",
    "-p",
    "2222",
    "-l",
    "me",
    "--",
    "box",
    "docker",
    "--host=unix:///s.sock",
    "system",
    "dial-stdio",
  ]);
  assert.deepEqual(sshArgs({ kind: "ssh", host: "box", source: "DOCKER_HOST" }), [
    "-T",
    "-o",
    "ConnectTimeout=30",
    "--",
    "box",
    "docker",
    "system",
    "dial-stdio",
  ]);
  // On a shared connection: OpenSSH's connection sharing, kept open a while for the next command.
  assert.deepEqual(sshArgs({ kind: "ssh", host: "box", source: "DOCKER_HOST" }, "/h/ssh/%C"), [
    "-T",
    "-o",
    "ConnectTimeout=30",
    "-o",
    "ControlMaster=auto",
    "-o",
    "ControlPath=/h/ssh/%C",
    "-o",
    "ControlPersist=60",
    "--",
    "box",
    "docker",
    "system",
    "dial-stdio",
  ]);
});

const unixPaths: [string, string | undefined][] = [
  ["unix:///var/run/docker.sock", "/var/run/docker.sock"],
  ["unix:///run/user/1000/docker.sock", "/run/user/1000/docker.sock"],
  ["tcp://127.0.0.1:2375", undefined],
  ["ssh://box", undefined],
  ["unix://relative.sock", undefined],
  ["", undefined],
];
for (const [host, path] of unixPaths) {
  Deno.test(`unixPath(${JSON.stringify(host)}): the far engine's socket to forward to`, () => {
    assert.equal(unixPath(host), path);
  });
}

const shareTable: [Record<string, string>, string | undefined][] = [
  [{ MOAT_HOME: "/m", HOME: "/h" }, "/m/ssh"],
  [{ HOME: "/h" }, "/h/.moat/ssh"],
  [{ HOME: "/h", MOAT_SSH_SHARE: "1" }, "/h/.moat/ssh"],
  [{ HOME: "/h", MOAT_SSH_SHARE: "0" }, undefined],
  [{}, undefined],
];
for (const [env, dir] of shareTable) {
  Deno.test(`sshOptions(${JSON.stringify(env)}) shares ssh connections in ${dir ?? "nothing"}`, () => {
    assert.equal(sshOptions(env).controlDir, dir);
  });
}

Deno.test("MOAT_SSH_SHARE other than 0 or 1 is a usage error", () => {
  assert.throws(() => sshOptions({ HOME: "/h", MOAT_SSH_SHARE: "yes" }), UsageError);
});

Deno.test("resolveEndpoint reads the TLS settings for tcp:// only", () => {
  const tlsEnv = { DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: "/nowhere" };
  assert.deepEqual(resolveEndpoint({ DOCKER_HOST: "unix:///x.sock", ...tlsEnv }), {
    kind: "unix",
    path: "/x.sock",
    source: "DOCKER_HOST",
  });
  assert.equal(resolveEndpoint({ DOCKER_HOST: "ssh://box", ...tlsEnv }).kind, "ssh");
  assert.throws(() => resolveEndpoint({ DOCKER_HOST: "tcp://box:2376", ...tlsEnv }), /no CA to verify/);
});

Deno.test("engineProduct: Podman by its Server header, else Docker", () => {
  assert.equal(engineProduct("Libpod/4.3.1 (linux)"), "Podman");
  assert.equal(engineProduct("libpod/5.0.0 (linux)"), "Podman");
  assert.equal(engineProduct("Docker/20.10.24+dfsg1 (linux)"), "Docker");
  assert.equal(engineProduct(undefined), "Docker");
});
