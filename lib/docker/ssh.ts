/**
 * The ssh transport: an engine reached as `ssh://[USER@]HOST[:PORT][/SOCKET]` through the system `ssh`, as the
 * docker CLI reaches it (`docker system dial-stdio` on the far side; no ssh library here).
 *
 * Every request over its own ssh connection costs a handshake and a `docker` process on the far host, about
 * 0.1–0.3 s each, and a run makes a dozen. So, unless told not to (`SshOptions.controlDir` absent), moat shares
 * one ssh connection per engine (OpenSSH's connection sharing, `ControlMaster`), which stays open
 * `SSH_SHARE_SECONDS` after its last use for the next moat command, and forwards a unix socket of its own,
 * next to ssh's, to the engine's socket on the far side (`ssh -O forward -L`), so that a request is a
 * connection to that socket: no process on either side. The engine's socket is the URL's, else the one the
 * far docker CLI uses (`docker context inspect`). Wherever that cannot be had (the far engine is not on a
 * unix socket, the far sshd forbids forwarding it, an old far docker), each request is a `dial-stdio` session
 * on the shared connection; without sharing, its own ssh, exactly as the docker CLI does.
 */
import { EngineUnavailableError, MoatError } from "../errors.ts";
import { type Endpoint, endpointUrl, type SshEndpoint } from "./endpoint.ts";
import { classifyConnectError, type Conn, type Transport } from "./transport.ts";

export interface SshOptions {
  /**
   * A directory for the shared ssh connection's sockets (ssh's `ControlPath`, and the forwarded engine
   * socket), made with mode 0700 when missing and used only when it is this user's alone; none: every
   * engine request is an ssh connection of its own.
   */
  controlDir?: string;
}

/** How long a shared ssh connection stays open with no request on it (ssh's `ControlPersist`). */
export const SSH_SHARE_SECONDS = 60;

/** How requests reach the engine: a forwarded socket, or `dial-stdio` sessions (shared when `controlPath`). */
type Route = { kind: "socket"; path: string } | { kind: "dial"; controlPath?: string };

export function sshTransport(endpoint: SshEndpoint, opts: SshOptions = {}): Transport {
  let route: Promise<Route> | undefined;
  const connect = async (again: boolean): Promise<Conn> => {
    if (opts.controlDir === undefined) return dialStdio(endpoint, undefined);
    route ??= sshRoute(endpoint, opts.controlDir);
    let r: Route;
    try {
      r = await route;
    } catch (err) {
      route = undefined; // the next request tries again
      throw err;
    }
    if (r.kind === "dial") return dialStdio(endpoint, r.controlPath);
    try {
      return await Deno.connect({ transport: "unix", path: r.path });
    } catch (err) {
      // The shared connection has gone (its idle time passed, or it was closed): set it up again, once.
      route = undefined;
      if (again) throw classifyConnectError(endpoint, err);
      return connect(true);
    }
  };
  return { endpoint, connect: () => connect(false) };
}

/**
 * Decide the route for this process: reuse a forwarded socket a shared connection already has, else open the
 * shared connection (learning the far engine's socket), forward a socket to it, and check that the engine
 * answers through it. Rejects only with ssh's own failure to connect.
 */
async function sshRoute(endpoint: SshEndpoint, dir: string): Promise<Route> {
  const controlPath = controlPathIn(dir);
  if (!controlPath) return { kind: "dial" };
  const local = `${dir}/${await forwardName(endpoint)}.sock`;
  if (await answers(local)) return { kind: "socket", path: local };
  const dial: Route = { kind: "dial", controlPath };
  // Opens the shared connection (or uses it), and asks the far docker which socket it uses when the URL
  // does not say.
  const ask = endpoint.socket
    ? ["true"]
    : ["docker", "context", "inspect", "--format", "{{.Endpoints.docker.Host}}"];
  const opened = await ssh(endpoint, sshOptionArgs(endpoint, controlPath), ask);
  if (opened.code === 255) throw sshFailure(endpoint, opened.stderr, opened.code); // ssh itself failed
  if (opened.code !== 0) return dial; // the far side could not say (no or an old docker): dial-stdio says why
  const far = endpoint.socket ?? unixPath(opened.stdout.trim());
  if (!far) return dial; // the far engine is not on a unix socket
  await Deno.remove(local).catch(() => {});
  // Another moat process may forward the same socket at the same moment: what answers is checked, not this.
  await ssh(
    endpoint,
    [...sshOptionArgs(endpoint, controlPath), "-O", "forward", "-L", `${local}:${far}`],
    [],
  );
  return await answers(local) ? { kind: "socket", path: local } : dial;
}

/** True when an engine answers `GET /_ping` on the unix socket `path` (bounded: 10 s). */
async function answers(path: string): Promise<boolean> {
  let conn: Deno.UnixConn | undefined;
  const timer = setTimeout(() => conn?.close(), 10_000);
  try {
    conn = await Deno.connect({ transport: "unix", path });
    await conn.write(new TextEncoder().encode("GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"));
    const buf = new Uint8Array(16);
    let n = 0;
    while (n < 12) {
      const got = await conn.read(buf.subarray(n));
      if (got === null) break;
      n += got;
    }
    return /^HTTP\/1\.[01] 2\d\d/.test(new TextDecoder().decode(buf.subarray(0, n)));
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch { /* closed by the timer */ }
  }
}

/** The path of a `unix://` engine address; `undefined` for any other. Pure. */
export function unixPath(host: string): string | undefined {
  const m = /^unix:\/\/(\/.+)$/.exec(host);
  return m ? m[1] : undefined;
}

/** A name for the forwarded socket of `endpoint`: one per user, host, port and far socket. */
async function forwardName(endpoint: SshEndpoint): Promise<string> {
  const key = `${endpoint.user ?? ""}@${endpoint.host}:${endpoint.port ?? ""}${endpoint.socket ?? ""}`;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
  return "engine-" + Array.from(digest.subarray(0, 10), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * ssh's `ControlPath` in `dir` (`%C`: a hash of the host, port and user), once `dir` is there, a directory,
 * this user's, and closed to everyone else; `undefined` otherwise, or when a path there would be too long
 * for a unix socket with the suffix ssh adds while it makes one.
 */
function controlPathIn(dir: string): string | undefined {
  // 40 hex digits of %C, and ssh's temporary ".XXXXXXXXXXXXXXXX" while it binds: within sun_path's 108 bytes.
  if (new TextEncoder().encode(dir).byteLength + 1 + 40 + 17 >= 108) return undefined;
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = Deno.lstatSync(dir);
    const uid = Deno.uid();
    if (!st.isDirectory || (uid !== null && st.uid !== uid) || ((st.mode ?? 0o777) & 0o077) !== 0) {
      return undefined;
    }
  } catch {
    return undefined;
  }
  return `${dir}/%C`;
}

/** ssh's options for `endpoint`: the docker CLI's, and the shared connection's when `controlPath`. Pure. */
function sshOptionArgs(endpoint: SshEndpoint, controlPath: string | undefined): string[] {
  return [
    "-T",
    "-o",
    "ConnectTimeout=30",
    ...(controlPath
      ? [
        "-o",
        "ControlMaster=auto",
        "-o",
        `ControlPath=${controlPath}`,
        "-o",
        `ControlPersist=${SSH_SHARE_SECONDS}`,
      ]
      : []),
    ...(endpoint.port ? ["-p", String(endpoint.port)] : []),
    ...(endpoint.user ? ["-l", endpoint.user] : []),
  ];
}

/**
 * `ssh`'s arguments for a `dial-stdio` connection to `endpoint` (the docker CLI's, `cli/connhelper`), on the
 * shared connection at `controlPath` when given. Pure.
 */
export function sshArgs(endpoint: SshEndpoint, controlPath?: string): string[] {
  return [
    ...sshOptionArgs(endpoint, controlPath),
    "--",
    endpoint.host,
    "docker",
    ...(endpoint.socket ? [`--host=unix://${endpoint.socket}`] : []),
    "system",
    "dial-stdio",
  ];
}

/** Run `ssh OPTIONS -- HOST COMMAND` (the host `endpoint`'s) to its end. */
async function ssh(
  endpoint: SshEndpoint,
  options: string[],
  command: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await spawnSsh(endpoint, [...options, "--", endpoint.host, ...command], "null").output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

function spawnSsh(endpoint: SshEndpoint, args: string[], stdin: "piped" | "null"): Deno.ChildProcess {
  try {
    return new Deno.Command("ssh", { args, stdin, stdout: "piped", stderr: "piped" }).spawn();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new MoatError(
        `${endpointUrl(endpoint)} needs the ssh command, which is not installed here`,
        "Install OpenSSH's client (e.g.  apt-get install openssh-client), or use tcp:// with TLS",
      );
    }
    throw err;
  }
}

/** ssh's failure (its last line on stderr) as the error moat reports. */
function sshFailure(endpoint: SshEndpoint, stderr: string, code: number | null): EngineUnavailableError {
  const said = stderr.trim().split("\n").filter(Boolean).at(-1) ?? `ssh exited with ${code}`;
  const missing = /\bdocker: (command )?not found/i.test(said);
  return new EngineUnavailableError(
    endpointUrl(endpoint),
    "other",
    missing ? `there is no docker command on ${endpoint.host} to reach its engine (${said})` : `ssh: ${said}`,
  );
}

/** One `dial-stdio` connection: ssh's stdin and stdout are the byte pipe. */
function dialStdio(endpoint: SshEndpoint, controlPath: string | undefined): Promise<Conn> {
  let child: Deno.ChildProcess;
  try {
    child = spawnSsh(endpoint, sshArgs(endpoint, controlPath), "piped");
  } catch (err) {
    return Promise.reject(err instanceof MoatError ? err : classifyConnectError(endpoint as Endpoint, err));
  }
  return Promise.resolve(childConn(endpoint, child));
}

/** A child process's stdout and stdin as a `Conn`; its failure before any byte is the connection's. */
function childConn(endpoint: SshEndpoint, child: Deno.ChildProcess): Conn {
  const reader = child.stdout.getReader();
  const writer = child.stdin.getWriter();
  const stderr = new Response(child.stderr).text().catch(() => "");
  let pending: Uint8Array | undefined;
  let anything = false;
  let closed = false;
  const failure = async (): Promise<MoatError | undefined> => {
    const status = await child.status;
    return status.success ? undefined : sshFailure(endpoint, await stderr, status.code);
  };
  return {
    async read(p: Uint8Array): Promise<number | null> {
      if (!pending || pending.byteLength === 0) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done || !value) {
          if (!anything && !closed) {
            const err = await failure();
            if (err) throw err;
          }
          return null;
        }
        pending = value;
      }
      anything = true;
      const n = Math.min(p.byteLength, pending.byteLength);
      p.set(pending.subarray(0, n));
      pending = pending.subarray(n);
      return n;
    },
    async write(p: Uint8Array): Promise<number> {
      try {
        await writer.write(p.slice());
      } catch (err) {
        throw (await failure()) ?? err;
      }
      return p.byteLength;
    },
    async closeWrite(): Promise<void> {
      await writer.close().catch(() => {});
    },
    close(): void {
      if (closed) return;
      closed = true;
      reader.cancel().catch(() => {});
      writer.abort().catch(() => {});
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
    },
  };
}
