/** Engine API shapes moat reads and writes (subsets of swagger.yaml definitions). */

/** `/info` `Runtimes` entry (`Runtime` in swagger). Shim-v2 runtimes have no `path` (moby info_unix.go). */
export interface RuntimeInfo {
  path?: string;
  runtimeArgs?: string[];
  runtimeType?: string;
}

/** `GET /info` (`SystemInfo`), the fields moat uses. */
export interface SystemInfo {
  ServerVersion?: string;
  Runtimes?: Record<string, RuntimeInfo>;
  DefaultRuntime?: string;
  SecurityOptions?: string[];
  OperatingSystem?: string;
  KernelVersion?: string;
}

/** `GET /_ping` result after negotiation. */
export interface PingResult {
  apiVersion: string;
  serverApiVersion: string | undefined;
  server: string | undefined;
}

/** `GET /images/{name}/json`, the fields moat uses. */
export interface ImageInspect {
  Id: string;
  RepoTags?: string[];
  Config?: {
    User?: string;
    Env?: string[];
    Labels?: Record<string, string> | null;
    Cmd?: string[] | null;
    Entrypoint?: string[] | null;
  };
}

/** `POST /containers/create` body (`ContainerConfig` + `HostConfig`). */
export interface ContainerCreateBody {
  Image: string;
  Cmd?: string[];
  Entrypoint?: string[];
  Env?: string[];
  WorkingDir?: string;
  User?: string;
  Labels?: Record<string, string>;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  HostConfig: {
    Runtime?: string;
    Binds?: string[];
    AutoRemove?: boolean;
    /** Initial pty size `[rows, columns]` for `Tty` containers (honoured on Linux from API 1.42). */
    ConsoleSize?: [number, number];
    [key: string]: unknown;
  };
  /** The container's address on a network it joins at create (`EndpointSettings.IPAMConfig`). */
  NetworkingConfig?: { EndpointsConfig: Record<string, { IPAMConfig?: { IPv4Address?: string } }> };
}

/** `POST /containers/create` 201 body. */
export interface ContainerCreateResponse {
  Id: string;
  Warnings?: string[] | null;
}

/** `GET /containers/{id}/json`, the fields moat uses. */
export interface ContainerInspect {
  Id: string;
  Name: string;
  /** The image's id (`sha256:…`). */
  Image?: string;
  State: {
    Status: string;
    Running: boolean;
    ExitCode: number;
    OOMKilled?: boolean;
    StartedAt?: string;
    FinishedAt?: string;
    Error?: string;
  };
  Config: { Labels?: Record<string, string> | null; Tty?: boolean; User?: string; Env?: string[] };
  HostConfig: { Runtime?: string; [key: string]: unknown };
  /** The container's mounts: host `Source`, container `Destination`. */
  Mounts?: Array<{ Source?: string; Destination?: string }>;
  /** Its address on each network it joined. */
  NetworkSettings?: { Networks?: Record<string, { IPAddress?: string }> | null };
}

/** `GET /containers/json` item (`ContainerSummary`). */
export interface ContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  State: string;
  Status: string;
  Labels: Record<string, string> | null;
  Created: number;
  /** The image's id (`sha256:…`); `Image` is the reference the container was created with. */
  ImageID?: string;
  /** Bytes written in the container's own layer; only with `GET /containers/json?size=1`. */
  SizeRw?: number;
}

/** `GET /images/json` item (`ImageSummary`), the fields moat uses. */
export interface ImageSummary {
  Id: string;
  RepoTags: string[] | null;
  RepoDigests?: string[] | null;
  Size: number;
  Created: number;
  Labels: Record<string, string> | null;
}

/** `POST /containers/{id}/wait` body. */
export interface WaitResponse {
  StatusCode: number;
  Error?: { Message?: string } | null;
}

/** One `IPAM.Config` entry of a network. */
export interface IpamConfig {
  Subnet?: string;
  Gateway?: string;
  IPRange?: string;
}

/** `POST /networks/create` body (`NetworkCreateRequest`), the fields moat sets. */
export interface NetworkCreateBody {
  Name: string;
  Driver?: string;
  /** No route out of the network: its containers reach only each other (and the bridge's own address). */
  Internal?: boolean;
  Attachable?: boolean;
  EnableIPv6?: boolean;
  CheckDuplicate?: boolean;
  IPAM?: { Driver?: string; Config?: IpamConfig[] };
  /** Driver options, e.g. `com.docker.network.bridge.inhibit_ipv4`. */
  Options?: Record<string, string>;
  Labels?: Record<string, string>;
}

/** `GET /networks/{id}` and the elements of `GET /networks` (`Network`), the fields moat reads. */
export interface NetworkInspect {
  Name: string;
  Id: string;
  Driver?: string;
  Internal?: boolean;
  EnableIPv6?: boolean;
  IPAM?: { Config?: IpamConfig[] | null };
  Options?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
  /** The containers on it, by container id (from `GET /networks/{id}` only). */
  Containers?: Record<string, { Name?: string; IPv4Address?: string }> | null;
}
