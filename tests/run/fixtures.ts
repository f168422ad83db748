/** Data the run tests share: a run spec and a run record to vary with `{ ...spread }`. */
import type { ContainerInspect } from "../../lib/docker/types.ts";
import type { RunSpec } from "../../lib/run/plan.ts";
import type { RunRecord } from "../../lib/store/records.ts";

export const spec: RunSpec = {
  runId: "0123456789ab",
  name: undefined,
  image: "img",
  command: ["sh"],
  env: {},
  workspace: "/w",
  user: "1000:1000",
  runtime: "runsc",
  interactive: false,
  moatVersion: "0.0.0",
};

/** A record of a run in progress, as `moat run` writes it once the container exists. */
export const baseRecord: RunRecord = {
  schema: 1,
  id: "r1",
  name: null,
  workspace: "/w",
  image: "i",
  command: null,
  sandbox: "gvisor",
  runtime: "runsc",
  containerId: "c1",
  state: "running",
  exitCode: null,
  signal: null,
  error: null,
  kept: false,
  removed: false,
  createdAt: "2026-01-01T00:00:00Z",
  startedAt: null,
  finishedAt: null,
  moatVersion: "0",
};

/** The container id of `inspect`. */
export const CID = "c".repeat(64);

/** An inspect of container CID in `status`, as the engine answers for a moat run's container. */
export function inspect(status: string, exitCode = 0, running = status === "running"): ContainerInspect {
  return {
    Id: CID,
    Name: "/moat-x",
    State: {
      Status: status,
      Running: running,
      ExitCode: exitCode,
      StartedAt: "2026-01-01T00:00:01.000000000Z",
      FinishedAt: running ? "0001-01-01T00:00:00Z" : "2026-01-01T00:00:09.000000000Z",
    },
    Config: { Labels: { "dev.moat.managed": "true", "dev.moat.run-id": "aaaaaaaaaaaa" } },
    HostConfig: { Runtime: "runsc" },
  };
}
