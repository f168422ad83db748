/** How much room moat's files take on disk. */

/**
 * Bytes of the files under `dir` (apparent sizes, links not followed), read in parallel; `undefined` when
 * `dir` itself cannot be read. A file removed meanwhile counts as 0.
 */
export async function directorySize(dir: string): Promise<number | undefined> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return undefined;
  }
  const sizes = await Promise.all(entries.map(async (e) => {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) return (await directorySize(path)) ?? 0;
    try {
      return (await Deno.lstat(path)).size;
    } catch {
      return 0; // removed meanwhile
    }
  }));
  return sizes.reduce((a, b) => a + b, 0);
}
