import assert from "node:assert/strict";
import { currentOwner, isOwnerAlive, startTicksFromStat } from "../../lib/store/owner.ts";

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
