/** A run's network: the create body, and the subnet moat picks (tables). */
import assert from "node:assert/strict";
import {
  addressIn,
  formatCidr,
  freeSubnet,
  isIsolatedNetwork,
  isolatedNetworkBody,
  overlaps,
  parseCidr,
  SUBNET_POOL,
} from "../../lib/run/network.ts";
import { planContainer, proxyEnv } from "../../lib/run/plan.ts";
import { createRunNetwork, NETWORK_REFUSED } from "../../lib/run/egress.ts";
import { MoatError } from "../../lib/errors.ts";
import { FakeEngine } from "../fake_engine.ts";
import { clientFor } from "./lifecycle_fixture.ts";
import { profileFor } from "../../lib/run/profile.ts";

Deno.test("parseCidr reads IPv4 CIDRs, host bits cleared, and refuses anything else", () => {
  const cases: Array<[string, string | undefined]> = [
    ["10.237.0.0/28", "10.237.0.0/28"],
    ["10.237.0.5/28", "10.237.0.0/28"],
    ["172.17.0.0/16", "172.17.0.0/16"],
    [" 192.168.1.1/32 ", "192.168.1.1/32"],
    ["0.0.0.0/0", "0.0.0.0/0"],
    ["255.255.255.255/1", "128.0.0.0/1"],
    ["10.0.0.256/24", undefined],
    ["10.0.0.0/33", undefined],
    ["10.0.0/24", undefined],
    ["10.0.0.0", undefined],
    ["fd00::/64", undefined],
    ["", undefined],
  ];
  for (const [text, want] of cases) {
    const c = parseCidr(text);
    assert.equal(c === undefined ? undefined : formatCidr(c), want, text);
  }
});

Deno.test("overlaps: two subnets that share an address", () => {
  const cases: Array<[string, string, boolean]> = [
    ["10.237.0.0/28", "10.237.0.0/28", true],
    ["10.237.0.0/28", "10.237.0.16/28", false],
    ["10.237.0.0/24", "10.237.0.16/28", true],
    ["10.237.0.16/28", "10.237.0.0/24", true],
    ["10.0.0.0/8", "10.237.3.0/28", true],
    ["172.17.0.0/16", "10.237.0.0/16", false],
    ["0.0.0.0/0", "192.168.0.0/16", true],
  ];
  for (const [a, b, want] of cases) assert.equal(overlaps(parseCidr(a)!, parseCidr(b)!), want, `${a} ${b}`);
});

Deno.test("freeSubnet takes the first /28 of the pool that no network of the engine overlaps", () => {
  const cases: Array<[string, string[], string | undefined]> = [
    ["nothing used", [], "10.237.0.0/28"],
    ["Docker's defaults", ["172.17.0.0/16", "172.18.0.0/16", "192.168.0.0/20"], "10.237.0.0/28"],
    ["the first taken", ["10.237.0.0/28"], "10.237.0.16/28"],
    ["a bigger one over the start", ["10.237.0.0/24"], "10.237.1.0/28"],
    ["gaps are used", ["10.237.0.0/28", "10.237.0.32/28"], "10.237.0.16/28"],
    ["IPv6 and unreadable ones are ignored", ["fd00::/64", "nonsense", ""], "10.237.0.0/28"],
    ["the whole pool covered", ["10.0.0.0/8"], undefined],
  ];
  for (const [name, used, want] of cases) assert.equal(freeSubnet(used), want, name);
  // Every /28 of a small pool, then none.
  assert.equal(freeSubnet(["10.1.0.0/28", "10.1.0.16/28"], "10.1.0.0/27"), undefined);
  assert.equal(freeSubnet(["10.1.0.0/28"], "10.1.0.0/27"), "10.1.0.16/28");
  assert.equal(freeSubnet([], "10.1.0.0/30"), undefined, "a pool smaller than a run's subnet");
  assert.equal(SUBNET_POOL, "10.237.0.0/16");
});

Deno.test("addressIn: the nth address of a subnet, neither its own address nor its broadcast", () => {
  assert.equal(addressIn("10.237.0.16/28", 1), "10.237.0.17");
  assert.equal(addressIn("10.237.0.16/28", 2), "10.237.0.18");
  assert.equal(addressIn("10.237.0.16/28", 14), "10.237.0.30");
  assert.equal(addressIn("10.237.0.16/28", 15), undefined, "the broadcast address");
  assert.equal(addressIn("10.237.0.16/28", 0), undefined, "the network's own address");
  assert.equal(addressIn("nonsense", 1), undefined);
});

Deno.test("a run's network is internal, its bridge has no IPv4 address on the host, its subnet moat's", () => {
  const body = isolatedNetworkBody("moat-net-abc", "10.237.0.16/28", { "dev.moat.managed": "true" });
  assert.deepEqual(body, {
    Name: "moat-net-abc",
    Driver: "bridge",
    Internal: true,
    Attachable: false,
    EnableIPv6: false,
    CheckDuplicate: true,
    IPAM: { Driver: "default", Config: [{ Subnet: "10.237.0.16/28" }] },
    Options: {
      "com.docker.network.bridge.inhibit_ipv4": "true",
      "com.docker.network.bridge.enable_icc": "true",
    },
    Labels: { "dev.moat.managed": "true" },
  });
});

Deno.test("a run on its own network: its network, the relay as resolver and proxy, the user's proxy settings kept", () => {
  const spec = {
    runId: "abc",
    name: undefined,
    image: "img",
    command: ["true"],
    env: { HTTPS_PROXY: "http://mine:1" },
    workspace: "/ws",
    user: "1000:1000",
    runtime: "runsc",
    interactive: false,
    moatVersion: "0",
    profile: profileFor({ network: "allowlist", allow: ["x.io"] }),
  };
  assert.throws(
    () => planContainer(spec),
    /allowlist network needs its own network/,
    "never the default network",
  );
  const { body } = planContainer({
    ...spec,
    egress: { network: "moat-net-abc", relayAddress: "10.237.0.2", resolvConf: "/h/runs/abc/resolv.conf" },
  });
  assert.equal(body.HostConfig.NetworkMode, "moat-net-abc");
  assert.deepEqual(
    body.HostConfig["Dns"],
    ["10.237.0.2"],
    "Docker's own resolver passes questions on to moat",
  );
  assert.deepEqual((body.HostConfig["Mounts"] as Array<{ Target: string }>).at(-1), {
    Type: "bind",
    Source: "/h/runs/abc/resolv.conf",
    Target: "/etc/resolv.conf",
    ReadOnly: true,
  });
  assert.deepEqual(body.Env?.sort(), [
    "HTTPS_PROXY=http://mine:1",
    "HTTP_PROXY=http://10.237.0.2:3128",
    "NO_PROXY=localhost,127.0.0.1,::1",
    "http_proxy=http://10.237.0.2:3128",
    "https_proxy=http://10.237.0.2:3128",
    "no_proxy=localhost,127.0.0.1,::1",
  ]);
  assert.deepEqual(proxyEnv("10.237.0.2", {}).HTTP_PROXY, "http://10.237.0.2:3128");
});

Deno.test("freeSubnet looks from a given place on, round the pool", () => {
  assert.equal(freeSubnet([], SUBNET_POOL, 28, 3), "10.237.0.48/28");
  assert.equal(freeSubnet(["10.237.0.48/28"], SUBNET_POOL, 28, 3), "10.237.0.64/28");
  assert.equal(freeSubnet(["10.237.255.240/28"], SUBNET_POOL, 28, 4095), "10.237.0.0/28", "round");
  assert.equal(freeSubnet([], SUBNET_POOL, 28, -1), "10.237.255.240/28");
});

Deno.test("createRunNetwork passes over a subnet another run took since the list, and gives up after 8", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /networks", {
    status: 200,
    json: [{ Name: "other", IPAM: { Config: [{ Subnet: "10.237.0.0/28" }] } }],
  });
  const asked: string[] = [];
  let taken = 1;
  engine.on("POST /networks/create", async (req, res) => {
    const body = req.json as { IPAM: { Config: Array<{ Subnet: string }> } };
    asked.push(body.IPAM.Config[0]!.Subnet);
    if (asked.length <= taken) {
      return await res.json(403, { message: "Pool overlaps with other one on this address space" });
    }
    return await res.json(201, { Id: "net1" });
  });
  const client = clientFor(engine);
  // Every run starts at the same place here: the first is passed over (in use), the second was just taken.
  const got = await createRunNetwork(client, "moat-net-x", {}, { from: () => 0 });
  assert.deepEqual(got, { id: "net1", subnet: "10.237.0.32/28" });
  assert.deepEqual(asked, ["10.237.0.16/28", "10.237.0.32/28"]);
  asked.length = 0;
  taken = 100;
  await assert.rejects(createRunNetwork(client, "moat-net-y", {}, { from: () => 0 }), /Pool overlaps/);
  assert.equal(asked.length, 8);
});

Deno.test("isIsolatedNetwork: only a network as isolatedNetworkBody makes it, with that name", () => {
  const made = {
    Name: "moat-net-a",
    Internal: true,
    Options: { "com.docker.network.bridge.inhibit_ipv4": "true" },
  };
  assert.equal(isIsolatedNetwork(made, "moat-net-a"), true);
  assert.equal(isIsolatedNetwork(made, "moat-net-b"), false);
  assert.equal(isIsolatedNetwork({ ...made, Internal: false }, "moat-net-a"), false);
  assert.equal(isIsolatedNetwork({ ...made, Options: {} }, "moat-net-a"), false);
  assert.equal(isIsolatedNetwork({ ...made, Options: null }, "moat-net-a"), false);
  assert.equal(isIsolatedNetwork({ ...made, EnableIPv6: true }, "moat-net-a"), false);
});

Deno.test("createRunNetwork: a network the engine refuses is said so once, with what to do", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /networks", { status: 200, json: [] });
  engine.on("POST /networks/create", {
    status: 400,
    json: { message: "invalid option com.docker.network.bridge.inhibit_ipv4" },
  });
  const client = clientFor(engine);
  await assert.rejects(
    createRunNetwork(client, "moat-net-x", {}, { from: () => 0 }),
    (err: unknown) =>
      err instanceof MoatError &&
      err.message ===
        `${NETWORK_REFUSED}: invalid option com.docker.network.bridge.inhibit_ipv4` &&
      /moat doctor/.test(err.hint ?? "") && /--network default/.test(err.hint ?? ""),
  );
  assert.equal(engine.requestsTo("POST /networks/create").length, 1, "not tried again");
});
