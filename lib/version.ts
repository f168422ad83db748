/**
 * moat's version, and the commit it was built from. `VERSION` is bumped by hand with each release (it is
 * also in container labels). scripts/bundle.ts stamps the commit and the form into dist/moat.js, which the
 * compiled binary is built from; run from source, the commit is read from the checkout's `.git`.
 */
export const VERSION = "0.1.0";

/** Replaced in the bundle by the commit (12 hex digits, `+dirty` when built from uncommitted changes). */
const BUILD_COMMIT: string = "__MOAT_COMMIT__";
/** Replaced in the bundle by `bundle`, and in the compiled binary by `binary`. */
const BUILD_FORM: string = "__MOAT_FORM__";

const stamped = (s: string) => !s.startsWith("__MOAT_");

/** `moat --version`: e.g. `moat 0.1.0 (commit 3f1ceb5a1b2c, bundle)`. */
export async function versionLine(): Promise<string> {
  if (stamped(BUILD_COMMIT)) {
    return `moat ${VERSION} (commit ${BUILD_COMMIT}, ${stamped(BUILD_FORM) ? BUILD_FORM : "bundle"})`;
  }
  return `moat ${VERSION} (commit ${(await sourceCommit()) ?? "unknown"}, source)`;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch {
    return undefined;
  }
}

/** The checked-out commit of the source tree this module is in, read from `.git` without running git. */
async function sourceCommit(): Promise<string | undefined> {
  const url = new URL("../", import.meta.url);
  if (url.protocol !== "file:") return undefined;
  let git = `${decodeURIComponent(url.pathname)}.git`;
  // A worktree or submodule has a `.git` file that points at the real directory.
  const pointer = await readText(git);
  if (pointer?.startsWith("gitdir: ")) git = pointer.slice("gitdir: ".length);
  const head = await readText(`${git}/HEAD`);
  if (!head) return undefined;
  if (!head.startsWith("ref: ")) return head.slice(0, 12);
  const ref = head.slice("ref: ".length);
  const direct = await readText(`${git}/${ref}`);
  if (direct) return direct.slice(0, 12);
  const packed = await readText(`${git}/packed-refs`);
  const line = packed?.split("\n").find((l) => l.endsWith(` ${ref}`));
  return line?.slice(0, 12);
}
