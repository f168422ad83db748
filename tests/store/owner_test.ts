import assert from "node:assert/strict";
import { bootId, currentOwner, hasEnded, isOwnerAlive, startTicksFromStat } from "../../lib/store/owner.ts";

Deno.test("startTicksFromStat reads field 22 even when the command name has spaces and parentheses", () => {
  const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
  const stat = `1234 (my (odd) name) ${fields.join(" ")}`;
  assert.equal(startTicksFromStat(stat), 22);
});

Deno.test("this process is a live owner; a different start time, pid or boot is not", () => {
  const me = currentOwner();
  assert.equal(me.pid, Deno.pid);
  assert.ok(me.startTicks > 0);
  assert.equal(isOwnerAlive(me), true);
  assert.equal(isOwnerAlive({ ...me, startTicks: me.startTicks + 1 }), false);
  assert.equal(isOwnerAlive({ ...me, bootId: "another-boot" }), false);
  assert.equal(isOwnerAlive({ ...me, pid: 2 ** 22 + 1 }), false);
});

Deno.test("hasEnded is true for a zombie or dead process, whatever its name", () => {
  const rest = "1 1234 1234 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 4242 0 0";
  const cases: Array<[string, boolean]> = [
    ["R", false],
    ["S", false],
    ["D", false],
    ["T", false],
    ["t", false],
    ["I", false],
    ["Z", true],
    ["X", true],
  ];
  for (const [state, ended] of cases) {
    assert.equal(hasEnded(`1234 (deno) ${state} ${rest}`), ended, state);
    // A name that itself looks like "Z" fields must not fool it.
    assert.equal(hasEnded(`1234 (a) Z (b) ${state} ${rest}`), ended, `odd name, ${state}`);
  }
});

Deno.test("an owner that exited but is not reaped yet (a zombie) is not alive", async () => {
  // A child of the shell that ends only once the shell has become `sleep 5` (by exec), which never reaps it.
  // Had it ended before the exec, the shell could have reaped it (it sometimes did, on a busy machine).
  const child = new Deno.Command("sh", {
    args: ["-c", `sh -c 'until [ "$(cat /proc/$PPID/comm)" = sleep ]; do :; done' & echo $!; exec sleep 5`],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const reader = child.stdout.getReader();
    const { value } = await reader.read();
    reader.releaseLock();
    const pid = Number(new TextDecoder().decode(value).trim());
    let stat = "";
    for (let i = 0; i < 200; i++) {
      stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      if (hasEnded(stat)) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(hasEnded(stat), `pid ${pid} should be a zombie: ${stat}`);
    const owner = { pid, bootId: bootId(), startTicks: startTicksFromStat(stat)! };
    assert.equal(isOwnerAlive(owner), false);
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await child.stdout.cancel().catch(() => {});
  }
});
