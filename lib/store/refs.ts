/**
 * Run references: a full id, a unique id prefix, or a run name. Pure: runs in (records, or the index's
 * summaries of them), one run or a `UsageError` out.
 */
import { UsageError } from "../errors.ts";
import type { DamagedRecord, RunRecord } from "./records.ts";

/** What a reference is resolved by: a record, or a summary of one (lib/store/run_index.ts `IndexedRun`). */
export type RunRef = Pick<RunRecord, "id" | "name" | "state" | "createdAt">;

/**
 * Records are newest first. Exact id beats name beats prefix. Runs may share a name once they have finished
 * (a running run's name is refused to a new one, lib/run/names.ts): a name means the newest run that has
 * it. Several runs matching an id prefix are an error.
 */
export function resolveRunRef<T extends RunRef>(records: readonly T[], ref: string): T {
  const found = resolveRunOrDamaged(records, [], ref);
  if ("record" in found) return found.record;
  throw new Error("unreachable: no damaged run was given"); // for the type checker
}

/**
 * `resolveRunRef` over the readable records and the damaged runs whose `run.json` cannot be read (`damaged`
 * entries with a record are found through `records`): by full id or id prefix, such a run is found too, so
 * a command can say what is wrong with it instead of "No run matches".
 */
export function resolveRunOrDamaged<T extends RunRef>(
  records: readonly T[],
  damaged: readonly DamagedRecord[],
  ref: string,
): { record: T } | { damaged: DamagedRecord } {
  const unreadable = damaged.filter((d) => d.record === null);
  const exact = records.find((r) => r.id === ref);
  if (exact) return { record: exact };
  const exactDamaged = unreadable.find((d) => d.id === ref);
  if (exactDamaged) return { damaged: exactDamaged };
  const byName = records.find((r) => r.name === ref);
  if (byName) return { record: byName };
  const hex = /^[0-9a-f]+$/.test(ref);
  const candidates: Array<{ record: T } | { damaged: DamagedRecord }> = hex
    ? [
      ...records.filter((r) => r.id.startsWith(ref)).map((record) => ({ record })),
      ...unreadable.filter((d) => d.id.startsWith(ref)).map((d) => ({ damaged: d })),
    ]
    : [];
  if (candidates.length === 1) return candidates[0]!;
  if (candidates.length === 0) {
    throw new UsageError(`No run matches "${ref}"`, "See the runs:  moat list");
  }
  const lines = candidates.slice(0, 10).map((c) =>
    "record" in c
      ? `${c.record.id}  ${c.record.name ?? "-"}  ${c.record.state}  ${c.record.createdAt}`
      : `${c.damaged.id}  -  damaged  -`
  );
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
export function newestRun<T extends RunRef>(records: readonly T[], pred: (r: T) => boolean, what: string): T {
  const found = records.find(pred);
  if (!found) throw new UsageError(`There is no ${what} run`, "See the runs:  moat list");
  return found;
}
