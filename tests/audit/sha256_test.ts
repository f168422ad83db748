/** The synchronous SHA-256 of the audit log (lib/audit/sha256.ts) against known digests and WebCrypto's. */
import assert from "node:assert/strict";
import { hex, sha256 } from "../../lib/audit/sha256.ts";

const enc = new TextEncoder();

Deno.test("sha256: the FIPS 180-4 examples and the lengths around a block's end", async () => {
  assert.equal(
    hex(sha256(enc.encode(""))),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assert.equal(
    hex(sha256(enc.encode("abc"))),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    hex(sha256(enc.encode("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
  // Every length up to three blocks, and some long ones, as WebCrypto hashes them.
  const lengths = [...Array(200).keys(), 1000, 4095, 4096, 4097, 100_000];
  for (const n of lengths) {
    const data = crypto.getRandomValues(new Uint8Array(Math.min(n, 65536)));
    const big = n > 65536 ? new Uint8Array(n).map((_, i) => data[i % data.length]!) : data;
    const want = new Uint8Array(await crypto.subtle.digest("SHA-256", big));
    assert.equal(hex(sha256(big)), hex(want), `${n} bytes`);
  }
});
