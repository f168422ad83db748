/**
 * Grants on the real engine, under gVisor (issue 14): `moat run --grant github` with curl, Python requests,
 * Node and git inside the sandbox (moat-test/clients), each trusting the run's CA; the credential arrives at
 * the granted hosts and nowhere else; the secret is nowhere the sandbox can read, nor in anything moat
 * writes; `moat revoke` holds for the next run; a detached run's recorder adds the credential too.
 *
 * The "upstreams" are HTTPS servers of the test's own on loopback, with certificates of a CA the test makes
 * (moat trusts it through MOAT_UPSTREAM_CA), reached by name through MOAT_TEST_UPSTREAMS: no traffic leaves
 * this machine.
 */
import assert from "node:assert/strict";
import { makeRunCa, type RunCa } from "../../lib/net/x509.ts";
import { httpsUpstream } from "../https_upstream.ts";
import { docker, moat, onlyRecord, requireEngine, withScratch } from "./helpers.ts";

const CLIENTS_IMAGE = "moat-test/clients:latest";
const SECRET = `ghp_moatTest${crypto.randomUUID().replaceAll("-", "")}`;
const BASIC = `Basic ${btoa(`x-access-token:${SECRET}`)}`;

interface Seen {
  host: string;
  path: string;
  authorization: string | null;
  hostHeader: string | null;
}

/** An HTTPS server on loopback for `name`, with a leaf of `ca`; what it was sent goes to `seen`. */
function upstream(ca: RunCa, name: string, seen: Seen[]) {
  return httpsUpstream(ca, name, (req) => {
    const url = new URL(req.url);
    // The Host header, or HTTP/2's :authority (a client passed through may speak either).
    seen.push({
      host: name,
      path: url.pathname,
      authorization: req.headers.get("authorization"),
      hostHeader: url.hostname,
    });
    return new Response(`${name} answered ${url.pathname}\n`);
  });
}

/** The test's upstreams, and the environment moat needs to reach and trust them. */
async function upstreams(home: string) {
  const ca = await makeRunCa("grants-test-upstreams");
  const seen: Seen[] = [];
  const servers = {
    "api.github.com": await upstream(ca, "api.github.com", seen),
    "github.com": await upstream(ca, "github.com", seen),
    "other.allowed.test": await upstream(ca, "other.allowed.test", seen),
  };
  const caFile = `${home}/../${crypto.randomUUID()}-upstream-ca.pem`;
  await Deno.writeTextFile(caFile, ca.certPem);
  return {
    seen,
    env: {
      MOAT_UPSTREAM_CA: caFile,
      MOAT_TEST_UPSTREAMS: JSON.stringify(
        Object.fromEntries(Object.entries(servers).map(([name, s]) => [name, `127.0.0.1:${s.port}`])),
      ),
    },
    async close() {
      await Promise.all(Object.values(servers).map((s) => s.close()));
      await Deno.remove(caFile).catch(() => {});
    },
  };
}

/** Whether `needle` occurs in the bytes `stream` gives, chunk boundaries included. */
async function streamHas(stream: ReadableStream<Uint8Array>, needle: Uint8Array): Promise<boolean> {
  let tail = new Uint8Array(0);
  let found = false;
  for await (const chunk of stream) {
    if (found) continue; // drain it
    const buf = new Uint8Array(tail.byteLength + chunk.byteLength);
    buf.set(tail);
    buf.set(chunk, tail.byteLength);
    found = indexOf(buf, needle) >= 0;
    tail = buf.slice(Math.max(0, buf.byteLength - needle.byteLength + 1));
  }
  return found;
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  const first = needle[0]!;
  for (
    let i = hay.indexOf(first);
    i >= 0 && i <= hay.byteLength - needle.byteLength;
    i = hay.indexOf(first, i + 1)
  ) {
    let j = 1;
    while (j < needle.byteLength && hay[i + j] === needle[j]) j++;
    if (j === needle.byteLength) return i;
  }
  return -1;
}

/** Every file under `dir` whose bytes hold `needle`, but those under `skip`. */
async function filesHolding(dir: string, needle: Uint8Array, skip: string[] = []): Promise<string[]> {
  const hits: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (skip.includes(path)) continue;
    if (e.isDirectory) hits.push(...await filesHolding(path, needle, skip));
    else if (e.isFile && indexOf(await Deno.readFile(path), needle) >= 0) hits.push(path);
  }
  return hits;
}

Deno.test("moat run --grant github: curl, Python, Node and git get the credential added by moat, and only the granted hosts do", async () => {
  await requireEngine();
  await withScratch(async ({ ws, home }) => {
    const up = await upstreams(home);
    try {
      const made = await moat(["grant", "github", "--from-env", "THE_TOKEN"], {
        home,
        env: { THE_TOKEN: SECRET },
      });
      assert.equal(made.code, 0, made.stderr);
      const script = [
        // The placeholder, where clients look for the token.
        `echo "GH_TOKEN=$GH_TOKEN"`,
        `curl -sS https://api.github.com/curl -H "Authorization: token $GH_TOKEN"`,
        `python3 -c 'import requests; print(requests.get("https://api.github.com/python").text, end="")'`,
        `node -e 'fetch("https://api.github.com/node").then((r) => r.text()).then((t) => process.stdout.write(t))'`,
        // git over HTTPS to github.com: the upstream is no git server, so git fails after its first request;
        // what matters is that it trusted the CA (no "SSL certificate problem") and that the request carried the credential.
        `git ls-remote https://github.com/moat/test.git 2>&1 | grep -o -m1 -E 'SSL certificate problem|not found|not valid|unable to access' || true`,
        // Another allowed host, asked with the granted host's name as its Host: passed through unread, no
        // credential (its certificate is the test CA's, which the sandbox does not trust: -k).
        `curl -sS -k https://other.allowed.test/forged -H "Host: api.github.com"`,
        // The environment and a copy of the bundle, for the search below; the CA's key is nowhere here.
        `env > /workspace/env.txt; cat /proc/1/environ > /tmp/environ; cp "$SSL_CERT_FILE" /tmp/bundle.pem`,
        `grep -c 'BEGIN CERTIFICATE' "$SSL_CERT_FILE"; grep -l 'PRIVATE KEY' "$SSL_CERT_FILE" || echo "no key"`,
      ].join("\n");
      const r = await moat(
        [
          "run",
          "--keep",
          "--image",
          CLIENTS_IMAGE,
          "--grant",
          "github",
          "--allow",
          "other.allowed.test",
          ws,
          "--",
          "bash",
          "-c",
          script,
        ],
        { home, env: up.env },
      );
      assert.equal(r.code, 0, r.stderr);
      const lines = r.out.trim().split("\n");
      assert.deepEqual(lines.slice(0, 7), [
        "GH_TOKEN=moat-grant-github-placeholder",
        "api.github.com answered /curl",
        "api.github.com answered /python",
        "api.github.com answered /node",
        "not valid", // git read the answer: it trusted the CA
        "other.allowed.test answered /forged",
        lines[6]!, // the certificate count, checked below
      ], r.stderr);
      assert.ok(Number(lines[6]) > 100, `the image's bundle and the run's CA: ${lines[6]}`);
      assert.equal(lines[7], "no key");
      const byPath = Object.fromEntries(up.seen.map((s) => [s.path, s]));
      for (const p of ["/curl", "/python", "/node"]) {
        assert.equal(
          byPath[p]?.authorization,
          `Bearer ${SECRET}`,
          `${p} got the grant's header, not the sandbox's`,
        );
      }
      const git = up.seen.find((s) => s.host === "github.com");
      assert.equal(git?.authorization, BASIC, "git over HTTPS gets the x-access-token Basic credential");
      assert.deepEqual(
        [byPath["/forged"]?.host, byPath["/forged"]?.hostHeader, byPath["/forged"]?.authorization],
        ["other.allowed.test", "api.github.com", null],
        "a forged SNI/Host pair gets no credential",
      );

      // The run's record names the grant, never the secret; its network log says which request got it.
      const record = await onlyRecord(home) as {
        id: string;
        containerId: string;
        profile: { grants: string[]; allow: string[] };
      };
      assert.deepEqual(record.profile.grants, ["github"]);
      assert.ok(record.profile.allow.includes("api.github.com:443"));
      const decisions = (await Deno.readTextFile(`${home}/runs/${record.id}/network.jsonl`)).trim().split(
        "\n",
      )
        .map((l) => JSON.parse(l) as { path?: string; grant?: string; host: string | null });
      assert.deepEqual(
        decisions.filter((d) => d.grant).map((d) => `${d.host}${d.path}`).sort(),
        [
          "api.github.com/curl",
          "api.github.com/node",
          "api.github.com/python",
          "github.com/moat/test.git/info/refs",
        ],
      );
      const logs = await moat(["logs", "--network", record.id], { home });
      assert.match(logs.out, /grant github/);

      // The secret: nowhere in what the container can read (its whole filesystem, its environment and
      // command as the engine has them, its mounts) nor in anything moat wrote or printed.
      const needle = new TextEncoder().encode(SECRET);
      const exported = new Deno.Command("docker", { args: ["export", record.containerId], stdout: "piped" })
        .spawn();
      assert.equal(await streamHas(exported.stdout, needle), false, "the container's filesystem");
      assert.equal((await exported.status).code, 0);
      const inspect = await docker("inspect", record.containerId);
      assert.ok(!inspect.includes(SECRET), "the container's environment, command and mounts");
      assert.ok(inspect.includes("moat-grant-github-placeholder"));
      assert.deepEqual(await filesHolding(ws, needle), [], "the workspace");
      assert.deepEqual(
        await filesHolding(home, needle, [`${home}/grants`]),
        [],
        "MOAT_HOME but the grant itself: records, logs, bundle, caches",
      );
      assert.ok(!r.out.includes(SECRET) && !r.stderr.includes(SECRET) && !logs.out.includes(SECRET));
      // The probe (a created container, never started) is gone; the kept run is the only container left.
      assert.match(await Deno.readTextFile(`${ws}/env.txt`), /^GITHUB_TOKEN=moat-grant-github-placeholder$/m);
    } finally {
      await up.close();
    }
  });
});

Deno.test("moat revoke: the next run that names the grant fails before anything is made; -d runs get the credential from their recorder", async () => {
  await requireEngine();
  await withScratch(async ({ ws, home }) => {
    const up = await upstreams(home);
    try {
      assert.equal(
        (await moat(["grant", "github", "--from-env", "T"], { home, env: { T: SECRET } })).code,
        0,
      );
      // Detached: the recorder serves the policy, with the run's CA handed over by moat run -d.
      const d = await moat(
        [
          "run",
          "-d",
          "--image",
          CLIENTS_IMAGE,
          "--grant",
          "github",
          ws,
          "--",
          "curl",
          "-sS",
          "https://api.github.com/detached",
        ],
        { home, env: up.env },
      );
      assert.equal(d.code, 0, d.stderr);
      const id = d.out.trim();
      const w = await moat(["wait", id], { home, env: up.env });
      assert.equal(w.code, 0, w.stderr);
      const out = await moat(["logs", id], { home });
      assert.equal(out.out, "api.github.com answered /detached\n", out.stderr);
      assert.equal(up.seen.find((s) => s.path === "/detached")?.authorization, `Bearer ${SECRET}`);

      // A variable of the grant's the user sets: that value is in the sandbox, and moat says so.
      const own = await moat(
        [
          "run",
          "--image",
          "moat-test/busybox:latest",
          "--grant",
          "github",
          "-e",
          "GH_TOKEN=mine",
          ws,
          "--",
          "sh",
          "-c",
          'echo "$GH_TOKEN $GITHUB_TOKEN"',
        ],
        { home, env: up.env },
      );
      assert.equal(own.code, 0, own.stderr);
      assert.equal(own.out, "mine moat-grant-github-placeholder\n");
      assert.match(
        own.stderr,
        /^moat: warning: GH_TOKEN is set for this run .* not the placeholder of grant github/m,
      );

      const revoked = await moat(["revoke", "github"], { home });
      assert.equal(revoked.code, 0, revoked.stderr);
      await Deno.writeTextFile(`${ws}/moat.yaml`, "grants: [github]\n");
      const before = (await docker("ps", "-aq")).trim();
      const r = await moat(["run", "--image", CLIENTS_IMAGE, ws, "--", "true"], { home, env: up.env });
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, /There is no grant named github/);
      assert.match(r.stderr, /moat grant github/);
      assert.equal((await docker("ps", "-aq")).trim(), before, "nothing was made");
    } finally {
      await up.close();
    }
  });
});
