/**
 * `moat relay --socket PATH --port N …`: moat's relay (lib/net/relay.ts), run by moat inside a run's relay
 * container (lib/run/relay_plan.ts). Not for people to type; not in `moat --help`.
 */
import { UsageError } from "../errors.ts";
import { runRelay } from "../net/relay.ts";
import { parseCommandArgs } from "./args.ts";
import { cliContext } from "./context.ts";

export const RELAY_HELP = `Usage: moat relay --socket PATH --port N [--port N ...] [--udp-port N ...]
                  [--expire-at MS]

moat's own helper on a run's network: moat starts it inside the run's relay container, where it
passes each connection made to one of its ports to moat, over the unix socket PATH. A relay made
ahead of its run is given --expire-at (milliseconds since the epoch): then, unless a run serves
PATH, it stops. Not for people to type.
`;

/** Parse `moat relay` arguments; throws `UsageError`. */
export function parseRelayArgs(
  args: string[],
): { help: boolean; socket: string; ports: number[]; udpPorts: number[]; expireAt?: number } {
  const { values, positionals } = parseCommandArgs("relay", args, {
    help: { type: "boolean", short: "h" },
    socket: { type: "string" },
    port: { type: "string", multiple: true },
    "udp-port": { type: "string", multiple: true },
    "expire-at": { type: "string" },
  });
  if (values.help) return { help: true, socket: "", ports: [], udpPorts: [] };
  const hint = "moat starts its relay itself: see  moat run --help";
  if (positionals.length > 0) {
    throw new UsageError(`Unexpected argument "${positionals[0]}" to moat relay`, hint);
  }
  if (!values.socket) throw new UsageError("moat relay needs --socket PATH", hint);
  const port = (p: string) => {
    const n = Number(p);
    if (!/^\d+$/.test(p) || n < 1 || n > 65535) {
      throw new UsageError(`moat relay: "${p}" is not a port`, hint);
    }
    return n;
  };
  const ports = (values.port ?? []).map(port);
  const udpPorts = (values["udp-port"] ?? []).map(port);
  if (ports.length + udpPorts.length === 0) {
    throw new UsageError("moat relay needs at least one --port N or --udp-port N", hint);
  }
  const expireAt = values["expire-at"];
  if (expireAt !== undefined && !/^\d+$/.test(expireAt)) {
    throw new UsageError(
      `moat relay: --expire-at takes milliseconds since the epoch, not "${expireAt}"`,
      hint,
    );
  }
  return {
    help: false,
    socket: values.socket,
    ports,
    udpPorts,
    ...(expireAt !== undefined ? { expireAt: Number(expireAt) } : {}),
  };
}

export async function command(args: string[]): Promise<number> {
  const opts = parseRelayArgs(args);
  if (opts.help) {
    await cliContext().out(RELAY_HELP);
    return 0;
  }
  await runRelay({
    socket: opts.socket,
    ports: opts.ports,
    udpPorts: opts.udpPorts,
    ...(opts.expireAt !== undefined ? { expireAt: opts.expireAt } : {}),
  });
  return 0;
}
