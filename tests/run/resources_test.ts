import assert from "node:assert/strict";
import {
  MAX_PIDS,
  MIN_MEMORY,
  MIN_PIDS,
  parseCpus,
  parseMemory,
  parsePids,
} from "../../lib/run/resources.ts";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

const memoryOk: [string | number, number][] = [
  ["512m", 512 * MiB],
  ["2g", 2 * GiB],
  ["2G", 2 * GiB],
  ["1.5g", 1.5 * GiB],
  ["8192k", 8 * MiB],
  ["2gb", 2 * GiB],
  ["2GB", 2 * GiB],
  ["2GiB", 2 * GiB],
  ["512MiB", 512 * MiB],
  ["1t", 1024 * GiB],
  ["6m", MIN_MEMORY],
  ["6291456b", MIN_MEMORY],
  ["2 g", 2 * GiB],
  [" 2g ", 2 * GiB],
  // A fraction of a byte is dropped, as docker drops it.
  ["6.0000001m", MIN_MEMORY],
];
for (const [input, bytes] of memoryOk) {
  Deno.test(`parseMemory reads ${JSON.stringify(input)} as ${bytes} bytes`, () => {
    assert.deepEqual(parseMemory(input), { ok: true, value: bytes });
  });
}

const memoryBad: [string | number, RegExp][] = [
  [2, /with a unit.*bare number is ambiguous/],
  [2147483648, /bare number/],
  ["2", /bare number/],
  ["1.5", /bare number/],
  ["0", /bare number/],
  [0, /^a size such as 512m or 2g$/],
  [-1, /^a size such as 512m or 2g$/],
  [Infinity, /^a size such as 512m or 2g$/],
  ["0g", /at least 6m/],
  ["5m", /at least 6m \(6 MiB\)/],
  ["1024k", /at least 6m/],
  ["6291455b", /at least 6m/],
  ["-2g", /^a size such as 512m or 2g$/],
  ["2x", /^a size such as 512m or 2g$/],
  ["g", /^a size such as 512m or 2g$/],
  ["", /^a size such as 512m or 2g$/],
  ["two gigs", /^a size such as 512m or 2g$/],
  ["2gig", /^a size such as 512m or 2g$/],
  ["2ib", /^a size such as 512m or 2g$/],
  ["1.2.3g", /^a size such as 512m or 2g$/],
  [".5g", /^a size such as 512m or 2g$/],
  ["2  g", /^a size such as 512m or 2g$/],
  ["8p", /below 8p/],
];
for (const [input, expected] of memoryBad) {
  Deno.test(`parseMemory refuses ${JSON.stringify(input)}`, () => {
    const r = parseMemory(input);
    assert.equal(r.ok, false, JSON.stringify(r));
    if (!r.ok) assert.match(r.expected, expected);
  });
}

const cpusOk: [string | number, number | undefined, number][] = [
  [1.5, undefined, 1.5],
  ["0.5", undefined, 0.5],
  [2, undefined, 2],
  ["2", undefined, 2],
  [".5", undefined, 0.5],
  ["3.", undefined, 3],
  [0.01, undefined, 0.01],
  [" 1 ", undefined, 1],
  [64, undefined, 64],
  [4, 4, 4],
  ["0.01", 1, 0.01],
];
for (const [input, host, value] of cpusOk) {
  Deno.test(`parseCpus reads ${JSON.stringify(input)} as ${value} CPUs (host: ${host ?? "unknown"})`, () => {
    assert.deepEqual(parseCpus(input, host), { ok: true, value });
  });
}

const cpusBad: [string | number, number | undefined, RegExp][] = [
  [0, undefined, /at least 0.01/],
  ["0", undefined, /at least 0.01/],
  [0.009, undefined, /at least 0.01/],
  [-1, undefined, /at least 0.01/],
  [NaN, undefined, /^a number of CPUs such as 1.5 or 2$/],
  [Infinity, undefined, /^a number of CPUs such as 1.5 or 2$/],
  ["-1", undefined, /^a number of CPUs/],
  ["1e3", undefined, /^a number of CPUs/],
  ["0x2", undefined, /^a number of CPUs/],
  ["50%", undefined, /^a number of CPUs/],
  ["2 cpus", undefined, /^a number of CPUs/],
  ["", undefined, /^a number of CPUs/],
  [".", undefined, /^a number of CPUs/],
  [4.5, 4, /^at most 4: this host has 4 CPUs$/],
  ["5", 4, /this host has 4 CPUs/],
  [2, 1, /^at most 1: this host has 1 CPU$/],
];
for (const [input, host, expected] of cpusBad) {
  Deno.test(`parseCpus refuses ${JSON.stringify(input)} (host: ${host ?? "unknown"})`, () => {
    const r = parseCpus(input, host);
    assert.equal(r.ok, false, JSON.stringify(r));
    if (!r.ok) assert.match(r.expected, expected);
  });
}

const pidsOk: [string | number, number][] = [
  [1024, 1024],
  ["1024", 1024],
  [MIN_PIDS, MIN_PIDS],
  [MAX_PIDS, MAX_PIDS],
  [" 64 ", 64],
  // YAML reads 1e3 as the float 1000: still a whole number.
  [1e3, 1000],
];
for (const [input, value] of pidsOk) {
  Deno.test(`parsePids reads ${JSON.stringify(input)} as ${value}`, () => {
    assert.deepEqual(parsePids(input), { ok: true, value });
  });
}

const pidsBad: (string | number)[] = [
  0,
  -1,
  1,
  MIN_PIDS - 1,
  MAX_PIDS + 1,
  1.5,
  NaN,
  Infinity,
  "15",
  "-1",
  "1.5",
  "1e3",
  "lots",
  "",
];
for (const input of pidsBad) {
  Deno.test(`parsePids refuses ${JSON.stringify(input)}`, () => {
    assert.deepEqual(parsePids(input), {
      ok: false,
      expected: "a whole number of processes from 16 to 4194304, such as 1024",
    });
  });
}
