/**
 * Run references: a full id, a unique id prefix, or a run name. Pure: records in, one record or a
 * `UsageError` out.
 */
import { UsageError } from "../errors.ts";
import type { RunRecord } from "./records.ts";

/**
 * Records are newest first. Exact id beats name beats prefix. Runs may share a name once they have finished
 * (a running run's name is refused to a new one, lib/run/names.ts): a name means the newest run that has
 * it. Several runs matching an id prefix are an error.
 */
export function resolveRunRef(records: RunRecord[], ref: string): RunRecord {
  const exact = records.find((r) => r.id === ref);
  if (exact) return exact;
  const byName = records.find((r) => r.name === ref);
  if (byName) return byName;
  const candidates = /^[0-9a-f]+$/.test(ref) ? records.filter((r) => r.id.startsWith(ref)) : [];
  if (candidates.length === 1) return candidates[0]!;
  if (candidates.length === 0) {
    throw new UsageError(`No run matches "${ref}"`, "See the runs:  moat list");
  }
  const lines = candidates.slice(0, 10).map((r) => `${r.id}  ${r.name ?? "-"}  ${r.state}  ${r.createdAt}`);
  if (candidates.length > 10) lines.push(`… and ${candidates.length - 10} more`);
  throw new UsageError(
    `"${ref}" matches ${candidates.length} runs: give more of the id`,
    ["Name one by its id:", ...lines.map((l) => `  ${l}`)].join("\n"),
  );
}

/**
 * The run a command without a reference acts on: the newest that `pred` accepts. Returns it with the line
 * that says which, or throws when there is none.
 */
export function newestRun(records: RunRecord[], pred: (r: RunRecord) => boolean, what: string): RunRecord {
  const found = records.find(pred);
  if (!found) throw new UsageError(`There is no ${what} run`, "See the runs:  moat list");
  return found;
}
