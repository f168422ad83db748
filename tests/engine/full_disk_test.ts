/**
 * A full disk under MOAT_HOME, on the real engine under gVisor: MOAT_HOME is a small tmpfs that the run's
 * output fills. The terminal still gets every byte, the exit code stays the command's, the record ends final
 * and says its output is incomplete, one line says what happened and how to make room, and no temp file is
 * left. Needs root (mount), as the rest of the real suite needs the engine's socket.
 */
import assert from "node:assert/strict";
import { containersFor, moat, requireEngine, TEST_IMAGE, withScratch } from "./helpers.ts";
import { record, writeRecord } from "../cli/records_fixture.ts";

async function sh(cmd: string, ...args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(stderr)}`);
}

/** Every file under `dir`, relative. */
function filesUnder(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    if (e.isDirectory) out.push(...filesUnder(`${dir}/${e.name}`, `${prefix}${e.name}/`));
    else out.push(prefix + e.name);
  }
  return out;
}

const SIZE = 10_500_000; // bytes of output: more than the 4 MiB MOAT_HOME holds

Deno.test("a full disk under MOAT_HOME: every byte reaches stdout, exit code kept, record final and marked", async () => {
  await requireEngine();
  await withScratch(async ({ ws, home }) => {
    await sh("mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", home);
    try {
      const r = await moat([
        "run",
        "--image",
        TEST_IMAGE,
        ws,
        "--",
        "sh",
        "-c",
        `head -c ${SIZE} /dev/zero | tr '\\0' 'a'; echo done >&2; exit 4`,
      ], { home });
      assert.equal(r.code, 4, r.stderr);
      assert.equal(r.stdout.byteLength, SIZE);
      assert.ok(r.stdout.every((b) => b === 0x61), "stdout is the command's bytes");
      const lines = r.stderr.trimEnd().split("\n");
      assert.deepEqual(lines.slice(0, -2), ["done"], r.stderr);
      // The run's audit log could not be written to its end either: said when moat exits.
      assert.match(
        lines.at(-1)!,
        /^moat: warning: run [0-9a-f]{12}'s audit log could not be written in full: .*No space left on device/,
      );
      assert.match(
        lines.at(-2)!,
        /^moat: warning: run [0-9a-f]{12}'s output could not be written to .*\(No space left on device.*\); the output shown here is complete, moat logs will not be\. Free space \(df -h .*; moat clean removes finished runs\) or set MOAT_HOME to a disk with room$/,
      );
      assert.doesNotMatch(r.stderr, /internal error/);

      const files = filesUnder(`${home}/runs`);
      assert.deepEqual(files.filter((f) => f.endsWith(".tmp")), [], "no temp file is left");
      const recordFile = files.find((f) => f.endsWith("/run.json"))!;
      const record = JSON.parse(Deno.readTextFileSync(`${home}/runs/${recordFile}`));
      assert.equal(record.state, "exited");
      assert.equal(record.exitCode, 4);
      assert.ok(record.finishedAt);
      assert.match(record.outputIncomplete, /^it could not be written: No space left on device/);
      assert.deepEqual(await containersFor(ws), []);

      // `moat logs` shows what was recorded and says it is incomplete.
      const logs = await moat(["logs", record.id], { home });
      assert.equal(logs.code, 0, logs.stderr);
      assert.ok(logs.stdout.byteLength > 0 && logs.stdout.byteLength < SIZE);
      assert.match(
        logs.stderr,
        /^moat: warning: the recorded output of run [0-9a-f]{12} is incomplete: it could not be written: No space left on device/m,
      );
    } finally {
      await sh("umount", home);
    }
  });
});

Deno.test("a MOAT_HOME where the records index cannot be written: moat list still lists every run", async () => {
  await requireEngine();
  await withScratch(async ({ home }) => {
    await sh("mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", home);
    try {
      const ids = ["aaaaaaaaaaa1", "aaaaaaaaaaa2", "aaaaaaaaaaa3"];
      for (const [i, id] of ids.entries()) {
        await writeRecord(home, record({ id, exitCode: i, createdAt: `2026-01-01T00:00:0${i}.000Z` }));
      }
      await sh("mount", "-o", "remount,ro", home);
      const listed = async (args: string[]) => {
        const r = await moat(args, { home });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stderr, "");
        return new TextDecoder().decode(r.stdout);
      };
      const items = JSON.parse(await listed(["list", "--json"])) as Array<
        { id: string; shownExitCode: number }
      >;
      assert.deepEqual(items.map((i) => [i.id, i.shownExitCode]), [[ids[2], 2], [ids[1], 1], [ids[0], 0]]);
      assert.match(await listed(["list"]), new RegExp(`${ids[2]}.*\\n.*${ids[1]}.*\\n.*${ids[0]}`));
      assert.deepEqual([...Deno.readDirSync(home)].map((e) => e.name), ["runs"], "no index was made");
    } finally {
      await sh("umount", home);
    }
  });
});
