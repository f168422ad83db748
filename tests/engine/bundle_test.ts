/** The one-file build: `deno task bundle` works offline and the bundle runs a gVisor-sandboxed command. */
import assert from "node:assert/strict";
import { moat, requireEngine, ROOT, scratch, TEST_IMAGE } from "./helpers.ts";
import { VERSION } from "../../lib/version.ts";

await requireEngine();

Deno.test("the bundled dist/moat.js runs a command under gVisor", async () => {
  const build = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/scripts/bundle.ts`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(build.code, 0, new TextDecoder().decode(build.stderr));
  const built = new TextDecoder().decode(build.stdout);
  const m = /^dist\/moat\.js +(\d+) bytes +sha256 [0-9a-f]{64} +commit ([0-9a-f]{12}(?:\+dirty)?)\n$/.exec(
    built,
  );
  assert.ok(m, built);
  // Importing any `node:` module makes Deno load its Node layer first (15–50 ms at every start): none is
  // imported statically. The policy point's TLS server (lib/net/tls_server.ts) imports node:tls and
  // node:stream when a run's policy first reads TLS, and only then.
  const text = await Deno.readTextFile(`${ROOT}/dist/moat.js`);
  assert.deepEqual(text.match(/(?:from|require\s*\(|import)\s*["'`]node:[\w/]+["'`]/g), null);
  assert.deepEqual(
    [...new Set(text.match(/import\s*\(\s*["'`]node:[\w/]+["'`]/g))].sort(),
    ['import("node:stream"', 'import("node:tls"'],
  );
  const version = await moat(["--version"], {
    home: "/nonexistent",
    entry: `${ROOT}/dist/moat.js`,
    cwd: "/",
  });
  assert.equal(version.out, `moat ${VERSION} (commit ${m[2]}, bundle)\n`);
  const s = await scratch();
  try {
    // Run from a directory without deno.json, so nothing but the bundle itself is used.
    const r = await moat(["run", "--image", TEST_IMAGE, s.ws, "--", "dmesg"], {
      home: s.home,
      entry: `${ROOT}/dist/moat.js`,
      cwd: s.ws,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.out, /Starting gVisor/);
  } finally {
    await s.cleanup();
  }
});
