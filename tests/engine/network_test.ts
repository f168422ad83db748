/**
 * A run's network on the real engine, under gVisor (lib/run/network.ts): a sandbox on an `Internal`
 * network whose bridge has no IPv4 address on the host reaches no service of the host, while on an
 * `Internal` network alone it reaches one listening on all addresses through the network's gateway — the
 * leak the missing bridge address closes, shown here so that this test can see it. Only this machine's
 * own addresses are tried, and networks and containers the test made.
 */
import assert from "node:assert/strict";
import { clientFromEnv } from "../../lib/docker/client.ts";
import { addressIn, freeSubnet, isolatedNetworkBody } from "../../lib/run/network.ts";
import { docker, requireEngine, TEST_IMAGE } from "./helpers.ts";

/** The IPv4 addresses of a host interface (none when it has none, or is not there). */
async function addressesOf(device: string): Promise<string[]> {
  const { stdout } = await new Deno.Command("ip", { args: ["-4", "-o", "addr", "show", "dev", device] })
    .output();
  return [...new TextDecoder().decode(stdout).matchAll(/ inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1]!);
}

/**
 * Which of `targets` (host:port) a runsc container on `network` gets an HTTP answer from. With busybox's
 * `nc` (its static `wget` crashes on name lookup in this image).
 */
async function reached(network: string, targets: string[]): Promise<string[]> {
  const script = targets
    .map((t) => {
      const [host, port] = t.split(":");
      return `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${host} ${port} | grep -q '200 OK' ` +
        `&& echo "reached ${t}" || echo "blocked ${t}"`;
    })
    .join("; ");
  const out = await docker(
    "run",
    "--rm",
    "--runtime=runsc",
    "--network",
    network,
    "--label",
    "dev.moat.test=network",
    TEST_IMAGE,
    "sh",
    "-c",
    script,
  );
  const lines = out.trim().split("\n");
  assert.equal(lines.length, targets.length, out);
  return lines.filter((l) => l.startsWith("reached ")).map((l) => l.slice("reached ".length));
}

Deno.test("a sandbox on a run's network reaches no host service; on an internal network alone it does", async () => {
  await requireEngine();
  const client = clientFromEnv(Deno.env.toObject());
  const made: string[] = [];
  // A service of this host on every address, as a developer's database or dev server often is.
  const server = Deno.serve({ hostname: "0.0.0.0", port: 0, onListen() {} }, () => new Response("host"));
  try {
    const used = (await client.networkList([])).flatMap((n) =>
      n.IPAM?.Config?.map((c) => c.Subnet ?? "") ?? []
    );
    const isolated = freeSubnet(used)!;
    const plain = freeSubnet([...used, isolated])!;
    const labels = { "dev.moat.test": "network" };
    const tag = crypto.randomUUID().slice(0, 8);
    const isolatedId = await client.networkCreate(
      isolatedNetworkBody(`moat-test-isolated-${tag}`, isolated, labels),
    );
    made.push(isolatedId);
    const internalOnly = isolatedNetworkBody(`moat-test-internal-${tag}`, plain, labels);
    delete internalOnly.Options!["com.docker.network.bridge.inhibit_ipv4"];
    const plainId = await client.networkCreate(internalOnly);
    made.push(plainId);

    const net = (await client.maybeNetworkInspect(isolatedId))!;
    assert.equal(net.Internal, true);
    assert.equal(net.Options?.["com.docker.network.bridge.inhibit_ipv4"], "true");
    assert.deepEqual(net.IPAM?.Config?.map((c) => c.Subnet), [isolated]);
    assert.deepEqual(
      await addressesOf(`br-${isolatedId.slice(0, 12)}`),
      [],
      "the bridge has no host address",
    );
    assert.deepEqual(await addressesOf(`br-${plainId.slice(0, 12)}`), [addressIn(plain, 1)]);

    const port = server.addr.port;
    const docker0 = await addressesOf("docker0");
    const gateway = (subnet: string) => `${addressIn(subnet, 1)}:${port}`;
    const throughDocker0 = docker0.map((a) => `${a}:${port}`);
    // The control: an internal network alone lets the sandbox reach the host's service via its gateway.
    assert.ok((await reached(`moat-test-internal-${tag}`, [gateway(plain)])).includes(gateway(plain)));
    assert.deepEqual(
      await reached(`moat-test-isolated-${tag}`, [gateway(isolated), gateway(plain), ...throughDocker0]),
      [],
      "nothing of the host answers",
    );
  } finally {
    await server.shutdown();
    for (const id of made) await client.networkRemove(id);
  }
  for (const id of made) assert.equal(await client.maybeNetworkInspect(id), undefined, "removed");
  assert.equal(await docker("ps", "-aq", "--filter", "label=dev.moat.test=network"), "");
});
