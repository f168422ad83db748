/**
 * `loadConfig` on what can sit at `moat.yaml`: files, links, directories, sockets, devices, huge files. A
 * named pipe is tested black-box (tests/cli/run_config_test.ts): reading one would block this process.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../lib/config/load.ts";
import { ConfigError, UsageError } from "../../lib/errors.ts";

async function withWorkspace(fn: (ws: string) => Promise<void>) {
  const ws = await Deno.makeTempDir({ prefix: "moat-load-" });
  try {
    await fn(ws);
  } finally {
    await Deno.remove(ws, { recursive: true });
  }
}

/** The error `loadConfig(ws)` rejects with, checked to be a usage error (exit 2). */
async function usageError(ws: string): Promise<UsageError> {
  const err = await loadConfig(ws).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof UsageError, String(err));
  assert.equal(err.exitCode, 2);
  return err;
}

Deno.test("load: moat.yaml is read, agent.yaml only without it, neither is an empty config", async () => {
  await withWorkspace(async (ws) => {
    assert.deepEqual(await loadConfig(ws), { file: undefined, config: {} });
    await Deno.writeTextFile(`${ws}/agent.yaml`, "name: agent\n");
    assert.deepEqual(await loadConfig(ws), { file: `${ws}/agent.yaml`, config: { name: "agent" } });
    await Deno.writeTextFile(`${ws}/moat.yaml`, "name: moat\n");
    assert.deepEqual(await loadConfig(ws), { file: `${ws}/moat.yaml`, config: { name: "moat" } });
  });
});

Deno.test("load: a link to a config file is followed", async () => {
  await withWorkspace(async (ws) => {
    await Deno.writeTextFile(`${ws}/real.yaml`, "name: linked\n");
    await Deno.symlink("real.yaml", `${ws}/moat.yaml`);
    assert.deepEqual((await loadConfig(ws)).config, { name: "linked" });
  });
});

Deno.test("load: a directory named moat.yaml is refused, with a hint for a directory", async () => {
  await withWorkspace(async (ws) => {
    await Deno.mkdir(`${ws}/moat.yaml`);
    const err = await usageError(ws);
    assert.equal(err.message, `Config ${ws}/moat.yaml is a directory, not a regular file`);
    assert.match(
      err.hint!,
      new RegExp(`Move the directory away: {2}mv ${ws}/moat\\.yaml ${ws}/moat\\.yaml\\.d`),
    );
    assert.doesNotMatch(err.hint!, /permission/);
  });
});

Deno.test("load: a link to nothing is an error naming where it points, not a missing config", async () => {
  await withWorkspace(async (ws) => {
    await Deno.symlink("gone.yaml", `${ws}/moat.yaml`);
    await Deno.writeTextFile(`${ws}/agent.yaml`, "name: not-this\n"); // no fallback to it either
    const err = await usageError(ws);
    assert.equal(
      err.message,
      `Config ${ws}/moat.yaml is a symbolic link to "gone.yaml", which does not exist`,
    );
    assert.equal(err.hint, `Create ${ws}/gone.yaml, or remove the link:  rm ${ws}/moat.yaml`);
  });
});

Deno.test("load: a link through a file is a link to nothing", async () => {
  await withWorkspace(async (ws) => {
    await Deno.writeTextFile(`${ws}/file`, "");
    await Deno.symlink(`${ws}/file/moat.yaml`, `${ws}/moat.yaml`);
    assert.match(
      (await usageError(ws)).message,
      /is a symbolic link to ".*\/file\/moat\.yaml", which does not exist$/,
    );
  });
});

Deno.test("load: a symbolic link loop is an error naming where it points", async () => {
  await withWorkspace(async (ws) => {
    await Deno.symlink("other.yaml", `${ws}/moat.yaml`);
    await Deno.symlink("moat.yaml", `${ws}/other.yaml`);
    const err = await usageError(ws);
    assert.equal(
      err.message,
      `Config ${ws}/moat.yaml is a symbolic link that never reaches a file (a loop): it points to "other.yaml"`,
    );
    assert.match(err.hint!, /ls -l .*moat\.yaml/);
  });
});

Deno.test("load: a link to a character device is refused without reading it", async () => {
  await withWorkspace(async (ws) => {
    // Read, /dev/null would be an empty config (and /dev/zero or a terminal would never end).
    await Deno.symlink("/dev/null", `${ws}/moat.yaml`);
    const err = await usageError(ws);
    assert.equal(
      err.message,
      `Config ${ws}/moat.yaml is a symbolic link to a character device ("/dev/null"), not to a regular file`,
    );
    assert.match(err.hint!, /moat reads its settings only from a regular file\. Move this one away: {2}mv /);
  });
});

Deno.test("load: a socket named moat.yaml is refused", async () => {
  await withWorkspace(async (ws) => {
    const listener = Deno.listen({ transport: "unix", path: `${ws}/moat.yaml` });
    try {
      assert.equal((await usageError(ws)).message, `Config ${ws}/moat.yaml is a socket, not a regular file`);
    } finally {
      listener.close();
    }
  });
});

Deno.test("load: a file far over 1 MiB is refused at the position of the limit", async () => {
  await withWorkspace(async (ws) => {
    // 16 MiB, sparse (all NUL bytes): only the first 1 MiB and one byte are read.
    const f = await Deno.open(`${ws}/moat.yaml`, { write: true, create: true });
    await f.truncate(16 * 2 ** 20);
    f.close();
    const err = await loadConfig(ws).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ConfigError, String(err));
    assert.deepEqual([err.line, err.column], [1, 1024 * 1024 + 1]);
    assert.match(err.message, /: the file is larger than 1 MiB \(1048576 bytes\), the most moat reads/);
  });
});

Deno.test("load: a UTF-16 file is a config error saying how to convert it", async () => {
  await withWorkspace(async (ws) => {
    const units = [0xfeff, ...Array.from("image: x\n", (c) => c.charCodeAt(0))];
    await Deno.writeFile(`${ws}/moat.yaml`, new Uint8Array(units.flatMap((u) => [u & 0xff, u >> 8])));
    const err = await loadConfig(ws).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(
      err.message,
      `${ws}/moat.yaml:1:1: the file is UTF-16LE text (it starts with a byte-order mark), not UTF-8`,
    );
    assert.match(err.hint!, /iconv -f UTF-16 -t UTF-8 /);
  });
});
