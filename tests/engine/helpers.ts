/**
 * Helpers for the real-engine suite: spawn the CLI as a user would (black box), and ask the docker CLI —
 * an independent client — what exists on the engine. No engine is a failure, never a skip.
 */
import assert from "node:assert/strict";

export const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
export const TEST_IMAGE = "moat-test/busybox:latest";

export interface Result {
  code: number;
  stdout: Uint8Array;
  stderrBytes: Uint8Array;
  stderr: string;
  out: string;
}

/** A fresh workspace and MOAT_HOME; removed by `cleanup`. */
export async function scratch(): Promise<{ ws: string; home: string; cleanup(): Promise<void> }> {
  const ws = await Deno.makeTempDir({ prefix: "moat-ws-" });
  const home = await Deno.makeTempDir({ prefix: "moat-home-" });
  return {
    ws,
    home,
    async cleanup() {
      await Deno.remove(ws, { recursive: true }).catch(() => {});
      await Deno.remove(home, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * Environment for a spawned moat: inherits PATH etc., isolated MOAT_HOME, no outside sandbox settings. No
 * networks made ahead of allowlist runs (MOAT_STANDBY=0, lib/run/standby.ts) unless `extra` asks for them:
 * one would outlive the test's MOAT_HOME; tests/engine/egress_standby_test.ts tests them.
 */
export function moatEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  const env = Deno.env.toObject();
  for (
    const k of [
      "MOAT_NO_SANDBOX",
      "MOAT_RUNTIME",
      "MOAT_IMAGE",
      "DOCKER_HOST",
      "MOAT_ENGINE_TIMEOUT",
      "MOAT_STANDBY_IDLE",
    ]
  ) {
    delete env[k];
  }
  return { ...env, MOAT_HOME: home, NO_COLOR: "1", MOAT_STANDBY: "0", ...extra };
}

/** Run `deno run -A main.ts ARGS` to completion. */
export async function moat(
  args: string[],
  opts: { home: string; env?: Record<string, string>; stdin?: Uint8Array; cwd?: string; entry?: string },
): Promise<Result> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", opts.entry ?? `${ROOT}/main.ts`, ...args],
    cwd: opts.cwd ?? ROOT,
    env: moatEnv(opts.home, opts.env),
    clearEnv: true,
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  if (opts.stdin) {
    const w = child.stdin.getWriter();
    await w.write(opts.stdin);
    await w.close();
  }
  const { code, stdout, stderr } = await child.output();
  return {
    code,
    stdout,
    stderrBytes: stderr,
    stderr: new TextDecoder().decode(stderr),
    out: new TextDecoder().decode(stdout),
  };
}

/** A shell script that proves it runs under gVisor: its output is `GVISOR_PROVEN`. */
export const PROVE_GVISOR = 'uname -r; dmesg | grep -c "Starting gVisor"';
/** What `PROVE_GVISOR` prints under gVisor: gVisor's kernel release, and its banner found once in dmesg. */
export const GVISOR_PROVEN = "4.4.0\n1\n";

/** `moat run` arguments for `script` (sh -c) in workspace `ws`, with no network, from the test image. */
export function runScript(ws: string, script: string): string[] {
  return ["run", "--network", "none", "--image", TEST_IMAGE, ws, "--", "sh", "-c", script];
}

/** Run the docker CLI; throws on failure. */
export async function docker(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command("docker", {
    args,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const err = new TextDecoder().decode(stderr);
  if (code !== 0) throw new Error(`docker ${args.join(" ")} failed (${code}): ${err}`);
  return new TextDecoder().decode(stdout);
}

/**
 * IDs of containers moat created for this workspace (label `dev.moat.workspace`): the runs' own, and their
 * helpers (a run's network relay, probes).
 */
export async function containersFor(ws: string): Promise<string[]> {
  const real = await Deno.realPath(ws);
  const out = await docker("ps", "-aq", "--filter", `label=dev.moat.workspace=${real}`);
  return out.split("\n").filter(Boolean);
}

/** IDs of the runs' own containers for this workspace: `containersFor` without moat's helpers (a relay). */
export async function sandboxesFor(ws: string): Promise<string[]> {
  const real = await Deno.realPath(ws);
  const out = await docker(
    "ps",
    "-a",
    "--filter",
    `label=dev.moat.workspace=${real}`,
    "--format",
    '{{.ID}} {{.Label "dev.moat.probe"}}',
  );
  return out.split("\n").filter((l) => l !== "" && l.trim().split(" ").length === 1).map((l) => l.trim());
}

/** The single run record under `home`. */
export async function onlyRecord(home: string): Promise<Record<string, unknown>> {
  const ids = [];
  for await (const e of Deno.readDir(`${home}/runs`)) ids.push(e.name);
  assert.equal(ids.length, 1, `expected one run record, found ${ids.length}`);
  return JSON.parse(await Deno.readTextFile(`${home}/runs/${ids[0]}/run.json`));
}

/** Fail (not skip) when there is no engine with gVisor: the real suite must run. */
export async function requireEngine(): Promise<void> {
  const info = await docker("info", "--format", "{{json .Runtimes}}").catch((err) => {
    throw new Error(
      `The real-engine suite needs a running Docker engine (run scripts/setup.sh): ${err.message}`,
    );
  });
  assert.match(info, /"runsc"/, "runsc must be registered with the engine (run scripts/setup.sh)");
  await docker("image", "inspect", TEST_IMAGE).catch(() => {
    throw new Error(`The real-engine suite needs the image ${TEST_IMAGE} (run scripts/setup.sh)`);
  });
}

export type Scratch = Awaited<ReturnType<typeof scratch>>;

/** Remove the networks moat made for this test's workspace (a run's `moat-net-<id>`, label `dev.moat.workspace`). */
export async function removeNetworksOf(ws: string): Promise<void> {
  const real = await Deno.realPath(ws).catch(() => ws);
  const ids = await docker("network", "ls", "-q", "--filter", `label=dev.moat.workspace=${real}`).catch(() =>
    ""
  );
  for (const id of ids.split("\n").filter(Boolean)) await docker("network", "rm", id).catch(() => {});
}

/**
 * Run `fn` in a scratch workspace and home; afterwards the containers of that workspace are removed, then its
 * networks.
 */
export async function withScratch(fn: (s: Scratch) => Promise<void>): Promise<void> {
  const s = await scratch();
  try {
    await fn(s);
  } finally {
    for (const id of await containersFor(s.ws).catch(() => [])) await docker("rm", "-f", id).catch(() => {});
    await removeNetworksOf(s.ws);
    await s.cleanup();
  }
}
