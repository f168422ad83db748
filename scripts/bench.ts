/**
 * `deno task bench`: what moat costs over the docker CLI (and over Deno itself) on the same engine, in one
 * run (issue 6). The commands of each measure run interleaved (A, B, A, B …), after one untimed warm-up
 * each outside the streaming measures, and every ratio is one of medians. It reports, never asserts: each row is marked ✓ or ✗ against
 * its target. The table goes to stdout and, for a complete run, to docs/performance.md with the machine,
 * engine and versions it came from; progress goes to stderr.
 *
 * Environment:
 *   MOAT_BENCH_ROUNDS   rounds for every measure (default: per measure, many for the fast ones)
 *   MOAT_BENCH_SCALE    multiplies the streamed sizes (512 MiB, 1 GiB, 128 MiB), e.g. 0.01 while developing
 *   MOAT_BENCH_ONLY     runs only the measures whose name contains this text
 *   MOAT_BENCH_IMAGE    the image (default moat-test/busybox:latest)
 *   MOAT_BENCH_OUT      where to write the report; a partial run (ONLY, SCALE or ROUNDS set) writes nowhere
 *                       unless this is given, so a quick run never replaces the full one in the docs
 */
const root = new URL("../", import.meta.url).pathname;
const env = (k: string) => Deno.env.get(k);
const image = env("MOAT_BENCH_IMAGE") ?? "moat-test/busybox:latest";
const roundsOverride = env("MOAT_BENCH_ROUNDS") ? Number(env("MOAT_BENCH_ROUNDS")) : undefined;
const scale = Number(env("MOAT_BENCH_SCALE") ?? "1");
const only = env("MOAT_BENCH_ONLY") ?? "";
const partial = roundsOverride !== undefined || scale !== 1 || only !== "";
const outPath = env("MOAT_BENCH_OUT") ?? (partial ? undefined : `${root}docs/performance.md`);
if (roundsOverride !== undefined && !(Number.isInteger(roundsOverride) && roundsOverride > 0)) {
  throw new Error(`MOAT_BENCH_ROUNDS must be a positive integer, got "${env("MOAT_BENCH_ROUNDS")}"`);
}
if (!(scale > 0)) {
  throw new Error(`MOAT_BENCH_SCALE must be a positive number, got "${env("MOAT_BENCH_SCALE")}"`);
}

const MiB = 2 ** 20;
/** A streamed size scaled by MOAT_BENCH_SCALE, a whole number of MiB (at least 1). */
const sized = (mib: number) => Math.max(1, Math.round(mib * scale)) * MiB;
const THROUGHPUT_BYTES = sized(512);
const RSS_BIG_BYTES = sized(1024);
const RSS_SMALL_BYTES = sized(128);
const DOWNLOAD_BYTES = sized(256);

const decoder = new TextDecoder();
const deno = Deno.execPath();
const progress = (line: string) => console.error(`bench: ${line}`);

// ---------------------------------------------------------------------------------------------------------
// Commands and timing

interface Cmd {
  /** Short label for progress and errors. */
  label: string;
  cmd: string;
  args: string[];
  env?: Record<string, string>;
  /** Runs after each timed round, untimed (e.g. deleting the run records a round wrote). */
  after?: () => Promise<void>;
}

interface Sample {
  ms: number;
  /** Peak resident set size in bytes, when measured. */
  rssBytes?: number;
}

/** Run `c` once with stdout to /dev/null; the wall time, and the peak RSS when `rss` is asked for. */
async function runOnce(c: Cmd, work: string, rss: boolean): Promise<Sample> {
  let cmd = c.cmd, args = c.args, rssFile: string | undefined;
  if (rss && timeBin) {
    rssFile = `${work}/rss.txt`;
    [cmd, args] = [timeBin, ["-f", "%M", "-o", rssFile, c.cmd, ...c.args]];
  }
  const t0 = performance.now();
  const child = new Deno.Command(cmd, {
    args,
    cwd: work,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: c.env ?? {},
  }).spawn();
  const polled = rss && !timeBin ? pollPeakRss(child.pid) : undefined;
  const { code, stderr } = await child.output();
  const ms = performance.now() - t0;
  const peak = await polled?.stop();
  await c.after?.();
  if (code !== 0) {
    throw new Error(`${c.label} exited ${code}: ${decoder.decode(stderr).trim().slice(-2000)}`);
  }
  if (!rss) return { ms };
  if (rssFile) {
    const kib = Number((await Deno.readTextFile(rssFile)).trim().split("\n").pop());
    return { ms, rssBytes: kib * 1024 };
  }
  return { ms, rssBytes: peak };
}

/**
 * Fallback without /usr/bin/time: poll VmHWM (the process's own peak RSS, never decreasing) every 20 ms.
 * The last reading before exit can miss a late peak; /usr/bin/time (Debian package `time`) does not.
 */
function pollPeakRss(pid: number): { stop(): Promise<number | undefined> } {
  let peak: number | undefined;
  const read = async () => {
    try {
      const m = (await Deno.readTextFile(`/proc/${pid}/status`)).match(/^VmHWM:\s+(\d+) kB/m);
      if (m) peak = Math.max(peak ?? 0, Number(m[1]) * 1024);
    } catch { /* gone */ }
  };
  const timer = setInterval(read, 20);
  return {
    stop() {
      clearInterval(timer);
      return Promise.resolve(peak);
    },
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/**
 * Run every command of a measure once untimed (module and page caches), then `rounds` rounds in which each
 * command runs once, in order: A, B, C, A, B, C … so a change in machine load touches all of them alike.
 * The streaming measures skip the warm-up (`warmUp: false`): a gigabyte more proves nothing, and the
 * caches they need are the ones the measures before them (or any earlier moat run) already filled.
 */
async function interleave(
  name: string,
  cmds: Record<string, Cmd>,
  rounds: number,
  opts: { rss?: boolean; warmUp?: boolean } = {},
): Promise<Record<string, Sample[]>> {
  const { rss = false, warmUp = true } = opts;
  const out: Record<string, Sample[]> = {};
  for (const [key, c] of Object.entries(cmds)) {
    out[key] = [];
    if (!warmUp) continue;
    progress(`${name}: warm-up ${c.label}`);
    await runOnce(c, tmp, rss);
  }
  for (let i = 0; i < rounds; i++) {
    progress(`${name}: round ${i + 1}/${rounds}`);
    for (const [key, c] of Object.entries(cmds)) out[key]!.push(await runOnce(c, tmp, rss));
  }
  return out;
}

const medianMs = (s: Sample[]) => median(s.map((x) => x.ms));
const medianRss = (s: Sample[]) => median(s.map((x) => x.rssBytes ?? NaN));

// ---------------------------------------------------------------------------------------------------------
// Report rows

interface Row {
  measure: string;
  moat: string;
  baseline: string;
  /** The compared quantity, e.g. "1.07" (a ratio) or "41 MiB". */
  value: string;
  target: string;
  met: boolean | undefined;
}

const rows: Row[] = [];
const notes: string[] = [];

/** A row comparing two medians of time: moat ÷ baseline, lower is better. */
/** A row comparing two medians of time; without a target it is there to be read, not judged. */
function timeRow(measure: string, a: Sample[], b: Sample[], target: number | undefined) {
  const [ma, mb] = [medianMs(a), medianMs(b)];
  const ratio = ma / mb;
  rows.push({
    measure,
    moat: `${ma.toFixed(0)} ms`,
    baseline: `${mb.toFixed(0)} ms`,
    value: ratio.toFixed(2),
    target: target === undefined ? "—" : `≤ ${target.toFixed(1)}`,
    met: target === undefined ? undefined : ratio <= target,
  });
}

/** Wait until a network made ahead (lib/run/standby.ts) is ready in `moatHome`: made after an --allow run. */
async function standbyReady(moatHome: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      for (const e of Deno.readDirSync(`${moatHome}/standby`)) if (e.name.endsWith(".json")) return;
    } catch { /* not made yet */ }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("no network was made ahead within 60 s of an --allow run");
}

/** Wait until a sandbox booted ahead of the next warm run (lib/run/warm.ts) is ready in `moatHome`. */
async function warmReady(moatHome: string): Promise<string> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      for (const e of Deno.readDirSync(`${moatHome}/standby`)) {
        if (!e.name.endsWith(".json")) continue;
        const s = JSON.parse(Deno.readTextFileSync(`${moatHome}/standby/${e.name}`));
        if (s.sandbox) return s.sandbox;
      }
    } catch { /* not made yet, or being taken */ }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("no sandbox was booted ahead within 60 s of a warm run");
}

/**
 * Wait until the next warm run's sandbox is booted in `moatHome` and the background work after the last run
 * is over (the `moat standby` processes of that home, found in /proc, have exited: they also remove the
 * sandbox the run used), so that it does not share the machine with the next timed round.
 */
async function warmSettled(moatHome: string): Promise<void> {
  await warmReady(moatHome);
  const deadline = Date.now() + 60_000;
  const busy = () => {
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      try {
        if (!Deno.readTextFileSync(`/proc/${e.name}/cmdline`).includes("\0standby\0")) continue;
        if (Deno.readTextFileSync(`/proc/${e.name}/environ`).includes(`\0MOAT_HOME=${moatHome}\0`)) {
          return true;
        }
      } catch { /* gone meanwhile */ }
    }
    return false;
  };
  while (busy()) {
    if (Date.now() > deadline) throw new Error("moat standby did not finish within 60 s of a warm run");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Remove the networks and sandboxes made ahead in `moatHome`: the bench's home goes, they would stay. */
async function removeStandbys(moatHome: string): Promise<void> {
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(`${moatHome}/standby`)];
  } catch { /* none */ }
  for (const e of entries.filter((e) => e.name.endsWith(".json"))) {
    const s = JSON.parse(Deno.readTextFileSync(`${moatHome}/standby/${e.name}`));
    const steps = [["rm", "-f", s.sandbox], ["rm", "-f", s.relayId], ["network", "rm", s.network]];
    for (const args of steps.filter((a) => a[2] !== undefined)) {
      await new Deno.Command("docker", { args, stdout: "null", stderr: "null" }).output();
    }
    await Deno.remove(`${moatHome}/standby/${e.name}`).catch(() => {});
  }
}

/** What a container's cgroup says it uses (`docker stats`), in bytes. */
async function memoryOf(container: string): Promise<number> {
  const out = await new Deno.Command("docker", {
    args: ["stats", "--no-stream", "--format", "{{.MemUsage}}", container],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const m = /^([\d.]+)\s*([KMG]i?B|B)/.exec(decoder.decode(out.stdout).trim());
  if (!m) throw new Error(`docker stats said: ${decoder.decode(out.stdout)}${decoder.decode(out.stderr)}`);
  const unit = { B: 1, KiB: 1024, MiB: MiB, GiB: 1024 * MiB, kB: 1e3, MB: 1e6, GB: 1e9 }[m[2]!] ?? 1;
  return Number(m[1]) * unit;
}

function failedRow(measure: string, err: unknown) {
  const msg = err instanceof Error ? err.message : String(err);
  progress(`${measure}: FAILED: ${msg}`);
  rows.push({ measure, moat: "failed", baseline: "", value: "", target: "", met: undefined });
  notes.push(`**${measure}** failed: \`${msg.split("\n")[0]!.slice(0, 300)}\``);
}

const mibs = (bytes: number) => `${(bytes / MiB).toFixed(bytes < 10 * MiB ? 1 : 0)} MiB`;
const sizeLabel = (bytes: number) => bytes >= 1024 * MiB ? `${bytes / (1024 * MiB)} GiB` : mibs(bytes);

// ---------------------------------------------------------------------------------------------------------
// Setup: temp dirs, the bundle, records

const tmp = await Deno.makeTempDir({ prefix: "moat-bench-" });
/** The workspace every run mounts; also the commands' working directory. */
const ws = `${tmp}/ws`;
/** MOAT_HOME of the runs; its records are deleted after each streaming round. */
const home = `${tmp}/home`;
/** MOAT_HOME with nothing in it, for `moat list` (empty). */
const emptyHome = `${tmp}/empty-home`;
/** MOAT_HOME with `n` synthetic records (`writeManyRecords`). */
const manyHome = (n: number) => `${tmp}/many-${n}`;
const emptyScript = `${tmp}/empty.ts`;
/** A copy of dist/moat.js outside the repository, as users have it: no deno.json or lock file beside it. */
const bundleCopy = `${tmp}/moat.js`;
/** Label on every container the bench starts with the docker CLI, so cleanup can find exactly those. */
const benchLabel = `dev.moat.bench=${tmp.split("/").pop()}`;
for (const d of [ws, home, emptyHome]) await Deno.mkdir(d, { recursive: true });
await Deno.writeTextFile(emptyScript, "");

const timeBin = await which("time");

async function which(name: string): Promise<string | undefined> {
  for (const dir of (env("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      const st = await Deno.stat(`${dir}/${name}`);
      if (st.isFile && st.mode !== null && (st.mode & 0o111) !== 0) return `${dir}/${name}`;
    } catch { /* not here */ }
  }
  return undefined;
}

/** stdout of a command, trimmed; `undefined` when it cannot run or fails. */
async function capture(cmd: string, args: string[], cwd = root): Promise<string | undefined> {
  try {
    const r = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "null" }).output();
    return r.code === 0 ? decoder.decode(r.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

/** A sparse file of `bytes` zero bytes in the workspace: reads come from the page cache, not the disk. */
async function bigFile(name: string, bytes: number): Promise<string> {
  const f = await Deno.open(`${ws}/${name}`, { write: true, create: true, truncate: true });
  await f.truncate(bytes);
  f.close();
  return `/workspace/${name}`;
}

/** Delete the run records a streaming round wrote (its output.bin is as big as the stream). */
async function clearRuns() {
  await Deno.remove(`${home}/runs`, { recursive: true }).catch(() => {});
}

/**
 * A MOAT_HOME of `n` synthetic runs: 10 of them "running" with an owner that is gone (so the owner check
 * runs too), the others finished, so that homes of 500 and 5,000 runs differ only in their finished runs.
 * Its `runs/` is dated a minute back, as in a home whose last run was made a while ago (a listing of `runs/`
 * is remembered only once it has been left alone; lib/store/run_index.ts). The index is made by the first
 * `moat list`, the untimed warm-up.
 */
async function writeManyRecords(n: number): Promise<string> {
  const home = manyHome(n);
  for (let i = 0; i < n; i++) {
    const id = i.toString(16).padStart(12, "0");
    const t = new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
    const inProgress = i % (n / 10) === 0;
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
    await Deno.mkdir(`${home}/runs/${id}`, { recursive: true });
    await Deno.writeTextFile(`${home}/runs/${id}/run.json`, JSON.stringify(record, null, 2) + "\n");
  }
  const past = new Date(Date.now() - 60_000);
  await Deno.utime(`${home}/runs`, past, past);
  return home;
}

async function buildBundle(): Promise<number> {
  progress("building dist/moat.js (deno task bundle)");
  const r = await new Deno.Command(deno, {
    args: ["run", "-A", `${root}scripts/bundle.ts`],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (r.code !== 0) throw new Error(`deno task bundle failed: ${decoder.decode(r.stderr).trim()}`);
  await Deno.copyFile(`${root}dist/moat.js`, bundleCopy);
  return (await Deno.stat(bundleCopy)).size;
}

/** Remove the containers this bench made that are still there (an interrupted or failed command). */
async function cleanupContainers() {
  const ids = new Set<string>();
  for (const label of [benchLabel, `dev.moat.workspace=${ws}`]) {
    const out = await capture("docker", ["ps", "-aq", "--filter", `label=${label}`]);
    for (const id of out?.split("\n").filter(Boolean) ?? []) ids.add(id);
  }
  if (ids.size) {
    progress(`removing ${ids.size} leftover container(s)`);
    await capture("docker", ["rm", "-f", ...ids]);
  }
}

// ---------------------------------------------------------------------------------------------------------
// The commands

const moatEnv = { MOAT_HOME: home };
const moatSrc = (args: string[], e: Record<string, string> = moatEnv): Cmd => ({
  label: `moat ${args.join(" ")}`,
  cmd: deno,
  args: ["run", "-A", `${root}main.ts`, ...args],
  env: e,
});
const moatBundle = (args: string[], e: Record<string, string> = moatEnv): Cmd => ({
  label: `moat.js ${args.join(" ")}`,
  cmd: deno,
  args: ["run", "-A", bundleCopy, ...args],
  env: e,
});
const docker = (args: string[], after?: () => Promise<void>): Cmd => ({
  label: `docker ${args.join(" ")}`,
  cmd: "docker",
  args,
  ...(after ? { after } : {}),
});

/**
 * The flags that give `docker run` the container moat creates: its hardened profile (lib/run/profile.ts),
 * the workspace mount and working directory, and the workspace owner as user.
 */
async function profileFlags(gvisor: boolean): Promise<string[]> {
  const { KEPT_CAPABILITIES, DEFAULT_PIDS, GVISOR_MIN_HOST_PIDS } = await import("../lib/run/profile.ts");
  const st = await Deno.stat(ws);
  return [
    "--init",
    "--cap-drop",
    "ALL",
    ...KEPT_CAPABILITIES.flatMap((c) => ["--cap-add", c]),
    "--security-opt",
    "no-new-privileges",
    "--pids-limit",
    String(gvisor ? Math.max(DEFAULT_PIDS, GVISOR_MIN_HOST_PIDS) : DEFAULT_PIDS),
    ...(gvisor ? ["--ulimit", `nproc=${DEFAULT_PIDS}:${DEFAULT_PIDS}`] : []),
    "--mount",
    `type=bind,source=${ws},target=/workspace`,
    "-w",
    "/workspace",
    "-u",
    `${st.uid}:${st.gid}`,
  ];
}

// ---------------------------------------------------------------------------------------------------------
// The measures

interface Measure {
  name: string;
  run(): Promise<void>;
}

const rounds = (fallback: number) => roundsOverride ?? fallback;
let bundleBytes: number | undefined;
async function needBundle() {
  bundleBytes ??= await buildBundle();
}

const measures: Measure[] = [
  {
    name: "run true",
    async run() {
      const r = rounds(11);
      for (const gvisor of [true, false]) {
        const what = gvisor ? "gVisor" : "no sandbox";
        const runtime = gvisor ? ["--runtime=runsc"] : [];
        const cmds = {
          // As typed: the run's own network, nothing allowed, made ahead by the run before (waited for,
          // untimed, after each run, as in the network measure).
          moat: {
            ...moatSrc(["run", ...(gvisor ? [] : ["--no-sandbox"]), "--image", image, ws, "--", "true"]),
            after: () => standbyReady(home),
          },
          plain: docker(["run", "--rm", "--label", benchLabel, ...runtime, image, "true"]),
          profile: docker([
            "run",
            "--rm",
            "--label",
            benchLabel,
            ...runtime,
            ...await profileFlags(gvisor),
            image,
            "true",
          ]),
        };
        try {
          const s = await interleave(`run true (${what})`, cmds, r);
          timeRow(`\`moat run -- true\` (${what}) vs \`docker run --rm\``, s.moat!, s.plain!, 1.0);
          timeRow(
            `\`moat run -- true\` (${what}) vs \`docker run --rm\` + moat's profile`,
            s.moat!,
            s.profile!,
            1.0,
          );
        } catch (err) {
          failedRow(`moat run -- true (${what})`, err);
        }
        await clearRuns();
      }
    },
  },
  {
    name: "network",
    async run() {
      // The allowlist network's setup and removal (its own network and relay), on the shortest run: as a run
      // finds it, made ahead (after each such run, untimed, until the next one is ready: the comparison is
      // of the runs, not of the background work between them), and made by the run itself.
      const allowArgs = ["run", "--image", image, "--allow", "bench.test", ws, "--", "true"];
      const cmds = {
        allow: { ...moatSrc(allowArgs), after: () => standbyReady(home) },
        open: moatSrc(["run", "--network", "default", "--image", image, ws, "--", "true"]),
      };
      const cold = {
        allow: moatSrc(allowArgs, { ...moatEnv, MOAT_STANDBY: "0" }),
        open: moatSrc(["run", "--network", "default", "--image", image, ws, "--", "true"]),
      };
      try {
        const s = await interleave("network: run true", cmds, rounds(11));
        timeRow(
          "`moat run --allow HOST -- true` vs `moat run --network default -- true` (gVisor; network made ahead)",
          s.allow!,
          s.open!,
          1.3,
        );
        const c = await interleave("network: run true, made by the run", cold, rounds(11));
        timeRow(
          "the same with `MOAT_STANDBY=0` (each run makes its own network and relay)",
          c.allow!,
          c.open!,
          undefined,
        );
      } catch (err) {
        failedRow("moat run --allow HOST -- true", err);
      } finally {
        await removeStandbys(home);
      }
      await clearRuns();
      try {
        await downloadRows();
      } catch (err) {
        failedRow("download through the policy point", err);
      }
      await clearRuns();
    },
  },
  {
    name: "audit",
    async run() {
      // What the audit log costs a run with many network decisions. Each decision's entry is written on the
      // policy point's path, in moat's event loop, between decisions: its time is what the run loses. So:
      // that time, measured in a process of its own (scripts/bench_decisions.ts: N DNS decisions through a
      // relay and the policy point on loopback, with the audit log and without), against a real run making
      // as many decisions (Python's getaddrinfo in a loop, under gVisor, its A and AAAA questions).
      const n = Math.max(1000, Math.round(10_000 * scale));
      const decisions = (mode: string): Cmd => ({
        label: `bench_decisions.ts ${mode} ${n}`,
        cmd: deno,
        args: ["run", "-A", `${root}scripts/bench_decisions.ts`, mode, String(n)],
      });
      const clientsImage = env("MOAT_BENCH_CLIENTS_IMAGE") ?? "moat-test/clients:latest";
      const loop =
        `import socket\nfor i in range(${n / 2}):\n  try: socket.getaddrinfo("a.bench.test", 80)\n  ` +
        "except Exception: pass\n";
      try {
        const d = await interleave(
          "audit: decisions",
          { audit: decisions("audit"), none: decisions("none") },
          rounds(5),
        );
        timeRow(
          `${n} policy decisions in one process: with the audit log vs without (the log's cost alone; no target)`,
          d.audit!,
          d.none!,
          undefined,
        );
        const cost = medianMs(d.audit!) - medianMs(d.none!);
        const run = await interleave("audit: run", {
          run: moatSrc(
            ["run", "--image", clientsImage, "--allow", "a.bench.test", ws, "--", "python3", "-c", loop],
            { ...moatEnv, MOAT_STANDBY: "0" },
          ),
        }, rounds(3));
        const t = medianMs(run.run!);
        rows.push({
          measure:
            `a run with ${n} network decisions (gVisor): with the audit log vs without (its cost above taken out)`,
          moat: `${t.toFixed(0)} ms`,
          baseline: `${(t - cost).toFixed(0)} ms`,
          value: (t / (t - cost)).toFixed(2),
          target: "≤ 1.05",
          met: t / (t - cost) <= 1.05,
        });
      } catch (err) {
        failedRow("the audit log's cost", err);
      }
      await clearRuns();
    },
  },
  {
    name: "exec",
    async run() {
      // A command in a run that runs already: moat exec against docker exec into the same container.
      await needBundle();
      const moatOut = async (args: string[]) => {
        const r = await new Deno.Command(deno, {
          args: ["run", "-A", `${root}main.ts`, ...args],
          env: moatEnv,
          stdout: "piped",
          stderr: "piped",
        }).output();
        if (r.code !== 0) {
          throw new Error(`moat ${args.join(" ")} failed: ${decoder.decode(r.stderr).trim()}`);
        }
        return decoder.decode(r.stdout).trim();
      };
      let id: string | undefined;
      try {
        id = await moatOut(["run", "-d", "--image", image, ws, "--", "sleep", "3600"]);
        // The run's own container (its relay carries the same run id).
        const cid = JSON.parse(await Deno.readTextFile(`${home}/runs/${id}/run.json`)).containerId as string;
        const s = await interleave("exec", {
          src: moatSrc(["exec", id, "--", "true"]),
          bundle: moatBundle(["exec", id, "--", "true"]),
          docker: docker(["exec", cid, "true"]),
        }, rounds(11));
        timeRow(
          "`moat exec RUN -- true` (main.ts) vs `docker exec CONTAINER true` (gVisor)",
          s.src!,
          s.docker!,
          1.0,
        );
        timeRow(
          "`moat exec RUN -- true` (dist/moat.js) vs `docker exec CONTAINER true` (gVisor)",
          s.bundle!,
          s.docker!,
          1.0,
        );
      } catch (err) {
        failedRow("moat exec", err);
      } finally {
        if (id) await moatOut(["stop", id]).catch(() => {});
        await clearRuns();
      }
    },
  },
  {
    name: "warm",
    async run() {
      // A run that takes the sandbox booted ahead of it (`--warm`, as typed: the allow-list network, made
      // ahead with the sandbox on it), against docker run of the same command under gVisor. After each warm
      // run the bench waits, untimed, until the next sandbox is booted: the comparison is of the runs, not of
      // the background work between them.
      await needBundle();
      const warmArgs = ["run", "--warm", "--image", image, ws, "--", "true"];
      const cmds = {
        src: { ...moatSrc(warmArgs), after: () => warmSettled(home) },
        bundle: { ...moatBundle(warmArgs), after: () => warmSettled(home) },
        docker: docker(["run", "--rm", "--label", benchLabel, "--runtime=runsc", image, "true"]),
      };
      try {
        // The first warm run of the settings starts cold and boots the sandbox of the next.
        const first = await new Deno.Command(deno, {
          args: ["run", "-A", `${root}main.ts`, ...warmArgs],
          env: moatEnv,
          stdout: "null",
          stderr: "piped",
        }).output();
        if (first.code !== 0) {
          throw new Error(`the first warm run failed: ${decoder.decode(first.stderr).trim()}`);
        }
        await warmReady(home);
        const s = await interleave("warm", cmds, rounds(11));
        timeRow(
          "`moat run --warm -- true` (main.ts; a sandbox booted ahead) vs `docker run --rm --runtime=runsc`",
          s.src!,
          s.docker!,
          0.3,
        );
        timeRow(
          "`moat run --warm -- true` (dist/moat.js; a sandbox booted ahead) vs `docker run --rm --runtime=runsc`",
          s.bundle!,
          s.docker!,
          0.3,
        );
        // What one waiting costs the host: its sandbox, and the relay of its network made ahead.
        const sandbox = await warmReady(home);
        const relay = JSON.parse(
          Deno.readTextFileSync(
            `${home}/standby/${
              [...Deno.readDirSync(`${home}/standby`)].find((e) => e.name.endsWith(".json"))!.name
            }`,
          ),
        ).relayId as string;
        const [sm, rm] = [await memoryOf(sandbox), await memoryOf(relay)];
        rows.push({
          measure:
            "memory of one waiting sandbox on the host (its cgroup, `docker stats`): the sandbox + its relay",
          moat: `${mibs(sm)} + ${mibs(rm)}`,
          baseline: "",
          value: mibs(sm + rm),
          target: "—",
          met: undefined,
        });
      } catch (err) {
        failedRow("moat run --warm -- true", err);
      } finally {
        await removeStandbys(home);
        await clearRuns();
      }
    },
  },
  {
    name: "startup",
    async run() {
      await needBundle();
      const r = rounds(21);
      const empty = { MOAT_HOME: emptyHome };
      const cmds = {
        deno: { label: "deno run empty.ts", cmd: deno, args: ["run", emptyScript] },
        srcVersion: moatSrc(["--version"], empty),
        bundleVersion: moatBundle(["--version"], empty),
        srcList: moatSrc(["list"], empty),
        bundleList: moatBundle(["list"], empty),
      };
      const s = await interleave("startup", cmds, r);
      timeRow("`moat --version` (main.ts) vs `deno run` empty script", s.srcVersion!, s.deno!, 1.5);
      timeRow("`moat --version` (dist/moat.js) vs `deno run` empty script", s.bundleVersion!, s.deno!, 1.5);
      timeRow("`moat list`, no runs (main.ts) vs `deno run` empty script", s.srcList!, s.deno!, 1.5);
      timeRow("`moat list`, no runs (dist/moat.js) vs `deno run` empty script", s.bundleList!, s.deno!, 1.5);
    },
  },
  {
    name: "throughput",
    async run() {
      const bytes = THROUGHPUT_BYTES;
      // Five, not three: a round is bound by gVisor's file reads, whose speed drifts by ±15 % between
      // minutes on a shared VM; the rounds are listed under the table so the spread can be seen.
      const r = rounds(5);
      const free = await freeBytes(tmp);
      // One round's record at a time (deleted after each round), plus room to spare.
      if (free !== undefined && free < 2 * bytes + 1024 * MiB) {
        throw new Error(
          `only ${mibs(free)} free under ${tmp}; the throughput measure needs ${mibs(2 * bytes)}`,
        );
      }
      const file = await bigFile("big", bytes);
      const cmds = {
        // On the engine's network, as the docker run it is compared with: this measures the output's path.
        moat: {
          ...moatSrc(["run", "--network", "default", "--image", image, ws, "--", "cat", file]),
          after: clearRuns,
        },
        docker: docker([
          "run",
          "--rm",
          "--label",
          benchLabel,
          "--runtime=runsc",
          "--mount",
          `type=bind,source=${ws},target=/workspace`,
          image,
          "cat",
          file,
        ]),
      };
      const s = await interleave(`throughput (${sizeLabel(bytes)})`, cmds, r, { warmUp: false });
      const [ma, mb] = [medianMs(s.moat!), medianMs(s.docker!)];
      const rate = (ms: number) => bytes / MiB / (ms / 1000);
      const ratio = rate(ma) / rate(mb);
      const walls = (xs: Sample[]) => xs.map((x) => (x.ms / 1000).toFixed(1)).join(", ");
      const spread = `Throughput rounds, wall time in s, in order: moat ${walls(s.moat!)}; docker ${
        walls(s.docker!)
      }.`;
      notes.push(spread);
      progress(spread);
      rows.push({
        measure: `stdout of \`cat\` over ${sizeLabel(bytes)} (gVisor) vs \`docker run --rm --runtime=runsc\``,
        moat: `${rate(ma).toFixed(0)} MiB/s`,
        baseline: `${rate(mb).toFixed(0)} MiB/s`,
        value: ratio.toFixed(2),
        target: "≥ 1.0",
        met: ratio >= 1.0,
      });
      await Deno.remove(`${ws}/big`);
    },
  },
  {
    name: "list",
    async run() {
      await needBundle();
      const few = { MOAT_HOME: await writeManyRecords(500) };
      const many = { MOAT_HOME: await writeManyRecords(5000) };
      const r = rounds(21);
      const cmds = {
        src: moatSrc(["list", "--json"], few),
        bundle: moatBundle(["list", "--json"], few),
        bundleMany: moatBundle(["list", "--json"], many),
        table: moatBundle(["list"], few),
        tableMany: moatBundle(["list"], many),
        docker: docker(["ps", "-a", "--filter", "label=dev.moat.managed=true"]),
      };
      const s = await interleave("list", cmds, r);
      const vs = "vs `docker ps -a --filter label=dev.moat.managed=true`";
      timeRow(`\`moat list --json\`, 500 runs (main.ts) ${vs}`, s.src!, s.docker!, 1.5);
      timeRow(`\`moat list --json\`, 500 runs (dist/moat.js) ${vs}`, s.bundle!, s.docker!, 1.5);
      timeRow(`\`moat list --json\`, 5,000 runs (dist/moat.js) ${vs}`, s.bundleMany!, s.docker!, 1.5);
      const flat = "5,000 runs vs 500 (10 in progress in both)";
      timeRow(`\`moat list --json\` (dist/moat.js), ${flat}`, s.bundleMany!, s.bundle!, 1.2);
      timeRow(`\`moat list\` table (dist/moat.js), ${flat}`, s.tableMany!, s.table!, 1.2);
    },
  },
  {
    name: "rss",
    async run() {
      const r = rounds(3);
      const big = await bigFile("big-rss", RSS_BIG_BYTES);
      const small = await bigFile("small-rss", RSS_SMALL_BYTES);
      const cmds = {
        // As typed (the policy point serves the run's network in the same process), with the network made
        // ahead for the next run waited for, untimed.
        big: {
          ...moatSrc(["run", "--image", image, ws, "--", "cat", big]),
          after: async () => (await clearRuns(), await standbyReady(home)),
        },
        small: {
          ...moatSrc(["run", "--image", image, ws, "--", "cat", small]),
          after: async () => (await clearRuns(), await standbyReady(home)),
        },
      };
      const s = await interleave("peak RSS", cmds, r, { rss: true, warmUp: false });
      const [pb, ps] = [medianRss(s.big!), medianRss(s.small!)];
      // Flat: streaming 8× more does not raise the peak by more than 8 MiB.
      const flat = pb - ps <= 8 * MiB;
      rows.push({
        measure: `peak RSS of \`moat run\` (gVisor) streaming ${sizeLabel(RSS_BIG_BYTES)} (and ${
          sizeLabel(RSS_SMALL_BYTES)
        })`,
        moat: `${mibs(pb)} (${mibs(ps)})`,
        baseline: "",
        value: `${mibs(pb)}, ${flat ? "flat" : "grows"} (${pb >= ps ? "+" : "−"}${mibs(Math.abs(pb - ps))})`,
        target: "≤ 80 MiB, flat",
        met: pb <= 80 * MiB && flat,
      });
      if (!timeBin) {
        notes.push("Peak RSS was polled from /proc/<pid>/status (VmHWM): `/usr/bin/time` is missing.");
      }
      await Deno.remove(`${ws}/big-rss`);
      await Deno.remove(`${ws}/small-rss`);
    },
  },
  {
    name: "config",
    async run() {
      // In-process: parsing moat.yaml, the part of a run that grows with the file (issue: 20,000 env keys
      // took 3.5 s, 50,000 took 26 s, from a scan of all earlier keys for each key).
      const { parseConfig } = await import("../lib/config/parse.ts");
      const r = rounds(5);
      const env = (n: number) => "env:\n" + Array.from({ length: n }, (_, i) => `  K${i}: ${i}\n`).join("");
      // The slowest kind of file within the limits: most lexemes per byte (tags), refused only at the end.
      let tags = "x:\n";
      while (tags.length < 1024 * 1024 - 100) tags += `  - ${"!t ".repeat(16)}a\n`;
      const texts = { small: env(12_500), large: env(50_000), tags };
      const time = (text: string) => {
        const t0 = performance.now();
        try {
          parseConfig(text, "bench/moat.yaml");
        } catch {
          // the tags file is refused, as it should be
        }
        return performance.now() - t0;
      };
      const samples = { small: [] as number[], large: [] as number[], tags: [] as number[] };
      for (const t of Object.values(texts)) time(t); // warm-up
      for (let i = 0; i < r; i++) {
        for (const [k, t] of Object.entries(texts)) samples[k as keyof typeof texts].push(time(t));
      }
      const [small, large, hostile] = [median(samples.small), median(samples.large), median(samples.tags)];
      const perKey = large / 4 / small;
      const kb = (t: string) => `${(new TextEncoder().encode(t).length / 1000).toFixed(0)} KB`;
      rows.push({
        measure: `parse \`moat.yaml\` with 50,000 \`env\` keys (${
          kb(texts.large)
        }) vs 12,500 keys: time per key`,
        moat: `${large.toFixed(0)} ms`,
        baseline: `${small.toFixed(0)} ms`,
        value: perKey.toFixed(2),
        target: "≤ 1.5",
        met: perKey <= 1.5,
      });
      rows.push({
        measure: `refuse a \`moat.yaml\` of ${kb(texts.tags)} of tags (the slowest file within the limits)`,
        moat: `${hostile.toFixed(0)} ms`,
        baseline: "",
        value: `${hostile.toFixed(0)} ms`,
        target: "",
        met: undefined,
      });
    },
  },
  {
    name: "bundle size",
    async run() {
      await needBundle();
      const kb = bundleBytes! / 1000;
      rows.push({
        measure: "size of dist/moat.js",
        moat: `${kb.toFixed(0)} KB`,
        baseline: "",
        value: `${kb.toFixed(0)} KB`,
        target: "≤ 300 KB",
        met: kb <= 300,
      });
    },
  },
];

/**
 * A download of DOWNLOAD_BYTES over HTTP from a server of the bench's on this host, timed inside the sandbox
 * (bash's /dev/tcp, so the run's own start and end are not in it): through moat's policy point (`--allow`,
 * the name pointed at the server by MOAT_TEST_UPSTREAMS) against straight to the host's docker0 address on
 * the default network. Needs an image with bash (MOAT_BENCH_NET_IMAGE, default debian:bookworm-slim).
 */
async function downloadRows() {
  const bytes = DOWNLOAD_BYTES;
  const netImage = env("MOAT_BENCH_NET_IMAGE") ?? "debian:bookworm-slim";
  const gateway = await capture("docker", [
    "network",
    "inspect",
    "bridge",
    "--format",
    "{{(index .IPAM.Config 0).Gateway}}",
  ]);
  if (!gateway) throw new Error("the default bridge network's gateway address could not be read");
  const chunk = new Uint8Array(MiB);
  const ac = new AbortController();
  const server = Deno.serve({ hostname: "0.0.0.0", port: 0, signal: ac.signal, onListen() {} }, () => {
    let left = bytes;
    return new Response(
      new ReadableStream({
        pull(c) {
          if (left <= 0) return c.close();
          const n = Math.min(left, chunk.byteLength);
          c.enqueue(chunk.subarray(0, n));
          left -= n;
        },
      }),
      { headers: { "content-length": String(bytes) } },
    );
  });
  const script = (host: string, port: number) =>
    `exec 3<>/dev/tcp/${host}/${port} && s=$(date +%s%N) && ` +
    `printf 'GET /blob HTTP/1.1\\r\\nHost: ${host}\\r\\nConnection: close\\r\\n\\r\\n' >&3 && ` +
    `n=$(cat <&3 | wc -c) && echo "$n $(( ($(date +%s%N) - s) / 1000000 ))"`;
  const once = async (args: string[], extraEnv: Record<string, string>) => {
    const r = await new Deno.Command(deno, {
      args: ["run", "-A", `${root}main.ts`, "run", "--image", netImage, ...args],
      cwd: tmp,
      env: { ...moatEnv, ...extraEnv },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const [got, ms] = decoder.decode(r.stdout).trim().split(" ").map(Number);
    if (r.code !== 0 || !(got! >= bytes) || !(ms! > 0)) {
      throw new Error(`download run failed (exit ${r.code}): ${decoder.decode(r.stderr).trim().slice(-300)}`);
    }
    await clearRuns();
    return ms!;
  };
  const port = server.addr.port;
  const policy: number[] = [];
  const direct: number[] = [];
  try {
    const r = rounds(5);
    for (let i = 0; i < r; i++) {
      progress(`network: download ${sizeLabel(bytes)}, round ${i + 1}/${r}`);
      policy.push(
        await once(["--allow", "dl.bench.test", ws, "--", "bash", "-c", script("dl.bench.test", 80)], {
          MOAT_TEST_UPSTREAMS: JSON.stringify({ "dl.bench.test": `127.0.0.1:${port}` }),
          // Throughput, not setup: no network made ahead for a next run working alongside the next round.
          MOAT_STANDBY: "0",
        }),
      );
      direct.push(await once(["--network", "default", ws, "--", "bash", "-c", script(gateway, port)], {}));
    }
  } finally {
    ac.abort();
    await server.finished;
  }
  const rate = (ms: number) => bytes / MiB / (ms / 1000);
  const [mp, md] = [median(policy), median(direct)];
  const ratio = rate(mp) / rate(md);
  notes.push(
    `Download rounds, ms inside the sandbox, in order: through the policy point ${policy.join(", ")}; ` +
      `direct ${direct.join(", ")}.`,
  );
  rows.push({
    measure: `HTTP download of ${sizeLabel(bytes)} through moat's policy point vs straight to the host ` +
      "(gVisor, timed inside the sandbox)",
    moat: `${rate(mp).toFixed(0)} MiB/s`,
    baseline: `${rate(md).toFixed(0)} MiB/s`,
    value: ratio.toFixed(2),
    target: "≥ 0.8",
    met: ratio >= 0.8,
  });
}

async function freeBytes(dir: string): Promise<number | undefined> {
  const out = await capture("df", ["-P", "-k", dir]);
  const avail = out?.split("\n")[1]?.trim().split(/\s+/)[3];
  return avail === undefined ? undefined : Number(avail) * 1024;
}

// ---------------------------------------------------------------------------------------------------------
// Machine and versions

async function machine() {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const models = cpuinfo.match(/^model name\s*:\s*(.+)$/gm)?.map((l) => l.replace(/^[^:]*:\s*/, "")) ?? [];
  const memKiB = Number(
    (await Deno.readTextFile("/proc/meminfo").catch(() => "")).match(/MemTotal:\s+(\d+)/)?.[1],
  );
  const kernel = (await Deno.readTextFile("/proc/sys/kernel/osrelease").catch(() => "")).trim();
  return {
    cpu: `${models[0] ?? "unknown CPU"} × ${models.length || navigator.hardwareConcurrency}`,
    memory: memKiB ? `${(memKiB / 1024 / 1024).toFixed(1)} GiB` : "unknown",
    kernel: kernel || "unknown",
    engine: await capture("docker", [
      "version",
      "--format",
      "server {{.Server.Version}} (API {{.Server.APIVersion}}), client {{.Client.Version}}",
    ]) ?? "unknown",
    runsc: (await capture("runsc", ["--version"]))?.split("\n")[0] ?? "unknown",
    deno: (await capture(deno, ["--version"]))?.split("\n")[0] ?? "unknown",
    moat: await capture(deno, ["run", "-A", `${root}main.ts`, "--version"]) ?? "unknown",
  };
}

const loadavg = async () =>
  (await Deno.readTextFile("/proc/loadavg").catch(() => "")).split(" ").slice(0, 3).join(" ");

// ---------------------------------------------------------------------------------------------------------
// Main

const started = new Date();
const loadBefore = await loadavg();
const selected = measures.filter((m) => m.name.includes(only));
if (selected.length === 0) {
  await Deno.remove(tmp, { recursive: true });
  throw new Error(`MOAT_BENCH_ONLY="${only}" matches none of: ${measures.map((m) => m.name).join(", ")}`);
}
const info = await machine();
progress(`measures: ${selected.map((m) => m.name).join(", ")}; image ${image}; scale ${scale}`);
// Interrupted: the moat runs get the signal too and clean up after themselves; the bench removes what it made.
let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(sig, async () => {
    // `deno task` passes the signal on as well: clean up once.
    if (interrupted) return;
    interrupted = true;
    progress(`${sig}: removing the bench's containers and ${tmp}`);
    await cleanupContainers();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    Deno.exit(130);
  });
}
try {
  for (const m of selected) {
    try {
      await m.run();
    } catch (err) {
      failedRow(m.name, err);
    }
  }
} finally {
  await removeStandbys(home); // made ahead after the last run of a measure
  await cleanupContainers();
  await Deno.remove(tmp, { recursive: true }).catch((err) => progress(`could not remove ${tmp}: ${err}`));
}
const loadAfter = await loadavg();

const table = [
  "| measure | moat | baseline | ratio or value | target | |",
  "| --- | ---: | ---: | ---: | ---: | :-: |",
  ...rows.map((r) =>
    `| ${r.measure} | ${r.moat} | ${r.baseline} | ${r.value} | ${r.target} | ${
      r.met === undefined ? "" : r.met ? "✓" : "✗"
    } |`
  ),
].join("\n");
console.log(table);

const KEEP_MARKER = "<!-- deno task bench replaces everything above this line and keeps what follows. -->";
const cpus = navigator.hardwareConcurrency;
const load1 = Number(loadBefore.split(" ")[0]);
if (load1 >= 0.5) {
  const msg =
    `The machine was not idle when the run started (load average ${load1} on ${cpus} CPUs): other ` +
    "work competed with the bench, so treat the ratios as rough.";
  notes.push(msg);
  progress(msg);
}
const settings = [
  `rounds ${
    roundsOverride ??
      "default (run true and network 11, startup and list 21, throughput, download 5, peak RSS 3, config 5)"
  }`,
  `scale ${scale}`,
  ...(only ? [`only "${only}"`] : []),
].join(", ");
const report = `# Performance

What moat costs over the docker CLI and over Deno itself, measured by \`deno task bench\`
(scripts/bench.ts, issue 6). The commands of each measure ran on the same engine in one run, interleaved
(A, B, A, B …), after one untimed warm-up each except in the streaming measures; every figure is a median
and every ratio is one of medians.
The bench reports, it does not assert: ✓ and ✗ mark each row against its target.

## Latest run

- Date: ${started.toISOString()}
- Machine: ${info.cpu}, ${info.memory} memory, kernel ${info.kernel}
- Load average (1, 5, 15 min): ${loadBefore} at start, ${loadAfter} at end
- Engine: Docker ${info.engine}
- gVisor: ${info.runsc}
- Deno: ${info.deno}
- moat: ${info.moat}
- Image: \`${image}\`; settings: ${settings}

${table}
${notes.length ? `\n${notes.map((n) => `- ${n}`).join("\n")}\n` : ""}
## How each row is measured

- **\`moat run -- true\`**: \`deno run -A main.ts run --image IMAGE WS -- true\` (with \`--no-sandbox\` for the
  no-sandbox rows) against \`docker run --rm [--runtime=runsc] IMAGE true\`, the issue's baseline, and against
  the same \`docker run\` with the container moat actually creates: \`--init --cap-drop ALL\`, the seven
  \`--cap-add\`s, \`--security-opt no-new-privileges --pids-limit 1024\` (and \`--ulimit nproc=1024:1024\`
  under gVisor), the workspace bind-mounted at \`/workspace\` as working directory, and the workspace owner as
  user. Wall time of the whole command, from spawn to exit. \`moat run\` as typed: on the run's own network
  with nothing allowed, made ahead by the run before it (after each, the bench waits, untimed, until the next
  one is made).
- **The allowlist network**: \`moat run --allow bench.test … -- true\` against the same \`moat run\` with
  \`--network default\` (the engine's network), both under gVisor: what the run's own network, relay and
  policy point cost on the shortest run, with the network made ahead (waited for as above) and, in the second
  row, made by each run itself (\`MOAT_STANDBY=0\`). And an HTTP download (\`DOWNLOAD_BYTES\`, 256 MiB) from a server of the bench's on this host, timed
  inside the sandbox by bash (\`/dev/tcp\`, \`date +%s%N\`) in \`debian:bookworm-slim\`
  (\`MOAT_BENCH_NET_IMAGE\`): through moat's policy point (\`--allow dl.bench.test\`, the name pointed at the
  server with \`MOAT_TEST_UPSTREAMS\`) against straight to the host's \`docker0\` address with
  \`--network default\`; the ratio is the first's MiB/s over the second's.
- **Startup**: \`moat --version\` and \`moat list\` with an empty \`MOAT_HOME\`, both from source
  (\`deno run -A main.ts\`) and as users run it (\`deno run -A moat.js\`, a copy of the bundle in a directory
  without \`deno.json\`), against \`deno run\` of an empty script.
- **Throughput**: \`moat run --network default --image IMAGE WS -- cat /workspace/big\` (a sparse file, so reads come from the
  page cache) under gVisor with moat's stdout on \`/dev/null\`, against
  \`docker run --rm --runtime=runsc\` with the same mount and command, stdout on \`/dev/null\`. MiB/s is the
  size over the whole command's wall time (container start included, on both sides); the ratio is moat's
  MiB/s over docker's. moat also writes the whole output into its run record under \`MOAT_HOME\` (a
  temporary directory on the same disk), which is part of its cost; the records are deleted after each round.
- **\`moat list --json\`** with 500 and 5,000 synthetic run records (10 of them "running" with an owner that is
  gone, the others finished; \`runs/\` last changed a minute before), from source and bundle, against
  \`docker ps -a --filter label=dev.moat.managed=true\`; and the bundle with 5,000 runs against 500, for
  \`--json\` and for the table: "flat" means ten times the finished runs cost at most 20% more. The first
  \`moat list\` of each home, the untimed warm-up, makes its records index.
- **Peak RSS**: \`ru_maxrss\` of the \`deno run -A main.ts run …\` process (\`/usr/bin/time -f %M\`) while it
  streams the file under gVisor, for two sizes 8× apart. "Flat" means the larger one peaks at most 8 MiB
  higher.
- **Config parsing**: \`parseConfig\` in the bench's own process on a \`moat.yaml\` of 12,500 and one of
  50,000 \`env\` keys, interleaved after a warm-up. The value is the time per key of the large file over the
  small one's: about 1 when parsing is linear, 4 if each key cost a scan of the keys before it. The second row
  is a 1 MiB file of tags (\`- !t !t … a\` lines), the most work the YAML parser does per byte, which moat
  refuses only once it is parsed.
- **\`moat exec\`**: \`moat exec RUN -- true\` (source and bundle) into a run started with \`moat run -d -- sleep 3600\`,
  against \`docker exec CONTAINER true\` into the same container, interleaved.
- **Warm runs**: \`moat run --warm -- true\` (source and bundle; the allow-list network as typed) taking the
  sandbox booted ahead of it, against \`docker run --rm --runtime=runsc IMAGE true\`, interleaved; after each warm
  run the bench waits, untimed, until the next sandbox is booted and the background work is over. Then what one waiting sandbox and the relay of
  its network made ahead use, as their cgroups say (\`docker stats\`).
- **Audit log**: \`scripts/bench_decisions.ts audit|none 10000\`: a relay and the policy point in one process on
  loopback, asked 10,000 DNS questions one after another, each decision written to the run's audit log or not:
  the log's cost alone. Then a run under gVisor making 10,000 decisions (\`moat-test/clients\`: Python's
  \`getaddrinfo\` 5,000 times, its A and AAAA questions, \`--allow\` of the name, \`MOAT_STANDBY=0\`), its
  median time over that time less the first row's difference: each entry is written between decisions, on the
  policy point's path, so that difference is what the run loses.
- **Bundle size**: \`dist/moat.js\` as \`deno task bundle\` writes it (1 KB = 1000 bytes).
`;
if (outPath) {
  // The analysis under the marker is written by hand; a new run replaces only what is above it.
  const previous = await Deno.readTextFile(outPath).catch(() => "");
  const at = previous.indexOf(KEEP_MARKER);
  const kept = at === -1 ? `${KEEP_MARKER}\n\n## Notes\n\nNone yet.\n` : previous.slice(at);
  await Deno.writeTextFile(outPath, `${report}\n${kept}`);
  // `deno task ok` checks the formatting of docs/ too: leave the file as `deno fmt` wants it.
  const fmt = await new Deno.Command(deno, { args: ["fmt", "--quiet", outPath], cwd: root, stderr: "piped" })
    .output();
  if (fmt.code !== 0) progress(`deno fmt ${outPath} failed: ${decoder.decode(fmt.stderr).trim()}`);
  progress(`wrote ${outPath}`);
} else {
  progress("partial run: report not written (set MOAT_BENCH_OUT=path to write it)");
}
