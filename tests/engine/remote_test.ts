/**
 * Engines reached other than by the local socket, on real engines under gVisor: TCP with TLS and client
 * certificates (a second dockerd of the test's own listening on loopback with `--tlsverify`, with
 * certificates the test makes with openssl), and ssh:// through the system ssh to an sshd of the test's own
 * on loopback, running `docker system dial-stdio` there. Each way a connection can fail gets its own message and exit 125.
 */
import assert from "node:assert/strict";
import * as net from "node:net";
import { type SecondEngine, startDockerd } from "./dockerd.ts";
import {
  GVISOR_PROVEN,
  moat,
  moatEnv,
  PROVE_GVISOR,
  requireEngine,
  ROOT,
  runScript,
  TEST_IMAGE,
  withScratch,
} from "./helpers.ts";

/**
 * A docker config directory under `dir` with context `name` naming `host` (and its TLS files, copied from
 * `tlsFrom` when given), made current: what `docker context create` and `docker context use` leave.
 */
async function contextConfig(dir: string, name: string, host: string, tlsFrom?: string): Promise<string> {
  const config = `${dir}/docker-config-${name}`;
  const id = "c0ffee" + name.replace(/[^a-z0-9]/g, ""); // any directory name: moat matches the Name inside
  await Deno.mkdir(`${config}/contexts/meta/${id}`, { recursive: true });
  await Deno.writeTextFile(
    `${config}/contexts/meta/${id}/meta.json`,
    JSON.stringify({ Name: name, Metadata: {}, Endpoints: { docker: { Host: host, SkipTLSVerify: false } } }),
  );
  if (tlsFrom) {
    await Deno.mkdir(`${config}/contexts/tls/${id}/docker`, { recursive: true });
    for (const f of ["ca.pem", "cert.pem", "key.pem"]) {
      await Deno.copyFile(`${tlsFrom}/${f}`, `${config}/contexts/tls/${id}/docker/${f}`);
    }
  }
  await Deno.writeTextFile(`${config}/config.json`, JSON.stringify({ currentContext: name }));
  return config;
}

async function sh(cmd: string, args: string[], cwd: string): Promise<void> {
  const r = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
}

/** A key and a certificate `name` signed by CA `ca` (or self-signed when `ca` is absent) in `dir`. */
async function cert(
  dir: string,
  name: string,
  opts: { ca?: string; ip?: boolean; days?: number; isCa?: boolean } = {},
): Promise<void> {
  const key = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    `${name}-key.pem`,
  ];
  if (!opts.ca) {
    await sh(
      "openssl",
      ["req", "-x509", ...key, "-out", `${name}.pem`, "-days", "1", "-subj", `/CN=${name}`],
      dir,
    );
    return;
  }
  await sh("openssl", ["req", ...key, "-out", `${name}.csr`, "-subj", `/CN=${name}`], dir);
  await Deno.writeTextFile(
    `${dir}/${name}.ext`,
    opts.ip ? "subjectAltName=IP:127.0.0.1,DNS:localhost\n" : "extendedKeyUsage=clientAuth\n",
  );
  await sh("openssl", [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${opts.ca}.pem`,
    "-CAkey",
    `${opts.ca}-key.pem`,
    "-CAcreateserial",
    "-out",
    `${name}.pem`,
    "-days",
    String(opts.days ?? 1),
    "-extfile",
    `${name}.ext`,
  ], dir);
}

/** A DOCKER_CERT_PATH directory of `files` (name there → file in `from`). */
async function certPath(from: string, to: string, files: Record<string, string>): Promise<string> {
  await Deno.mkdir(to, { recursive: true });
  for (const [name, src] of Object.entries(files)) await Deno.copyFile(`${from}/${src}`, `${to}/${name}`);
  return to;
}

Deno.test("DOCKER_HOST=tcp:// with TLS and a client certificate: a gVisor run through it; each refusal said", async () => {
  await requireEngine();
  await withScratch(async (s) => {
    const dir = await Deno.makeTempDir({ prefix: "moat-tls-" });
    let engine: SecondEngine | undefined;
    try {
      await cert(dir, "ca");
      await cert(dir, "other-ca");
      await cert(dir, "server", { ca: "ca", ip: true });
      await cert(dir, "client", { ca: "ca" });
      await cert(dir, "stranger", { ca: "other-ca" });
      await cert(dir, "expired", { ca: "ca", days: 0 });
      engine = await startDockerd(dir, { ca: "ca.pem", cert: "server.pem", key: "server-key.pem" });
      const host = engine.tcp!;
      const env = (certs: string) => ({ DOCKER_HOST: host, DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: certs });
      const good = await certPath(dir, `${dir}/good`, {
        "ca.pem": "ca.pem",
        "cert.pem": "client.pem",
        "key.pem": "client-key.pem",
      });
      const args = ["run", "--network", "none", "--image", TEST_IMAGE, s.ws, "--", "sh", "-c"];

      const r = await moat(runScript(s.ws, PROVE_GVISOR), {
        home: s.home,
        env: env(good),
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.out, GVISOR_PROVEN, "ran under gVisor, through TLS");
      const status = await moat(["status", "--json"], { home: s.home, env: env(good) });
      const report = JSON.parse(status.out);
      assert.equal(report.engine.endpoint, host);
      assert.equal(report.engine.source, "DOCKER_HOST");
      assert.equal(report.engine.reachable, true);

      // The same engine as the current Docker context, with the context's own TLS files.
      const config = await contextConfig(dir, "tls-box", host, good);
      const viaContext = await moat([...args, "uname -r"], { home: s.home, env: { DOCKER_CONFIG: config } });
      assert.equal(viaContext.code, 0, viaContext.stderr);
      assert.equal(viaContext.out, "4.4.0\n");
      const ctxStatus = JSON.parse(
        (await moat(["status", "--json"], { home: s.home, env: { DOCKER_CONFIG: config } })).out,
      );
      assert.deepEqual([ctxStatus.engine.endpoint, ctxStatus.engine.source, ctxStatus.engine.context], [
        host,
        "context",
        "tls-box",
      ]);

      // The engine's certificate from a CA the client does not know.
      const wrongCa = await certPath(dir, `${dir}/wrong-ca`, {
        "ca.pem": "other-ca.pem",
        "cert.pem": "client.pem",
        "key.pem": "client-key.pem",
      });
      const notTrusted = await moat([...args, "true"], { home: s.home, env: env(wrongCa) });
      assert.equal(notTrusted.code, 125, notTrusted.stderr);
      assert.match(notTrusted.stderr, /its TLS certificate is not one .*wrong-ca\/ca\.pem vouches for/);
      // No client certificate, one of another CA, an expired one: the engine refuses each.
      await new Promise((r) => setTimeout(r, 1100)); // `expired` is valid for the second it was made in
      const cases: Array<[string, Record<string, string>, RegExp]> = [
        [
          "no-cert",
          { "ca.pem": "ca.pem" },
          /wants a client certificate it trusts, and there is no cert\.pem/,
        ],
        [
          "stranger",
          { "ca.pem": "ca.pem", "cert.pem": "stranger.pem", "key.pem": "stranger-key.pem" },
          /stranger\/cert\.pem is not one/,
        ],
        [
          "expired",
          { "ca.pem": "ca.pem", "cert.pem": "expired.pem", "key.pem": "expired-key.pem" },
          /expired\/cert\.pem is not one \(or it has expired\)/,
        ],
      ];
      for (const [name, files, message] of cases) {
        const certs = await certPath(dir, `${dir}/${name}`, files);
        const refused = await moat([...args, "true"], { home: s.home, env: env(certs) });
        assert.equal(refused.code, 125, `${name}: ${refused.stderr}`);
        assert.match(refused.stderr, message, `${name}: ${refused.stderr}`);
        assert.match(
          refused.stderr,
          new RegExp(`Docker engine at ${host.replaceAll(".", "\\.")} could not be reached`),
          name,
        );
      }
    } finally {
      await engine?.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
});

/**
 * An sshd of the test's own on loopback (with `sshdConfig` lines added to its config), taking a key it makes
 * for root; `ssh` in `bin` uses it with its own config and writes down each start (`calls`).
 */
async function sshEngine(
  dir: string,
  sshdConfig: string[] = [],
): Promise<{ port: number; bin: string; calls(): string[]; close(): Promise<void> }> {
  await sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", `${dir}/host_key`], dir);
  await sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", `${dir}/user_key`], dir);
  await Deno.copyFile(`${dir}/user_key.pub`, `${dir}/authorized_keys`);
  await Deno.mkdir("/run/sshd", { recursive: true });
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (probe.address() as net.AddressInfo).port;
      probe.close(() => resolve(p));
    });
  });
  await Deno.writeTextFile(
    `${dir}/sshd_config`,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${dir}/host_key`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      ...sshdConfig,
      `PidFile ${dir}/sshd.pid`,
      "",
    ].join("\n"),
  );
  const sshd = new Deno.Command("/usr/sbin/sshd", {
    args: ["-D", "-e", "-f", `${dir}/sshd_config`],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log = new Response(sshd.stderr).text();
  // The client's own config, through an `ssh` first on PATH (ssh reads ~ from the passwd entry, not HOME).
  await Deno.writeTextFile(
    `${dir}/ssh_config`,
    [
      "Host 127.0.0.1",
      `  IdentityFile ${dir}/user_key`,
      "  IdentitiesOnly yes",
      "  StrictHostKeyChecking no",
      `  UserKnownHostsFile ${dir}/known_hosts`,
      "  LogLevel ERROR",
      "",
    ].join("\n"),
  );
  const bin = `${dir}/bin`;
  await Deno.mkdir(bin);
  // Each ssh moat starts is written down, one line each, to count them.
  await Deno.writeTextFile(
    `${bin}/ssh`,
    `#!/bin/sh\necho "$*" >> '${dir}/ssh-calls'\nexec /usr/bin/ssh -F '${dir}/ssh_config' "$@"\n`,
    { mode: 0o755 },
  );
  // Ready once it accepts a connection.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ok = await Deno.connect({ hostname: "127.0.0.1", port }).then((c) => {
      c.close();
      return true;
    }, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`sshd did not start: ${await log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    bin,
    calls: () => {
      try {
        return Deno.readTextFileSync(`${dir}/ssh-calls`).split("\n").filter(Boolean);
      } catch {
        return [];
      }
    },
    async close() {
      try {
        sshd.kill("SIGTERM");
      } catch { /* gone */ }
      await sshd.status;
      await log;
    },
  };
}

Deno.test("DOCKER_HOST=ssh:// through an sshd on loopback: a gVisor run; the allow list refused; ssh failures said", async () => {
  await requireEngine();
  await withScratch(async (s) => {
    const dir = await Deno.makeTempDir({ prefix: "moat-ssh-" });
    let engine: Awaited<ReturnType<typeof sshEngine>> | undefined;
    try {
      engine = await sshEngine(dir);
      const path = `${engine.bin}:${Deno.env.get("PATH")}`;
      const host = `ssh://root@127.0.0.1:${engine.port}`;
      const run = (dockerHost: string, extra: string[], command: string[]) =>
        moat(["run", ...extra, "--image", TEST_IMAGE, s.ws, "--", ...command], {
          home: s.home,
          env: { DOCKER_HOST: dockerHost, PATH: path },
        });

      const r = await run(host, ["--network", "none"], ["sh", "-c", PROVE_GVISOR]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.out, GVISOR_PROVEN, "ran under gVisor, through ssh");
      assert.match(
        r.stderr,
        new RegExp(`^moat: the engine at ${host} is on another host: the workspace`, "m"),
      );

      // The requests shared one ssh connection, whose socket and the engine's forwarded one are in MOAT_HOME.
      const shared = [...Deno.readDirSync(`${s.home}/ssh`)].map((e) => e.name);
      assert.equal(shared.length, 2, `${shared}`);
      assert.equal(
        shared.filter((n) => /^[0-9a-f]{40}$/.test(n)).length,
        1,
        `ssh's control socket: ${shared}`,
      );
      assert.equal(
        shared.filter((n) => /^engine-[0-9a-f]{20}\.sock$/.test(n)).length,
        1,
        `the forwarded engine socket: ${shared}`,
      );
      assert.equal(Deno.statSync(`${s.home}/ssh`).mode! & 0o777, 0o700);
      const before = engine.calls().length;
      assert.ok(before <= 2, `the first run started ${before} ssh processes: ${engine.calls().join("; ")}`);
      // The next command reuses them: not one ssh more.
      const again = await run(host, ["--network", "none"], ["uname", "-r"]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.out, "4.4.0\n");
      assert.equal(engine.calls().length, before, "the second run started ssh");
      // MOAT_SSH_SHARE=0: an ssh connection per request, each running docker system dial-stdio there.
      const own = await moat(["run", "--network", "none", "--image", TEST_IMAGE, s.ws, "--", "true"], {
        home: s.home,
        env: { DOCKER_HOST: host, PATH: path, MOAT_SSH_SHARE: "0" },
      });
      assert.equal(own.code, 0, own.stderr);
      const unshared = engine.calls().slice(before);
      assert.ok(unshared.length >= 5, `only ${unshared.length} ssh processes without sharing`);
      for (const c of unshared) {
        assert.match(c, /docker system dial-stdio$/);
        assert.doesNotMatch(c, /ControlPath/);
      }

      // The same through a Docker context named by DOCKER_CONTEXT.
      const config = await contextConfig(dir, "ssh-box", host);
      const viaContext = await moat([
        "run",
        "--network",
        "none",
        "--image",
        TEST_IMAGE,
        s.ws,
        "--",
        "uname",
        "-r",
      ], {
        home: s.home,
        env: { DOCKER_CONFIG: config, DOCKER_CONTEXT: "ssh-box", PATH: path },
      });
      assert.equal(viaContext.code, 0, viaContext.stderr);
      assert.equal(viaContext.out, "4.4.0\n");

      // The workspace was checked on the far side with a marker, which is gone again.
      assert.deepEqual([...Deno.readDirSync(s.ws)].filter((e) => e.name.startsWith(".moat-")), []);

      // A workspace path that is another directory there: moat, in a mount namespace of its own, sees another
      // directory at that path than the engine does. Refused before anything is made.
      const recorded = [...Deno.readDirSync(`${s.home}/runs`)].length;
      const other = await Deno.makeTempDir({ prefix: "moat-other-" });
      try {
        const script =
          `mount --bind '${other}' '${s.ws}' && exec '${Deno.execPath()}' run -A '${ROOT}/main.ts' ` +
          `run --network none --image ${TEST_IMAGE} '${s.ws}' -- true`;
        const elsewhere = await new Deno.Command("unshare", {
          args: ["-m", "--propagation", "private", "sh", "-c", script],
          env: moatEnv(s.home, { DOCKER_HOST: host, PATH: path }),
          clearEnv: true,
          stdout: "piped",
          stderr: "piped",
        }).output();
        const said = new TextDecoder().decode(elsewhere.stderr);
        assert.equal(elsewhere.code, 125, said);
        assert.match(
          said,
          new RegExp(`${s.ws} is another directory there: the engine at ${host} runs on another host`),
        );
        assert.deepEqual([...Deno.readDirSync(other)], [], "the marker is removed");
        const runs = [...Deno.readDirSync(`${s.home}/runs`)].length;
        assert.equal(runs, recorded, "nothing recorded for the refused run");
      } finally {
        await Deno.remove(other, { recursive: true });
      }

      // The allow list's relay needs this host's socket directory: refused before anything is made.
      const allow = await run(host, ["--allow", "example.com"], ["true"]);
      assert.equal(allow.code, 2, allow.stderr);
      assert.match(
        allow.stderr,
        /The allow-list network needs an engine on this host, and ssh:\/\/.* is on another/,
      );

      // Nothing listens on the port: ssh's own words.
      const closed = await run(`ssh://root@127.0.0.1:1`, ["--network", "none"], ["true"]);
      assert.equal(closed.code, 125, closed.stderr);
      assert.match(closed.stderr, /could not be reached: ssh: .*(refused|Connection)/i);
      // No engine behind the far side's docker: the docker CLI's words there.
      const noEngine = await run(`${host}/nonexistent/docker.sock`, ["--network", "none"], ["true"]);
      assert.equal(noEngine.code, 125, noEngine.stderr);
      assert.match(noEngine.stderr, /could not be reached: .*nonexistent\/docker\.sock/);
    } finally {
      await closeShared(s.home); // it would hold sshd's log open as long
      await engine?.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
});

/** Close the shared ssh connections moat left in `home` (they would outlive the test by their idle time). */
async function closeShared(home: string): Promise<void> {
  let names: string[] = [];
  try {
    names = [...Deno.readDirSync(`${home}/ssh`)].map((e) => e.name);
  } catch { /* none */ }
  for (const name of names.filter((n) => !n.startsWith("engine-"))) {
    await new Deno.Command("/usr/bin/ssh", {
      args: ["-S", `${home}/ssh/${name}`, "-O", "exit", "moat-test"],
      stdout: "null",
      stderr: "null",
    }).output();
  }
}

Deno.test("ssh:// to an sshd that does not forward unix sockets: dial-stdio sessions on the shared connection", async () => {
  await requireEngine();
  await withScratch(async (s) => {
    const dir = await Deno.makeTempDir({ prefix: "moat-ssh-" });
    let engine: Awaited<ReturnType<typeof sshEngine>> | undefined;
    try {
      engine = await sshEngine(dir, ["AllowStreamLocalForwarding no"]);
      const env = {
        DOCKER_HOST: `ssh://root@127.0.0.1:${engine.port}`,
        PATH: `${engine.bin}:${Deno.env.get("PATH")}`,
      };
      const r = await moat(["run", "--network", "none", "--image", TEST_IMAGE, s.ws, "--", "uname", "-r"], {
        home: s.home,
        env,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.out, "4.4.0\n");
      const calls = engine.calls();
      const dials = calls.filter((c) => c.endsWith("docker system dial-stdio"));
      assert.ok(dials.length >= 5, `${calls.join("; ")}`);
      for (const c of dials) assert.match(c, /ControlPath=/, "on the shared connection");
      // The shared connection is there; the forwarded socket is not used (nothing answers on it).
      assert.ok([...Deno.readDirSync(`${s.home}/ssh`)].some((e) => /^[0-9a-f]{40}$/.test(e.name)));
    } finally {
      await closeShared(s.home);
      await engine?.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
});
