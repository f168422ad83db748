import assert from "node:assert/strict";
import { formatBytes } from "../../lib/cli/format.ts";

Deno.test("formatBytes writes every size in decimal units, like docker", () => {
  const table: Array<[number, string]> = [
    [0, "0 B"],
    [999, "999 B"],
    [1000, "1.0 kB"],
    [4096, "4.1 kB"],
    [12_345, "12 kB"],
    [999_999, "1.0 MB"],
    [117_000_000, "117 MB"],
    [2_500_000_000, "2.5 GB"],
  ];
  for (const [n, want] of table) assert.equal(formatBytes(n), want, String(n));
});
