/**
 * A one-line status on stderr while moat prepares a run. Only on a terminal; `stop()` erases the line, and
 * must be called before anything else is written to stderr or stdout.
 */
import { every } from "../timer.ts";

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

export interface Spinner {
  /** Show `t` from the next frame on (frequent updates, such as a pull's progress). */
  text(t: string): void;
  /**
   * Show `t` now: a new phase of the run. A run can move through its phases faster than a frame, and the
   * line must say what moat is doing when the user decides to interrupt it.
   */
  phase(t: string): void;
  stop(): void;
}

export const noSpinner: Spinner = { text() {}, phase() {}, stop() {} };

export function startSpinner(writeSync: (b: Uint8Array) => void, initial: string): Spinner {
  const enc = new TextEncoder();
  let text = initial;
  let i = 0;
  let stopped = false;
  const draw = () => {
    const cols = 78;
    const line = `${FRAMES[i++ % FRAMES.length]} ${text}`.slice(0, cols);
    writeSync(enc.encode(`\r\x1b[2K${line}`));
  };
  draw();
  const cancel = every(80, draw);
  return {
    text(t: string) {
      text = t;
    },
    phase(t: string) {
      text = t;
      if (!stopped) draw();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      cancel();
      writeSync(enc.encode("\r\x1b[2K"));
    },
  };
}
