/**
 * `moat reach --timeout-ms N HOST:PORT…`: the doctor's host-isolation probe (lib/doctor/reach.ts), run by
 * `moat doctor` inside a container under gVisor on a run-style network. Not for people to type; not in
 * `moat --help`. It connects to its own loopback first (proof that it can connect at all), prints
 * `REACH_READY`, tries every target at once, prints one line each, then `REACH_DONE`.
 */
import { UsageError } from "../errors.ts";
import {
  attemptLine,
  type AttemptResult,
  classifyConnectError,
  REACH_DONE,
  REACH_READY,
} from "../doctor/reach.ts";
import { parseCommandArgs } from "./args.ts";

export const REACH_HELP = `Usage: moat reach --timeout-ms N HOST:PORT [HOST:PORT ...]

moat doctor's probe: moat starts it in a container on a run-style network and reads which of
the host's addresses it could connect to. Not for people to type.
`;

/** Parse `moat reach` arguments; throws `UsageError`. Pure. */
export function parseReachArgs(
  args: string[],
): { help: boolean; timeoutMs: number; targets: { host: string; port: number; text: string }[] } {
  const { values, positionals } = parseCommandArgs("reach", args, {
    help: { type: "boolean", short: "h" },
    "timeout-ms": { type: "string" },
  });
  if (values.help) return { help: true, timeoutMs: 0, targets: [] };
  const hint = "moat doctor starts it itself:  moat doctor";
  const timeoutMs = Number(values["timeout-ms"] ?? "");
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    throw new UsageError("moat reach needs --timeout-ms N (milliseconds, > 0)", hint);
  }
  if (positionals.length === 0) throw new UsageError("moat reach needs at least one HOST:PORT", hint);
  const targets = positionals.map((text) => {
    const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text);
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65535) throw new UsageError(`moat reach: "${text}" is not IPv4:PORT`, hint);
    return { host: m[1]!, port, text };
  });
  return { help: false, timeoutMs, targets };
}

async function attempt(host: string, port: number, timeoutMs: number): Promise<AttemptResult> {
  try {
    const conn = await Deno.connect({ hostname: host, port, signal: AbortSignal.timeout(timeoutMs) });
    conn.close();
    return { kind: "reached" };
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    return classifyConnectError(e.name, e.message);
  }
}

/** Connect to a listener of our own on loopback: the probe can connect at all. Throws when it cannot. */
async function control(): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const accepted = listener.accept();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    (await accepted).close();
    conn.close();
  } finally {
    listener.close();
  }
}

export async function command(args: string[]): Promise<number> {
  const opts = parseReachArgs(args);
  const out = (line: string) => Deno.stdout.write(new TextEncoder().encode(line + "\n"));
  if (opts.help) {
    await Deno.stdout.write(new TextEncoder().encode(REACH_HELP));
    return 0;
  }
  await control();
  await out(REACH_READY);
  const results = await Promise.all(opts.targets.map((t) => attempt(t.host, t.port, opts.timeoutMs)));
  for (const [i, t] of opts.targets.entries()) await out(attemptLine(t.text, results[i]!));
  await out(REACH_DONE);
  return 0;
}
