/**
 * A `moat run` in the background of a real-engine test: started as a user would, returned once its
 * command prints `ready` (so the container runs), with what it printed collected until it exits.
 */
import assert from "node:assert/strict";
import {
  containersFor,
  docker,
  moatEnv,
  onlyRecord,
  removeNetworksOf,
  ROOT,
  sandboxesFor,
  TEST_IMAGE,
} from "./helpers.ts";

export interface BackgroundRun {
  child: Deno.ChildProcess;
  /** Resolves when moat exits: its exit code and everything it wrote to stderr. */
  done: Promise<{ code: number; stderr: string }>;
}

export async function startBackgroundRun(
  s: { ws: string; home: string },
  flags: string[] = [],
  seconds = 30,
  env: Record<string, string> = {},
): Promise<BackgroundRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}/main.ts`,
      "run",
      "--image",
      TEST_IMAGE,
      ...flags,
      s.ws,
      "--",
      "sh",
      "-c",
      `echo ready; sleep ${seconds}`,
    ],
    env: moatEnv(s.home, env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.getReader();
  let seen = "";
  while (!seen.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += new TextDecoder().decode(value);
  }
  // Drain the rest, so the child never blocks on a full pipe.
  const rest = (async () => {
    for (;;) if ((await reader.read()).done) return;
  })();
  const done = (async () => {
    const status = await child.status;
    await rest;
    return { code: status.code, stderr: await stderr };
  })();
  if (!seen.includes("ready")) {
    const { code, stderr } = await done;
    assert.fail(`moat run ended (${code}) before its command ran: ${stderr}`);
  }
  return { child, done };
}

/**
 * A run whose moat process was killed (`kill -9`) while its command ran: its container is left behind.
 * Returns the run id and the container id.
 */
export async function orphanedRun(s: { ws: string; home: string }): Promise<{ id: string; cid: string }> {
  const run = await startBackgroundRun(s);
  const id = (await onlyRecord(s.home)).id as string;
  const [cid] = await sandboxesFor(s.ws);
  assert.ok(cid, "the run's container exists");
  run.child.kill("SIGKILL");
  await run.done;
  return { id, cid };
}

/**
 * Remove what this test's workspace left on the engine: the containers labelled with it, then the networks
 * (a run's own, `moat-net-<id>`, which a run whose moat was killed leaves).
 */
export async function removeContainersOf(ws: string): Promise<void> {
  for (const id of await containersFor(ws).catch(() => [])) await docker("rm", "-f", id).catch(() => {});
  await removeNetworksOf(ws);
}
