/**
 * Exec instances: a command run in a container that runs already (swagger Exec* operations): create, start
 * (over its own connection, upgraded like an attach), inspect for the exit code, resize its pty.
 */
import { EngineApiError } from "../errors.ts";
import { type AttachStream, attachStreamOf } from "./containers.ts";
import type { EngineHttp } from "./transport.ts";

/** `POST /containers/{id}/exec`'s body (swagger ContainerExec). */
export interface ExecCreateBody {
  Cmd: string[];
  Env?: string[];
  User?: string;
  WorkingDir?: string;
  Tty: boolean;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
}

/** What `GET /exec/{id}/json` says (swagger ExecInspect), as far as moat reads it. */
export interface ExecInspect {
  Running: boolean;
  /** `null` while it runs. */
  ExitCode: number | null;
  /** The process's id on the engine's host; 0 when it never started. */
  Pid: number;
}

/** `POST /containers/{id}/exec` → 201 `{Id}`; 404 no such container, 409 it is not running (or paused). */
export async function execCreate(
  http: EngineHttp,
  containerId: string,
  body: ExecCreateBody,
): Promise<string> {
  const res = await http.call<{ Id: string }>("POST", `/containers/${containerId}/exec`, {
    json: body,
    slow: true,
  });
  return res.body.Id;
}

/**
 * `POST /exec/{id}/start` with `{Detach: false, Tty, ConsoleSize}` over its own connection, upgraded: the command's
 * output (multiplexed unless `Tty`), and its stdin when the exec attached it. The process has started once
 * the engine answers.
 */
export async function execStart(
  http: EngineHttp,
  execId: string,
  tty: boolean,
  consoleSize?: { rows: number; cols: number },
): Promise<AttachStream> {
  // `ConsoleSize` (API 1.42) sizes the pty before the process starts; older engines ignore the field, and the
  // size comes from the resize right after start.
  const size = tty && consoleSize ? { ConsoleSize: [consoleSize.rows, consoleSize.cols] } : {};
  const h = await http.hijack("POST", `/exec/${execId}/start`, {
    json: { Detach: false, Tty: tty, ...size },
    slow: true,
  });
  return attachStreamOf(h);
}

/** `GET /exec/{id}/json` → 200; 404 no such exec instance. */
export async function execInspect(http: EngineHttp, execId: string): Promise<ExecInspect> {
  const res = await http.call<ExecInspect>("GET", `/exec/${execId}/json`);
  return res.body;
}

/** `POST /exec/{id}/resize?h=&w=` → 201; an exec that has ended already (404, 409) is not an error. */
export async function execResize(
  http: EngineHttp,
  execId: string,
  rows: number,
  cols: number,
): Promise<void> {
  try {
    await http.call("POST", `/exec/${execId}/resize`, { query: { h: rows, w: cols } });
  } catch (err) {
    if (err instanceof EngineApiError && (err.isNotFound || err.status === 409)) return;
    throw err;
  }
}
