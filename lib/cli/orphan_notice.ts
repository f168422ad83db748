/**
 * The notice about containers left behind by a moat process that is gone (`kill -9`, a host crash):
 * `findOrphans` (lib/run/orphans.ts) finds them; `moat list`, `logs`, `stop`, `destroy` (and `run`) print
 * ONE line about them on stderr, and never fail or wait longer than the engine timeout because of it: when
 * the engine cannot be asked in time there is simply no notice. `moat status` and `moat system containers`
 * report orphans themselves; `moat clean` removes them.
 */
import { type EngineClient, engineTimeoutMs } from "../docker/client.ts";
import type { ContainerSummary } from "../docker/types.ts";
import { findOrphans, runIdOf } from "../run/orphans.ts";
import { after } from "../timer.ts";
import type { CliContext } from "./context.ts";

/**
 * `findOrphans`, but never rejects and never takes longer than `timeoutMs`: `undefined` when the engine
 * could not be asked (unreachable, slow, a bad DOCKER_HOST) or anything else went wrong. Start it early,
 * await it late; an advisory line must never fail or hold up the command it rides on.
 */
export function maybeFindOrphans(
  client: () => EngineClient,
  home: string,
  timeoutMs: number,
): Promise<ContainerSummary[] | undefined> {
  let cancel = () => {};
  const late = new Promise<undefined>((resolve) => {
    cancel = after(timeoutMs, () => resolve(undefined));
  });
  const found = (async () => await findOrphans(client(), home))().catch(() => undefined);
  return Promise.race([found, late]).finally(() => cancel());
}

/** `maybeFindOrphans` for a command, bounded by the engine timeout (MOAT_ENGINE_TIMEOUT). */
export function orphansLater(ctx: CliContext): Promise<ContainerSummary[] | undefined> {
  let timeoutMs: number;
  try {
    timeoutMs = engineTimeoutMs(ctx.env);
  } catch {
    return Promise.resolve(undefined); // a bad MOAT_ENGINE_TIMEOUT is for the command itself to report
  }
  return maybeFindOrphans(ctx.client, ctx.home, timeoutMs);
}

/** How many containers the notice names; the rest are counted. */
const NAMED = 3;

/** A container as the notice names it: its name, with its run when the name does not show it. Pure. */
function nameOf(c: ContainerSummary): string {
  const name = c.Names?.[0]?.replace(/^\//, "") || c.Id.slice(0, 12);
  // Labels are free text: keep control characters out of the terminal.
  const runId = runIdOf(c)?.replace(/[^\w.-]/g, "?");
  return runId && !name.includes(runId) ? `${name} of run ${runId}` : name;
}

/**
 * The one stderr line about orphaned containers, newest named first; `undefined` when there are none.
 * Pure.
 */
export function orphanNotice(orphans: readonly ContainerSummary[] | undefined): string | undefined {
  if (!orphans?.length) return undefined;
  const n = orphans.length;
  const named = [...orphans].sort((a, b) => b.Created - a.Created).slice(0, NAMED).map(nameOf).join(", ");
  const more = n > NAMED ? ` and ${n - NAMED} more` : "";
  return n === 1
    ? `moat: notice: 1 container left behind by a moat process that is gone (${named}); ` +
      "remove it with:  moat clean"
    : `moat: notice: ${n} containers left behind by moat processes that are gone (${named}${more}); ` +
      "remove them with:  moat clean";
}

/**
 * Await what `orphansLater` found and print the notice, leaving out the containers of `exceptRun` (the run
 * the command itself just stopped or removed: it says what became of it).
 */
export async function printOrphanNotice(
  ctx: CliContext,
  pending: Promise<ContainerSummary[] | undefined>,
  exceptRun?: string,
): Promise<void> {
  const orphans = (await pending)?.filter((c) => exceptRun === undefined || runIdOf(c) !== exceptRun);
  const line = orphanNotice(orphans);
  if (line) ctx.note(line);
}
