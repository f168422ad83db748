/** Where a command's output goes on moat's side: its stdout and stderr (moat run, moat exec). */
import type { Sink } from "../run/output.ts";

export function fdSink(file: { write(p: Uint8Array): Promise<number> }): Sink {
  return {
    async write(bytes) {
      let off = 0;
      while (off < bytes.byteLength) off += await file.write(bytes.subarray(off));
    },
  };
}

/**
 * Where the command's stdout or stderr goes. A file or `/dev/null` takes synchronous writes: they never
 * wait on a reader, and skip the thread-pool hop an asynchronous write costs (half of moat's CPU when
 * streaming, docs/performance.md). A pipe or terminal gets asynchronous writes, so that while its reader
 * is slow (a paused `less`) moat still handles an interrupt.
 */
export function outputSink(fd: 1 | 2, file: typeof Deno.stdout | typeof Deno.stderr): Sink {
  let neverWaits = false;
  try {
    const st = Deno.statSync(`/proc/self/fd/${fd}`);
    neverWaits = !file.isTerminal() && (st.isFile || st.isCharDevice === true);
  } catch {
    // No /proc: asynchronous writes are right everywhere.
  }
  if (!neverWaits) return fdSink(file);
  return {
    write(bytes) {
      let off = 0;
      while (off < bytes.byteLength) off += file.writeSync(bytes.subarray(off));
      return Promise.resolve();
    },
  };
}
