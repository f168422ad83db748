/**
 * A run's CA and its leaves (lib/net/x509.ts): the DER they are written in, what openssl reads in them and
 * whether it verifies the chain, and a TLS handshake in Deno with a leaf, trusted through the CA alone.
 */
import assert from "node:assert/strict";
import {
  BACKDATE_MS,
  exportRunCa,
  importRunCa,
  integer,
  keyUsageBits,
  LEAF_VALIDITY_MS,
  makeLeaf,
  makeRunCa,
  oid,
  pem,
  time,
  tlv,
} from "../../lib/net/x509.ts";

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");

Deno.test("DER: lengths, integers, OIDs, key usage bits and times as X.690 and RFC 5280 write them", () => {
  assert.equal(hex(tlv(0x04, new Uint8Array(3))), "04 03 00 00 00");
  assert.equal(hex(tlv(0x04, new Uint8Array(0x80)).subarray(0, 3)), "04 81 80");
  assert.equal(hex(tlv(0x04, new Uint8Array(0x1234)).subarray(0, 4)), "04 82 12 34");
  assert.equal(hex(integer(new Uint8Array([0, 0, 5]))), "02 01 05", "leading zeros dropped");
  assert.equal(hex(integer(new Uint8Array([0x80]))), "02 02 00 80", "a zero before a set top bit");
  assert.equal(hex(integer(new Uint8Array([0]))), "02 01 00");
  assert.equal(hex(oid("1.2.840.10045.4.3.2")), "06 08 2a 86 48 ce 3d 04 03 02");
  assert.equal(hex(oid("2.5.29.17")), "06 03 55 1d 11");
  assert.equal(hex(keyUsageBits([5, 6])), "03 02 01 06", "keyCertSign, cRLSign");
  assert.equal(hex(keyUsageBits([0])), "03 02 07 80", "digitalSignature");
  assert.equal(hex(keyUsageBits([8])), "03 03 07 00 80", "decipherOnly spills into a second byte");
  const text = (b: Uint8Array) => new TextDecoder().decode(b.subarray(2));
  assert.deepEqual([
    time(new Date("2026-12-07T02:03:04.567Z"))[0],
    text(time(new Date("2026-12-07T02:03:04Z"))),
  ], [
    0x17,
    "261207020304Z",
  ]);
  assert.deepEqual(
    [time(new Date("2050-01-01T00:00:00Z"))[0], text(time(new Date("2050-01-01T00:00:00Z")))],
    [
      0x18,
      "20500101000000Z",
    ],
  );
  assert.equal(pem("X", new Uint8Array([1, 2, 3])), "-----BEGIN X-----\nAQID\n-----END X-----\n");
  assert.ok(pem("X", new Uint8Array(100)).split("\n").every((l) => l.length <= 64), "64-character lines");
});

async function openssl(args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command("openssl", { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

Deno.test("openssl reads the CA and the leaves as meant, and verifies each leaf against the CA", async () => {
  const dir = await Deno.makeTempDir({ prefix: "moat-x509-" });
  try {
    const now = new Date();
    const ca = await makeRunCa("0123456789ab", now);
    await Deno.writeTextFile(`${dir}/ca.pem`, ca.certPem);
    const caText = (await openssl(["x509", "-in", `${dir}/ca.pem`, "-noout", "-text"])).out;
    assert.match(caText, /Issuer: O = moat, CN = moat run 0123456789ab CA/);
    assert.match(caText, /Subject: O = moat, CN = moat run 0123456789ab CA/);
    assert.match(caText, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(caText, /ASN1 OID: prime256v1/);
    assert.match(caText, /X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:0/);
    assert.match(caText, /X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign/);
    assert.match(caText, /X509v3 Subject Key Identifier/);
    assert.equal(ca.key.extractable, false, "the CA's key never leaves this process");
    await assert.rejects(crypto.subtle.exportKey("pkcs8", ca.key));

    for (
      const [host, san] of [["api.example.test", "DNS:api.example.test"], [
        "10.0.0.5",
        "IP Address:10.0.0.5",
      ]] as const
    ) {
      const leaf = await makeLeaf(ca, host, now);
      await Deno.writeTextFile(`${dir}/leaf.pem`, leaf.certPem);
      const text = (await openssl(["x509", "-in", `${dir}/leaf.pem`, "-noout", "-text"])).out;
      assert.match(
        text,
        new RegExp(`X509v3 Subject Alternative Name: \\n\\s+${san.replaceAll(".", "\\.")}\\n`),
      );
      assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:FALSE/);
      assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature/);
      assert.match(text, /X509v3 Extended Key Usage: \n\s+TLS Web Server Authentication/);
      assert.match(text, /X509v3 Authority Key Identifier/);
      const v = await openssl(["verify", "-CAfile", `${dir}/ca.pem`, `${dir}/leaf.pem`]);
      assert.equal(v.code, 0, v.out);
      assert.match(v.out, /: OK/);
      // Valid from an hour back, for a week.
      const dates =
        (await openssl(["x509", "-in", `${dir}/leaf.pem`, "-noout", "-startdate", "-enddate"])).out;
      const start = Date.parse(/notBefore=(.*)/.exec(dates)![1]!);
      const end = Date.parse(/notAfter=(.*)/.exec(dates)![1]!);
      assert.ok(Math.abs(start - (now.getTime() - BACKDATE_MS)) < 2000, dates);
      assert.ok(Math.abs(end - (now.getTime() + LEAF_VALIDITY_MS)) < 2000, dates);
      await Deno.writeTextFile(`${dir}/key.pem`, leaf.keyPem);
      const key = await openssl(["pkey", "-in", `${dir}/key.pem`, "-noout", "-text"]);
      assert.match(key.out, /ASN1 OID: prime256v1/);
    }
    // Another run's CA does not vouch for this run's leaves.
    const other = await makeRunCa("ba9876543210", now);
    await Deno.writeTextFile(`${dir}/other.pem`, other.certPem);
    const wrong = await openssl(["verify", "-CAfile", `${dir}/other.pem`, `${dir}/leaf.pem`]);
    assert.notEqual(wrong.code, 0, wrong.out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a Deno TLS server with a leaf is trusted through the run's CA alone, for the leaf's host only", async () => {
  const ca = await makeRunCa("0123456789ab");
  const leaf = await makeLeaf(ca, "api.example.test");
  const server = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: leaf.certPem, key: leaf.keyPem });
  const port = (server.addr as Deno.NetAddr).port;
  const served = (async () => {
    for await (const conn of server) {
      try {
        await conn.handshake();
        await conn.write(new TextEncoder().encode("hello"));
      } catch { /* a client that refused the certificate */ }
      conn.close();
    }
  })();
  const attempt = async (sni: string, caCerts?: string[]) => {
    const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
    const tls = await Deno.startTls(tcp, { hostname: sni, ...(caCerts ? { caCerts } : {}) });
    try {
      await tls.handshake();
      const buf = new Uint8Array(5);
      const n = await tls.read(buf);
      return new TextDecoder().decode(buf.subarray(0, n ?? 0));
    } finally {
      tls.close();
    }
  };
  try {
    assert.equal(await attempt("api.example.test", [ca.certPem]), "hello");
    await assert.rejects(
      attempt("api.example.test"),
      /UnknownIssuer/,
      "not trusted without the CA",
    );
    await assert.rejects(
      attempt("other.example.test", [ca.certPem]),
      /not valid for name "other\.example\.test"/,
    );
  } finally {
    server.close();
    await served;
  }
});

Deno.test("a run's CA is not extractable, unless made so to hand it over; the one imported signs leaves the same", async () => {
  const kept = await makeRunCa("0123456789ab");
  await assert.rejects(exportRunCa(kept), "a CA's key never leaves this process by default");
  const ca = await makeRunCa("0123456789ab", new Date(), true);
  const again = await importRunCa(await exportRunCa(ca));
  assert.equal(again.certPem, ca.certPem);
  assert.equal(again.notAfter.getTime(), ca.notAfter.getTime());
  assert.equal(again.key.extractable, false, "not extractable again in the process that imports it");
  const leaf = await makeLeaf(again, "api.example.test");
  const dir = await Deno.makeTempDir({ prefix: "moat-x509-" });
  try {
    await Deno.writeTextFile(`${dir}/ca.pem`, ca.certPem);
    await Deno.writeTextFile(`${dir}/leaf.pem`, leaf.certPem);
    const out = await new Deno.Command("openssl", {
      args: ["verify", "-CAfile", `${dir}/ca.pem`, `${dir}/leaf.pem`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await assert.rejects(importRunCa("{}"));
});
