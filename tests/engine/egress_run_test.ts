/**
 * `moat run --allow HOST` on the real engine, under gVisor: the run gets its own network, relay and policy
 * point; the command reaches the allowed name (by DNS and plain HTTP without proxy settings, and through the
 * proxy moat sets in its environment) and nothing else; every decision is in the run's `network.jsonl`; and
 * nothing of the run is left once it ends. The "upstream" is an HTTP server of the test's own on loopback,
 * named through `MOAT_TEST_UPSTREAMS`: no traffic leaves this machine.
 */
import assert from "node:assert/strict";
import { startBackgroundRun } from "./background_run.ts";
import { docker, moat, onlyRecord, requireEngine, TEST_IMAGE, withScratch } from "./helpers.ts";

Deno.test("a run with network: allow in moat.yaml reaches the allowed host only, each decision logged, nothing left", async () => {
  await requireEngine();
  const ac = new AbortController();
  const web = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => new Response(`host=${req.headers.get("host")} path=${new URL(req.url).pathname}\n`),
  );
  // A name no one could answer (each run its own, so no cache can): DNS tunnelling's shape.
  const tunnelled = `q${crypto.randomUUID().slice(0, 8)}.exfil.test`;
  try {
    await withScratch(async ({ ws, home }) => {
      const script = [
        `getent hosts web.allowed.test | cut -d' ' -f2- | tr -s ' '`,
        `getent hosts evil.example || echo "no evil.example"`,
        `exec 3<>/dev/tcp/web.allowed.test/80 && printf 'GET /direct HTTP/1.0\\r\\nHost: web.allowed.test\\r\\n\\r\\n' >&3 && timeout 5 cat <&3 | tail -1`,
        // The proxy moat set: its address from the environment, as a client would read it.
        `p=\${HTTP_PROXY#http://}; exec 4<>/dev/tcp/\${p%:*}/\${p##*:} && printf 'CONNECT evil.example:443 HTTP/1.1\\r\\n\\r\\n' >&4 && timeout 5 head -1 <&4 | tr -d '\\r'`,
        // Docker's own resolver, asked by address for a name nobody allowed: it must pass the question to
        // moat (which refuses it), never to the host's resolver. Prints the answer's code.
        `exec 5<>/dev/udp/127.0.0.11/53 && printf '${
          dnsQuery(tunnelled)
        }' >&5 && timeout 5 head -c 4 <&5 | od -An -tu1 | awk '{ print "rcode", $4 % 16 }'`,
      ].join("\n");
      // The allow list from moat.yaml (the interrupt and kill tests below give theirs with --allow).
      await Deno.writeTextFile(`${ws}/moat.yaml`, "network:\n  allow:\n    - web.allowed.test\n");
      const r = await moat(
        [
          "run",
          "--image",
          "debian:bookworm-slim",
          ws,
          "--",
          "bash",
          "-c",
          script,
        ],
        {
          home,
          env: { MOAT_TEST_UPSTREAMS: JSON.stringify({ "web.allowed.test": `127.0.0.1:${web.addr.port}` }) },
        },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^moat: warning: MOAT_TEST_UPSTREAMS is set: /m, "the override is never silent");
      // What was refused, said at the end (the names that did not resolve say nothing of why).
      assert.match(
        r.stderr,
        new RegExp(
          `^moat: run [0-9a-f]{12}'s network policy refused evil\\.example, ${
            tunnelled.replaceAll(".", "\\.")
          }: allow a host with  --allow HOST  \\(every decision:  moat logs --network [0-9a-f]{12}\\)$`,
          "m",
        ),
      );
      assert.deepEqual(r.out.trim().split("\n"), [
        "web.allowed.test",
        "no evil.example",
        "host=web.allowed.test path=/direct",
        "HTTP/1.1 403 Forbidden",
        "rcode 3", // NXDOMAIN, from moat
      ], r.stderr);
      const record = await onlyRecord(home) as { id: string; profile: { network: string; allow: string[] } };
      assert.deepEqual([record.profile.network, record.profile.allow], ["allowlist", ["web.allowed.test"]]);
      const decisions = (await Deno.readTextFile(`${home}/runs/${record.id}/network.jsonl`)).trim().split(
        "\n",
      )
        .map((l) => JSON.parse(l) as { via: string; host: string | null; decision: string });
      for (
        const want of [
          "dns web.allowed.test allow",
          "dns evil.example deny",
          "http web.allowed.test allow",
          "proxy evil.example deny",
          `dns ${tunnelled} deny`,
        ]
      ) {
        assert.ok(
          decisions.some((d) => `${d.via} ${d.host} ${d.decision}` === want),
          `${want}: ${JSON.stringify(decisions)}`,
        );
      }
      // The same decisions through moat logs --network.
      const logged = await moat(["logs", "--network", "--json", record.id], { home });
      assert.equal(logged.code, 0, logged.stderr);
      assert.deepEqual(JSON.parse(logged.out), decisions);
      // Nothing of the run is left: no container (the relay neither), no network.
      assert.equal(await docker("ps", "-aq", "--filter", `label=dev.moat.run-id=${record.id}`), "");
      assert.equal(await docker("network", "ls", "-q", "--filter", `name=moat-net-${record.id}`), "");
    });
  } finally {
    ac.abort();
    await web.finished;
  }
});

Deno.test("moat run -d --allow: the recorder serves the policy from the command's first instant to its end; nothing left", async () => {
  await requireEngine();
  const ac = new AbortController();
  const web = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => new Response(`path=${new URL(req.url).pathname}\n`),
  );
  const get = (path: string) =>
    `exec 3<>/dev/tcp/web.allowed.test/80 && printf 'GET ${path} HTTP/1.0\\r\\nHost: web.allowed.test\\r\\n\\r\\n' >&3 && timeout 5 cat <&3 | tail -1`;
  try {
    await withScratch(async ({ ws, home }) => {
      // The first request at once: the policy is served before the command starts, so nothing is cut by
      // the hand-over from moat run -d to its recorder. The second after moat run -d has exited.
      const script = [
        get("/first"),
        `getent hosts evil.example || echo "no evil.example"`,
        "sleep 2",
        get("/second"),
      ]
        .join("\n");
      const r = await moat(
        [
          "run",
          "-d",
          "--image",
          "debian:bookworm-slim",
          "--allow",
          "web.allowed.test",
          ws,
          "--",
          "bash",
          "-c",
          script,
        ],
        {
          home,
          env: { MOAT_TEST_UPSTREAMS: JSON.stringify({ "web.allowed.test": `127.0.0.1:${web.addr.port}` }) },
        },
      );
      assert.equal(r.code, 0, r.stderr);
      const id = r.out.trim();
      assert.match(id, /^[0-9a-f]{12}$/);
      const waited = await moat(["wait", id], { home });
      assert.equal(waited.code, 0, waited.stderr);
      const logs = await moat(["logs", id], { home });
      assert.deepEqual(
        logs.out.trim().split("\n"),
        ["path=/first", "no evil.example", "path=/second"],
        logs.stderr,
      );
      const decisions = (await Deno.readTextFile(`${home}/runs/${id}/network.jsonl`)).trim().split("\n")
        .map((l) => JSON.parse(l) as { via: string; host: string | null; decision: string; path?: string });
      assert.deepEqual(
        decisions.filter((d) => d.via === "http").map((d) => `${d.path} ${d.decision}`),
        ["/first allow", "/second allow"],
      );
      assert.ok(decisions.some((d) => `${d.via} ${d.host} ${d.decision}` === "dns evil.example deny"));
      const record = JSON.parse(await Deno.readTextFile(`${home}/runs/${id}/run.json`));
      assert.deepEqual([record.state, record.exitCode], ["exited", 0]);
      // The recorder removed the relay and the network once the command had ended.
      assert.equal(await docker("ps", "-aq", "--filter", `label=dev.moat.run-id=${id}`), "");
      assert.equal(await docker("network", "ls", "-q", "--filter", `name=moat-net-${id}`), "");
    });
  } finally {
    ac.abort();
    await web.finished;
  }
});

Deno.test("six --allow runs started at once each get their own network, and all of it goes", async () => {
  await requireEngine();
  await withScratch(async ({ ws, home }) => {
    const runs = await Promise.all(
      Array.from(
        { length: 6 },
        (_, i) =>
          moat(["run", "--image", TEST_IMAGE, "--allow", "x.example", ws, "--", "sh", "-c", `exit ${i}`], {
            home,
          }),
      ),
    );
    assert.deepEqual(runs.map((r) => r.code), [0, 1, 2, 3, 4, 5], runs.map((r) => r.stderr).join("\n"));
    const ids = [...Deno.readDirSync(`${home}/runs`)].map((e) => e.name).filter((n) =>
      /^[0-9a-f]{12}$/.test(n)
    );
    assert.equal(ids.length, 6);
    for (const id of ids) {
      assert.equal(await docker("ps", "-aq", "--filter", `label=dev.moat.run-id=${id}`), "");
      assert.equal(await docker("network", "ls", "-q", "--filter", `name=moat-net-${id}`), "");
    }
  });
});

Deno.test("moat run --allow interrupted while its command runs: exit 130, and its relay and network are gone", async () => {
  await requireEngine();
  await withScratch(async (s) => {
    // Once its command runs, the network, the relay and the sandbox are all there.
    const run = await startBackgroundRun(s, ["--allow", "x.example"], 60);
    const runId = onlyRunId(s.home);
    assert.notEqual(
      await docker("network", "ls", "-q", "--filter", `name=moat-net-${runId}`),
      "",
      "the network is there",
    );
    run.child.kill("SIGINT");
    const { code, stderr } = await run.done;
    assert.equal(code, 130, stderr);
    assert.equal(
      await docker("ps", "-aq", "--filter", `label=dev.moat.run-id=${runId}`),
      "",
      "no container, relay included",
    );
    assert.equal(await docker("network", "ls", "-q", "--filter", `name=moat-net-${runId}`), "", "no network");
    const record = JSON.parse(await Deno.readTextFile(`${s.home}/runs/${runId}/run.json`));
    assert.deepEqual([record.state, record.signal], ["interrupted", "SIGINT"]);
  });
});

Deno.test("an --allow run whose moat is killed (kill -9): moat clean removes its relay, its sandbox and its network", async () => {
  await requireEngine();
  await withScratch(async (s) => {
    const run = await startBackgroundRun(s, ["--allow", "x.example"], 60);
    run.child.kill("SIGKILL");
    await run.done;
    const runId = onlyRunId(s.home);
    assert.notEqual(
      await docker("network", "ls", "-q", "--filter", `name=moat-net-${runId}`),
      "",
      "left behind",
    );
    const r = await moat(["clean", "-f"], { home: s.home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.out,
      new RegExp(
        `removed ${runId}: container [0-9a-f]{12}, container [0-9a-f]{12}, network moat-net-${runId}, record`,
      ),
    );
    assert.equal(await docker("ps", "-aq", "--filter", `label=dev.moat.run-id=${runId}`), "");
    assert.equal(await docker("network", "ls", "-q", "--filter", `name=moat-net-${runId}`), "");
  });
});

/** The id of the one run under `home`. */
function onlyRunId(home: string): string {
  const ids = [...Deno.readDirSync(`${home}/runs`)].map((e) => e.name).filter((n) =>
    /^[0-9a-f]{12}$/.test(n)
  );
  assert.equal(ids.length, 1, `${ids}`);
  return ids[0]!;
}

/** A DNS question for `name`'s A record, as `printf` escapes (RFC 1035 4.1). */
function dnsQuery(name: string): string {
  const bytes = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
  for (const label of name.split(".")) bytes.push(label.length, ...new TextEncoder().encode(label));
  bytes.push(0, 0, 1, 0, 1);
  return bytes.map((b) => `\\x${b.toString(16).padStart(2, "0")}`).join("");
}
