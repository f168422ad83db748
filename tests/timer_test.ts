/** lib/timer.ts: deadlines that do not load Deno's Node layer. */
import assert from "node:assert/strict";
import { after, every } from "../lib/timer.ts";

/** A ref'd sleep: lib/timer.ts's timers are unref'd and would not keep the test's event loop alive alone. */
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

Deno.test("after calls its function once the time has passed, and not when cancelled", async () => {
  const calls: string[] = [];
  after(10, () => calls.push("fired"));
  const cancel = after(10, () => calls.push("cancelled one"));
  cancel();
  await sleep(60);
  assert.deepEqual(calls, ["fired"]);
});

Deno.test("every ticks until stopped, also when stopped from inside a tick", async () => {
  let outside = 0;
  const stopOutside = every(5, () => outside++);
  let inside = 0;
  const stopInside: () => void = every(5, () => {
    inside++;
    if (inside === 3) stopInside();
  });
  await sleep(80);
  stopOutside();
  const seen = outside;
  await sleep(40);
  assert.ok(seen >= 3, `ticked ${seen} times in 80 ms`);
  assert.equal(outside, seen, "no tick after stop");
  assert.equal(inside, 3);
});
