/**
 * The grants kept in MOAT_HOME (issue 14): one file each, `grants/<name>.json`, readable only by the user moat
 * runs as (mode 0600, in a directory of mode 0700), written whole and renamed into place. The secret is in
 * the file as given: what protects it is the file's mode and the user's account, not encryption (see
 * docs/concepts/grants.md). Nothing else in moat writes it anywhere.
 */
import { MoatError } from "../errors.ts";

/** One host a grant applies to, and the header carrying the credential there. */
export interface GrantTarget {
  host: string;
  /** The header's name, e.g. `Authorization`. */
  header: string;
  /**
   * Its value, with `{}` where the secret goes; `{basic:USER}` for HTTP Basic of `USER:secret` (what git
   * over HTTPS sends). lib/run/grant_kinds.ts makes the header.
   */
  template: string;
}

/** A grant as stored. */
export interface Grant {
  schema: 1;
  name: string;
  /** A built-in kind's name, or `custom`. */
  kind: string;
  targets: GrantTarget[];
  /** The variables that get a placeholder in a run's container. */
  env: string[];
  createdAt: string;
  secret: string;
}

/** A grant as listed: everything but its secret. */
export type GrantSummary = Omit<Grant, "secret">;

const dirOf = (home: string) => `${home}/grants`;

/** Store `grant` (replacing one of the same name). Throws what the file system says. */
export function saveGrant(home: string, grant: Grant): void {
  const dir = dirOf(home);
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  Deno.chmodSync(dir, 0o700);
  const tmp = `${dir}/.${grant.name}.${crypto.randomUUID()}.tmp`;
  try {
    // Created 0600 before a byte is written: never readable by others, not even for a moment.
    Deno.writeTextFileSync(tmp, JSON.stringify(grant) + "\n", { mode: 0o600, createNew: true });
    Deno.renameSync(tmp, `${dir}/${grant.name}.json`);
  } catch (err) {
    try {
      Deno.removeSync(tmp);
    } catch { /* not made */ }
    throw err;
  }
}

/** Parse a grant file; `undefined` for anything that is not one. Pure. */
export function parseGrant(text: string): Grant | undefined {
  try {
    const g = JSON.parse(text);
    const ok = g && g.schema === 1 && typeof g.name === "string" && typeof g.kind === "string" &&
      Array.isArray(g.targets) &&
      g.targets.every((t: GrantTarget) =>
        t && typeof t.host === "string" && typeof t.header === "string" && typeof t.template === "string"
      ) && Array.isArray(g.env) && g.env.every((e: unknown) => typeof e === "string") &&
      typeof g.createdAt === "string" && typeof g.secret === "string";
    return ok ? g as Grant : undefined;
  } catch {
    return undefined;
  }
}

/** The grant named `name`, secret included; `undefined` when there is none. Throws for a damaged file. */
export function readGrant(home: string, name: string): Grant | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${dirOf(home)}/${name}.json`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  const g = parseGrant(text);
  if (!g || g.name !== name) throw new Error(`${dirOf(home)}/${name}.json is not a grant moat wrote`);
  return g;
}

/** Every grant, by name, without secrets; damaged files are named in `damaged`. */
export function listGrants(home: string): { grants: GrantSummary[]; damaged: string[] } {
  const grants: GrantSummary[] = [];
  const damaged: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dirOf(home))];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return { grants, damaged };
    throw err;
  }
  for (const e of entries.filter((e) => e.isFile && e.name.endsWith(".json"))) {
    const path = `${dirOf(home)}/${e.name}`;
    const g = parseGrant(Deno.readTextFileSync(path));
    if (!g || `${g.name}.json` !== e.name) {
      damaged.push(path);
      continue;
    }
    const { secret: _, ...summary } = g;
    grants.push(summary);
  }
  grants.sort((a, b) => a.name.localeCompare(b.name));
  return { grants, damaged };
}

/** Remove the grant named `name`: `false` when there was none. */
export function removeGrant(home: string, name: string): boolean {
  try {
    Deno.removeSync(`${dirOf(home)}/${name}.json`);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/**
 * The grants a run names, secrets included, read for the process that serves its policy. Throws a
 * `MoatError` naming what to do when one is missing or damaged; the message never holds a secret.
 */
export function readRunGrants(home: string, names: readonly string[]): Grant[] {
  return names.map((name) => {
    let g: Grant | undefined;
    try {
      g = readGrant(home, name);
    } catch (err) {
      throw new MoatError(
        `The grant ${name} cannot be read: ${err instanceof Error ? err.message : String(err)}`,
        `Make it again:  moat grant ${name}   (or drop it from the run)`,
      );
    }
    if (!g) {
      throw new MoatError(
        `There is no grant named ${name} in ${dirOf(home)}`,
        `Make it:  moat grant ${name}   (see the grants there are:  moat grant list)`,
      );
    }
    return g;
  });
}
