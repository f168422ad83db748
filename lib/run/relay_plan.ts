/**
 * A run's relay container (lib/net/relay.ts): moat itself, `moat relay`, on the run's network. Pure: what to
 * ask the engine for, given the files moat runs from.
 *
 * Nothing is pulled or built for it, so it works on a host without a registry: its image is the run's own
 * (already there), used only as a root filesystem, and moat brings everything it runs from the host, read
 * only: the executable that runs moat (Deno, or a compiled moat), the shared libraries that executable is
 * running with now, its dynamic loader among them, and moat's code. The loader is started directly with the
 * libraries' directory, so the image needs no C library of its own (a busybox image will do). The relay runs
 * under runc, as the user moat runs as (its unix socket is that user's), with no capability, on a read-only
 * root; ports below 1024 are opened to it by the network namespace's `ip_unprivileged_port_start` sysctl.
 */
import type { ContainerCreateBody } from "../docker/types.ts";
import { sonameOf } from "./elf.ts";

/** What moat runs from, on the host. */
export interface MoatRuntime {
  /** The executable: Deno, or a compiled moat. */
  executable: string;
  /**
   * The shared libraries it runs with, the dynamic loader among them (`mappedLibraries`): each file, and
   * the name the loader looks for it by (its soname, lib/run/elf.ts; else its file name).
   */
  libraries: Library[];
  /** moat's code for Deno to run: its source directory (with main.ts), or the bundle; none when compiled. */
  code?: { source: string } | { bundle: string };
}

/** A shared library: its file on the host, and the name it is bound under in the relay's container. */
export interface Library {
  path: string;
  name: string;
}

/** Libraries named by their sonames (`soname`; a library without one keeps its file name). Pure. */
export function librariesOf(
  paths: readonly string[],
  soname: (path: string) => string | undefined,
): Library[] {
  return paths.map((path) => ({ path, name: soname(path) ?? basename(path) }));
}

/** Where the relay's container sees moat's files. */
export const RELAY_ROOT = "/opt/moat";
/** Where it sees the directory of moat's unix socket. */
export const RELAY_SOCKET_DIR = "/run/moat";
/** The socket's name in that directory. */
export const RELAY_SOCKET = "relay.sock";

const basename = (path: string) => path.slice(path.lastIndexOf("/") + 1);

/** A dynamic loader's file name (glibc's `ld-linux…`, musl's `ld-musl…`). Pure. */
export function isLoader(path: string): boolean {
  return /^ld-(linux|musl)[^/]*\.so(\.\d+)*$/.test(basename(path));
}

/**
 * The shared libraries mapped into a process, from the text of its `/proc/<pid>/maps`: each once, in the
 * order first mapped. Pure.
 */
export function mappedLibraries(maps: string): string[] {
  const found = new Set<string>();
  for (const line of maps.split("\n")) {
    const path = line.trim().split(/\s+/)[5];
    if (path?.startsWith("/") && /\.so(\.\d+)*$/.test(basename(path))) found.add(path);
  }
  return [...found];
}

/**
 * moat's own command line in a container that binds moat's files (`moatBinds`), from its loader (when there
 * is one) to `args`: the relay's, or the doctor's reach probe's (lib/doctor/reach.ts). Pure.
 */
export function moatCommand(rt: MoatRuntime, args: readonly string[]): string[] {
  const loader = rt.libraries.find((l) => isLoader(l.name))?.name;
  const exe = `${RELAY_ROOT}/bin/${basename(rt.executable)}`;
  const start = loader
    ? [`${RELAY_ROOT}/lib/${basename(loader)}`, "--library-path", `${RELAY_ROOT}/lib`, exe]
    : [exe];
  const code = rt.code === undefined
    ? []
    : ["run", "-A", "--unstable-net", "--no-config", "--no-lock", "--quiet", codeEntry(rt.code)];
  return [...start, ...code, ...args];
}

/** The relay's command line in its container, from its loader (when there is one) to its ports. Pure. */
export function relayCommand(
  rt: MoatRuntime,
  ports: readonly number[],
  udpPorts: readonly number[] = [],
  expireAt?: number,
): string[] {
  return moatCommand(rt, [
    "relay",
    "--socket",
    `${RELAY_SOCKET_DIR}/${RELAY_SOCKET}`,
    ...ports.flatMap((p) => ["--port", String(p)]),
    ...udpPorts.flatMap((p) => ["--udp-port", String(p)]),
    ...(expireAt === undefined ? [] : ["--expire-at", String(expireAt)]),
  ]);
}

/** The read-only binds that give a container moat's files under `RELAY_ROOT`. Pure. */
export function moatBinds(rt: MoatRuntime): string[] {
  const code = rt.code;
  return [
    `${rt.executable}:${RELAY_ROOT}/bin/${basename(rt.executable)}:ro`,
    ...rt.libraries.map((l) => `${l.path}:${RELAY_ROOT}/lib/${l.name}:ro`),
    ...(code === undefined
      ? []
      : "source" in code
      ? [`${code.source}:${RELAY_ROOT}/code:ro`]
      : [`${code.bundle}:${RELAY_ROOT}/code/${basename(code.bundle)}:ro`]),
  ];
}

function codeEntry(code: NonNullable<MoatRuntime["code"]>): string {
  return "source" in code ? `${RELAY_ROOT}/code/main.ts` : `${RELAY_ROOT}/code/${basename(code.bundle)}`;
}

/** What a run's relay container is made of. */
export interface RelayPlan {
  /** The run's image. */
  image: string;
  /** The run's network (lib/run/network.ts) and the relay's fixed address on it. */
  network: string;
  address: string;
  runtime: MoatRuntime;
  /** The host directory of moat's unix socket for this run. */
  socketDir: string;
  ports: number[];
  /** UDP ports (DNS). */
  udpPorts?: number[];
  /** The user moat runs as, `uid:gid`. */
  user: string;
  labels: Record<string, string>;
  /**
   * A relay made ahead of its run (lib/run/standby.ts): when it stops, unless a run took it (ms since the
   * epoch). It is then removed by the engine as it exits.
   */
  expireAt?: number;
}

/**
 * The environment of moat's helpers in containers (the relay, doctor's probe): Deno's cache on the tmpfs. No
 * update check: Deno would ask for dl.deno.land through Docker's resolver, and the engine then takes seconds
 * (its DNS timeout) to remove the container (measured: 3.9 s, against 0.1 s without).
 */
export const MOAT_HELPER_ENV: readonly string[] = [
  "DENO_DIR=/tmp/deno",
  "DENO_NO_UPDATE_CHECK=1",
  "HOME=/tmp",
  "NO_COLOR=1",
];

/** The engine's body for a run's relay container. Pure. */
export function relayContainerBody(p: RelayPlan): ContainerCreateBody {
  const [entrypoint, ...cmd] = relayCommand(p.runtime, p.ports, p.udpPorts, p.expireAt);
  const binds = [...moatBinds(p.runtime), `${p.socketDir}:${RELAY_SOCKET_DIR}`];
  return {
    Image: p.image,
    Entrypoint: [entrypoint!],
    Cmd: cmd,
    User: p.user,
    Env: [...MOAT_HELPER_ENV],
    WorkingDir: "/tmp",
    Labels: p.labels,
    HostConfig: {
      Runtime: "runc",
      NetworkMode: p.network,
      Binds: binds,
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      ReadonlyRootfs: true,
      Tmpfs: { "/tmp": "rw,nosuid,nodev,size=64m" },
      Sysctls: { "net.ipv4.ip_unprivileged_port_start": "0" },
      // What Docker's resolver cannot answer goes to moat, as the sandbox's does (lib/run/plan.ts).
      Dns: [p.address],
      PidsLimit: 64,
      Memory: 256 * 1024 * 1024,
      Init: true,
      ...(p.expireAt === undefined ? {} : { AutoRemove: true }),
    },
    NetworkingConfig: { EndpointsConfig: { [p.network]: { IPAMConfig: { IPv4Address: p.address } } } },
  };
}

/**
 * What this moat process runs from (the edge behind `MoatRuntime`): its executable, the libraries mapped
 * into it (`/proc/self/maps`), and its main module when that is a file on disk (a compiled moat's is not).
 */
export function moatRuntime(): MoatRuntime {
  const executable = Deno.execPath();
  const libraries = librariesOf(mappedLibraries(Deno.readTextFileSync("/proc/self/maps")), sonameOf);
  const main = new URL(Deno.mainModule);
  let onDisk = false;
  try {
    onDisk = main.protocol === "file:" && Deno.statSync(main.pathname).isFile;
  } catch { /* a compiled moat's main module is inside the executable */ }
  if (!onDisk) return { executable, libraries };
  const path = decodeURIComponent(main.pathname);
  return {
    executable,
    libraries,
    code: path.endsWith(".ts") ? { source: path.slice(0, path.lastIndexOf("/")) } : { bundle: path },
  };
}
