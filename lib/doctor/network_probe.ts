/**
 * `moat doctor`'s network checks, the edge: make a run-style network (lib/run/network.ts) as `moat run
 * --allow` does, read back what the engine kept, and — when gVisor runs here — start `moat reach`
 * (lib/doctor/reach.ts) under gVisor on it while moat listens on a TCP port on all of the host's addresses,
 * to show that the sandbox reaches none of them. The container and the network carry moat's labels (the
 * network is named `moat-net-<run id>`, as a run's) and are removed on every path.
 */
import type { EngineClient } from "../docker/client.ts";
import { InterruptedError, MoatError } from "../errors.ts";
import { createRunNetwork, NETWORK_REFUSED, NO_FREE_SUBNET } from "../run/egress.ts";
import type { MoatRuntime } from "../run/relay_plan.ts";
import type { IsolationFacts, NetworkFacts } from "./checks.ts";
import { driveProbe } from "./probe.ts";
import { REACH_ATTEMPT_MS, reachContainerBody, reachTargets } from "./reach.ts";

/** The bridge option that leaves the network's bridge without an address on the host. */
export const INHIBIT_IPV4 = "com.docker.network.bridge.inhibit_ipv4";

export interface NetworkCheckOptions {
  runId: string;
  /** Labels of the network and the probe container (a run's, with `dev.moat.probe=doctor`). */
  labels: Record<string, string>;
  /** Run the isolation probe too (gVisor runs here and the image is present). */
  probe?: {
    image: string;
    runtime: string;
    moat: MoatRuntime;
    /** `uid:gid` moat runs as. */
    user: string;
    timeoutMs: number;
    interrupt?: AbortSignal;
  };
}

function messageOf(err: unknown): { message: string; hint?: string } {
  if (err instanceof MoatError) return { message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
  return { message: (err instanceof Error ? err.message : String(err)).split("\n")[0]! };
}

/**
 * Make the network, inspect it, probe it, remove it. Engine errors before the network exists throw (the
 * caller reports them); after, they are facts. Once the network exists only a user interrupt throws, after
 * the container and the network are removed (`finally`).
 */
export async function runNetworkChecks(
  client: EngineClient,
  opts: NetworkCheckOptions,
): Promise<{ network: NetworkFacts; isolation?: IsolationFacts }> {
  const name = `moat-net-${opts.runId}`;
  const all = await client.networkList([]);
  const network: NetworkFacts = { name };
  let id: string;
  try {
    // As a run makes its network, passing over a /28 taken meanwhile; from the pool's start, so that what
    // doctor says is the same each time.
    const made = await createRunNetwork(client, name, opts.labels, {
      from: () => 0,
      tried: (subnet) => network.subnet = subnet,
      networks: all,
    });
    id = made.id;
  } catch (err) {
    if (err instanceof MoatError && err.message.startsWith(NO_FREE_SUBNET)) return { network };
    // The engine's own answer, as its request made it (a run says the same in its own words).
    const refused = err instanceof MoatError && err.message.startsWith(NETWORK_REFUSED) && err.cause;
    network.createProblem = messageOf(refused || err);
    return { network };
  }
  network.id = id;
  let isolation: IsolationFacts | undefined;
  try {
    const inspect = await client.maybeNetworkInspect(id);
    if (!inspect) {
      network.inspectProblem = "the engine no longer has it right after making it";
      return { network };
    }
    network.kept = {
      internal: inspect.Internal === true,
      inhibitIpv4: inspect.Options?.[INHIBIT_IPV4],
      driver: inspect.Driver,
    };
    const isolated = network.kept.internal && network.kept.inhibitIpv4 === "true";
    if (opts.probe && isolated) isolation = await probeIsolation(client, opts, inspect, all);
    return { network, ...(isolation ? { isolation } : {}) };
  } catch (err) {
    // An interrupt, or a failure past reading the network back (a bug), ends doctor once the network is gone.
    if (err instanceof InterruptedError || network.kept) throw err;
    network.inspectProblem = messageOf(err).message;
    return { network };
  } finally {
    try {
      await client.networkRemove(id);
      network.removed = true;
    } catch (err) {
      network.removed = false;
      network.removeProblem = messageOf(err).message;
    }
  }
}

export async function probeIsolation(
  client: EngineClient,
  opts: NetworkCheckOptions,
  inspect: Parameters<typeof reachTargets>[0],
  all: Parameters<typeof reachTargets>[1],
): Promise<IsolationFacts> {
  const p = opts.probe!;
  // A service of this host on every address, as a developer's database or dev server often is; only for
  // the probe's duration. Every connection it accepts is counted: one is a leak, whatever the probe says.
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  } catch (err) {
    return {
      targets: [],
      accepted: 0,
      listenProblem: messageOf(err).message,
    };
  }
  let accepted = 0;
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        accepted++;
        conn.close();
      }
    } catch { /* closed */ }
  })();
  const targets = reachTargets(inspect, all, listener.addr.port);
  let probe: IsolationFacts["probe"];
  try {
    const body = reachContainerBody({
      image: p.image,
      runtime: p.runtime,
      network: inspect.Name,
      moat: p.moat,
      user: p.user,
      labels: opts.labels,
      targets,
      attemptMs: REACH_ATTEMPT_MS,
    });
    probe = await driveProbe(client, { name: `moat-doctor-${opts.runId}-reach`, body }, {
      image: p.image,
      runtime: p.runtime,
      timeoutMs: p.timeoutMs,
      ...(p.interrupt ? { interrupt: p.interrupt } : {}),
    });
  } finally {
    listener.close();
    await accepting;
  }
  return { targets, probe, accepted };
}
