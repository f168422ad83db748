/**
 * Command-line options, parsed strictly: the subset of `node:util` `parseArgs` moat uses, written here
 * because importing any `node:` module costs 15–20 ms at every start (Deno loads its Node layer), which is a
 * quarter of the startup budget (docs/performance.md). Pure; failures are `UsageError`s that name the
 * command's help.
 *
 * Accepted forms: `--name value`, `--name=value`, `-n value`, `-nvalue`, grouped booleans (`-it`), `--`
 * (everything after it is positional), and `-` alone as a positional.
 */
import { UsageError } from "../errors.ts";

export interface OptionSpec {
  type: "boolean" | "string";
  short?: string;
  multiple?: boolean;
}

type ValueOf<S extends OptionSpec> = S["type"] extends "boolean" ? boolean
  : S["multiple"] extends true ? string[]
  : string;

export type OptionValues<O extends Record<string, OptionSpec>> = { [K in keyof O]?: ValueOf<O[K]> };

export interface ParsedArgs<O extends Record<string, OptionSpec>> {
  values: OptionValues<O>;
  /** Every positional argument, in order, those after `--` included. */
  positionals: string[];
  /** How many of `positionals` came before `--`; `undefined` when there was no `--`. */
  beforeTerminator: number | undefined;
}

/**
 * Parse `args` of `moat <command>` against `options` (keyed by long name). Unknown options, a value given to
 * a boolean, a missing value, and (unless `allowPositionals`) any positional are usage errors.
 */
export function parseCommandArgs<O extends Record<string, OptionSpec>>(
  command: string,
  args: string[],
  options: O,
  allowPositionals = true,
): ParsedArgs<O> {
  const fail = (message: string) => new UsageError(message, `See:  moat ${command} --help`);
  const byShort = new Map<string, string>();
  for (const [name, spec] of Object.entries(options)) if (spec.short) byShort.set(spec.short, name);
  const values: Record<string, boolean | string | string[]> = {};
  const positionals: string[] = [];
  let beforeTerminator: number | undefined;

  const set = (name: string, value: boolean | string) => {
    if (options[name]!.multiple) {
      const list = values[name];
      values[name] = Array.isArray(list) ? [...list, value as string] : [value as string];
    } else values[name] = value;
  };
  const positional = (arg: string) => {
    if (!allowPositionals) throw fail(`Unexpected argument "${arg}": moat ${command} takes no arguments`);
    positionals.push(arg);
  };

  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      beforeTerminator = positionals.length;
      for (const rest of args.slice(i + 1)) positional(rest);
      break;
    }
    if (arg === "-" || !arg.startsWith("-")) {
      positional(arg);
      continue;
    }
    // A string option's value: inline, else the next argument, which must not look like an option.
    const takeValue = (name: string, shown: string, inline: string | undefined): string => {
      if (inline !== undefined) return inline;
      const next = args[i + 1];
      if (next === undefined) throw fail(`Option '${shown}' needs a value`);
      if (next.startsWith("-") && next !== "-") {
        throw fail(
          `Option '${shown}' is followed by '${next}', which looks like an option; ` +
            `to give a value that starts with '-', write --${name}=${next}`,
        );
      }
      i++;
      return next;
    };
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      const inline = eq === -1 ? undefined : arg.slice(eq + 1);
      const spec = Object.hasOwn(options, name) ? options[name] : undefined;
      if (!spec) throw fail(`Unknown option '--${name}'`);
      if (spec.type === "boolean") {
        if (inline !== undefined) throw fail(`Option '--${name}' does not take a value`);
        set(name, true);
      } else set(name, takeValue(name, `--${name}`, inline));
      continue;
    }
    // Short options: booleans may be grouped (`-it`); a string option takes the rest of the group as value.
    for (let j = 1; j < arg.length; j++) {
      const letter = arg[j]!;
      const name = byShort.get(letter);
      if (name === undefined) throw fail(`Unknown option '-${letter}'`);
      if (options[name]!.type === "boolean") {
        set(name, true);
        continue;
      }
      const rest = arg.slice(j + 1);
      set(name, takeValue(name, `-${letter}`, rest === "" ? undefined : rest));
      break;
    }
  }
  return { values: values as OptionValues<O>, positionals, beforeTerminator };
}

/** Default grace period of `moat stop` and `moat destroy --force`, in seconds (docker's for `docker stop`). */
export const DEFAULT_STOP_GRACE_S = 10;

/** `--time` of `moat stop` and `moat destroy`: whole seconds, 0 to 86400. Pure; throws `UsageError`. */
export function parseGrace(raw: string | undefined, command: string): number {
  if (raw === undefined) return DEFAULT_STOP_GRACE_S;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) > 86400) {
    throw new UsageError(
      `--time "${raw}" is not a whole number of seconds between 0 and 86400`,
      `For example:  moat ${command} --time 30`,
    );
  }
  return Number(raw);
}
