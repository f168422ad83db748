/**
 * The hardened profile (issue 5) on the real engine, under gVisor and with `--no-sandbox`: capabilities and
 * the init inside, the engine's view of HostConfig, the pids and memory limits, `network: none`, the
 * read-only root, extra mounts, and config errors that stop a run before anything is created.
 */
import assert from "node:assert/strict";
import type { ListJsonItem } from "../../lib/cli/list.ts";
import { DEFAULT_PIDS, KEPT_CAPABILITIES, type Profile } from "../../lib/run/profile.ts";
import {
  containersFor,
  docker,
  moat,
  onlyRecord,
  requireEngine,
  type Result,
  sandboxesFor,
  type Scratch,
  scratch,
  TEST_IMAGE,
  withScratch,
} from "./helpers.ts";

await requireEngine();

/** Linux capability numbers (include/uapi/linux/capability.h), by the engine's names without `CAP_`. */
const CAPABILITY_BITS: Record<string, number> = {
  CHOWN: 0,
  DAC_OVERRIDE: 1,
  DAC_READ_SEARCH: 2,
  FOWNER: 3,
  FSETID: 4,
  KILL: 5,
  SETGID: 6,
  SETUID: 7,
  SETPCAP: 8,
  LINUX_IMMUTABLE: 9,
  NET_BIND_SERVICE: 10,
  NET_BROADCAST: 11,
  NET_ADMIN: 12,
  NET_RAW: 13,
  IPC_LOCK: 14,
  IPC_OWNER: 15,
  SYS_MODULE: 16,
  SYS_RAWIO: 17,
  SYS_CHROOT: 18,
  SYS_PTRACE: 19,
  SYS_PACCT: 20,
  SYS_ADMIN: 21,
  SYS_BOOT: 22,
  SYS_NICE: 23,
  SYS_RESOURCE: 24,
  SYS_TIME: 25,
  SYS_TTY_CONFIG: 26,
  MKNOD: 27,
  LEASE: 28,
  AUDIT_WRITE: 29,
  AUDIT_CONTROL: 30,
  SETFCAP: 31,
  MAC_OVERRIDE: 32,
  MAC_ADMIN: 33,
  SYSLOG: 34,
  WAKE_ALARM: 35,
  BLOCK_SUSPEND: 36,
  AUDIT_READ: 37,
  PERFMON: 38,
  BPF: 39,
  CHECKPOINT_RESTORE: 40,
};

/** The CapEff mask the kept list should give root: computed from the list, so changing it moves the mask. */
const KEPT_MASK = KEPT_CAPABILITIES.reduce((mask, name) => {
  const bit = CAPABILITY_BITS[name];
  assert.notEqual(bit, undefined, `unknown capability ${name} in KEPT_CAPABILITIES`);
  return mask | (1n << BigInt(bit!));
}, 0n);

/** The modes every profile guarantee must hold in: gVisor, and without it. */
const MODES = [
  { label: "under gVisor", flags: [] as string[], gvisor: true },
  { label: "with --no-sandbox", flags: ["--no-sandbox"], gvisor: false },
];

/** `moat run [flags] --image TEST_IMAGE WS -- sh -c SCRIPT`. */
function run(s: Scratch, flags: string[], script: string): Promise<Result> {
  return moat(["run", ...flags, "--image", TEST_IMAGE, s.ws, "--", "sh", "-c", script], { home: s.home });
}

/** `key: value` lines (as in /proc/self/status) as a map; other lines are skipped. */
function fields(out: string): Record<string, string> {
  const map: Record<string, string> = {};
  for (const line of out.split("\n")) {
    const m = /^(\w+):\s*(.*)$/.exec(line);
    if (m) map[m[1]!] = m[2]!;
  }
  return map;
}

/** The profile stored in the single run record under the scratch home. */
async function recordedProfile(s: Scratch): Promise<Profile> {
  return (await onlyRecord(s.home)).profile as Profile;
}

/** Interface names from /proc/net/dev, which gVisor and Linux both provide (gVisor has no /sys/class/net). */
function interfaces(procNetDev: string): string[] {
  return procNetDev.split("\n").slice(2).map((l) => l.split(":")[0]!.trim()).filter(Boolean).sort();
}

/** Nothing was created: no run record and no container. */
async function assertNothingCreated(s: Scratch): Promise<void> {
  const runs: string[] = [];
  try {
    for await (const e of Deno.readDir(`${s.home}/runs`)) runs.push(e.name);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  assert.deepEqual(runs, [], "no run record");
  assert.deepEqual(await containersFor(s.ws), [], "no container");
}

const expectedDefaultProfile = {
  capDrop: ["ALL"],
  capAdd: [...KEPT_CAPABILITIES],
  noNewPrivileges: true,
  init: true,
  pids: DEFAULT_PIDS,
  memory: null,
  cpus: null,
  // A run that states no network: its own, with nothing allowed.
  network: "allowlist",
  allow: [],
  readOnly: false,
  mounts: [],
};

// --- 1. The default profile ---------------------------------------------------------------------------

for (const mode of MODES) {
  Deno.test(`a default run ${mode.label} keeps only the listed capabilities, has an init as PID 1, and the engine shows the profile`, async () => {
    await withScratch(async (s) => {
      const probe = "cat /proc/self/status; printf 'Init: %s\\n' \"$(tr '\\0' ' ' < /proc/1/cmdline)\"";
      const root = await run(s, [...mode.flags, "--keep", "-u", "0:0"], probe);
      assert.equal(root.code, 0, root.stderr);
      const status = fields(root.out);
      assert.equal(
        BigInt(`0x${status.CapEff}`),
        KEPT_MASK,
        `root's CapEff ${status.CapEff} is the mask of ${KEPT_CAPABILITIES.join(", ")}`,
      );
      assert.equal(BigInt(`0x${status.CapBnd}`), KEPT_MASK, "nothing else can be regained: the bounding set");
      assert.match(status.Init ?? "", /^\/sbin\/docker-init -- sh -c /, "PID 1 is the engine's init");
      // gVisor's /proc/self/status has no NoNewPrivs line; runc's Linux has, and it must be set.
      if (!mode.gvisor) assert.equal(status.NoNewPrivs, "1");

      const ids = await sandboxesFor(s.ws);
      assert.equal(ids.length, 1, "the kept container");
      const host = JSON.parse(await docker("inspect", ids[0]!))[0].HostConfig;
      const runId = (await onlyRecord(s.home)).id;
      assert.equal(host.NetworkMode, `moat-net-${runId}`, "the run's own network only");
      assert.deepEqual(await containersFor(s.ws), ids, "the relay went with the run; the kept sandbox stays");
      assert.equal(
        host.Runtime,
        mode.gvisor ? "runsc" : (await docker("info", "--format", "{{.DefaultRuntime}}")).trim(),
      );
      assert.deepEqual(host.CapDrop, ["ALL"]);
      assert.deepEqual(host.CapAdd, [...KEPT_CAPABILITIES]);
      assert.deepEqual(host.SecurityOpt, ["no-new-privileges"]);
      assert.equal(host.Init, true);
      assert.equal(host.Privileged, false);
      assert.equal(host.PidsLimit, DEFAULT_PIDS);
      // Under gVisor the command's processes are counted inside the sandbox (RLIMIT_NPROC); without it the
      // pids cgroup does that and an nproc limit would count the user's host processes too.
      if (mode.gvisor) {
        assert.deepEqual(host.Ulimits, [{ Name: "nproc", Soft: DEFAULT_PIDS, Hard: DEFAULT_PIDS }]);
      } else assert.ok(host.Ulimits === null || host.Ulimits.length === 0, JSON.stringify(host.Ulimits));

      const rec = await onlyRecord(s.home);
      assert.deepEqual(rec.profile, expectedDefaultProfile);
      const list = await moat(["list", "--json"], { home: s.home });
      assert.equal(list.code, 0, list.stderr);
      const items = JSON.parse(list.out) as ListJsonItem[];
      assert.deepEqual(items.map((i) => i.profile), [
        expectedDefaultProfile,
      ]);

      // The workspace owner (not root, moat's default user) has no capability in effect at all.
      await Deno.chown(s.ws, 1000, 1000);
      const owner = await run(s, mode.flags, "id -u; cat /proc/self/status");
      assert.equal(owner.code, 0, owner.stderr);
      assert.equal(owner.out.split("\n")[0], "1000");
      assert.equal(fields(owner.out).CapEff, "0000000000000000");
    });
  });
}

// --- 2. pids ------------------------------------------------------------------------------------------

/**
 * Start 120 sleeps (well past 64, few enough to stay quick under gVisor) from a subshell: a failed fork
 * ends only the subshell (busybox sh gives up with exit 2). Then count the processes with shell builtins
 * alone (no fork is left) and exit 3. When the command exits the init does too, and the container with
 * it, sleeps and all.
 */
const FORK_LOOP = '(for i in $(seq 120); do sleep 30 & done); echo "loop: $?"; ' +
  'set -- /proc/[0-9]*; echo "procs: $#"; exit 3';

async function assertForkLoopStopped(s: Scratch, r: Result, limit: number): Promise<void> {
  assert.equal(r.code, 3, `moat exits with the command's code\n${r.stderr}`);
  assert.match(r.stderr, /can't fork: Resource temporarily unavailable/);
  const out = fields(r.out);
  assert.equal(out.loop, "2", "the subshell stopped at a failed fork");
  const procs = Number(out.procs);
  assert.ok(procs <= limit && procs > limit / 2, `${procs} processes at most, the limit is ${limit}`);
  assert.deepEqual(await containersFor(s.ws), [], "no container is left");
  assert.equal((await onlyRecord(s.home)).exitCode, 3);
  // The host is fine: it still forks, and the engine still answers.
  assert.equal((await new Deno.Command("true").output()).code, 0);
  await docker("ps", "-q");
}

Deno.test("without a pids setting the same fork loop runs to the end: the limit tests below can fail", async () => {
  await withScratch(async (s) => {
    const r = await run(s, [], FORK_LOOP);
    assert.equal(r.code, 3, r.stderr);
    const out = fields(r.out);
    assert.equal(out.loop, "0");
    assert.ok(Number(out.procs) > 120, r.out);
  });
});

Deno.test("--pids 64 under gVisor stops a fork loop inside the sandbox, and the host is fine", async () => {
  await withScratch(async (s) => {
    const r = await run(s, ["--pids", "64"], FORK_LOOP);
    await assertForkLoopStopped(s, r, 64);
    assert.equal((await recordedProfile(s)).pids, 64);
  });
});

Deno.test("pids: 64 in moat.yaml stops a fork loop under gVisor", async () => {
  await withScratch(async (s) => {
    await Deno.writeTextFile(`${s.ws}/moat.yaml`, "pids: 64\n");
    const r = await run(s, [], FORK_LOOP);
    await assertForkLoopStopped(s, r, 64);
    assert.equal((await recordedProfile(s)).pids, 64);
  });
});

Deno.test("--pids 64 with --no-sandbox stops a fork loop at the pids cgroup", async () => {
  await withScratch(async (s) => {
    const r = await run(s, ["--no-sandbox", "--pids", "64"], FORK_LOOP);
    await assertForkLoopStopped(s, r, 64);
  });
});

// --- 3. memory ----------------------------------------------------------------------------------------

/** Doubles a shell string until the memory limit ends it. */
const MEMORY_HOG = 'echo start; x=a; while :; do x="$x$x"; done';

Deno.test("--memory 32m under gVisor: a memory hog is killed, exit 137, reported and recorded as out of memory", async () => {
  await withScratch(async (s) => {
    // At 32m gVisor's kernel kills the command; with larger limits the host's OOM killer may pick gVisor's
    // own kernel (the sentry) instead (see the next test).
    const r = await run(s, ["--memory", "32m"], MEMORY_HOG);
    assert.equal(r.out, "start\n", "the command ran");
    assert.equal(r.code, 137, r.stderr);
    const rec = await onlyRecord(s.home);
    assert.match(
      r.stderr,
      new RegExp(
        `^moat: run ${rec.id}: the command ran out of memory and was killed by the memory limit \\(32 MiB\\)`,
        "m",
      ),
    );
    assert.equal(rec.oomKilled, true);
    assert.equal(rec.exitCode, 137);
    assert.equal(rec.state, "exited");
    assert.equal((rec.profile as Profile).memory, 32 * 2 ** 20);
    assert.deepEqual(await containersFor(s.ws), [], "no container is left");
  });
});

Deno.test("memory: 128m in moat.yaml: the run that kills gVisor's own kernel is still reported as out of memory", async () => {
  await withScratch(async (s) => {
    await Deno.writeTextFile(`${s.ws}/moat.yaml`, "memory: 128m\n");
    const r = await run(s, [], MEMORY_HOG);
    const rec = await onlyRecord(s.home);
    assert.match(r.stderr, /the command ran out of memory and was killed by the memory limit \(128 MiB\)/);
    assert.equal(rec.oomKilled, true);
    // The engine says ExitCode 1 when the host killed the whole sandbox, 137 when gVisor killed the command;
    // moat reports an OOM kill as the SIGKILL it is, 137, either way.
    assert.equal(r.code, 137, r.stderr);
    assert.equal(rec.exitCode, 137);
    assert.deepEqual(await containersFor(s.ws), [], "no container is left");
  });
});

// --- 4. network ---------------------------------------------------------------------------------------

Deno.test("network: none in moat.yaml leaves only lo under gVisor, and --network default overrides it", async () => {
  await withScratch(async (s) => {
    await Deno.writeTextFile(`${s.ws}/moat.yaml`, "network: none\n");
    const none = await run(s, [], "cat /proc/net/dev");
    assert.equal(none.code, 0, none.stderr);
    assert.deepEqual(interfaces(none.out), ["lo"]);
    assert.equal((await recordedProfile(s)).network, "none");

    // The same probe sees the engine's network when it is there: this test can fail.
    const dflt = await run(s, ["--network", "default"], "cat /proc/net/dev");
    assert.equal(dflt.code, 0, dflt.stderr);
    assert.deepEqual(interfaces(dflt.out), ["eth0", "lo"]);
  });
});

for (const mode of MODES) {
  Deno.test(`--network none ${mode.label} leaves only lo`, async () => {
    await withScratch(async (s) => {
      const r = await run(s, [...mode.flags, "--network", "none"], "cat /proc/net/dev");
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(interfaces(r.out), ["lo"]);
    });
  });
}

// --- 5. read-only root --------------------------------------------------------------------------------

/** As root (DAC_OVERRIDE kept), so a refused write is the read-only root, not file permissions. */
const WRITE_PROBE = "for f in /etc/x /x /tmp/x /workspace/x; do " +
  'if echo hi > "$f"; then echo "$f: written"; else echo "$f: refused"; fi; done';

for (
  const c of [
    {
      label: "read_only: true in moat.yaml under gVisor",
      config: "read_only: true\n",
      flags: [] as string[],
    },
    { label: "--read-only with --no-sandbox", config: undefined, flags: ["--no-sandbox", "--read-only"] },
  ]
) {
  Deno.test(`${c.label}: writes outside /tmp and /workspace fail`, async () => {
    await withScratch(async (s) => {
      if (c.config) await Deno.writeTextFile(`${s.ws}/moat.yaml`, c.config);
      const r = await run(s, [...c.flags, "-u", "0:0"], WRITE_PROBE);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.out.trim().split("\n"), [
        "/etc/x: refused",
        "/x: refused",
        "/tmp/x: written",
        "/workspace/x: written",
      ]);
      assert.match(r.stderr, /Read-only file system/);
      assert.equal(await Deno.readTextFile(`${s.ws}/x`), "hi\n", "the workspace file is on the host");
      assert.equal((await recordedProfile(s)).readOnly, true);
    });
  });
}

/** Writes a script to /tmp and runs it from there. */
const TMP_EXEC_PROBE =
  "printf '#!/bin/sh\\necho tmp script ran\\n' > /tmp/s.sh && chmod +x /tmp/s.sh && /tmp/s.sh";

for (const mode of MODES) {
  Deno.test(`--read-only ${mode.label}: a script in /tmp runs (the tmpfs is not noexec)`, async () => {
    await withScratch(async (s) => {
      const r = await run(s, [...mode.flags, "--read-only"], TMP_EXEC_PROBE);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.out, "tmp script ran\n");
    });
  });
}

Deno.test("without read_only the same probe writes everywhere: the read-only tests can fail", async () => {
  await withScratch(async (s) => {
    const r = await run(s, ["-u", "0:0"], WRITE_PROBE);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.out.trim().split("\n"), [
      "/etc/x: written",
      "/x: written",
      "/tmp/x: written",
      "/workspace/x: written",
    ]);
  });
});

// --- 6. mounts ----------------------------------------------------------------------------------------

Deno.test("mounts: in moat.yaml under gVisor: a readonly mount is readable and refuses writes, a writable one reaches the host", async () => {
  const extra = await Deno.realPath(await Deno.makeTempDir({ prefix: "moat-mounts-" }));
  try {
    await Deno.mkdir(`${extra}/ro`);
    await Deno.mkdir(`${extra}/rw`);
    await Deno.writeTextFile(`${extra}/ro/hello.txt`, "from the host\n");
    await withScratch(async (s) => {
      await Deno.writeTextFile(
        `${s.ws}/moat.yaml`,
        `mounts:\n  - source: ${extra}/ro\n    target: /ro\n    readonly: true\n` +
          `  - {source: ${extra}/rw, target: /rw}\n`,
      );
      const r = await run(
        s,
        ["-u", "0:0"],
        "cat /ro/hello.txt; if echo x > /ro/new; then echo 'ro: written'; else echo 'ro: refused'; fi; " +
          "echo from-the-container > /rw/out && echo 'rw: written'",
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.out, "from the host\nro: refused\nrw: written\n");
      assert.match(r.stderr, /Read-only file system/);
      assert.equal(await Deno.readTextFile(`${extra}/rw/out`), "from-the-container\n");
      await assert.rejects(Deno.stat(`${extra}/ro/new`), Deno.errors.NotFound);
      assert.deepEqual((await recordedProfile(s)).mounts, [
        { source: `${extra}/ro`, target: "/ro", readonly: true },
        { source: `${extra}/rw`, target: "/rw", readonly: false },
      ]);
    });
  } finally {
    await Deno.remove(extra, { recursive: true });
  }
});

for (
  const c of [
    {
      label: "a missing mount source",
      source: "./missing",
      problem: '"./missing" does not exist',
    },
    {
      label: "the Docker socket as a mount source",
      source: "/var/run/docker.sock",
      problem: "is the Docker engine's socket: whoever can connect to it controls the engine",
    },
  ]
) {
  Deno.test(`${c.label} is refused with its position in moat.yaml, exit 2, and nothing is created`, async () => {
    await withScratch(async (s) => {
      await Deno.writeTextFile(`${s.ws}/moat.yaml`, `mounts:\n  - source: ${c.source}\n    target: /data\n`);
      const r = await run(s, [], "true");
      assert.equal(r.code, 2, r.stderr);
      const file = `${await Deno.realPath(s.ws)}/moat.yaml`;
      assert.ok(
        r.stderr.startsWith(`moat: ${file}:2:5: mounts[0].source: "${c.source}"`),
        r.stderr,
      );
      assert.ok(r.stderr.includes(c.problem), r.stderr);
      await assertNothingCreated(s);
    });
  });
}

// What the runtime refuses at start (runc: "not a directory"; gVisor: the sandbox just does not start) is
// found first, by looking at the targets in the image.
for (const mode of MODES) {
  for (
    const c of [
      {
        source: "./d",
        target: "/etc/passwd",
        problem: "is a file in the image",
        what: "a directory onto a file",
      },
      {
        source: "./d",
        target: "/bin/sh",
        problem: "is a file in the image",
        what: "a directory onto a link to a file",
      },
      {
        source: "./f",
        target: "/etc",
        problem: "is a directory in the image",
        what: "a file onto a directory",
      },
    ]
  ) {
    Deno.test(`mounts ${mode.label}: ${c.what} (${c.target}) is refused at its line, exit 2, nothing created`, async () => {
      await withScratch(async (s) => {
        await Deno.mkdir(`${s.ws}/d`);
        await Deno.writeTextFile(`${s.ws}/f`, "x\n");
        await Deno.writeTextFile(
          `${s.ws}/moat.yaml`,
          `mounts:\n  - source: ${c.source}\n    target: ${c.target}\n`,
        );
        const r = await run(s, mode.flags, "true");
        assert.equal(r.code, 2, r.stderr);
        const file = `${await Deno.realPath(s.ws)}/moat.yaml`;
        assert.ok(
          r.stderr.includes(`moat: ${file}:2:5: mounts[0].target: "${c.target}" ${c.problem} ${TEST_IMAGE}`),
          r.stderr,
        );
        await assertNothingCreated(s);
      });
    });
  }
  Deno.test(`mounts ${mode.label}: a file onto a file of the image (/etc/passwd) is used`, async () => {
    await withScratch(async (s) => {
      await Deno.writeTextFile(`${s.ws}/passwd`, "root:x:0:0:from the host:/root:/bin/sh\n");
      await Deno.writeTextFile(`${s.ws}/moat.yaml`, "mounts:\n  - {source: ./passwd, target: /etc/passwd}\n");
      const r = await run(s, [...mode.flags, "-u", "0:0"], "cat /etc/passwd");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.out, "root:x:0:0:from the host:/root:/bin/sh\n");
    });
  });
}

// --- 7. config errors for each new field --------------------------------------------------------------

Deno.test("a bad value in each new config field fails at its file:line:column, exit 2, nothing created", async () => {
  // Two lines first, so the line number is the field's own.
  const head = "# moat.yaml for a test\nname: profile-test\n";
  const cases = [
    { field: "memory", yaml: "memory: 2x\n", at: "3:9", says: 'must be a size such as 512m or 2g; got "2x"' },
    { field: "memory", yaml: "memory: 1m\n", at: "3:9", says: "at least 6m" },
    { field: "cpus", yaml: "cpus: lots\n", at: "3:7", says: "must be a number of CPUs" },
    { field: "cpus", yaml: "cpus: 0\n", at: "3:7", says: "at least 0.01" },
    // Only the run knows the host's CPU count; the error still points at the value.
    { field: "cpus", yaml: "cpus: 4096\n", at: "3:7", says: "this host has" },
    { field: "pids", yaml: "pids: 5\n", at: "3:7", says: "from 16 to 4194304" },
    {
      field: "network",
      yaml: "network: host\n",
      at: "3:10",
      says:
        'must be one of "default" (or "open"), "none", "allowlist", or a map such as {allow: [api.github.com]}; got "host"',
    },
    { field: "read_only", yaml: 'read_only: "yes"\n', at: "3:12", says: 'must be true or false; got "yes"' },
    { field: "mounts", yaml: "mounts: a:b\n", at: "3:9", says: "must be a list of mounts" },
    {
      field: "mounts[0].target",
      yaml: "mounts:\n  - source: .\n    target: data\n",
      at: "5:13",
      says: "must be an absolute path in the container",
    },
    {
      field: "mounts[0].target",
      yaml: "mounts:\n  - source: .\n    target: /workspace\n",
      at: "5:13",
      says: "where moat mounts the workspace",
    },
    {
      field: "mounts[0].target",
      yaml: "read_only: true\nmounts:\n  - {source: ., target: /tmp}\n",
      at: "5:25",
      says: "writable tmpfs",
    },
  ];
  // Independent runs that stop before the engine is asked to create anything: in parallel.
  const failures = await Promise.all(cases.map(async (c) => {
    const s = await scratch();
    try {
      await Deno.writeTextFile(`${s.ws}/moat.yaml`, head + c.yaml);
      const r = await run(s, [], "true");
      const file = `${await Deno.realPath(s.ws)}/moat.yaml`;
      const problems: string[] = [];
      if (r.code !== 2) problems.push(`exit ${r.code}, expected 2`);
      if (!r.stderr.startsWith(`moat: ${file}:${c.at}: ${c.field}: `)) problems.push(`position or field`);
      if (!r.stderr.includes(c.says)) problems.push(`message`);
      await assertNothingCreated(s).catch((err) => problems.push(err.message));
      return problems.length ? `${JSON.stringify(c.yaml)}: ${problems.join("; ")}\n  ${r.stderr}` : undefined;
    } finally {
      for (const id of await containersFor(s.ws).catch(() => [])) {
        await docker("rm", "-f", id).catch(() => {});
      }
      await s.cleanup();
    }
  }));
  assert.deepEqual(failures.filter(Boolean), []);
});
