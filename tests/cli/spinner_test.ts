/** The status line while a run is prepared: which updates show at once. */
import assert from "node:assert/strict";
import { startSpinner } from "../../lib/cli/spinner.ts";

Deno.test("spinner: a new phase is drawn at once, progress text at the next frame, nothing after stop", () => {
  const writes: string[] = [];
  const spinner = startSpinner((b) => void writes.push(new TextDecoder().decode(b)), "Preparing sandbox…");
  try {
    assert.deepEqual(writes, ["\r\x1b[2K⠋ Preparing sandbox…"]);
    spinner.text("Pulling x: 1/4");
    assert.equal(writes.length, 1, "progress waits for the next frame");
    // A run can be starting its container before the next frame: the line must say so now.
    spinner.phase("Starting container…");
    assert.deepEqual(writes.slice(1), ["\r\x1b[2K⠙ Starting container…"]);
  } finally {
    spinner.stop();
  }
  assert.equal(writes.at(-1), "\r\x1b[2K");
  spinner.phase("Checking gVisor…");
  assert.equal(writes.at(-1), "\r\x1b[2K", "a stopped spinner stays erased");
});
