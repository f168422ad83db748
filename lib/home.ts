/**
 * Where moat keeps its files. Pure, and in the base layer: the engine client needs it too
 * (lib/docker/client.ts).
 */
import { MoatError } from "./errors.ts";

/** `MOAT_HOME`, else `~/.moat`. Pure. */
export function moatHome(env: Record<string, string | undefined>): string {
  const explicit = env["MOAT_HOME"]?.trim();
  if (explicit) return explicit;
  const home = env["HOME"]?.trim();
  if (!home) {
    throw new MoatError(
      "Cannot find a place for run records: neither MOAT_HOME nor HOME is set",
      "Set one:  MOAT_HOME=/path/to/dir",
    );
  }
  return `${home}/.moat`;
}
