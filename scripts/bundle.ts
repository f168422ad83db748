/**
 * `deno task bundle`: write dist/moat.js, one self-contained minified file (dependencies inlined), runnable
 * offline with `deno run -A dist/moat.js`. Prints its size and SHA-256 for the install notes.
 */
const root = new URL("../", import.meta.url).pathname;
const out = `${root}dist/moat.js`;
await Deno.mkdir(`${root}dist`, { recursive: true });
const { code, stderr } = await new Deno.Command(Deno.execPath(), {
  args: ["bundle", "--quiet", "--minify", "--platform", "deno", "-o", out, `${root}main.ts`],
  stderr: "piped",
}).output();
if (code !== 0) {
  console.error(new TextDecoder().decode(stderr));
  console.error("bundle: deno bundle failed; see above");
  Deno.exit(1);
}
const bytes = await Deno.readFile(out);
const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
console.log(`dist/moat.js  ${bytes.byteLength} bytes  sha256 ${hex}`);
