/**
 * Finding the engine when the default socket is absent, on real engines: moat, in a mount namespace of its
 * own where `/run` (and so `/var/run/docker.sock`) is an empty tmpfs, finds rootless Docker's socket
 * (`$XDG_RUNTIME_DIR/docker.sock`; here a second dockerd of the test's own listens there) and else Podman's
 * (`$XDG_RUNTIME_DIR/podman/podman.sock`), runs under gVisor through it, and says which it found and why.
 */
import assert from "node:assert/strict";
import { type SecondEngine, startDockerd } from "./dockerd.ts";
import {
  GVISOR_PROVEN,
  moatEnv,
  PROVE_GVISOR,
  requireEngine,
  ROOT,
  runScript,
  withScratch,
} from "./helpers.ts";
import { podmanService } from "./podman_service.ts";

/** `moat ARGS` with `/run` hidden behind an empty tmpfs and `XDG_RUNTIME_DIR=xdg`. */
async function moatWithoutDefaultSocket(
  home: string,
  xdg: string,
  args: string[],
): Promise<{ code: number; out: string; err: string }> {
  const script = `mount -t tmpfs moat-test /run && exec '${Deno.execPath()}' run -A '${ROOT}/main.ts' "$@"`;
  const r = await new Deno.Command("unshare", {
    args: ["-m", "--propagation", "private", "sh", "-c", script, "moat", ...args],
    env: moatEnv(home, { XDG_RUNTIME_DIR: xdg }),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

Deno.test("no default socket: moat finds rootless Docker's socket, then Podman's, and says so", async () => {
  await requireEngine();
  await withScratch(async (s) => {
    const dir = await Deno.makeTempDir({ prefix: "moat-found-" });
    const xdg = `${dir}/xdg`;
    await Deno.mkdir(`${xdg}/podman`, { recursive: true });
    let engine: SecondEngine | undefined;
    let podman: Awaited<ReturnType<typeof podmanService>> | undefined;
    try {
      // Podman's socket alone: found, said, and it is Podman.
      podman = await podmanService(dir, [], `${xdg}/podman/podman.sock`);
      const viaPodman = await moatWithoutDefaultSocket(s.home, xdg, ["status", "--json"]);
      assert.equal(viaPodman.code, 0, viaPodman.err);
      const p = JSON.parse(viaPodman.out).engine;
      assert.deepEqual([p.endpoint, p.source, p.product], [
        `unix://${xdg}/podman/podman.sock`,
        "podman",
        "Podman",
      ]);

      // Rootless Docker's socket comes first: a run under gVisor through it.
      engine = await startDockerd(dir, undefined, `${xdg}/docker.sock`);
      const status = await moatWithoutDefaultSocket(s.home, xdg, ["status"]);
      assert.match(
        status.out,
        new RegExp(`^Engine: +unix://${xdg}/docker\\.sock \\(rootless Docker's socket`, "m"),
      );
      const r = await moatWithoutDefaultSocket(s.home, xdg, runScript(s.ws, PROVE_GVISOR));
      assert.equal(r.code, 0, r.err);
      assert.equal(r.out, GVISOR_PROVEN);
      const doctor = await moatWithoutDefaultSocket(s.home, xdg, ["doctor", "--json"]);
      const engineCheck = JSON.parse(doctor.out).checks.find((c: { name: string }) => c.name === "engine");
      assert.match(engineCheck.detail, /rootless Docker's socket: the default socket is absent/);
    } finally {
      await engine?.close();
      await podman?.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
});
