/**
 * A run's network and relay on the real engine, for the tests of issue 13's pieces: the network
 * (lib/run/network.ts), moat's unix socket in a temporary directory, and the relay container
 * (lib/run/relay_plan.ts) running this checkout's moat, ready; all removed afterwards.
 */
import { clientFromEnv, type DockerClient } from "../../lib/docker/client.ts";
import { addressIn, freeSubnet, isolatedNetworkBody } from "../../lib/run/network.ts";
import { librariesOf, mappedLibraries, RELAY_SOCKET, relayContainerBody } from "../../lib/run/relay_plan.ts";
import { sonameOf } from "../../lib/run/elf.ts";
import { docker, TEST_IMAGE } from "./helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

export interface RunNetwork {
  client: DockerClient;
  /** The network's name. */
  network: string;
  subnet: string;
  /** The relay's address on it. */
  relayAddress: string;
  /** A temporary directory of the test's (moat's socket is in it). */
  dir: string;
  /** The label every container and network of the test carries, `dev.moat.test=<value>`. */
  label: string;
}

/**
 * Make a run's network and start a relay on it for `ports` and `udpPorts`; `serve` is moat's side of the
 * socket (given the listener; it must call `ready` when the relay says it is ready). Then `fn`; then remove
 * everything. Throws with the relay's output when it exits instead of getting ready.
 */
export async function withRunNetwork(
  test: string,
  ports: { tcp: number[]; udp: number[] },
  serve: (listener: Deno.Listener, ready: () => void) => Promise<void>,
  fn: (n: RunNetwork) => Promise<void>,
): Promise<void> {
  const client = clientFromEnv(Deno.env.toObject());
  const tag = crypto.randomUUID().slice(0, 8);
  const network = `moat-test-${test}-${tag}`;
  const labels = { "dev.moat.test": test };
  const dir = await Deno.makeTempDir({ prefix: `moat-${test}-` });
  const listener = Deno.listen({ transport: "unix", path: `${dir}/${RELAY_SOCKET}` });
  const ready = Promise.withResolvers<void>();
  const served = serve(listener, ready.resolve);
  let networkId: string | undefined;
  let relayId: string | undefined;
  try {
    const used = (await client.networkList([])).flatMap((n) =>
      n.IPAM?.Config?.map((c) => c.Subnet ?? "") ?? []
    );
    const subnet = freeSubnet(used)!;
    networkId = await client.networkCreate(isolatedNetworkBody(network, subnet, labels));
    const relayAddress = addressIn(subnet, 2)!;
    const body = relayContainerBody({
      image: TEST_IMAGE,
      network,
      address: relayAddress,
      runtime: {
        executable: Deno.execPath(),
        libraries: librariesOf(mappedLibraries(Deno.readTextFileSync("/proc/self/maps")), sonameOf),
        code: { source: ROOT },
      },
      socketDir: dir,
      ports: ports.tcp,
      udpPorts: ports.udp,
      user: `${Deno.uid()}:${Deno.gid()}`,
      labels,
    });
    relayId = (await client.containerCreate(body, `${network}-relay`)).Id;
    await client.containerStart(relayId);
    const exited = docker("wait", relayId).then(async () => {
      throw new Error(`the relay exited: ${await docker("logs", relayId!).catch((e) => String(e))}`);
    });
    exited.catch(() => {});
    await Promise.race([ready.promise, exited]);
    await fn({ client, network, subnet, relayAddress, dir, label: `dev.moat.test=${test}` });
  } finally {
    if (relayId) await client.containerRemove(relayId);
    if (networkId) await client.networkRemove(networkId);
    listener.close();
    await served;
    await Deno.remove(dir, { recursive: true });
  }
}

/** Run `script` with `sh -c` in a runsc container of `image` on the network; its stdout. */
export async function inSandbox(
  n: RunNetwork,
  script: string,
  opts: { image?: string; binds?: string[]; shell?: string } = {},
): Promise<string> {
  return await docker(
    "run",
    "--rm",
    "--runtime=runsc",
    "--network",
    n.network,
    "--label",
    n.label,
    ...(opts.binds ?? []).flatMap((b) => ["-v", b]),
    opts.image ?? TEST_IMAGE,
    opts.shell ?? "sh",
    "-c",
    script,
  );
}
