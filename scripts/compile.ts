/**
 * `deno task compile`: write dist/moat, a single executable. `deno compile` needs a `denort` runtime for
 * the target; it downloads one unless `DENORT_BIN` names a local file. On a host that can reach neither,
 * this fails with what to do instead.
 */
import { bundle } from "./bundle.ts";

const root = new URL("../", import.meta.url).pathname;
const denort = Deno.env.get("DENORT_BIN");
if (denort) {
  try {
    const st = await Deno.stat(denort);
    if (!st.isFile) throw new Error("not a file");
  } catch {
    console.error(`compile: DENORT_BIN=${denort} does not name a readable file`);
    console.error(
      "  Point it at the denort binary matching this deno version (deno --version), or unset it.",
    );
    Deno.exit(1);
  }
}
await Deno.mkdir(`${root}dist`, { recursive: true });
// The binary is the bundle (the same code as dist/moat.js), stamped as a binary for `moat --version`.
const source = await Deno.makeTempFile({ prefix: "moat-compile-", suffix: ".js" });
try {
  await bundle(source, "binary");
} catch (err) {
  console.error(`compile: ${err instanceof Error ? err.message : err}`);
  Deno.exit(1);
}
// Permissions baked in: moat reads/writes its records and the workspace, connects to the engine socket
// (chosen at run time from DOCKER_HOST, so net is not scoped to one path), and reads the environment.
const { code, stderr } = await new Deno.Command(Deno.execPath(), {
  args: [
    "compile",
    // The relay of a run's network listens on UDP (DNS): Deno.listenDatagram is behind this flag.
    "--unstable-net",
    "--allow-read",
    "--allow-write",
    "--allow-net",
    "--allow-env",
    "--allow-run",
    "-o",
    `${root}dist/moat`,
    source,
  ],
  stderr: "piped",
}).output();
await Deno.remove(source).catch(() => {});
const text = new TextDecoder().decode(stderr);
if (code !== 0) {
  console.error(text);
  if (!denort && /denort|dl\.deno\.land|error sending request/i.test(text)) {
    console.error(
      [
        "compile: no denort runtime is available: deno compile could not download it (this host is offline)",
        "  and DENORT_BIN is not set. Either:",
        "  - build on a connected machine with the same deno version:  deno task compile   and copy dist/moat, or",
        "  - copy that machine's denort (from dl.deno.land/release/v<version>/denort-<target>.zip) here and run",
        "      DENORT_BIN=/path/to/denort deno task compile",
        "  - or ship the bundle instead, which needs no runtime download:  deno task bundle  → dist/moat.js",
      ].join("\n"),
    );
  }
  Deno.exit(1);
}
console.log(`dist/moat written`);
