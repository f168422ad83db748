/**
 * Arguments and environment values that are not valid UTF-8. Deno hands them to moat altered: an argument's
 * invalid bytes become U+FFFD (lossy decoding), and an environment variable whose name or value is not UTF-8
 * is left out of `Deno.env.toObject()` (and `Deno.env.get` throws `InvalidData` for it). moat passes the
 * command, its arguments and `-e` values to the engine as JSON strings, which cannot carry such bytes
 * either, so they are refused instead of passed on changed.
 */
import { UsageError } from "../errors.ts";

const fatal = new TextDecoder("utf-8", { fatal: true });

/** Whether `bytes` is valid UTF-8. Pure. */
export function isUtf8(bytes: Uint8Array): boolean {
  try {
    fatal.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** `bytes` as readable text: valid UTF-8 as it is (`"` and `\` escaped), every other byte as `\xNN`. Pure. */
export function showBytes(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const len = b < 0x80
      ? 1
      : b >= 0xc2 && b <= 0xdf
      ? 2
      : b >= 0xe0 && b <= 0xef
      ? 3
      : b >= 0xf0 && b <= 0xf4
      ? 4
      : 0;
    const seq = len > 0 ? bytes.subarray(i, i + len) : undefined;
    if (seq && seq.length === len && isUtf8(seq)) {
      const text = fatal.decode(seq);
      out += text === '"' || text === "\\" ? `\\${text}` : text;
      i += len;
    } else {
      out += `\\x${b.toString(16).toUpperCase().padStart(2, "0")}`;
      i++;
    }
  }
  return out;
}

/**
 * `args` as the bytes they were before Deno decoded them: the last `args.length` entries of `cmdline`, the
 * NUL-separated contents of `/proc/self/cmdline` (Linux). `undefined` when those do not line up with `args`.
 * Pure.
 */
export function maybeRawArgs(args: readonly string[], cmdline: Uint8Array): Uint8Array[] | undefined {
  const entries: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < cmdline.length; i++) {
    if (cmdline[i] === 0) {
      entries.push(cmdline.subarray(start, i));
      start = i + 1;
    }
  }
  if (start < cmdline.length) entries.push(cmdline.subarray(start));
  if (entries.length < args.length) return undefined;
  const raw = entries.slice(entries.length - args.length);
  const lossy = new TextDecoder();
  return raw.every((bytes, i) => lossy.decode(bytes) === args[i]) ? raw : undefined;
}

/**
 * Refuse the first of `args` (those of `moat run`) that is not valid UTF-8. Only an argument holding U+FFFD
 * can be one; for those the bytes are read back from `/proc/self/cmdline` (when that cannot be read, a
 * U+FFFD is taken as typed). Throws `UsageError`.
 */
export function checkArgsAreUtf8(args: readonly string[], readCmdline: () => Uint8Array): void {
  if (!args.some((a) => a.includes("\uFFFD"))) return;
  let cmdline: Uint8Array;
  try {
    cmdline = readCmdline();
  } catch {
    return;
  }
  const raw = maybeRawArgs(args, cmdline);
  const bad = raw?.findIndex((bytes) => !isUtf8(bytes)) ?? -1;
  if (bad === -1) return;
  const arg = args[bad]!;
  const prev = args[bad - 1];
  const terminator = args.indexOf("--");
  const moats = terminator === -1 || bad < terminator;
  // `-e VALUE`, `--env VALUE`, `-eVALUE`, `--env=VALUE` before `--`: the value alone is shown (the prefix is
  // ASCII). After `--` everything is the command's.
  const prefix = !moats ? undefined : prev === "-e" || prev === "--env" ? "" : /^(-e|--env=)/.exec(arg)?.[0];
  const what = prefix === undefined ? "Argument" : "-e";
  throw new UsageError(
    `${what} "${showBytes(raw![bad]!.subarray(prefix?.length ?? 0))}" is not valid UTF-8; ` +
      "moat would pass it on altered (the engine's API takes text)",
    "Give it in UTF-8 (convert it with e.g.  iconv -f latin1 -t utf-8), " +
      "or put the bytes in a file in the workspace and read that",
  );
}

/**
 * `-e KEY` copies moat's own `KEY`; when its value is not UTF-8 it is missing from `Deno.env.toObject()`,
 * and would be silently left out. `getEnv` is `Deno.env.get`, which throws `InvalidData` for it.
 */
export function checkEnvIsUtf8(key: string, getEnv: (key: string) => string | undefined): void {
  try {
    getEnv(key);
  } catch (err) {
    if (!(err instanceof Deno.errors.InvalidData)) throw err;
    throw new UsageError(
      `-e ${key}: moat's environment variable ${key} is not valid UTF-8, so it cannot be passed on unchanged`,
      `Set it in UTF-8, or give the value in UTF-8 directly:  -e ${key}=VALUE`,
    );
  }
}
