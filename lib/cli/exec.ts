/**
 * `moat exec RUN -- COMMAND`: run a command in a run that is still running (one started with `moat run -d`),
 * with moat run's streams, terminal, exit codes and interrupts (lib/run/exec.ts). Each command is written to
 * the run's `execs.jsonl` and its audit log.
 */
import { clientFromEnv } from "../docker/client.ts";
import { MoatError, UsageError } from "../errors.ts";
import { parseEnvArg } from "../run/plan.ts";
import { runExec } from "../run/exec.ts";
import { RunStore } from "../store/records.ts";
import { readRuns } from "../store/run_index.ts";
import { resolveRunRef } from "../store/refs.ts";
import { parseCommandArgs } from "./args.ts";
import { cliContext } from "./context.ts";
import { outputSink } from "./sinks.ts";
import { hostTerminal } from "./terminal.ts";

export const EXEC_HELP = `Usage: moat exec [OPTIONS] RUN -- COMMAND [ARG...]

Run COMMAND in a run that is still running (started with moat run -d), in the same sandbox: its
workspace, mounts, user, environment and network policy. Its output comes to this terminal, stdout
and stderr apart (one stream with -t); its exit code is moat exec's.

Options:
  -i, --interactive      Copy moat's stdin to the command's stdin
  -t, --tty              Give the command a terminal (moat's stdin must be one)
  -e, --env KEY=VALUE    Set a variable for the command (repeatable); -e KEY copies moat's own
  -u, --user USER        Run it as USER (default: the run's user)
  -h, --help             Print this help

Ctrl-C (or SIGTERM) sends the command SIGTERM and gives it 5 s before SIGKILL; a second one kills it
now. With -it, Ctrl-C is a key the command gets from its terminal.

Exit codes: the command's; 126 it could not be run, 127 it was not found; 125 moat could not run it
(the run is not running, the engine failed); 2 usage error.

Examples:
  id=$(moat run -d -- sleep infinity)
  moat exec $id -- ls -la
  moat exec -it $id -- bash
`;

export interface ParsedExecArgs {
  help: boolean;
  ref: string;
  command: string[];
  interactive: boolean;
  tty: boolean;
  env: string[];
  user: string | undefined;
}

const HINT = "For example:  moat exec RUN -- ls -la";

/** Parse `moat exec` arguments. Pure; throws `UsageError`. */
export function parseExecArgs(args: string[]): ParsedExecArgs {
  const { values, positionals, beforeTerminator } = parseCommandArgs("exec", args, {
    help: { type: "boolean", short: "h" },
    interactive: { type: "boolean", short: "i" },
    tty: { type: "boolean", short: "t" },
    env: { type: "string", short: "e", multiple: true },
    user: { type: "string", short: "u" },
  });
  const base = {
    interactive: values.interactive ?? false,
    tty: values.tty ?? false,
    env: values.env ?? [],
    user: values.user,
  };
  if (values.help) return { help: true, ref: "", command: [], ...base };
  const before = positionals.slice(0, beforeTerminator ?? positionals.length);
  const command = beforeTerminator === undefined ? [] : positionals.slice(beforeTerminator);
  if (before.length === 0) throw new UsageError("moat exec needs the RUN to run the command in", HINT);
  if (beforeTerminator === undefined) {
    throw new UsageError(
      before.length > 1
        ? `The command goes after --: moat exec ${before[0]} -- ${before.slice(1).join(" ")}`
        : "moat exec needs a COMMAND after --",
      HINT,
    );
  }
  if (before.length > 1) {
    throw new UsageError(`Unexpected argument "${before[1]}": the command goes after --`, HINT);
  }
  if (command.length === 0) throw new UsageError("Nothing follows --: give the command to run", HINT);
  if (base.user === "") throw new UsageError("--user is empty", "Name a user:  -u 1000  or  -u root");
  return { help: false, ref: before[0]!, command, ...base };
}

export async function command(args: string[]): Promise<number> {
  const opts = parseExecArgs(args);
  const ctx = cliContext();
  if (opts.help) {
    await ctx.out(EXEC_HELP);
    return 0;
  }
  ctx.checkEnv();
  if (opts.tty && !Deno.stdin.isTerminal()) {
    throw new UsageError(
      "-t needs moat's stdin to be a terminal",
      "Drop -t, or run moat exec from a terminal",
    );
  }
  const env: Record<string, string> = {};
  for (const arg of opts.env) {
    if (arg === "" || arg.startsWith("=")) {
      throw new UsageError(`-e "${arg}" has no variable name`, "Use:  -e KEY=VALUE");
    }
    const kv = parseEnvArg(arg, ctx.env);
    if (kv) env[kv[0]] = kv[1];
  }
  const run = resolveRunRef(readRuns(ctx.home).runs, opts.ref);
  const store = RunStore.open(ctx.home, run.id);
  const record = store?.record;
  if (!store || !record || record.state !== "running" || !record.containerId) {
    throw new MoatError(
      `Run ${run.id} is ${record?.state ?? run.state}, not running: moat exec runs commands in a run that is`,
      "Start one that stays up:  moat run -d -- sleep infinity   then  moat exec RUN -- COMMAND",
    );
  }
  const client = clientFromEnv(ctx.env);
  const containerId = record.containerId;

  const interrupt = new AbortController();
  const force = new AbortController();
  const onSignal = () => interrupt.signal.aborted ? force.abort() : interrupt.abort();
  const signals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  const startedAt = new Date().toISOString();
  let execId = "";
  try {
    const result = await runExec(
      client,
      {
        containerId,
        command: opts.command,
        env,
        ...(opts.user ? { user: opts.user } : {}),
        tty: opts.tty,
        interactive: opts.interactive,
      },
      {
        stdout: outputSink(1, Deno.stdout),
        stderr: outputSink(2, Deno.stderr),
        ...(opts.interactive ? { stdin: Deno.stdin } : {}),
        ...(opts.tty ? { terminal: hostTerminal() } : {}),
      },
      { interrupt: interrupt.signal, force: force.signal },
      {
        onCreated(id) {
          execId = id;
          const entry = {
            exec: id,
            command: opts.command,
            user: opts.user ?? null,
            tty: opts.tty,
            startedAt,
          };
          store.audit("exec", { ...entry, env: Object.keys(env).sort() });
        },
        say: (line) => ctx.note(line),
      },
    );
    const end = {
      exec: execId,
      command: opts.command,
      startedAt,
      finishedAt: new Date().toISOString(),
      exitCode: result.exitCode,
      ...(interrupt.signal.aborted ? { interrupted: true } : {}),
    };
    store.audit("exec.end", end);
    appendExec(store.dir, end);
    return result.exitCode;
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
  }
}

/** One line of the run's `execs.jsonl`: what moat exec ran, when, and its exit code. */
function appendExec(dir: string, entry: object): void {
  try {
    Deno.writeTextFileSync(`${dir}/execs.jsonl`, JSON.stringify(entry) + "\n", { append: true, mode: 0o600 });
  } catch { /* the audit log has it */ }
}
