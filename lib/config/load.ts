/**
 * Find and read the workspace's config file: `moat.yaml`, else `agent.yaml`. This is the I/O edge; the
 * parser (YAML + zod) is imported only when a file exists, so runs without a config never load it.
 */
import { UsageError } from "../errors.ts";
import type { LoadedConfig } from "./types.ts";

export const CONFIG_FILES = ["moat.yaml", "agent.yaml"] as const;

export async function loadConfig(workspace: string): Promise<LoadedConfig> {
  for (const name of CONFIG_FILES) {
    const file = `${workspace}/${name}`;
    let text: string;
    try {
      text = Deno.readTextFileSync(file); // small and local: no thread-pool hop on every run
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      throw new UsageError(
        `Cannot read config ${file}: ${err instanceof Error ? err.message : String(err)}`,
        `Check the file's permissions:  ls -l ${file}`,
      );
    }
    const { parseConfig } = await import("./parse.ts");
    return { file, config: parseConfig(text, file) };
  }
  return { file: undefined, config: {} };
}
