/**
 * `deno task bundle`: write dist/moat.js, one self-contained minified file (dependencies inlined), runnable
 * offline with `deno run -A dist/moat.js`. Stamps the commit it was built from (`moat --version`), then
 * prints its size and SHA-256 for the install notes (docs/install.md).
 */
const root = new URL("../", import.meta.url).pathname;
const out = `${root}dist/moat.js`;
const decoder = new TextDecoder();

/** `git` in the source tree; `undefined` when git or the repository is not there. */
async function git(...args: string[]): Promise<string | undefined> {
  try {
    const r = await new Deno.Command("git", { args: ["-C", root, ...args], stdout: "piped", stderr: "null" })
      .output();
    return r.code === 0 ? decoder.decode(r.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

/** Replace the one quoted placeholder `name` in `code` by `value`; a bundle without it is a build error. */
export function stamp(code: string, name: string, value: string): string {
  const re = new RegExp(`(["'\`])${name}\\1`, "g");
  const found = code.match(re)?.length ?? 0;
  if (found !== 1) throw new Error(`expected one ${name} in the bundle, found ${found}`);
  return code.replace(re, JSON.stringify(value));
}

/**
 * Bundle main.ts into `out`, stamped with the commit and `form`. Returns the stamp; throws with deno's
 * message when bundling fails.
 */
export async function bundle(out: string, form: "bundle" | "binary"): Promise<string> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    // `browser` picks the ESM build of each npm package (yaml's `node` build is CommonJS, which the bundle
    // would load through `node:module`); Deno's own APIs are globals either way. No `node:` module in the
    // bundle is what keeps its start as fast as the source's (docs/performance.md).
    args: ["bundle", "--quiet", "--minify", "--platform", "browser", "-o", out, `${root}main.ts`],
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`deno bundle failed:\n${decoder.decode(stderr)}`);
  const head = (await git("rev-parse", "HEAD"))?.slice(0, 12) ?? "unknown";
  const dirty = (await git("status", "--porcelain", "--untracked-files=no")) ? "+dirty" : "";
  let text = await Deno.readTextFile(out);
  text = stamp(text, "__MOAT_COMMIT__", head + dirty);
  text = stamp(text, "__MOAT_FORM__", form);
  await Deno.writeTextFile(out, text);
  return head + dirty;
}

if (import.meta.main) {
  await Deno.mkdir(`${root}dist`, { recursive: true });
  let commit: string;
  try {
    commit = await bundle(out, "bundle");
  } catch (err) {
    console.error(`bundle: ${err instanceof Error ? err.message : err}`);
    Deno.exit(1);
  }
  const bytes = await Deno.readFile(out);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  console.log(`dist/moat.js  ${bytes.byteLength} bytes  sha256 ${hex}  commit ${commit}`);
}
