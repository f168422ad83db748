/**
 * A run's network made ahead (a "standby"): the network and the relay of an allowlist run (lib/run/egress.ts)
 * cost about 0.45 s to set up, mostly the engine starting the relay's container, which is more than the rest
 * of a short run. So after an allowlist run moat makes the next one in the background (`moat standby`, a
 * detached process), and the next run with the same image takes it: it serves its own policy on the relay's
 * socket, and the standby's id becomes the run's id (the network `moat-net-<id>` and the relay
 * `moat-net-<id>-relay` are named after it, as every run's are). A standby serves one run only and goes with
 * it, like a network made for the run, so runs share nothing.
 *
 * In MOAT_HOME:
 * - `standby/<id>/`: the directory of the relay's unix socket (bind-mounted into the relay).
 * - `standby/<id>.json`: written once the relay is ready: the standby can be taken. A run takes it by
 *   renaming it to `standby/<id>/claimed.json`, which only one process can do.
 * - `standby/.lock`: held by the process that makes one, so that two never make one each.
 *
 * A standby nobody takes expires: its relay stops by itself at the time it was given (`--expire-at`; the
 * engine removes its container) unless a run serves its socket by then, and its network is removed by the
 * next `moat standby` or `moat clean`. Until then it carries the label `dev.moat.standby` (its expiry) and is
 * not taken for something left behind (`waitingStandby`).
 *
 * `MOAT_STANDBY=0` turns it off; `MOAT_STANDBY_IDLE` is how long one waits, in seconds (default 600).
 */
import type { EngineClient } from "../docker/client.ts";
import type { NetworkInspect } from "../docker/types.ts";
import { MoatError } from "../errors.ts";
import { PolicyPoint, PORTS } from "../net/policy_point.ts";
import { ensureHomeId } from "../store/home_id.ts";
import { currentOwner, processOwner } from "../store/owner.ts";
import type { Owner } from "../store/records.ts";
import { newRunId } from "../store/records.ts";
import { VERSION } from "../version.ts";
import {
  createRunNetwork,
  type Egress,
  type EgressRequest,
  MAX_SOCKET_PATH,
  RELAY_READY_MS,
  relayName,
  removeRelayContainer,
  servePolicy,
  startRelay,
  writeResolvConf,
} from "./egress.ts";
import { labelOf, LABELS } from "./labels.ts";
import { waitingStandby } from "./orphans.ts";
import { addressIn, isIsolatedNetwork } from "./network.ts";
import type { RunSpec } from "./plan.ts";
import { spawnDetachedMoat } from "./recorder.ts";
import { planWarm, warmKey } from "./warm.ts";
import { moatRuntime, RELAY_SOCKET, relayContainerBody } from "./relay_plan.ts";

/** The directory of standbys in MOAT_HOME. */
export const STANDBY_DIR = "standby";
/** How long a standby waits for a run, unless `MOAT_STANDBY_IDLE` says otherwise. */
export const STANDBY_IDLE_MS = 600_000;
/**
 * A standby this close to its expiry is not taken: its relay may be about to stop before the run serves
 * its socket. A quarter of its idle time when that is shorter (a short idle time is for tests).
 */
export const CLAIM_MARGIN_MS = 30_000;

/**
 * A standby ready to be taken: what `standby/<id>.json` says. It has a network and relay (an allowlist
 * run's), a waiting sandbox (a warm run's, lib/run/warm.ts), or both.
 */
export interface Standby {
  id: string;
  /** What a run must match to take it (`standbyKey`, or lib/run/warm.ts `warmKey`). */
  key: string;
  network?: string;
  relayId?: string;
  /** The relay's address on the network. */
  address?: string;
  /** The waiting sandbox's container id. */
  sandbox?: string;
  /** When it was made, and when its relay stops unless a run took it (ms since the epoch). */
  madeAt: number;
  expiresAt: number;
}

/** A standby with a network and relay. */
export type NetStandby = Standby & { network: string; relayId: string; address: string };

/** Whether `s` has a network and relay. */
export const hasNetwork = (s: Standby): s is NetStandby => s.network !== undefined;

/** Whether standbys are made and taken, and how long one waits; an error's text for a bad setting. Pure. */
export function standbySettings(
  env: Record<string, string | undefined>,
): { enabled: boolean; idleMs: number } | string {
  const enabled = env["MOAT_STANDBY"] !== "0";
  const idle = env["MOAT_STANDBY_IDLE"];
  if (idle === undefined || idle === "") return { enabled, idleMs: STANDBY_IDLE_MS };
  if (!/^\d+$/.test(idle) || Number(idle) === 0) {
    return `MOAT_STANDBY_IDLE must be a whole number of seconds above 0 (it is "${idle}")`;
  }
  return { enabled, idleMs: Number(idle) * 1000 };
}

/**
 * What a run must share with a standby to take it: the image the relay runs on, and everything the relay
 * was made with (the moat it runs, its version, the user it runs as). Pure.
 */
export function standbyKey(p: { image: string; executable: string; main: string; user: string }): string {
  return JSON.stringify({ image: p.image, executable: p.executable, main: p.main, user: p.user, VERSION });
}

/** This process's `standbyKey` for `image`. */
export function ownStandbyKey(image: string): string {
  return standbyKey({
    image,
    executable: Deno.execPath(),
    main: Deno.mainModule,
    user: `${Deno.uid()}:${Deno.gid()}`,
  });
}

/** Parse `standby/<id>.json`; `undefined` for anything else. Pure. */
export function parseStandby(text: string): Standby | undefined {
  try {
    const s = JSON.parse(text);
    const str = (v: unknown) => typeof v === "string";
    const net = s?.network === undefined && s?.relayId === undefined && s?.address === undefined
      ? false
      : str(s.network) && str(s.relayId) && str(s.address)
      ? true
      : undefined;
    const ok = s && typeof s === "object" && str(s.id) && /^[0-9a-f]{1,64}$/.test(s.id) && str(s.key) &&
      net !== undefined && (s.sandbox === undefined ? net : str(s.sandbox)) &&
      typeof s.madeAt === "number" && typeof s.expiresAt === "number";
    return ok ? s as Standby : undefined;
  } catch {
    return undefined;
  }
}

const standbyDir = (home: string) => `${home}/${STANDBY_DIR}`;

/** The standbys ready in `home` (each `standby/<id>.json` that parses). */
function readyStandbys(home: string): Standby[] {
  const out: Standby[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(standbyDir(home))];
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!e.isFile || !e.name.endsWith(".json")) continue;
    try {
      const s = parseStandby(Deno.readTextFileSync(`${standbyDir(home)}/${e.name}`));
      if (s && `${s.id}.json` === e.name) out.push(s);
    } catch { /* taken meanwhile */ }
  }
  return out;
}

/** Take `s` for this process: `false` when another took it first. */
function claim(home: string, s: Standby): boolean {
  try {
    Deno.renameSync(`${standbyDir(home)}/${s.id}.json`, `${standbyDir(home)}/${s.id}/claimed.json`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Take a standby of `key` that does not expire within `CLAIM_MARGIN_MS` of `now`, the one that waited
 * longest first; `undefined` when there is none.
 */
export function claimStandby(home: string, key: string, now = Date.now()): Standby | undefined {
  const margin = (s: Standby) => Math.min(CLAIM_MARGIN_MS, (s.expiresAt - s.madeAt) / 4);
  const ready = readyStandbys(home).filter((s) => s.key === key && s.expiresAt - now > margin(s))
    .sort((a, b) => a.expiresAt - b.expiresAt);
  return ready.find((s) => claim(home, s));
}

/**
 * The identity of what a run's sandbox binds from the host (the workspace, the extra mounts' sources): device
 * and inode of each, in order; `gone` for one that cannot be looked at. Part of a warm sandbox's key
 * (lib/run/warm.ts `warmKey`).
 */
export function bindSources(spec: RunSpec): string {
  const paths = [spec.workspace, ...(spec.profile?.mounts ?? []).map((m) => m.source)];
  return paths.map((p) => {
    try {
      const st = Deno.statSync(p);
      return `${st.dev}:${st.ino}`;
    } catch {
      return "gone";
    }
  }).join(",");
}

/** Forget standby `id` of `home`: its files (what it was made of is removed, or the cold run's now). */
export function forgetStandby(home: string, id: string): void {
  if (!/^[0-9a-f]{1,64}$/.test(id)) return;
  for (const path of [`${standbyDir(home)}/${id}`, `${standbyDir(home)}/${id}.json`]) {
    try {
      Deno.removeSync(path, { recursive: true });
    } catch { /* gone already */ }
  }
}

/** Remove a standby taken with `claimStandby` (or expired): its sandbox, relay, network, directory. */
export async function discardStandby(client: EngineClient, home: string, s: { id: string }): Promise<void> {
  // The sandbox only when it is one made ahead (labelled so): never a run's own container of that name.
  const sandbox = await client.maybeContainerInspect(`moat-${s.id}`).catch(() => undefined);
  if (sandbox?.Config.Labels?.[LABELS.standby] !== undefined) {
    await client.containerRemove(sandbox.Id).catch(() => {});
  }
  await removeRelayContainer(client, relayName(s.id));
  await client.networkRemove(`moat-net-${s.id}`).catch(() => {});
  await Deno.remove(`${standbyDir(home)}/${s.id}`, { recursive: true }).catch(() => {});
  await Deno.remove(`${standbyDir(home)}/${s.id}.json`).catch(() => {});
}

/**
 * Put a run's egress in place on a standby taken for it (`claimStandby`; the run's id is the standby's):
 * serve the run's policy on the relay's socket, once the relay is known to run. Throws when it does not
 * (the caller discards the standby and makes the run's network itself).
 */
export async function adoptStandby(
  client: EngineClient,
  home: string,
  s: NetStandby,
  req: Pick<EgressRequest, "runDir" | "allow" | "tcp" | "rules" | "tls" | "audit" | "deferRemoval">,
  env: Record<string, string | undefined>,
): Promise<Egress> {
  const dir = `${standbyDir(home)}/${s.id}`;
  const resolvConf = writeResolvConf(req.runDir, s.address);
  let point: { close(): Promise<void> } | undefined = servePolicy({
    socketPath: `${dir}/${RELAY_SOCKET}`,
    runDir: req.runDir,
    allow: req.allow,
    ...(req.tcp ? { tcp: req.tcp } : {}),
    ...(req.rules ? { rules: req.rules } : {}),
    ...(req.tls ? { tls: req.tls } : {}),
    ...(req.audit ? { audit: req.audit } : {}),
    relayAddress: s.address,
  }, env);
  const closePoint = async () => {
    const p = point;
    point = undefined;
    await p?.close().catch(() => {});
  };
  // What the file says is checked with the engine before the sandbox joins it: the network is one moat makes
  // (Internal, no host address), named after the run, and its relay runs on it at the address the run's
  // resolver names.
  const [relay, network] = await Promise.all([
    client.maybeContainerInspect(s.relayId).catch(() => undefined),
    client.maybeNetworkInspect(s.network).catch(() => undefined),
  ]);
  const problem = !relay?.State?.Running ? "has no relay running" : relay.Name !== `/${relayName(s.id)}` ||
      relay.NetworkSettings?.Networks?.[s.network]?.IPAddress !== s.address
    ? "has a relay that is not its own"
    : !network || s.network !== `moat-net-${s.id}` || !isIsolatedNetwork(network, s.network)
    ? "is not an isolated network of moat's"
    : undefined;
  if (problem) {
    await closePoint();
    throw new MoatError(
      `The network made ahead for this run (${s.network}) ${problem}`,
      "moat makes the run's network itself instead",
    );
  }
  let owned = true;
  let relayLeft = true;
  let networkLeft = true;
  const relayGoes = async () => {
    if (!owned || !relayLeft) return;
    relayLeft = false;
    await removeRelayContainer(client, s.relayId);
  };
  let released: Promise<void> | undefined;
  const release = () =>
    released ??= (async () => {
      await closePoint();
      if (!req.deferRemoval) await relayGoes();
    })();
  return {
    spec: { network: s.network, relayAddress: s.address, resolvConf },
    release,
    async stop(opts = {}) {
      await release();
      if (!owned) return;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      if (opts.keepRelay) return;
      await relayGoes();
      if (opts.keepNetwork || !networkLeft) return;
      networkLeft = false;
      await client.networkRemove(s.network).catch(() => {});
    },
    handOver: closePoint,
    disown() {
      owned = false;
    },
  };
}

/**
 * `moat standby`: make one standby of `image` in `home`, unless one that is not about to expire is there
 * already; before that, remove the standbys of this home that expired. One process at a time makes one
 * (`standby/.lock`). With `warm` (a `warmSpec`, lib/run/warm.ts) the standby is a waiting sandbox made so,
 * on a network and relay of its own when its network is the allow list. Returns what it did, for its caller
 * to ignore: it runs with nobody to tell.
 */
export async function prepareStandby(
  client: EngineClient,
  home: string,
  image: string,
  idleMs: number,
  warm?: RunSpec,
): Promise<"made" | "there" | "unsuitable"> {
  const dir = standbyDir(home);
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const id = newRunId();
  const withNetwork = !warm || warm.profile?.network === "allowlist";
  if (withNetwork && `${dir}/${id}/${RELAY_SOCKET}`.length > MAX_SOCKET_PATH) return "unsuitable";
  using lock = Deno.openSync(`${dir}/.lock`, { create: true, write: true, mode: 0o600 });
  lock.lockSync(true);
  // Every network of the engine: the subnet of the new one must be free of all of them, not only of moat's
  // (as createRunNetwork's own listing is); the expired standbys are found among them by their labels.
  const networks = await client.networkList([]);
  await removeExpired(client, home, networks);
  const netKey = ownStandbyKey(image);
  const key = warm ? warmKey(warm, image, withNetwork ? netKey : undefined, bindSources(warm)) : netKey;
  const now = Date.now();
  if (readyStandbys(home).some((s) => s.key === key && s.expiresAt - now > idleMs / 2)) return "there";

  const expiresAt = now + idleMs;
  const owner = currentOwner();
  const homeId = ensureHomeId(home);
  const labels = {
    [LABELS.managed]: "true",
    [LABELS.runId]: id,
    [LABELS.version]: VERSION,
    [LABELS.ownerPid]: String(owner.pid),
    [LABELS.bootId]: owner.bootId,
    [LABELS.home]: homeId,
    [LABELS.standby]: String(expiresAt),
  };
  Deno.mkdirSync(`${dir}/${id}`, { mode: 0o700 });
  const s: Standby = { id, key, madeAt: now, expiresAt };
  try {
    if (withNetwork) Object.assign(s, await makeNetwork(client, `${dir}/${id}`, id, image, labels, networks));
    if (warm) {
      const egress = s.network
        ? {
          network: s.network,
          relayAddress: s.address!,
          resolvConf: writeResolvConf(`${dir}/${id}`, s.address!),
        }
        : undefined;
      const { name, body } = planWarm(
        { ...warm, runId: id, owner, homeId, ...(egress ? { egress } : {}) },
        expiresAt,
        Math.ceil(idleMs / 1000),
      );
      s.sandbox = (await client.containerCreate(body, name)).Id;
      await client.containerStart(s.sandbox);
    }
  } catch (err) {
    await discardStandby(client, home, { id });
    throw err;
  }
  Deno.writeTextFileSync(`${dir}/${id}.tmp`, JSON.stringify(s) + "\n", { mode: 0o600 });
  Deno.renameSync(`${dir}/${id}.tmp`, `${dir}/${id}.json`);
  return "made";
}

/** A standby's network and its relay, which has signed on at `socketDir`; thrown errors leave things made. */
async function makeNetwork(
  client: EngineClient,
  socketDir: string,
  id: string,
  image: string,
  labels: Record<string, string>,
  networks: NetworkInspect[],
): Promise<{ network: string; relayId: string; address: string }> {
  const ready = Promise.withResolvers<void>();
  const listener = Deno.listen({ transport: "unix", path: `${socketDir}/${RELAY_SOCKET}` });
  // Nothing is allowed here: only the relay's sign that it is ready is listened for.
  const point = new PolicyPoint(
    { allow: [], tcp: new Map(), relayAddress: "" },
    { dial: () => Promise.reject(new Error("a standby connects nowhere")) },
    () => {},
  );
  const served = point.serve(listener, ready.resolve);
  const network = `moat-net-${id}`;
  try {
    const { subnet } = await createRunNetwork(client, network, labels, { networks });
    const address = addressIn(subnet, 2)!;
    const relay = await client.containerCreate(
      relayContainerBody({
        image,
        network,
        address,
        runtime: moatRuntime(),
        socketDir,
        ports: [PORTS.proxy, PORTS.http, PORTS.tls],
        udpPorts: [PORTS.dns],
        user: `${Deno.uid()}:${Deno.gid()}`,
        labels: { ...labels, [LABELS.probe]: "relay" },
        expireAt: Number(labels[LABELS.standby]),
      }),
      relayName(id),
    );
    await startRelay(client, relay.Id, ready.promise);
    return { network, relayId: relay.Id, address };
  } finally {
    listener.close();
    await served;
  }
}

/**
 * Remove this home's standbys that expired and no run took (`networks`: moat's networks, listed already):
 * their networks (their relays stopped and went by themselves) and their files. A standby a run took is its
 * run's, to remove with it.
 */
async function removeExpired(
  client: EngineClient,
  home: string,
  networks: readonly { Name: string; Labels?: Record<string, string> | null }[],
): Promise<void> {
  const homeId = ensureHomeId(home);
  const now = Date.now();
  const taken = (id: string) => {
    try {
      Deno.statSync(`${standbyDir(home)}/${id}/claimed.json`);
      return true;
    } catch {
      return false;
    }
  };
  for (const n of networks) {
    const id = labelOf(n, "runId");
    if (!id || labelOf(n, "home") !== homeId || labelOf(n, "standby") === undefined) continue;
    if (waitingStandby(n, false, now) || taken(id)) continue;
    await discardStandby(client, home, { id });
  }
  // Files of standbys whose network is gone (removed by hand, or never made), and of waiting sandboxes
  // without a network once their time has passed (the engine removed the sandbox as it ended).
  const names = new Set(networks.map((n) => n.Name));
  const sandboxWaits = (id: string) => {
    try {
      const s = parseStandby(Deno.readTextFileSync(`${standbyDir(home)}/${id}.json`));
      return s !== undefined && s.network === undefined && s.expiresAt > now;
    } catch {
      return false;
    }
  };
  for (const e of [...Deno.readDirSync(standbyDir(home))]) {
    const id = e.name.replace(/\.json$/, "");
    if (!/^[0-9a-f]{1,64}$/.test(id) || names.has(`moat-net-${id}`) || taken(id) || sandboxWaits(id)) {
      continue;
    }
    const age = now - (Deno.statSync(`${standbyDir(home)}/${e.name}`).mtime?.getTime() ?? now);
    if (age > RELAY_READY_MS * 2) await Deno.remove(`${standbyDir(home)}/${e.name}`, { recursive: true });
  }
}

/**
 * Start `moat standby` in `home` as a detached process with no stdio, not waited for: to make a network ahead
 * for `image` (with `warm`, a waiting sandbox made so), and to remove the network of run
 * `release` (emptied already). Returns that process as an owner (the run's record names it, so its network is
 * not taken for a leftover meanwhile); nothing when Deno would not let moat run itself (moat run without -A)
 * or the process could not start.
 */
export function spawnStandby(
  home: string,
  work: { image?: string; warm?: RunSpec; release?: string },
): Owner | undefined {
  const execPath = Deno.execPath();
  if (Deno.permissions.querySync({ name: "run", command: execPath }).state !== "granted") return undefined;
  try {
    // The sandbox's settings as an argument: this process may exit before a pipe to the child is written.
    const child = spawnDetachedMoat(home, [
      "standby",
      ...(work.image ? ["--image", work.image] : []),
      ...(work.image && work.warm ? ["--warm", JSON.stringify(work.warm)] : []),
      ...(work.release ? ["--release", work.release] : []),
    ]);
    return processOwner(child.pid);
  } catch {
    return undefined;
  }
}
