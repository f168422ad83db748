/**
 * The identity of a MOAT_HOME: a random id kept in `MOAT_HOME/home-id`, made by the first run. Every
 * container moat creates is labelled with it (`dev.moat.home`), so that on an engine several MOAT_HOMEs
 * share — other users, CI jobs in containers that mount the same docker socket and all use
 * `/root/.moat` — each sees and cleans up only its own containers. A file, not a hash of the path: two
 * MOAT_HOMEs at the same path on different file systems (one per CI container) are different homes, and
 * whoever shares the records (one MOAT_HOME used by a team) shares the containers too.
 */
import { MoatError } from "../errors.ts";

const ID = /^[0-9a-f]{32}$/;

function idFile(home: string): string {
  return `${home}/home-id`;
}

/** This MOAT_HOME's id, or `undefined` when it has none yet (no run made one) or the file is not an id. */
export function maybeHomeId(home: string): string | undefined {
  try {
    const id = Deno.readTextFileSync(idFile(home)).trim();
    return ID.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * This MOAT_HOME's id, made when there is none: written to a temporary file, then linked into place, so
 * two runs starting at once agree on one id, and a reader never sees a half-written one.
 */
export function ensureHomeId(home: string): string {
  const existing = maybeHomeId(home);
  if (existing) return existing;
  const path = idFile(home);
  const tmp = `${home}/.home-id.${Deno.pid}.tmp`;
  try {
    Deno.mkdirSync(home, { recursive: true, mode: 0o700 });
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    Deno.writeTextFileSync(tmp, Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("") + "\n");
    try {
      Deno.linkSync(tmp, path);
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err; // another moat made it first: use theirs
    }
  } catch (err) {
    throw new MoatError(
      `Cannot record the identity of MOAT_HOME in ${path}: ${
        err instanceof Error ? err.message : String(err)
      }`,
      "Point moat somewhere writable:  MOAT_HOME=/path/to/dir",
    );
  } finally {
    try {
      Deno.removeSync(tmp);
    } catch { /* not made */ }
  }
  const id = maybeHomeId(home);
  if (id) return id;
  throw new MoatError(
    `The identity file of MOAT_HOME, ${path}, does not hold an id`,
    `Remove it, and moat makes a new one:  rm ${path}\n` +
      "(containers made before then will count as another MOAT_HOME's:  moat clean --all-homes)",
  );
}
