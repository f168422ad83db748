/**
 * A one-line status on stderr while moat prepares a run. Only on a terminal; `stop()` erases the line, and
 * must be called before anything else is written to stderr or stdout.
 */
import { every } from "../timer.ts";

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

export interface Spinner {
  text(t: string): void;
  stop(): void;
}

export const noSpinner: Spinner = { text() {}, stop() {} };

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
    stop() {
      if (stopped) return;
      stopped = true;
      cancel();
      writeSync(enc.encode("\r\x1b[2K"));
    },
  };
}
