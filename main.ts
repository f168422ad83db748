/**
 * moat's entry point: argv in, exit code out. The only place that prints errors and calls `Deno.exit`.
 */
import { EXIT, exitCodeOf, formatError, UsageError } from "./lib/errors.ts";

/** Where lib/audit/log.ts leaves `settleAuditLogs` for main.ts (the same symbol there). */
const SETTLE_AUDIT_LOGS = Symbol.for("moat.settleAuditLogs");
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
  exec: () => import("./lib/cli/exec.ts"),
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
  // The checkpoints of the audit logs this process wrote, signed before it exits. lib/audit/log.ts leaves its
  // settle function here once it has a log to settle: a command that wrote none does not load it.
  const settle = (globalThis as { [SETTLE_AUDIT_LOGS]?: () => Promise<string[]> })[SETTLE_AUDIT_LOGS];
  for (const warning of settle ? await settle() : []) Deno.stderr.writeSync(encoder.encode(warning + "\n"));
  Deno.exit(code);
}
