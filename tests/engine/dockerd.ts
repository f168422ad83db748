/**
 * A second Docker engine of a test's own: `dockerd` with its own data root, exec root (and so its own
 * containerd) and sockets under a directory of the test's, a default bridge of the test's own and no iptables
 * rules (it must not touch the host's networking or the first engine's), gVisor registered as the first
 * engine has it, and the test image loaded. Optionally listening on a loopback TCP port with TLS and
 * client-certificate auth.
 *
 * Not `--bridge none`: a dockerd told that deletes the host's `docker0`, which the first engine uses.
 */
import { docker, TEST_IMAGE } from "./helpers.ts";

export interface SecondEngine {
  /** Its unix socket, for the test's own calls. */
  socket: string;
  /** `tcp://127.0.0.1:PORT` when it listens with TLS. */
  tcp?: string;
  close(): Promise<void>;
}

async function sh(cmd: string, args: string[]): Promise<void> {
  const r = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
}

/** A free TCP port on loopback (closed again: the engine opens it). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Start it in `dir`. `tls` names the CA, certificate and key files (in `dir`) of its TCP endpoint, which
 * then verifies client certificates against that CA (`--tlsverify`), as `dockerd` is told to by Docker's
 * guide to protecting the daemon socket. Its unix socket is `socket` (default: one in `dir`).
 */
export async function startDockerd(
  dir: string,
  tls?: { ca: string; cert: string; key: string },
  socket = `${dir}/engine.sock`,
): Promise<SecondEngine> {
  const runsc = JSON.parse(await docker("info", "--format", "{{json .Runtimes.runsc}}"));
  await Deno.writeTextFile(`${dir}/daemon.json`, JSON.stringify({ runtimes: { runsc } }));
  const port = tls ? freePort() : undefined;
  // Its default bridge: made here, with an address of its own, and deleted again by close().
  const tag = crypto.randomUUID().replaceAll("-", "");
  const bridge = `moatd-${tag.slice(0, 6)}`;
  const subnet = 1 + (parseInt(tag.slice(6, 8), 16) % 250);
  await sh("ip", ["link", "add", "name", bridge, "type", "bridge"]);
  const args = [
    "--config-file",
    `${dir}/daemon.json`,
    "--data-root",
    `${dir}/data`,
    "--exec-root",
    `${dir}/exec`,
    "--pidfile",
    `${dir}/dockerd.pid`,
    "--bridge",
    bridge,
    "--iptables=false",
    "--ip-masq=false",
    "-H",
    `unix://${socket}`,
    ...(tls
      ? [
        "-H",
        `tcp://127.0.0.1:${port}`,
        "--tlsverify",
        "--tlscacert",
        `${dir}/${tls.ca}`,
        "--tlscert",
        `${dir}/${tls.cert}`,
        "--tlskey",
        `${dir}/${tls.key}`,
      ]
      : []),
  ];
  let child: Deno.ChildProcess | undefined;
  let exited = false;
  let output = Promise.resolve("");
  const close = async () => {
    if (child) {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      await output;
    }
    await sh("ip", ["link", "del", bridge]).catch(() => {});
  };
  try {
    await sh("ip", ["addr", "add", `10.238.${subnet}.1/24`, "dev", bridge]);
    const engine = new Deno.Command("dockerd", { args, stdout: "piped", stderr: "piped" }).spawn();
    child = engine;
    engine.status.then(() => exited = true);
    output = Promise.all([new Response(engine.stdout).text(), new Response(engine.stderr).text()]).then(
      ([o, e]) => o + e,
    );
    const deadline = Date.now() + 60_000;
    for (;;) {
      const up = await docker("-H", `unix://${socket}`, "version", "--format", "{{.Server.Version}}").then(
        () => true,
        () => false,
      );
      if (up) break;
      if (exited || Date.now() > deadline) {
        await close(); // its output ends with it
        throw new Error(`dockerd did not start: ${await output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    // The test image, from the first engine.
    const save = new Deno.Command("docker", { args: ["save", TEST_IMAGE], stdout: "piped", stderr: "null" })
      .spawn();
    const load = new Deno.Command("docker", {
      args: ["-H", `unix://${socket}`, "load", "-q"],
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    await save.stdout.pipeTo(load.stdin);
    const [saved, loaded] = await Promise.all([save.status, load.output()]);
    if (!saved.success || !loaded.success) {
      throw new Error(`loading ${TEST_IMAGE}: ${new TextDecoder().decode(loaded.stderr)}`);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { socket, ...(port ? { tcp: `tcp://127.0.0.1:${port}` } : {}), close };
}
