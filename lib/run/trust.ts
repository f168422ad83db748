/**
 * The CAs around a run whose policy point reads TLS (a grant, or rules: lib/net/intercept.ts).
 *
 * Inside the sandbox, the run's CA must be trusted by the clients there, without changing the image: moat
 * reads the image's CA bundle (through a created, never started container, cached per image), adds the run's
 * CA to it, and mounts the result, read-only, where the image keeps its bundle (Debian's path when it has
 * none); the variables that point common clients at a bundle (curl, Python's ssl and requests, git, Node,
 * Deno) name it too, unless the user set them. Only the CA's certificate is there: its key stays in moat.
 *
 * Upstream, moat verifies the real servers with the host's own bundle, and the CAs of `MOAT_UPSTREAM_CA`
 * (a PEM file: a corporate CA, for instance) on top.
 */
import type { EngineClient } from "../docker/client.ts";
import { MoatError } from "../errors.ts";
import { readImageFile } from "./passwd.ts";
import type { Profile } from "./profile.ts";

/** Where images (and hosts) keep the CA bundle clients read, in the order looked for. */
export const BUNDLE_PATHS = [
  "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine, Arch
  "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // Fedora, RHEL (what ca-bundle.crt links to)
  "/etc/pki/tls/certs/ca-bundle.crt",
  "/etc/ssl/ca-bundle.pem", // openSUSE
  "/etc/ssl/cert.pem",
];

/** Variables that point clients at a CA bundle; each is set to the run's, unless the user set it. */
export const CA_VARIABLES = [
  "SSL_CERT_FILE", // OpenSSL's default, Python's ssl
  "CURL_CA_BUNDLE", // curl (which does not read SSL_CERT_FILE)
  "REQUESTS_CA_BUNDLE", // Python requests
  "GIT_SSL_CAINFO", // git over HTTPS
  "NODE_EXTRA_CA_CERTS", // Node, on top of its own
  "DENO_CERT", // Deno, on top of its own
];

/** The run's bundle as the sandbox gets it: the host file, and where it is mounted. */
export interface RunTrust {
  source: string;
  target: string;
}

/** Whether a run's policy point reads TLS: it has grants, or rules for some host. Pure. */
export function needsTls(profile: Pick<Profile, "grants" | "rules">): boolean {
  return (profile.grants?.length ?? 0) > 0 || (profile.rules?.length ?? 0) > 0;
}

/** The variables for a bundle at `target`, but those `env` (the run's) sets already. Pure. */
export function trustEnv(target: string, env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(CA_VARIABLES.filter((v) => !(v in env)).map((v) => [v, target]));
}

/** The image's bundle (or nothing) with the run's CA after it. Pure. */
export function mergedBundle(imageBundle: string | undefined, caPem: string, runId: string): string {
  const before = imageBundle === undefined || imageBundle === "" || imageBundle.endsWith("\n")
    ? imageBundle ?? ""
    : `${imageBundle}\n`;
  return `${before}# moat run ${runId}: the CA of this run's policy point\n${caPem}`;
}

/**
 * Write the run's bundle into `runDir` (readable by the sandbox's user, whoever it is) from the image's and
 * the CA's certificate; where to mount it.
 */
export async function writeRunTrust(
  client: EngineClient,
  opts: {
    home: string;
    runDir: string;
    runId: string;
    imageId: string;
    labels: Record<string, string>;
    runtime: string | undefined;
    caPem: string;
  },
): Promise<RunTrust> {
  const found = await readImageFile(
    client,
    opts.home,
    opts.imageId,
    opts.labels,
    opts.runtime,
    "ca-bundle",
    BUNDLE_PATHS,
  );
  const source = `${opts.runDir}/ca-bundle.pem`;
  await Deno.writeTextFile(source, mergedBundle(found?.text, opts.caPem, opts.runId), { mode: 0o644 });
  await Deno.chmod(source, 0o644);
  return { source, target: found?.path ?? BUNDLE_PATHS[0]! };
}

/**
 * The CA certificates moat verifies upstream servers with: the host's bundle, and `MOAT_UPSTREAM_CA`'s.
 * Throws a `MoatError` when `MOAT_UPSTREAM_CA` names a file that cannot be read or holds no certificate.
 */
export function upstreamTrust(env: Record<string, string | undefined>): string[] {
  const certs: string[] = [];
  for (const path of BUNDLE_PATHS) {
    try {
      certs.push(Deno.readTextFileSync(path));
      break;
    } catch { /* not this one */ }
  }
  const extra = env["MOAT_UPSTREAM_CA"];
  if (extra) {
    let text: string;
    try {
      text = Deno.readTextFileSync(extra);
    } catch (err) {
      throw new MoatError(
        `MOAT_UPSTREAM_CA names ${extra}, which cannot be read: ${err instanceof Error ? err.message : err}`,
        "Point it at a PEM file of the CA certificates to trust upstream, or unset it",
      );
    }
    if (!text.includes("-----BEGIN CERTIFICATE-----")) {
      throw new MoatError(
        `MOAT_UPSTREAM_CA names ${extra}, which holds no PEM certificate`,
        "Point it at a PEM file of the CA certificates to trust upstream, or unset it",
      );
    }
    certs.push(text);
  }
  return certs;
}
