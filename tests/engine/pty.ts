/** moat on a pseudo-terminal driven by tests/engine/pty_helper.py: for the -t tests of moat run and moat exec. */
import assert from "node:assert/strict";
import { moatEnv, ROOT } from "./helpers.ts";

const HELPER = `${ROOT}/tests/engine/pty_helper.py`;
// The size of the helper's terminal when moat starts.
export const ROWS = 37;
export const COLS = 123;
// The engine is often slow under a loaded test run; these tests are about the terminal, not the timeout.
export const ENV = { MOAT_ENGINE_TIMEOUT: "60" };

/** One step of pty_helper.py's script (see its module doc). */
export type Step =
  | { write: string }
  | { resize: [number, number] }
  | { signal: string }
  | { wait: number }
  | { expect: string; timeout?: number }
  | { termios: true };

export interface Done {
  exit: number | null;
  signal: number | null;
  restored: boolean;
  changed: string[];
  output: string;
  timed_out: boolean;
  aborted: string | null;
}

export interface PtyRun {
  steps: Record<string, unknown>[];
  done: Done;
}

/** `moat ARGS` on a fresh pty of ROWS x COLS driven by `script`; fails when any step fails. */
export async function onPty(
  args: string[],
  script: Step[],
  home: string,
  env: Record<string, string> = {},
): Promise<PtyRun> {
  const child = new Deno.Command("python3", {
    args: [
      HELPER,
      "--rows",
      String(ROWS),
      "--cols",
      String(COLS),
      "--timeout",
      "45",
      "--",
      Deno.execPath(),
      "run",
      "-A",
      `${ROOT}/main.ts`,
      ...args,
    ],
    cwd: ROOT,
    env: moatEnv(home, { ...ENV, ...env }),
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(script.map((s) => JSON.stringify(s) + "\n").join("")));
  await w.close();
  const { code, stdout, stderr } = await child.output();
  const text = new TextDecoder().decode(stdout);
  assert.equal(code, 0, `pty_helper.py failed (${code}): ${new TextDecoder().decode(stderr)}\n${text}`);
  const lines = text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const done = lines.pop() as Done;
  assert.equal(
    done.aborted,
    null,
    `${done.aborted}\nsteps: ${JSON.stringify(lines)}\noutput: ${done.output}`,
  );
  assert.equal(done.timed_out, false, `moat did not exit; output: ${done.output}`);
  return { steps: lines, done };
}

/** The report of the helper's `{"termios": true}` step(s). */
export function modes(run: PtyRun): Record<string, unknown>[] {
  return run.steps.filter((s) => "raw" in s);
}

/**
 * What a terminal shows, roughly: escape sequences dropped, and a carriage return inside a line lets what
 * follows overwrite what came before (moat's spinner on stderr shares the terminal with the command).
 */
export function lines(run: PtyRun): string[] {
  // deno-lint-ignore no-control-regex
  const csi = /\x1b\[[0-9;?]*[A-Za-z]/g;
  return run.done.output.split("\n").map((l) => l.replace(csi, "").replace(/\r$/, "").split("\r").pop()!);
}
