/** The CA bundle a run's sandbox trusts, and the variables that point clients at it (lib/run/trust.ts). */
import assert from "node:assert/strict";
import {
  BUNDLE_PATHS,
  CA_VARIABLES,
  mergedBundle,
  needsTls,
  trustEnv,
  upstreamTrust,
} from "../../lib/run/trust.ts";
import { MoatError } from "../../lib/errors.ts";

Deno.test("trustEnv: every variable names the run's bundle, but those the run sets itself", () => {
  const all = trustEnv("/etc/ssl/certs/ca-certificates.crt", {});
  assert.deepEqual(Object.keys(all), CA_VARIABLES);
  assert.ok(Object.values(all).every((v) => v === "/etc/ssl/certs/ca-certificates.crt"));
  assert.deepEqual(
    Object.keys(trustEnv("/b.pem", { NODE_EXTRA_CA_CERTS: "/mine.pem", CURL_CA_BUNDLE: "" })),
    ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO", "DENO_CERT"],
  );
  assert.ok(CA_VARIABLES.includes("CURL_CA_BUNDLE"), "curl does not read SSL_CERT_FILE");
});

Deno.test("mergedBundle: the image's bundle, then the run's CA on a line of its own", () => {
  const ca = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
  assert.equal(
    mergedBundle("IMG\n", ca, "r1"),
    `IMG\n# moat run r1: the CA of this run's policy point\n${ca}`,
  );
  assert.equal(mergedBundle("IMG", ca, "r1"), `IMG\n# moat run r1: the CA of this run's policy point\n${ca}`);
  assert.equal(mergedBundle(undefined, ca, "r1"), `# moat run r1: the CA of this run's policy point\n${ca}`);
  assert.equal(
    BUNDLE_PATHS[0],
    "/etc/ssl/certs/ca-certificates.crt",
    "Debian's, where one is made for an image without",
  );
});

Deno.test("needsTls: grants or rules", () => {
  assert.equal(needsTls({}), false);
  assert.equal(needsTls({ grants: [], rules: [] }), false);
  assert.equal(needsTls({ grants: ["github"] }), true);
  assert.equal(needsTls({ rules: [{ host: "a.io", rules: ["allow GET /*"] }] }), true);
});

Deno.test("upstreamTrust: MOAT_UPSTREAM_CA on top of the host's bundle; a bad one is an error saying so", async () => {
  const dir = await Deno.makeTempDir({ prefix: "moat-trust-" });
  try {
    const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    await Deno.writeTextFile(`${dir}/ca.pem`, pem);
    await Deno.writeTextFile(`${dir}/empty.pem`, "nothing here\n");
    const base = upstreamTrust({});
    assert.deepEqual(upstreamTrust({ MOAT_UPSTREAM_CA: `${dir}/ca.pem` }), [...base, pem]);
    for (
      const [file, re] of [[`${dir}/none.pem`, /cannot be read/], [
        `${dir}/empty.pem`,
        /holds no PEM certificate/,
      ]] as const
    ) {
      assert.throws(
        () => upstreamTrust({ MOAT_UPSTREAM_CA: file }),
        (e: unknown) => e instanceof MoatError && re.test(e.message) && /unset it/.test(e.hint ?? ""),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
