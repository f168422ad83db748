/** The host terminal behind moat's stdin, for `moat run -t`: the edge the lifecycle's `Terminal` talks to. */
import type { Terminal } from "../run/lifecycle.ts";

/** The size of the terminal moat runs in, from whichever standard stream is one; `undefined` if none. */
function consoleSize(): { rows: number; cols: number } | undefined {
  try {
    const { rows, columns } = Deno.consoleSize();
    return rows > 0 && columns > 0 ? { rows, cols: columns } : undefined;
  } catch {
    return undefined;
  }
}

export function hostTerminal(): Terminal {
  return {
    size: consoleSize,
    async setRaw(on) {
      try {
        Deno.stdin.setRaw(on);
      } catch (err) {
        // Turning raw mode off must never turn an exit path into a failure (the terminal may be gone).
        if (on) throw err;
        return;
      }
      // Deno's raw mode keeps output post-processing, so the host would turn each "\n" of the container's
      // pty into "\r\n" a second time, which breaks programs that move the cursor with "\n". `stty`
      // clears it; turning raw mode off restores the whole saved mode, this flag included. Without
      // `stty` output still works, with an extra carriage return per line.
      if (on) {
        await new Deno.Command("stty", { args: ["-opost"], stdin: "inherit", stdout: "null", stderr: "null" })
          .output().catch(() => {});
      }
    },
    onResize(fn) {
      Deno.addSignalListener("SIGWINCH", fn);
      return () => Deno.removeSignalListener("SIGWINCH", fn);
    },
  };
}
