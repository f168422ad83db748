/**
 * Run names, decided like Docker's container names: a name held by a run that is still running is refused
 * to a new run, at once and before anything is created on the engine; runs that have finished may share a
 * name, and a name reference then means the newest of them (lib/store/refs.ts).
 *
 * "Still running" is what the records say: a state that is not final, with an owner process that lives
 * (`isOwnerAlive`). A run whose owner is gone will never be finished by anyone, so it holds no name.
 */
import { MoatError } from "../errors.ts";
import { bootId, isOwnerAlive } from "../store/owner.ts";
import type { Owner, RunRecord } from "../store/records.ts";
import { readRuns } from "../store/run_index.ts";
import { isFinal } from "../store/records.ts";

/**
 * The newest run among `records` (newest first) that holds `name`: not final, and its owner lives
 * (`alive`). `undefined` when the name is free. Pure.
 */
export function runHoldingName(
  records: readonly RunRecord[],
  name: string,
  alive: (owner: Owner) => boolean,
): RunRecord | undefined {
  return records.find((r) => r.name === name && !isFinal(r.state) && !!r.owner && alive(r.owner));
}

/** The refusal of a name a running run holds: which run, and what to type instead. */
export function nameInUseError(name: string, holder: RunRecord): MoatError {
  return new MoatError(
    `The name "${name}" is in use by run ${holder.id}, which is still running`,
    [
      `Stop that run first:  moat stop ${holder.id}`,
      `or give this run another name:  moat run --name ${name}-2 …`,
    ].join("\n"),
  );
}

/**
 * Refuse `name` when a run in `home` that is still running holds it (throws `nameInUseError`). Reads the
 * records of this MOAT_HOME only; nothing is asked of the engine. No name: nothing to check.
 */
export function checkNameFree(home: string, name: string | undefined): void {
  if (name === undefined) return;
  // By the index's summaries: only the records of runs in progress under this name are read.
  const records = readRuns(home).runs.filter((r) => r.name === name && !isFinal(r.state)).map((r) =>
    r.record
  );
  if (records.length === 0) return;
  const boot = bootId();
  const holder = runHoldingName(records, name, (o) => isOwnerAlive(o, boot));
  if (holder) throw nameInUseError(name, holder);
}
