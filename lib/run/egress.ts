/**
 * A run's egress policy in place (`--network allowlist`, `--allow HOST`): its own network
 * (lib/run/network.ts), moat's policy point on a unix socket (lib/net/policy_point.ts), and the relay
 * container that passes the sandbox's connections to it (lib/run/relay_plan.ts), ready before the sandbox is
 * created; and all of it removed when the run ends. The policy point runs in this moat process: the run is
 * in the foreground.
 *
 * Every decision goes to `network.jsonl` in the run's directory, one JSON object per line
 * (lib/net/policy_point.ts `Decision`).
 */
import type { EngineClient } from "../docker/client.ts";
import type { NetworkInspect } from "../docker/types.ts";
import { EngineApiError, MoatError } from "../errors.ts";
import { type HostPattern, normalizeHost, parseHostPattern } from "../net/host_policy.ts";
import { type Decision, PolicyPoint, PORTS, type Upstreams } from "../net/policy_point.ts";
import { parseHttpRule } from "../net/http_rules.ts";
import { parseTcpMapping, type TcpMapping } from "../net/tcp_map.ts";
import { hostUpstreams } from "../net/upstream.ts";
import type { GrantUse } from "../net/intercept.ts";
import type { RunCa } from "../net/x509.ts";
import { upstreamTrust } from "./trust.ts";
import type { AuditLog } from "../audit/log.ts";
import type { Json } from "../audit/chain.ts";
import { after } from "../timer.ts";
import { LABELS } from "./labels.ts";
import { addressIn, freeSubnet, isolatedNetworkBody } from "./network.ts";
import type { EgressSpec } from "./plan.ts";
import { moatRuntime, RELAY_SOCKET, RELAY_SOCKET_DIR, relayContainerBody } from "./relay_plan.ts";

/** The run's decision log, in its directory. */
export const NETWORK_LOG = "network.jsonl";

/**
 * The decisions of a run's network log (`NETWORK_LOG`): each line's object, in order. A last line without its
 * newline is being written, and a line that is not a JSON object is skipped (the log is moat's own, written
 * a line at a time). Pure.
 */
export function parseNetworkLog(text: string): Decision[] {
  const end = text.lastIndexOf("\n");
  const out: Decision[] = [];
  for (const line of text.slice(0, end + 1).split("\n")) {
    if (line === "") continue;
    try {
      const d = JSON.parse(line);
      if (d && typeof d === "object" && !Array.isArray(d) && typeof d.decision === "string") out.push(d);
    } catch { /* not a line of moat's */ }
  }
  return out;
}

/** How many refused hosts the notice at a run's end names before it counts the rest. */
const NOTICE_HOSTS = 5;

/**
 * The line moat prints when a run ends whose policy refused hosts (`decisions`: its network log): which,
 * and how to allow one. Names asked by address (reverse lookups) are left out. `undefined` when none was
 * refused. Pure.
 */
export function deniedNotice(runId: string, decisions: readonly Decision[]): string | undefined {
  const hosts = [
    ...new Set(
      decisions.filter((d) => d.decision === "deny" && d.host).map((d) => normalizeHost(d.host!))
        .filter((h) => h !== "" && !/\.(in-addr|ip6)\.arpa$/.test(h)),
    ),
  ];
  if (hosts.length === 0) return undefined;
  const more = hosts.length > NOTICE_HOSTS ? ` and ${hosts.length - NOTICE_HOSTS} more` : "";
  return `moat: run ${runId}'s network policy refused ${hosts.slice(0, NOTICE_HOSTS).join(", ")}${more}: ` +
    `allow a host with  --allow HOST  (every decision:  moat logs --network ${runId})`;
}

/** `deniedNotice` for the run whose directory is `runDir`, from its network log (none: no notice). */
export function readDeniedNotice(runId: string, runDir: string): string | undefined {
  let log = "";
  try {
    log = Deno.readTextFileSync(`${runDir}/${NETWORK_LOG}`);
  } catch { /* nothing was decided */ }
  return deniedNotice(runId, parseNetworkLog(log));
}

/** How long the relay may take to say it is ready. */
export const RELAY_READY_MS = 30_000;

/** The longest unix socket path the kernel takes (108 bytes with its NUL), with room to spare. */
export const MAX_SOCKET_PATH = 100;

export interface EgressRequest {
  runId: string;
  /** The run's directory (`runs/<id>`): the decision log and the resolver file go there. */
  runDir: string;
  /** The run's image (its id): the relay's bare root filesystem. */
  image: string;
  allow: readonly string[];
  /** Mapped TCP ports, `PORT=HOST:PORT` (lib/net/tcp_map.ts), checked already. */
  tcp?: readonly string[];
  /** Rules for the requests to some of `allow`'s entries (`host` as written there), checked already. */
  rules?: readonly { host: string; rules: readonly string[] }[];
  /** What the policy point reads TLS for: the run's CA and grants (lib/run/trust.ts). */
  tls?: PolicyTls;
  /** The run's audit log: each decision goes there too (lib/audit/log.ts). */
  audit?: AuditLog;
  /** The run's labels; the relay and the network carry them, the relay marked as a helper. */
  labels: Record<string, string>;
  /**
   * The relay's removal is left to `stop` (for another process to do, `stop({keepRelay})`): `release` only
   * stops the policy point. For a run in the foreground whose end another process cleans up.
   */
  deferRemoval?: boolean;
}

/** A run's egress in place: what the sandbox joins, and how to take it all down. */
export interface Egress {
  spec: EgressSpec;
  /**
   * Remove the relay and the network, stop the policy point. Never throws. With `keepRelay` and
   * `keepNetwork` they stay (the relay with nothing to pass connections to) for another process to remove
   * (`moat standby --release`, lib/run/standby.ts); a later `stop()` removes them still.
   */
  stop(opts?: { keepNetwork?: boolean; keepRelay?: boolean }): Promise<void>;
  /**
   * Stop the policy point and remove the relay (unless `deferRemoval`), leaving the network to `stop`: once
   * the sandbox has exited, alongside its removal. Never throws.
   */
  release(): Promise<void>;
  /**
   * Stop this process's policy point (its socket goes), leaving the relay and the network: for a detached
   * run, whose recorder serves the policy from its own socket at the same path (`takeOverEgress`). Before
   * the sandbox starts, so no connection of the sandbox is cut.
   */
  handOver(): Promise<void>;
  /** Forget it all: the recorder of a detached run owns the relay and the network now. */
  disown(): void;
}

/** A run's CA and the credentials its policy point adds, by host: with them it reads TLS (lib/net/intercept.ts). */
export interface PolicyTls {
  ca: RunCa;
  grants: ReadonlyMap<string, GrantUse>;
}

/** moat's policy point serving a run's relay on a unix socket. */
export interface PolicyService {
  /** Resolves when the relay says it is ready. */
  ready: Promise<void>;
  /** Stop listening (the socket's file goes with it), finish the connections in progress, close the log. */
  close(): Promise<void>;
}

/**
 * Serve a run's policy on `socketPath`, each decision appended to the run's `NETWORK_LOG`. Throws when the
 * socket cannot be made.
 */
export function servePolicy(
  opts: {
    socketPath: string;
    runDir: string;
    allow: readonly string[];
    tcp?: readonly string[];
    rules?: readonly { host: string; rules: readonly string[] }[];
    tls?: PolicyTls;
    audit?: AuditLog;
    relayAddress: string;
  },
  env: Record<string, string | undefined>,
): PolicyService {
  const allow = policyPatterns(opts.allow, opts.rules ?? []);
  // Read before the socket is made: a MOAT_UPSTREAM_CA that cannot be read fails the run here.
  const upstreamCaCerts = opts.tls ? upstreamTrust(env) : [];
  const log = Deno.openSync(`${opts.runDir}/${NETWORK_LOG}`, { append: true, create: true, mode: 0o600 });
  const encoder = new TextEncoder();
  const record = (d: Decision) => {
    try {
      log.writeSync(encoder.encode(JSON.stringify(d) + "\n"));
    } catch { /* a full disk: the run goes on; the log is what is lost */ }
    opts.audit?.append("network", d as unknown as { [key: string]: Json });
  };
  let listener: Deno.Listener;
  try {
    listener = Deno.listen({ transport: "unix", path: opts.socketPath });
  } catch (err) {
    log.close();
    throw err;
  }
  const ready = Promise.withResolvers<void>();
  // The audit log stays open while the policy point serves: a decision is then one locked write.
  const releaseAudit = opts.audit?.hold();
  const point = new PolicyPoint(
    {
      allow,
      tcp: tcpMap(opts.tcp ?? []),
      relayAddress: opts.relayAddress,
      ...(opts.tls ? { grants: opts.tls.grants, tls: { ca: opts.tls.ca, upstreamCaCerts } } : {}),
    },
    upstreamsFor(env),
    record,
  );
  const served = point.serve(listener, ready.resolve);
  let closed: Promise<void> | undefined;
  return {
    ready: ready.promise,
    close() {
      closed ??= (async () => {
        listener.close();
        await served;
        log.close();
        releaseAudit?.();
      })();
      return closed;
    },
  };
}

/**
 * How moat reaches upstreams: the host's resolver, or — for moat's own tests only — `MOAT_TEST_UPSTREAMS`,
 * a JSON object of names to `address:port` on this machine (the tests' own servers).
 */
export function upstreamsFor(env: Record<string, string | undefined>): Upstreams {
  const override = env["MOAT_TEST_UPSTREAMS"];
  if (!override) return hostUpstreams();
  const map = JSON.parse(override) as Record<string, string>;
  return {
    dial(host) {
      const to = map[host];
      if (!to) return Promise.reject(new Error(`${host} is not in MOAT_TEST_UPSTREAMS`));
      const colon = to.lastIndexOf(":");
      return Deno.connect({ hostname: to.slice(0, colon), port: Number(to.slice(colon + 1)) });
    },
  };
}

/** How the error for a pool with no /28 left begins. */
export const NO_FREE_SUBNET = "No free subnet is left for the run's network";

/** How the error for a run's network the engine refused begins. */
export const NETWORK_REFUSED = "The engine could not make the run's own network";

/** How many subnets a run's network is tried on before moat gives up (each taken meanwhile by another). */
const SUBNET_TRIES = 8;

/**
 * Make a run's network (lib/run/network.ts) on a free /28. Runs started at once look at the same list of
 * networks: each starts from a random place in the pool, and one the engine says overlaps (another run
 * took it since the list) is passed over for the next. `from` picks the place; `tried` hears of each
 * subnet asked for; `networks`: the engine's networks, when the caller has listed them already.
 */
export async function createRunNetwork(
  client: EngineClient,
  name: string,
  labels: Record<string, string>,
  opts: { from?: () => number; tried?: (subnet: string) => void; networks?: NetworkInspect[] } = {},
): Promise<{ id: string; subnet: string }> {
  const from = opts.from ?? (() => Math.floor(Math.random() * 4096));
  const used = (opts.networks ?? await client.networkList([])).flatMap((n) =>
    n.IPAM?.Config?.map((c) => c.Subnet ?? "") ?? []
  );
  for (let attempt = 1;; attempt++) {
    const subnet = freeSubnet(used, undefined, undefined, from());
    if (!subnet) {
      throw new MoatError(
        `${NO_FREE_SUBNET}: the engine's networks cover all of 10.237.0.0/16`,
        "Remove networks left behind:  moat clean",
      );
    }
    opts.tried?.(subnet);
    try {
      return { id: await client.networkCreate(isolatedNetworkBody(name, subnet, labels)), subnet };
    } catch (err) {
      const taken = err instanceof EngineApiError && /overlaps/i.test(err.daemonMessage);
      if (err instanceof EngineApiError && !taken) {
        // The engine refused the network itself (a driver without the bridge's options, an engine without
        // Internal networks): nothing a retry changes.
        throw new MoatError(
          `${NETWORK_REFUSED}: ${err.daemonMessage}`,
          "See what this engine supports:  moat doctor\n" +
            "Or run on the engine's own network, with no limit on what the run reaches:  moat run --network default …",
          { cause: err },
        );
      }
      if (!taken || attempt >= SUBNET_TRIES) throw err;
      used.push(subnet);
    }
  }
}

/** The mapped TCP ports as the policy point takes them, from `PORT=HOST:PORT` entries checked already. Pure. */
export function tcpMap(entries: readonly string[]): Map<number, { host: string; port: number }> {
  return new Map(entries.map((t) => {
    const m = parseTcpMapping(t) as TcpMapping;
    return [m.port, { host: m.host, port: m.hostPort }];
  }));
}

/**
 * The allow list as the policy point takes it: each entry's pattern, with its rules when it has some. The
 * entries and rules were checked with the config; one that does not parse now is a bug, and refused. Pure.
 */
export function policyPatterns(
  allow: readonly string[],
  rules: readonly { host: string; rules: readonly string[] }[],
): HostPattern[] {
  const checked = <T>(r: T | string, what: string): T => {
    if (typeof r === "string") throw new Error(`${what} was not checked: ${r}`);
    return r;
  };
  const patterns = allow.map((a) => checked(parseHostPattern(a), `allow entry "${a}"`));
  for (const entry of rules) {
    const i = allow.indexOf(entry.host);
    if (i === -1) throw new Error(`rules for "${entry.host}", which is not in the allow list`);
    patterns[i] = {
      ...patterns[i]!,
      rules: entry.rules.map((r) => checked(parseHttpRule(r), `rule "${r}" for ${entry.host}`)),
    };
  }
  return patterns;
}

/** Put a run's egress in place; on failure, whatever was made is removed and the error thrown. */
export async function startEgress(
  client: EngineClient,
  req: EgressRequest,
  env: Record<string, string | undefined>,
): Promise<Egress> {
  const tcp = tcpMap(req.tcp ?? []);
  const undo: Array<() => Promise<void>> = [];
  const runSteps = async (steps: Array<() => Promise<void>>) => {
    for (const step of steps.reverse()) await step().catch(() => {});
  };
  // The policy point and the relay: what `release` ends early. From `relayFrom` on in `undo`.
  let relayFrom = 0;
  let removeRelay: (() => Promise<void>) | undefined;
  let removeNetwork: (() => Promise<void>) | undefined;
  /** Run a removal once (a second call, or one after `disown`, does nothing). */
  const once = async (which: "relay" | "network") => {
    const remove = which === "relay" ? removeRelay : removeNetwork;
    if (which === "relay") removeRelay = undefined;
    else removeNetwork = undefined;
    await remove?.().catch(() => {});
  };
  let released: Promise<void> | undefined;
  const release = () =>
    released ??= (async () => {
      await runSteps(undo.splice(relayFrom));
      if (!req.deferRemoval) await once("relay");
    })();
  const stop = async (opts: { keepNetwork?: boolean; keepRelay?: boolean } = {}) => {
    await release();
    await runSteps(undo.splice(0));
    if (opts.keepRelay) return;
    await once("relay");
    if (!opts.keepNetwork) await once("network");
  };
  try {
    const network = `moat-net-${req.runId}`;
    const { id: networkId, subnet } = await createRunNetwork(client, network, req.labels);
    removeNetwork = () => client.networkRemove(networkId);
    const relayAddress = addressIn(subnet, 2)!;

    // moat's socket: in the run's directory, or a short directory of this user's when that path is too long.
    let dir = `${req.runDir}/net`;
    if (`${dir}/${RELAY_SOCKET}`.length > MAX_SOCKET_PATH) {
      dir = Deno.makeTempDirSync({ prefix: `moat-${req.runId}-` });
      undo.push(() => Deno.remove(dir, { recursive: true }));
    } else {
      Deno.mkdirSync(dir, { mode: 0o700 });
    }
    const resolvConf = writeResolvConf(req.runDir, relayAddress);
    const service = servePolicy({
      socketPath: `${dir}/${RELAY_SOCKET}`,
      runDir: req.runDir,
      allow: req.allow,
      ...(req.tcp ? { tcp: req.tcp } : {}),
      ...(req.rules ? { rules: req.rules } : {}),
      ...(req.tls ? { tls: req.tls } : {}),
      ...(req.audit ? { audit: req.audit } : {}),
      relayAddress,
    }, env);
    relayFrom = undo.length;
    let point: PolicyService | undefined = service;
    const closePoint = async () => {
      await point?.close();
      point = undefined;
    };
    undo.push(closePoint);
    const body = relayContainerBody({
      image: req.image,
      network,
      address: relayAddress,
      runtime: moatRuntime(),
      socketDir: dir,
      ports: [PORTS.proxy, PORTS.http, PORTS.tls, ...tcp.keys()],
      udpPorts: [PORTS.dns],
      user: `${Deno.uid()}:${Deno.gid()}`,
      labels: { ...req.labels, [LABELS.probe]: "relay" },
    });
    const relay = await client.containerCreate(body, relayName(req.runId));
    removeRelay = () => removeRelayContainer(client, relay.Id);
    await startRelay(client, relay.Id, service.ready);
    return {
      spec: { network, relayAddress, resolvConf },
      stop,
      release,
      handOver: closePoint,
      disown() {
        undo.length = 0;
        removeRelay = undefined;
        removeNetwork = undefined;
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Start the relay container `relayId` and wait until it says it is ready (`ready`, from the policy point on
 * its socket). Throws, with what to do, when it exits first or is not ready within `RELAY_READY_MS`. The wait
 * for its exit is registered before the start (as a run's own is), so a relay that exits at once is seen to.
 */
export async function startRelay(client: EngineClient, relayId: string, ready: Promise<void>): Promise<void> {
  const exit = await client.containerWait(relayId, "next-exit");
  try {
    await client.containerStart(relayId);
    let cancel = () => {};
    const late = new Promise<never>((_, reject) => {
      cancel = after(RELAY_READY_MS, () =>
        reject(
          new MoatError(
            `The run's network relay did not get ready within ${RELAY_READY_MS / 1000} s`,
            `See its output:  docker logs ${relayId.slice(0, 12)}`,
          ),
        ));
    });
    const exited = exit.result.then((r) => {
      throw new MoatError(
        `The run's network relay exited (code ${r.StatusCode}) before it was ready`,
        `See its output:  docker logs ${
          relayId.slice(0, 12)
        }\nThis is a bug in moat; please report it with that output`,
      );
    });
    exited.catch(() => {});
    await Promise.race([ready, late, exited]).finally(cancel);
  } finally {
    exit.close();
  }
}

/**
 * Remove a relay container (by id or name), and wait until it is gone: one made ahead is removed by the engine
 * when it stops by itself (AutoRemove), and a removal asked for meanwhile fails with "removal in progress"
 * while the relay is still on the network its network's removal waits for. Never throws.
 */
export async function removeRelayContainer(client: EngineClient, relay: string): Promise<void> {
  try {
    await client.containerRemove(relay);
  } catch {
    try {
      const gone = await client.containerWait(relay, "removed");
      await gone.result.finally(() => gone.close());
    } catch { /* gone already */ }
  }
}

/** Write the run's `resolv.conf`, naming the relay as its only nameserver; its path. */
export function writeResolvConf(runDir: string, relayAddress: string): string {
  const path = `${runDir}/resolv.conf`;
  Deno.writeTextFileSync(path, `nameserver ${relayAddress}\noptions ndots:0 timeout:2 attempts:2\n`);
  return path;
}

/** The name of a run's relay container (`startEgress`). */
export const relayName = (runId: string) => `moat-net-${runId}-relay`;

/**
 * The recorder of a detached run takes its egress over (`Egress.handOver`): it serves the run's policy on
 * the relay's socket, found from the relay container the run's `moat run -d` made (its bind of the socket's
 * directory) and the relay's address on the run's network. `stop` then stops serving and removes the relay
 * and the network, as `Egress.stop` does for a run in the foreground.
 */
export async function takeOverEgress(
  client: EngineClient,
  req: {
    runId: string;
    runDir: string;
    allow: readonly string[];
    tcp?: readonly string[];
    rules?: readonly { host: string; rules: readonly string[] }[];
    tls?: PolicyTls;
    audit?: AuditLog;
  },
  env: Record<string, string | undefined>,
): Promise<{ stop(): Promise<void> }> {
  const relay = await client.maybeContainerInspect(relayName(req.runId));
  const dir = relay?.Mounts?.find((m) => m.Destination === RELAY_SOCKET_DIR)?.Source;
  const address = relay?.NetworkSettings?.Networks?.[`moat-net-${req.runId}`]?.IPAddress;
  if (!relay || !dir || !address) {
    throw new MoatError(
      `The network relay of run ${req.runId} is not there to take over`,
      "Run it again; see what is left of it:  moat system",
    );
  }
  const point = servePolicy({ socketPath: `${dir}/${RELAY_SOCKET}`, ...req, relayAddress: address }, env);
  return {
    /** Idempotent. */
    async stop() {
      await point.close().catch(() => {});
      await removeRelayContainer(client, relay.Id);
      await client.networkRemove(`moat-net-${req.runId}`).catch(() => {});
      if (!dir.startsWith(`${req.runDir}/`)) await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
