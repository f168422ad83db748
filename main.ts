/**
 * moat's entry point: argv in, exit code out. The only place that prints errors and calls `Deno.exit`.
 */
import { EXIT, exitCodeOf, formatError, UsageError } from "./lib/errors.ts";
import { versionLine } from "./lib/version.ts";

const encoder = new TextEncoder();

type Command = { command(args: string[]): Promise<number> };

/**
 * Command name → its module, loaded only when used. Literal specifiers, so `deno bundle` includes them.
 * `run` is imported in `main` directly (the hot path).
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  list: () => import("./lib/cli/list.ts"),
  ls: () => import("./lib/cli/list.ts"),
  status: () => import("./lib/cli/status.ts"),
  logs: () => import("./lib/cli/logs.ts"),
  wait: () => import("./lib/cli/wait.ts"),
  stop: () => import("./lib/cli/stop.ts"),
  destroy: () => import("./lib/cli/destroy.ts"),
  clean: () => import("./lib/cli/clean.ts"),
  system: () => import("./lib/cli/system.ts"),
  doctor: () => import("./lib/cli/doctor.ts"),
  grant: () => import("./lib/cli/grant.ts"),
  revoke: () => import("./lib/cli/revoke.ts"),
  audit: () => import("./lib/cli/audit.ts"),
  // Internal: moat's relay inside a run's relay container (lib/net/relay.ts); not in the help.
  relay: () => import("./lib/cli/relay.ts"),
  // Internal: moat doctor's host-isolation probe inside its container (lib/doctor/reach.ts); not in the help.
  reach: () => import("./lib/cli/reach.ts"),
  // Internal: makes the next allowlist run's network ahead of it (lib/run/standby.ts); not in the help.
  standby: () => import("./lib/cli/standby.ts"),
};

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
        return EXIT.usage;
      }
      await Deno.stdout.write(encoder.encode(MAIN_HELP));
      return 0;
    }
    case "-V":
    case "--version":
    case "version":
      await Deno.stdout.write(encoder.encode(`${await versionLine()}\n`));
      return 0;
    case "run": {
      const { runCommand } = await import("./lib/cli/run.ts");
      return await runCommand(rest);
    }
    default: {
      // Each command lives in lib/cli/<file>.ts and exports `command(args)`; loaded only when used.
      const load = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
      if (!load) throw new UsageError(`Unknown command "${cmd}"`, "See the commands:  moat --help");
      return await (await load()).command(rest);
    }
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
  // The checkpoints of the audit logs this process wrote (lib/audit/log.ts): signed before it exits.
  const { settleAuditLogs } = await import("./lib/audit/log.ts");
  await settleAuditLogs();
  Deno.exit(code);
}
