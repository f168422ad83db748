/**
 * `deno task bench`: what moat costs over the docker CLI on the same engine. Runs each pair interleaved,
 * reports medians and ratios; it reports, never asserts. Targets (ratios of medians):
 *   moat run -- true  vs  docker run --rm --runtime=runsc IMAGE true   ≤ 1.0
 *   moat run --no-sandbox -- true  vs  docker run --rm IMAGE true       ≤ 1.0
 *   moat --version  vs  deno run of an empty script                     ≤ 1.5
 *   moat list --json (500 runs)  vs  docker ps -a --filter label=dev.moat.managed=true   ≤ 1.5
 * `MOAT_BENCH_ONLY=list` runs only the measures whose name contains that text.
 */
const root = new URL("../", import.meta.url).pathname;
const image = Deno.env.get("MOAT_BENCH_IMAGE") ?? "moat-test/busybox:latest";
const rounds = Number(Deno.env.get("MOAT_BENCH_ROUNDS") ?? "9");
const home = await Deno.makeTempDir({ prefix: "moat-bench-" });
const ws = await Deno.makeTempDir({ prefix: "moat-bench-ws-" });
const empty = `${home}/empty.ts`;
await Deno.writeTextFile(empty, "");

async function time(cmd: string, args: string[], env: Record<string, string> = {}): Promise<number> {
  const t0 = performance.now();
  const { code, stderr } = await new Deno.Command(cmd, {
    args,
    stdout: "null",
    stderr: "piped",
    env: { MOAT_HOME: home, ...env },
  }).output();
  const ms = performance.now() - t0;
  if (code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(stderr)}`);
  return ms;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

/**
 * 500 synthetic run records (as `moat run` writes them) in their own MOAT_HOME, for `list --json`: mostly
 * finished runs, some "running" ones whose owner is gone (so the owner check runs too).
 */
const manyHome = `${home}/many`;
for (let i = 0; i < 500; i++) {
  const id = i.toString(16).padStart(12, "0");
  const t = new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
  const inProgress = i % 50 === 0;
  const record = {
    schema: 1,
    id,
    name: i % 7 === 0 ? `bench-${i}` : null,
    workspace: ws,
    image,
    command: ["sh", "-c", "exit 0"],
    sandbox: "gvisor",
    runtime: "runsc",
    containerId: id.padEnd(64, "0"),
    state: inProgress ? "running" : "exited",
    exitCode: inProgress ? null : i % 3,
    signal: null,
    error: null,
    kept: false,
    removed: !inProgress,
    createdAt: t,
    startedAt: t,
    finishedAt: inProgress ? null : t,
    moatVersion: "bench",
    owner: { pid: 1, bootId: "bench-boot-id-that-is-not-this-one", startTicks: 1 },
  };
  await Deno.mkdir(`${manyHome}/runs/${id}`, { recursive: true });
  await Deno.writeTextFile(`${manyHome}/runs/${id}/run.json`, JSON.stringify(record, null, 2) + "\n");
}

const deno = Deno.execPath();
type Cmd = [string, string[], Record<string, string>?];
const moat = (args: string[]): Cmd => [deno, ["run", "-A", `${root}main.ts`, ...args]];
const pairs: {
  name: string;
  target: number;
  a: Cmd;
  b: Cmd;
}[] = [
  {
    name: "run true (gVisor)",
    target: 1.0,
    a: moat(["run", "--image", image, ws, "--", "true"]),
    b: ["docker", ["run", "--rm", "--runtime=runsc", image, "true"]],
  },
  {
    name: "run true (no sandbox)",
    target: 1.0,
    a: moat(["run", "--no-sandbox", "--image", image, ws, "--", "true"]),
    b: ["docker", ["run", "--rm", image, "true"]],
  },
  { name: "--version", target: 1.5, a: moat(["--version"]), b: [deno, ["run", empty]] },
  {
    name: "list --json (500 runs)",
    target: 1.5,
    a: [deno, moat(["list", "--json"])[1], { MOAT_HOME: manyHome }],
    b: ["docker", ["ps", "-a", "--filter", "label=dev.moat.managed=true"]],
  },
];
const only = Deno.env.get("MOAT_BENCH_ONLY") ?? "";

console.log(`| measure | moat median ms | baseline median ms | ratio | target |`);
console.log(`| --- | ---: | ---: | ---: | ---: |`);
for (const p of pairs.filter((p) => p.name.includes(only))) {
  const a: number[] = [], b: number[] = [];
  for (let i = 0; i < rounds; i++) {
    a.push(await time(p.a[0], p.a[1], p.a[2]));
    b.push(await time(p.b[0], p.b[1], p.b[2]));
  }
  const ratio = median(a) / median(b);
  console.log(
    `| ${p.name} | ${median(a).toFixed(0)} | ${median(b).toFixed(0)} | ${ratio.toFixed(2)} | ≤ ${p.target} ${
      ratio <= p.target ? "✓" : "✗"
    } |`,
  );
}
await Deno.remove(home, { recursive: true });
await Deno.remove(ws, { recursive: true });
