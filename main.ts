/**
 * moat's entry point: argv in, exit code out. The only place that prints errors and calls `Deno.exit`.
 */
import { exitCodeOf, formatError, UsageError } from "./lib/errors.ts";
import { VERSION } from "./lib/version.ts";

const encoder = new TextEncoder();

async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  switch (cmd) {
    case undefined:
    case "-h":
    case "--help":
    case "help": {
      const { MAIN_HELP } = await import("./lib/cli/help.ts");
      // Asked for: help on stdout. No command at all is a usage error: help on stderr, exit 2.
      if (cmd === undefined) {
        Deno.stderr.writeSync(encoder.encode(MAIN_HELP));
        return 2;
      }
      await Deno.stdout.write(encoder.encode(MAIN_HELP));
      return 0;
    }
    case "-V":
    case "--version":
    case "version":
      await Deno.stdout.write(encoder.encode(`moat ${VERSION}\n`));
      return 0;
    case "run": {
      const { runCommand } = await import("./lib/cli/run.ts");
      return await runCommand(rest);
    }
    default:
      throw new UsageError(`Unknown command "${cmd}"`, "See the commands:  moat --help");
  }
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (err) {
    Deno.stderr.writeSync(encoder.encode(formatError(err) + "\n"));
    code = exitCodeOf(err);
  }
  Deno.exit(code);
}
