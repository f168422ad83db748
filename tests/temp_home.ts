/** A temporary MOAT_HOME for a test, removed afterwards whatever happens. */
export async function withHome(fn: (home: string) => Promise<void>, prefix = "moat-home-"): Promise<void> {
  const home = await Deno.makeTempDir({ prefix });
  try {
    await fn(home);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}
