/** How every command writes sizes: one unit system for all output. */

/**
 * `0 B`, `512 B`, `4.1 kB`, `12 MB`, `1.3 GB`: decimal units, as the docker CLI writes sizes, so moat's
 * figures and docker's can be compared at a glance. Pure.
 */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let v = n;
  let u = -1;
  do {
    v /= 1000;
    u++;
  } while (v >= 999.5 && u < units.length - 1);
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}
