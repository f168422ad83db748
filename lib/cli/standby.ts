/**
 * `moat standby --image ID`: make the network of the next allowlist run ahead of it (lib/run/standby.ts).
 * Started by `moat run` as a detached process once an allowlist run has ended (`spawnStandby`), with nobody
 * to report to: it exits 0 whatever happens, and a failure only means the next run makes its own network.
 * Not for people to type; not in `moat --help`.
 */
import { clientFromEnv } from "../docker/client.ts";
import { UsageError } from "../errors.ts";
import { prepareStandby, standbySettings } from "../run/standby.ts";
import { moatHome } from "../store/records.ts";
import { parseCommandArgs } from "./args.ts";
import { cliContext } from "./context.ts";

export const STANDBY_HELP = `Usage: moat standby --image ID

Make the network and relay of moat's next allowlist run with image ID ahead of it. moat run
starts it itself, in the background, after such a run; MOAT_STANDBY=0 turns that off. Not for
people to type.
`;

/** Parse `moat standby` arguments; throws `UsageError`. Pure. */
export function parseStandbyArgs(args: string[]): { help: boolean; image: string } {
  const { values, positionals } = parseCommandArgs("standby", args, {
    help: { type: "boolean", short: "h" },
    image: { type: "string" },
  });
  if (values.help) return { help: true, image: "" };
  const hint = "moat run starts it itself: see  moat run --help";
  if (positionals.length > 0) {
    throw new UsageError(`Unexpected argument "${positionals[0]}" to moat standby`, hint);
  }
  if (!values.image) throw new UsageError("moat standby needs --image ID", hint);
  return { help: false, image: values.image };
}

export async function command(args: string[]): Promise<number> {
  const opts = parseStandbyArgs(args);
  if (opts.help) {
    await cliContext().out(STANDBY_HELP);
    return 0;
  }
  const env = Deno.env.toObject();
  const settings = standbySettings(env);
  if (typeof settings === "string" || !settings.enabled) return 0;
  try {
    await prepareStandby(clientFromEnv(env), moatHome(env), opts.image, settings.idleMs);
  } catch { /* the next run makes its own network */ }
  return 0;
}
