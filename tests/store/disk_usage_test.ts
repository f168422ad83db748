import assert from "node:assert/strict";
import { directorySize } from "../../lib/store/disk_usage.ts";

Deno.test("directorySize adds the files under a directory, nested ones too, without following links", async () => {
  const dir = await Deno.makeTempDir({ prefix: "moat-du-" });
  try {
    await Deno.mkdir(`${dir}/a/b`, { recursive: true });
    await Deno.writeFile(`${dir}/one`, new Uint8Array(100));
    await Deno.writeFile(`${dir}/a/two`, new Uint8Array(20));
    await Deno.writeFile(`${dir}/a/b/three`, new Uint8Array(3));
    await Deno.symlink("/etc/passwd", `${dir}/link`);
    assert.equal(await directorySize(dir), 123 + (await Deno.lstat(`${dir}/link`)).size);
    assert.equal(await directorySize(`${dir}/a/b`), 3);
    assert.equal(await directorySize(`${dir}/missing`), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
