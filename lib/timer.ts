/**
 * Timeouts for the paths every command takes. Deno 2.9's global `setTimeout`/`setInterval` load its Node
 * layer on first use (12–20 ms, as much as importing a `node:` module: docs/performance.md), while
 * `AbortSignal.timeout` is a timer of Deno's own core and costs well under a millisecond.
 *
 * These timers are unref'd: they never keep the process alive on their own. That is what a deadline on
 * some other pending work (an engine request, a file) wants; a plain sleep with nothing else pending must
 * use `setTimeout`.
 */

/** Call `fn` once after `ms` milliseconds, unless the returned function is called first. */
export function after(ms: number, fn: () => void): () => void {
  const signal = AbortSignal.timeout(Math.max(0, ms));
  const onAbort = () => fn();
  signal.addEventListener("abort", onAbort, { once: true });
  return () => signal.removeEventListener("abort", onAbort);
}

/** Call `fn` every `ms` milliseconds until the returned function is called (a spinner's frames). */
export function every(ms: number, fn: () => void): () => void {
  let stopped = false;
  let cancel = after(ms, function tick() {
    fn();
    if (!stopped) cancel = after(ms, tick);
  });
  return () => {
    stopped = true;
    cancel();
  };
}

/** Resolve after `ms` milliseconds, on the same timer as `after`: for waits while other work is pending. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => void after(ms, resolve));
}
