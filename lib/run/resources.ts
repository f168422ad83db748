/**
 * Resource limit values (`memory`, `cpus`, `pids`) as written in `moat.yaml` or on the command line →
 * numbers the engine takes, or the words an error message needs. Pure, and free of the YAML parser and zod:
 * the CLI flag path uses these without loading either (issue 5).
 */

/** A parsed value, or what the value should have looked like (`expected` completes "must be …"). */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; expected: string };

const KIB = 1024;

/** Binary multiples, as docker's own `--memory` parser (go-units `RAMInBytes`) reads every unit. */
const MEMORY_UNITS: Record<string, number> = {
  b: 1,
  k: KIB,
  m: KIB ** 2,
  g: KIB ** 3,
  t: KIB ** 4,
  p: KIB ** 5,
};

/**
 * The engine refuses a smaller memory limit: "Minimum memory limit allowed is 6MB" (moby
 * daemon/daemon_unix.go, `linuxMinMemory = 6291456`).
 */
export const MIN_MEMORY = 6 * KIB ** 2;

const MEMORY_EXPECTED = "a size such as 512m or 2g";

// A number, then a unit: b, or k/m/g/t/p optionally followed by b or ib (2g, 2gb, 2GiB all mean 2 GiB).
const MEMORY_RE = /^(\d+(?:\.\d+)?)\s?(b|[kmgtp](?:i?b)?)$/i;

/**
 * A memory limit in bytes. Units are binary whatever their spelling, like docker's: `512m`, `512MB` and
 * `512MiB` are all 512 × 2^20 bytes; fractions are allowed (`1.5g`) and rounded down to a whole byte.
 *
 * A bare number is refused, though docker reads it as bytes: `memory: 2` or `--memory 2048` is far more
 * likely a forgotten `g` or `m` than a limit of 2 or 2048 bytes (both below the engine's minimum anyway).
 * Bytes can still be written exactly, with `b`: `8589934592b`.
 */
export function parseMemory(v: string | number): ParseResult<number> {
  if (typeof v === "number" ? Number.isFinite(v) && v > 0 : /^\s*\d+(\.\d+)?\s*$/.test(v)) {
    return {
      ok: false,
      expected: "a size with a unit, such as 512m or 2g (a bare number is ambiguous)",
    };
  }
  const m = typeof v === "string" ? MEMORY_RE.exec(v.trim()) : null;
  if (!m) return { ok: false, expected: MEMORY_EXPECTED };
  const unit = MEMORY_UNITS[m[2]![0]!.toLowerCase()]!;
  const bytes = Math.floor(Number(m[1]) * unit);
  if (bytes < MIN_MEMORY) {
    return { ok: false, expected: "at least 6m (6 MiB), the smallest memory limit the engine accepts" };
  }
  if (!Number.isSafeInteger(bytes)) return { ok: false, expected: `${MEMORY_EXPECTED}, below 8p` };
  return { ok: true, value: bytes };
}

/** The engine's smallest CPU limit: NanoCpus below 1e7 are refused (moby daemon/daemon_unix.go). */
export const MIN_CPUS = 0.01;

const CPUS_EXPECTED = "a number of CPUs such as 1.5 or 2";

/**
 * A CPU limit as a number of CPUs (`1.5`, `"0.5"`, `2`); the caller turns it into `NanoCpus` (× 1e9).
 * With `hostCpus`, more CPUs than the host has is an error, as the engine would refuse it ("range of CPUs
 * is from 0.01 to N.00, as there are only N CPUs available"); without it that check is left to the caller.
 */
export function parseCpus(v: string | number, hostCpus?: number): ParseResult<number> {
  let n: number;
  if (typeof v === "number") {
    n = v;
  } else {
    // Plain decimals only: no "1e3", "0x2", "50%", "2 cpus".
    const s = v.trim();
    if (!/^(\d+(\.\d*)?|\.\d+)$/.test(s)) return { ok: false, expected: CPUS_EXPECTED };
    n = Number(s);
  }
  if (!Number.isFinite(n)) return { ok: false, expected: CPUS_EXPECTED };
  if (n < MIN_CPUS) {
    return { ok: false, expected: `at least ${MIN_CPUS}, the smallest CPU limit the engine accepts` };
  }
  if (hostCpus !== undefined && n > hostCpus) {
    return {
      ok: false,
      expected: `at most ${hostCpus}: this host has ${hostCpus} CPU${hostCpus === 1 ? "" : "s"}`,
    };
  }
  return { ok: true, value: n };
}

/**
 * The smallest pids limit moat accepts. The count covers threads as well as processes: the init, a shell
 * and a short pipeline already take several, and one multi-threaded runtime (node, deno, a JVM, a Go
 * program) starts ten or more threads before doing anything. Below 16, commands fail with "Resource
 * temporarily unavailable" on fork or thread creation rather than with a clear message, so a smaller value
 * is taken for a mistake (a lost digit of 1024, say).
 */
export const MIN_PIDS = 16;

/**
 * The largest: the Linux kernel's `PID_MAX_LIMIT` on 64-bit (2^22); no system can have more processes at
 * once, so a higher limit would mean nothing.
 */
export const MAX_PIDS = 4194304;

/** A pids limit: a whole number from `MIN_PIDS` to `MAX_PIDS`. There is no "unlimited": use the maximum. */
export function parsePids(v: string | number): ParseResult<number> {
  const expected = `a whole number of processes from ${MIN_PIDS} to ${MAX_PIDS}, such as 1024`;
  let n: number;
  if (typeof v === "number") {
    n = v;
  } else {
    const s = v.trim();
    if (!/^\d+$/.test(s)) return { ok: false, expected };
    n = Number(s);
  }
  if (!Number.isInteger(n) || n < MIN_PIDS || n > MAX_PIDS) return { ok: false, expected };
  return { ok: true, value: n };
}
