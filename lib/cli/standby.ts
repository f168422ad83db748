/**
 * `moat standby --image ID`: make the network of the next allowlist run ahead of it (lib/run/standby.ts).
 * Started by `moat run` as a detached process once an allowlist run has ended (`spawnStandby`), with nobody
 * to report to: it exits 0 whatever happens, and a failure only means the next run makes its own network.
 * Not for people to type; not in `moat --help`.
 */
import { clientFromEnv } from "../docker/client.ts";
import { UsageError } from "../errors.ts";
import { discardStandby, prepareStandby, standbySettings } from "../run/standby.ts";
import type { RunSpec } from "../run/plan.ts";
import { parseWarmSpec } from "../run/warm.ts";
import { moatHome } from "../store/records.ts";
import { parseCommandArgs } from "./args.ts";
import { cliContext } from "./context.ts";

export const STANDBY_HELP = `Usage: moat standby [--image ID [--warm SPEC]] [--release RUN]

moat's background work after a run: make the network and relay of the next allowlist run with
image ID ahead of it (unless MOAT_STANDBY=0), or with --warm the next warm run's sandbox, made as
SPEC (JSON) says; and remove the network and sandbox of run RUN, which has ended. moat run starts
it itself after such a run. Not for people to type.
`;

/** Parse `moat standby` arguments; throws `UsageError`. Pure. */
export function parseStandbyArgs(
  args: string[],
): { help: boolean; image?: string; warm?: RunSpec; release?: string } {
  const { values, positionals } = parseCommandArgs("standby", args, {
    help: { type: "boolean", short: "h" },
    image: { type: "string" },
    warm: { type: "string" },
    release: { type: "string" },
  });
  if (values.help) return { help: true };
  const hint = "moat run starts it itself: see  moat run --help";
  if (positionals.length > 0) {
    throw new UsageError(`Unexpected argument "${positionals[0]}" to moat standby`, hint);
  }
  if (values.release !== undefined && !/^[0-9a-f]{1,64}$/.test(values.release)) {
    throw new UsageError(`moat standby: "${values.release}" is not a run id`, hint);
  }
  if (!values.image && values.release === undefined) {
    throw new UsageError("moat standby needs --image ID or --release RUN", hint);
  }
  if (values.warm !== undefined && !values.image) {
    throw new UsageError("moat standby --warm needs --image ID", hint);
  }
  const warm = values.warm === undefined ? undefined : parseWarmSpec(values.warm);
  if (values.warm !== undefined && !warm) {
    throw new UsageError("moat standby: --warm is not a sandbox's settings", hint);
  }
  return {
    help: false,
    ...(values.image ? { image: values.image } : {}),
    ...(warm ? { warm } : {}),
    ...(values.release !== undefined ? { release: values.release } : {}),
  };
}

export async function command(args: string[]): Promise<number> {
  const opts = parseStandbyArgs(args);
  if (opts.help) {
    await cliContext().out(STANDBY_HELP);
    return 0;
  }
  const env = Deno.env.toObject();
  const client = clientFromEnv(env);
  const home = moatHome(env);
  const settings = standbySettings(env);
  await Promise.all([
    // The run's relay, then its network; what cannot go, moat clean removes with the run.
    opts.release ? discardStandby(client, home, { id: opts.release }) : undefined,
    opts.image && typeof settings !== "string" && settings.enabled
      ? prepareStandby(client, home, opts.image, settings.idleMs, opts.warm).catch(() => {})
      : undefined,
  ]);
  return 0;
}
