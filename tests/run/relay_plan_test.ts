/** A run's relay container, as planned from the files moat runs from (tables). */
import assert from "node:assert/strict";
import {
  isLoader,
  librariesOf,
  mappedLibraries,
  type MoatRuntime,
  relayCommand,
  relayContainerBody,
} from "../../lib/run/relay_plan.ts";
import { parseRelayArgs } from "../../lib/cli/relay.ts";
import { UsageError } from "../../lib/errors.ts";

const MAPS = `55d0a0000000-55d0a1000000 r--p 00000000 fe:01 123 /usr/lib/node_modules/deno/deno
7f0000000000-7f0000001000 rw-s 00000000 fe:01 200 /root/.cache/deno/dep_analysis_cache_v2-shm
7f0000010000-7f0000020000 r--p 00000000 fe:01 300 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000020000-7f0000030000 r-xp 00010000 fe:01 300 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000040000-7f0000050000 r--p 00000000 fe:01 301 /usr/lib/x86_64-linux-gnu/libgcc_s.so.1
7f0000060000-7f0000070000 rw-p 00000000 00:00 0
7f0000080000-7f0000090000 r--p 00000000 fe:01 302 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
7ffd00030000-7ffd00031000 r-xp 00000000 00:00 0                          [vdso]
`;

const RUNTIME: MoatRuntime = {
  executable: "/usr/lib/node_modules/deno/deno",
  // Named by their file names here (as on Debian, where they are their sonames).
  libraries: librariesOf(mappedLibraries(MAPS), () => undefined),
  code: { source: "/src/moat" },
};

Deno.test("mappedLibraries: each shared object mapped, once, in order; nothing else", () => {
  assert.deepEqual(mappedLibraries(MAPS), [
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1",
    "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
  ]);
  assert.deepEqual(mappedLibraries(""), []);
  for (
    const [path, want] of [
      ["/lib/ld-linux-x86-64.so.2", true],
      ["/lib/ld-linux-aarch64.so.1", true],
      ["/lib/ld-musl-x86_64.so.1", true],
      ["/lib/libc.so.6", false],
      ["/lib/ld.so.conf", false],
    ] as const
  ) assert.equal(isLoader(path), want, path);
});

Deno.test("relayCommand: the loader with the libraries' directory, then Deno and moat's code, or a compiled moat", () => {
  const tail = ["relay", "--socket", "/run/moat/relay.sock", "--port", "53", "--port", "443"];
  const deno = [
    "/opt/moat/lib/ld-linux-x86-64.so.2",
    "--library-path",
    "/opt/moat/lib",
    "/opt/moat/bin/deno",
  ];
  const run = ["run", "-A", "--unstable-net", "--no-config", "--no-lock", "--quiet"];
  assert.deepEqual(relayCommand(RUNTIME, [53, 443]), [...deno, ...run, "/opt/moat/code/main.ts", ...tail]);
  assert.deepEqual(
    relayCommand({ ...RUNTIME, code: { bundle: "/home/me/bin/moat.js" } }, [53, 443]),
    [...deno, ...run, "/opt/moat/code/moat.js", ...tail],
  );
  assert.deepEqual(
    relayCommand({ executable: "/usr/local/bin/moat", libraries: RUNTIME.libraries }, [53, 443]),
    ["/opt/moat/lib/ld-linux-x86-64.so.2", "--library-path", "/opt/moat/lib", "/opt/moat/bin/moat", ...tail],
  );
  assert.deepEqual(relayCommand(RUNTIME, [80], [53]).slice(-4), ["--port", "80", "--udp-port", "53"]);
  assert.deepEqual(relayCommand({ executable: "/static/moat", libraries: [] }, [80]), [
    "/opt/moat/bin/moat",
    "relay",
    "--socket",
    "/run/moat/relay.sock",
    "--port",
    "80",
  ]);
});

Deno.test("the relay container: the run's image and network, a fixed address, host files read only, nothing more", () => {
  const body = relayContainerBody({
    image: "debian:bookworm-slim",
    network: "moat-net-abc",
    address: "10.237.0.2",
    runtime: RUNTIME,
    socketDir: "/home/me/.moat/runs/abc/relay",
    ports: [80],
    user: "1000:1000",
    labels: { "dev.moat.managed": "true" },
  });
  assert.equal(body.Image, "debian:bookworm-slim");
  assert.deepEqual([body.Entrypoint, body.Cmd?.at(-1)], [["/opt/moat/lib/ld-linux-x86-64.so.2"], "80"]);
  assert.equal(body.User, "1000:1000");
  assert.ok(body.Env?.includes("DENO_NO_UPDATE_CHECK=1"), "no question to Docker's resolver");
  assert.deepEqual(body.HostConfig["Dns"], ["10.237.0.2"]);
  assert.deepEqual(body.HostConfig.Binds, [
    "/usr/lib/node_modules/deno/deno:/opt/moat/bin/deno:ro",
    "/usr/lib/x86_64-linux-gnu/libc.so.6:/opt/moat/lib/libc.so.6:ro",
    "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1:/opt/moat/lib/libgcc_s.so.1:ro",
    "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2:/opt/moat/lib/ld-linux-x86-64.so.2:ro",
    "/src/moat:/opt/moat/code:ro",
    "/home/me/.moat/runs/abc/relay:/run/moat",
  ]);
  const h = body.HostConfig;
  assert.deepEqual(
    [h.Runtime, h.NetworkMode, h.CapDrop, h.SecurityOpt, h.ReadonlyRootfs, h.Sysctls],
    [
      "runc",
      "moat-net-abc",
      ["ALL"],
      ["no-new-privileges"],
      true,
      { "net.ipv4.ip_unprivileged_port_start": "0" },
    ],
  );
  assert.equal(h["CapAdd"], undefined, "no capability added");
  assert.deepEqual(body.NetworkingConfig, {
    EndpointsConfig: { "moat-net-abc": { IPAMConfig: { IPv4Address: "10.237.0.2" } } },
  });
  assert.equal(h.AutoRemove, undefined, "a run's relay is removed by moat");
});

Deno.test("a relay made ahead: told when it expires, and removed by the engine when it stops", () => {
  const body = relayContainerBody({
    image: "debian:bookworm-slim",
    network: "moat-net-abc",
    address: "10.237.0.2",
    runtime: RUNTIME,
    socketDir: "/home/me/.moat/standby/abc",
    ports: [80],
    udpPorts: [53],
    user: "1000:1000",
    labels: {},
    expireAt: 1_800_000_000_000,
  });
  assert.deepEqual(body.Cmd?.slice(-6), ["--port", "80", "--udp-port", "53", "--expire-at", "1800000000000"]);
  assert.equal(body.HostConfig.AutoRemove, true);
});

Deno.test("parseRelayArgs: a socket and ports, or a usage error", () => {
  assert.deepEqual(parseRelayArgs(["--socket", "/s", "--port", "80", "--port", "443", "--udp-port", "53"]), {
    help: false,
    socket: "/s",
    ports: [80, 443],
    udpPorts: [53],
  });
  assert.deepEqual(parseRelayArgs(["--socket", "/s", "--udp-port", "53"]).ports, []);
  assert.equal(
    parseRelayArgs(["--socket", "/s", "--port", "80", "--expire-at", "1800000000000"]).expireAt,
    18e11,
  );
  assert.throws(() => parseRelayArgs(["--socket", "/s", "--port", "80", "--expire-at", "soon"]), UsageError);
  for (
    const args of [[], ["--socket", "/s"], ["--port", "80"], ["--socket", "/s", "--port", "0"], [
      "--socket",
      "/s",
      "--port",
      "8o",
    ], ["--socket", "/s", "--port", "80", "extra"]]
  ) {
    assert.throws(() => parseRelayArgs(args), UsageError, JSON.stringify(args));
  }
});
