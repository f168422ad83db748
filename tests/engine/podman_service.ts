/** A Podman service (`podman system service`) of a test's own, with the test image loaded into Podman. */
import { TEST_IMAGE } from "./helpers.ts";

/** Run a command to its end; its stdout. Throws on failure. */
export async function run(cmd: string, args: string[], input?: ReadableStream<Uint8Array>): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: input ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  if (input) await input.pipeTo(child.stdin);
  const r = await child.output();
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  return new TextDecoder().decode(r.stdout);
}

/**
 * A Podman service of the test's own on a socket in `dir`, with the test image loaded into Podman, started
 * with `global` options (e.g. `--runtime`), listening on `socket` (default: one in `dir`).
 */
export async function podmanService(
  dir: string,
  global: string[] = [],
  socket = `${dir}/podman-${global.length}.sock`,
): Promise<{ socket: string; close(): Promise<void> }> {
  // The test image, from the Docker engine into Podman's storage.
  const save = new Deno.Command("docker", { args: ["save", TEST_IMAGE], stdout: "piped", stderr: "null" })
    .spawn();
  await run("podman", ["load"], save.stdout);
  await save.status;
  const service = new Deno.Command("podman", {
    args: [...global, "system", "service", "--time=0", `unix://${socket}`],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log = new Response(service.stderr).text();
  const deadline = Date.now() + 30_000;
  for (;;) {
    const up = await Deno.connect({ transport: "unix", path: socket }).then((c) => {
      c.close();
      return true;
    }, () => false);
    if (up) break;
    if (Date.now() > deadline) throw new Error(`podman system service did not start: ${await log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    socket,
    async close() {
      try {
        service.kill("SIGTERM");
      } catch { /* gone */ }
      await service.status;
      await log;
    },
  };
}
