/** The kinds of IPv4 address an upstream name may resolve to (table). */
import assert from "node:assert/strict";
import { addressKind, ipv4Number } from "../../lib/net/addresses.ts";

Deno.test("addressKind: public, or which kind of address the host's own networks use", () => {
  const cases: Array<[string, string | undefined]> = [
    ["140.82.112.3", "public"],
    ["8.8.8.8", "public"],
    ["0.0.0.0", "unspecified"],
    ["0.255.255.255", "unspecified"],
    ["1.0.0.0", "public"],
    ["9.255.255.255", "public"],
    ["10.0.0.0", "private"],
    ["10.255.255.255", "private"],
    ["11.0.0.0", "public"],
    ["100.63.255.255", "public"],
    ["100.64.0.0", "shared"],
    ["100.127.255.255", "shared"],
    ["100.128.0.0", "public"],
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["169.254.169.254", "link-local"],
    ["172.15.255.255", "public"],
    ["172.16.0.1", "private"],
    ["172.17.0.1", "private"],
    ["172.31.255.255", "private"],
    ["172.32.0.0", "public"],
    ["192.0.0.8", "reserved"],
    ["192.0.2.1", "reserved"],
    ["192.88.99.1", "reserved"],
    ["192.168.1.1", "private"],
    ["198.18.0.1", "reserved"],
    ["198.19.255.255", "reserved"],
    ["198.20.0.0", "public"],
    ["198.51.100.7", "reserved"],
    ["203.0.113.9", "reserved"],
    ["224.0.0.251", "reserved"],
    ["239.255.255.250", "reserved"],
    ["240.0.0.1", "reserved"],
    ["255.255.255.255", "reserved"],
    ["223.255.255.255", "public"],
    ["1.2.3", undefined],
    ["1.2.3.256", undefined],
    ["01.2.3.4", undefined],
    ["::1", undefined],
    ["", undefined],
  ];
  for (const [address, want] of cases) assert.equal(addressKind(address), want, address);
  assert.equal(ipv4Number("255.255.255.255"), 2 ** 32 - 1);
  assert.equal(ipv4Number("0.0.0.1"), 1);
});
