/**
 * moat's error family. Everything thrown inside `lib/` that a user can see is a `MoatError`; `main.ts`
 * alone turns it into text and an exit code. The first line of `message` is what troubleshooting docs
 * are indexed by; `hint` is the next thing to type, printed on its own lines.
 */
/**
 * moat's own exit codes, the same for every command (docs/reference/cli.md, "Exit codes"); `moat run` also
 * exits with its command's code.
 */
export const EXIT = {
  ok: 0,
  /** A command that reports found a problem: `status` (engine not asked), `doctor` (a failed check). */
  problem: 1,
  /** Bad command line, environment variable or config file; nothing was done. */
  usage: 2,
  /** moat or the engine failed, a removal that failed included (`destroy`, `clean`). */
  failure: 125,
} as const;

export class MoatError extends Error {
  /** Process exit code main.ts uses for this error: 2 for usage/config, 125 for moat or engine failures. */
  readonly exitCode: number = EXIT.failure;
  /** What to do next: a command, a config line, a flag. Multi-line allowed. */
  readonly hint: string | undefined;

  constructor(message: string, hint?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.hint = hint;
  }
}

/** Bad command line or bad input value (missing workspace, malformed `-e`). Exits 2. */
export class UsageError extends MoatError {
  override readonly exitCode = EXIT.usage;
}

/** Why the engine could not be reached; decides the hint. */
export type EngineUnavailableReason = "absent" | "permission" | "refused" | "timeout" | "closed" | "other";

/** The Docker engine's socket could not be used at all. */
export class EngineUnavailableError extends MoatError {
  constructor(
    readonly endpoint: string,
    readonly reason: EngineUnavailableReason,
    /** What happened, without the endpoint: e.g. `GET /info took longer than 5 s` for a timeout. */
    readonly detail: string,
    /** `variable`: for a timeout, the `MOAT_*` setting that bounds the call (default MOAT_ENGINE_TIMEOUT). */
    options?: ErrorOptions & { variable?: string },
  ) {
    super(
      engineUnavailableMessage(endpoint, reason, detail),
      engineUnavailableHint(endpoint, reason, options?.variable ?? "MOAT_ENGINE_TIMEOUT"),
      options,
    );
  }
}

function engineUnavailableMessage(endpoint: string, reason: EngineUnavailableReason, detail: string): string {
  switch (reason) {
    case "absent":
      return `Docker engine not found: no socket at ${endpoint}`;
    case "permission":
      return `Docker engine socket ${endpoint} is not accessible: permission denied`;
    case "refused":
      return `Docker engine is not running: connection to ${endpoint} refused`;
    case "timeout":
      return `Docker engine at ${endpoint} did not answer in time (${detail})`;
    case "closed":
      return `Docker engine at ${endpoint} closed the connection (${detail})`;
    case "other":
      return `Docker engine at ${endpoint} could not be reached: ${detail}`;
  }
}

function engineUnavailableHint(endpoint: string, reason: EngineUnavailableReason, variable: string): string {
  switch (reason) {
    case "absent":
    case "refused":
      return [
        "Start the engine (as root):  dockerd >/var/log/dockerd.log 2>&1 &   (or: sudo systemctl start docker)",
        "or point moat at another one: DOCKER_HOST=unix:///path/to/docker.sock moat …",
      ].join("\n");
    case "permission":
      return [
        `Add yourself to the socket's group:  sudo usermod -aG docker "$USER"   then log in again`,
        `or check who may use it:  ls -l ${endpoint.replace(/^unix:\/\//, "")}`,
      ].join("\n");
    case "timeout":
      return `Check the engine with:  docker info\nRaise the limit with:  ${variable}=${
        variable === "MOAT_ENGINE_TIMEOUT" ? 30 : 300
      } moat …`;
    case "closed":
    case "other":
      return "Check the engine with:  docker info";
  }
}

/** The engine answered with an error status. Classify with the `is*` helpers, never by status at call sites. */
export class EngineApiError extends MoatError {
  constructor(
    readonly status: number,
    readonly method: string,
    readonly path: string,
    readonly daemonMessage: string,
    hint?: string,
  ) {
    super(`Docker engine error ${status} on ${method} ${path}: ${daemonMessage}`, hint);
  }

  get isNotFound(): boolean {
    return this.status === 404;
  }
  get isConflict(): boolean {
    return this.status === 409;
  }
  get isNotModified(): boolean {
    return this.status === 304;
  }
}

/** gVisor was required and cannot be used with this engine. Nothing was created. */
export class SandboxUnavailableError extends MoatError {}

/** The image is not on the engine and could not be pulled. */
export class ImageMissingError extends MoatError {
  constructor(readonly image: string, message: string, hint: string) {
    super(message, hint);
  }
}

/** Where something is in a config file; `line` and `col` count from 1. */
export interface ConfigPosition {
  file: string;
  line: number;
  col: number;
}

/** A config file is invalid; `line`/`column` are 1-based. Exits 2. */
export class ConfigError extends MoatError {
  override readonly exitCode = EXIT.usage;
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly path: string,
    problem: string,
    hint?: string,
  ) {
    super(`${file}:${line}:${column}: ${path ? `${path}: ` : ""}${problem}`, hint);
  }
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGPIPE: 13, SIGTERM: 15 };

/** Exit code for a run ended by `signal` (shell convention 128 + number: 130 SIGINT, 143 SIGTERM). */
export function interruptedExitCode(signal: string): number {
  return 128 + (SIGNAL_NUMBERS[signal] ?? 0);
}

/** The user interrupted moat before the command started. Exit 128 + signal number. */
export class InterruptedError extends MoatError {
  override readonly exitCode: number;
  /** `started`: the interrupt came while the engine was starting the container, and the command was stopped. */
  constructor(readonly signal: string, readonly containerId?: string, removed = true, started = false) {
    super(
      (started
        ? `Interrupted by ${signal} while the container was starting; the command was stopped`
        : `Interrupted by ${signal} before the command started`) +
        (containerId ? (removed ? "; the container was removed" : "; the container was kept (--keep)") : ""),
    );
    this.exitCode = interruptedExitCode(signal);
  }
}

/** The first line of an error's message (without hint lines or a stack), for one-line reports. */
export function firstLineOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
}

/** Render an error the way main.ts prints it: `moat: <message>` then the hint lines. */
export function formatError(err: unknown): string {
  if (err instanceof MoatError) {
    const lines = [`moat: ${err.message}`];
    if (err.hint) lines.push(...err.hint.split("\n").map((l) => `  ${l}`));
    return lines.join("\n");
  }
  const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
  return `moat: internal error: ${text}\n  This is a bug in moat; please report it with the command you ran.`;
}

/** Exit code for any thrown value. */
export function exitCodeOf(err: unknown): number {
  return err instanceof MoatError ? err.exitCode : EXIT.failure;
}
