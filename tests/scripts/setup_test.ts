/**
 * What the README's quick start relies on: `scripts/setup.sh` is run as it is (no `sudo` in front, which
 * fails at once where there is no sudo, e.g. logged in as root), and when it is not root it re-runs itself
 * through sudo. The script's root check is driven with stand-ins for `id` and `sudo` on a PATH that holds
 * nothing else, so nothing is installed.
 */
import assert from "node:assert/strict";
import { ROOT } from "../engine/helpers.ts";

Deno.test("the README's quick start runs scripts/setup.sh itself, not through sudo", async () => {
  const readme = await Deno.readTextFile(`${ROOT}/README.md`);
  const quickStart = readme.slice(readme.indexOf("## Quick start"));
  const block = /```sh\n([\s\S]*?)```/.exec(quickStart)?.[1] ?? "";
  assert.deepEqual(block.trim().split("\n"), ["scripts/setup.sh"]);
});

/** Run setup.sh as if `id -u` said `uid`, with only `sudo` (when given) besides: what it does first. */
async function setupAs(uid: number, withSudo: boolean) {
  const bin = await Deno.makeTempDir({ prefix: "moat-setup-" });
  try {
    await Deno.writeTextFile(`${bin}/id`, `#!/bin/sh\necho ${uid}\n`, { mode: 0o755 });
    await Deno.symlink("/usr/bin/readlink", `${bin}/readlink`).catch(() =>
      Deno.symlink("/bin/readlink", `${bin}/readlink`)
    );
    if (withSudo) {
      await Deno.writeTextFile(`${bin}/sudo`, '#!/bin/sh\necho "sudo $*"\n', { mode: 0o755 });
    }
    const out = await new Deno.Command("/bin/bash", {
      args: [`${ROOT}/scripts/setup.sh`],
      env: { PATH: bin },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    await Deno.remove(bin, { recursive: true });
  }
}

Deno.test("setup.sh, run as another user, re-runs itself through sudo", async () => {
  const r = await setupAs(1000, true);
  assert.equal(r.code, 0, r.stderr);
  const [said, ran] = r.stdout.trim().split("\n");
  assert.equal(said, "setup: not root; re-running through sudo");
  assert.match(ran ?? "", /^sudo -- env PATH=\S+ .* bash \S+\/scripts\/setup\.sh$/);
});

Deno.test("setup.sh, run as another user where there is no sudo, says it needs root", async () => {
  const r = await setupAs(1000, false);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "setup: must run as root and sudo is not available\n");
});
